/**
 * @module WebAssembly text to a module with `wabt` (WABT compiled to wasm), run in the compiler
 * worker under the compile's time limit (`wat-worker.ts`). Parse and validation errors come back
 * as diagnostics naming the file, line and column. The input is bounded by `source-files.ts`;
 * the output by the caller's maxOutput.
 */
import { CompileError } from '../runtime/errors.js'
import { runCompilerJob } from './compiler-worker.js'
import { parseDiagnostics, summarize } from './diagnostics.js'
import type { CompileContext, CompiledModule, LanguageCompiler } from './languages.js'
import { hasExtension } from './source-files.js'
import type { WatReply } from './wat-worker.js'

function pickEntry(ctx: CompileContext): string {
  if (ctx.entry !== undefined) return ctx.entry
  const wats = [...ctx.files.keys()].filter((n) => hasExtension(n, ['.wat', '.wast']))
  if (wats.length === 1) return wats[0]!
  throw new CompileError(wats.length === 0 ? 'no .wat file among the sources' : `several .wat files (${wats.join(', ')}): name the entry`)
}

export const watCompiler: LanguageCompiler = {
  async identity() {
    const { createRequire } = await import('node:module')
    const version = (createRequire(import.meta.url)('wabt/package.json') as { version: string }).version
    return `wabt ${version}`
  },
  async compile(ctx): Promise<CompiledModule> {
    const entry = pickEntry(ctx)
    let text: string
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(ctx.files.get(entry)!)
    } catch {
      throw new CompileError(`${entry}: not valid UTF-8`)
    }
    const reply = await runCompilerJob<WatReply>(
      { kind: 'wat', entry, text, debug: ctx.options.debug },
      { timeoutMs: ctx.timeoutMs, signal: ctx.signal, what: 'the WAT compiler (wabt)' },
    )
    if (!reply.ok) {
      const diagnostics = parseDiagnostics(reply.message.replace(/^(parseWat|validate|resolveNames) failed:\n/, ''))
      throw new CompileError(summarize(diagnostics, `${entry}: ${reply.message.split('\n')[0]}`), diagnostics)
    }
    const module = new Uint8Array(reply.module)
    if (!WebAssembly.validate(module))
      throw new CompileError(`${entry}: wabt produced a module this engine rejects (a feature it does not support?)`)
    return { kind: 'wasm', module, diagnostics: [] }
  },
}
