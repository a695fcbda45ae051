/**
 * @module AssemblyScript to an ordinary WASI command: `asc` with `@assemblyscript/wasi-shim`
 * (WASI imports instead of the JS host's, `_start` exported), run in the compiler worker
 * (`compiler-worker.ts`: terminated at the time limit, a bounded JS heap). asc sees the
 * submitted files only from memory (`assemblyscript-worker.ts`). Diagnostics name the submitted
 * file, line and column.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { CompileError, ToolchainError } from '../runtime/errors.js'
import { runCompilerJob } from './compiler-worker.js'
import { bound, summarize, type Diagnostic } from './diagnostics.js'
import type { CompileContext, CompiledModule, LanguageCompiler } from './languages.js'
import type { AscDiagnostic, AscJob, AscReply } from './assemblyscript-worker.js'
import { hasExtension } from './source-files.js'

const require = createRequire(import.meta.url)
/** The compiler's JS heap (binaryen's own memory is wasm32, so bounded at 4 GiB by construction). */
const HEAP_MB = 1024

interface Shim {
  files: Array<[string, string]>
  use: string[]
  version: string
}
let shimCache: Shim | undefined

function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`))
  } catch {
    throw new ToolchainError(`the npm package ${name} is not installed (npm install ${name})`)
  }
}

/** The wasi-shim's library files and `use` aliases, read once from caplet's node_modules. */
function loadShim(): Shim {
  if (shimCache) return shimCache
  const dir = packageDir('@assemblyscript/wasi-shim')
  const config = JSON.parse(readFileSync(join(dir, 'asconfig.json'), 'utf8')) as { options: { lib: string; use: string[] } }
  const lib = join(dir, config.options.lib)
  const files: Array<[string, string]> = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile() && e.name.endsWith('.ts')) files.push([relative(lib, p), readFileSync(p, 'utf8')])
    }
  }
  walk(lib)
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version
  shimCache = { files, use: config.options.use, version }
  return shimCache
}

function pickEntry(ctx: CompileContext): string {
  if (ctx.entry !== undefined) {
    if (!ctx.entry.endsWith('.ts')) throw new CompileError(`the entry ${JSON.stringify(ctx.entry)} is not a .ts file`)
    return ctx.entry
  }
  const entries = [...ctx.files.keys()].filter((n) => hasExtension(n, ['.ts']))
  if (entries.length === 1) return entries[0]!
  throw new CompileError(
    entries.length === 0 ? 'no .ts file among the sources' : `several .ts files (${entries.slice(0, 5).join(', ')}): name the entry`,
  )
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let last = -1
  for (let i = 0; i < offset && i < text.length; i++)
    if (text.charCodeAt(i) === 10) {
      line++
      last = i
    }
  return { line, column: offset - last }
}

function toDiagnostics(ctx: CompileContext, raw: AscDiagnostic[]): Diagnostic[] {
  const dec = new TextDecoder()
  return bound(
    raw.map((d) => {
      const severity = d.category === 3 ? 'error' : d.category === 2 ? 'warning' : 'note'
      const bytes = d.file !== undefined ? ctx.files.get(d.file) : undefined
      if (d.file === undefined) return { severity, message: d.message }
      if (!bytes || d.start === undefined) return { severity, message: d.message, file: d.file }
      return { severity, message: d.message, file: d.file, ...lineColumn(dec.decode(bytes), d.start) }
    }),
  )
}

export const assemblyScriptCompiler: LanguageCompiler = {
  identity() {
    const asc = JSON.parse(readFileSync(join(packageDir('assemblyscript'), 'package.json'), 'utf8')) as { version: string }
    return `assemblyscript ${asc.version} wasi-shim ${loadShim().version}`
  },
  async compile(ctx): Promise<CompiledModule> {
    const entry = pickEntry(ctx)
    const shim = loadShim()
    const job: AscJob = {
      kind: 'asc',
      files: [...ctx.files],
      entry,
      shim: shim.files,
      use: shim.use,
      optimize: ctx.options.optimize,
      debug: ctx.options.debug,
      maxOutputBytes: ctx.maxOutputBytes,
    }
    const reply = await runCompilerJob<AscReply>(job, {
      timeoutMs: ctx.timeoutMs,
      heapMb: HEAP_MB,
      signal: ctx.signal,
      what: 'the AssemblyScript compiler',
    })
    const diagnostics = toDiagnostics(ctx, reply.diagnostics)
    if (reply.ok) {
      const module = new Uint8Array(reply.module)
      if (!WebAssembly.validate(module)) throw new CompileError('the AssemblyScript compiler produced an invalid module', diagnostics)
      return { kind: 'wasm', module, diagnostics }
    }
    if (reply.message === 'output-too-large') {
      throw new CompileError(`compilation stopped: the output grew past the limit of ${ctx.maxOutputBytes} bytes`, diagnostics, {
        limit: 'output',
      })
    }
    throw new CompileError(summarize(diagnostics, `AssemblyScript: ${reply.message}`), diagnostics)
  },
}
