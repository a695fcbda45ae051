/**
 * @module WebAssembly text to a module with `wabt` (WABT compiled to wasm: runs in-process, no
 * host access). Parse and validation errors come back as diagnostics naming the file, line and
 * column. The input is bounded by `source-files.ts`; the output by the caller's maxOutput.
 */
import { CompileError } from '../runtime/errors.js'
import { parseDiagnostics, summarize } from './diagnostics.js'
import type { CompileContext, CompiledModule, LanguageCompiler } from './languages.js'
import { hasExtension } from './source-files.js'

type Wabt = Awaited<ReturnType<typeof import('wabt')>>
let wabt: Promise<Wabt> | undefined

async function loadWabt(): Promise<Wabt> {
  // wabt is CommonJS (`export =`): its function arrives as the namespace's default.
  wabt ??= import('wabt').then((m) => ((m as unknown as { default: typeof import('wabt') }).default)())
  return wabt
}

/** Every feature wabt knows that V8 ships, so modules written for today's engines parse. */
const FEATURES = {
  mutable_globals: true, sat_float_to_int: true, sign_extension: true, simd: true, threads: true,
  multi_value: true, tail_call: true, bulk_memory: true, reference_types: true, exceptions: false,
  extended_const: true, relaxed_simd: false, gc: false, memory64: false, multi_memory: true,
}

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
    const w = await loadWabt()
    let mod: ReturnType<Wabt['parseWat']> | undefined
    try {
      mod = w.parseWat(entry, text, FEATURES)
      mod.resolveNames()
      mod.validate()
      const { buffer } = mod.toBinary({ log: false, write_debug_names: ctx.options.debug })
      const module = new Uint8Array(buffer)
      if (!WebAssembly.validate(module)) throw new CompileError(`${entry}: wabt produced a module this engine rejects (a feature it does not support?)`)
      return { module, diagnostics: [] }
    } catch (e) {
      if (e instanceof CompileError) throw e
      const message = e instanceof Error ? e.message : String(e)
      const diagnostics = parseDiagnostics(message.replace(/^(parseWat|validate|resolveNames) failed:\n/, ''))
      throw new CompileError(summarize(diagnostics, `${entry}: ${message.split('\n')[0]}`), diagnostics)
    } finally {
      mod?.destroy()
    }
  },
}
