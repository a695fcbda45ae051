/**
 * @module TypeScript and JavaScript as toolchain languages: `compile({ language: 'typescript' |
 * 'javascript', files })` bundles the submitted files with esbuild (`js/index.ts`: only those
 * files, never the disk) into a `ScriptProgram` for QuickJS; TypeScript is type-checked first
 * in the compiler worker (`js/typecheck.ts`) unless `typeCheck: false`. A type error is a
 * CompileError whose diagnostics name file, line and column.
 */
import { CompileError } from '../runtime/errors.js'
import { summarize, type Diagnostic } from './diagnostics.js'
import { compileScript, type ScriptLoader } from './js/index.js'
import { typecheckScript } from './js/typecheck.js'
import type { CompileContext, CompiledModule, LanguageCompiler } from './languages.js'
import { hasExtension } from './source-files.js'

const TS = ['.ts', '.mts', '.cts']
const JS = ['.js', '.mjs', '.cjs']

function pickEntry(ctx: CompileContext, exts: readonly string[], what: string): string {
  if (ctx.entry !== undefined) return ctx.entry
  const entries = [...ctx.files.keys()].filter((n) => hasExtension(n, exts) && !/\.d\.[mc]?ts$/.test(n))
  if (entries.length === 1) return entries[0]!
  throw new CompileError(
    entries.length === 0
      ? `no ${what} file among the sources`
      : `several ${what} files (${entries.slice(0, 5).join(', ')}): name the entry`,
  )
}

function texts(ctx: CompileContext): Map<string, string> {
  const dec = new TextDecoder('utf-8', { fatal: true })
  const out = new Map<string, string>()
  for (const [name, bytes] of ctx.files) {
    try {
      out.set(name, dec.decode(bytes))
    } catch {
      throw new CompileError(`${name}: not valid UTF-8`)
    }
  }
  return out
}

/** Bundles (the entry read as `loader` says, whatever its extension), then type-checks if `check`. */
async function compileWith(
  ctx: CompileContext,
  check: boolean,
  loader: ScriptLoader,
  exts: readonly string[],
  what: string,
): Promise<CompiledModule> {
  const entry = pickEntry(ctx, exts, what)
  const files = texts(ctx)
  const bundled = await compileScript({ files: Object.fromEntries(files), entry, loader })
  if (!bundled.program) throw new CompileError(summarize(bundled.diagnostics, `${entry}: the script did not compile`), bundled.diagnostics)
  const diagnostics: Diagnostic[] = [...bundled.diagnostics]
  if (check) {
    const checked = await typecheckScript({ files, entry, timeoutMs: ctx.timeoutMs, signal: ctx.signal })
    if (checked.some((d) => d.severity === 'error')) {
      throw new CompileError(summarize(checked, `${entry}: type errors`), checked)
    }
    diagnostics.push(...checked)
  }
  return { kind: 'script', program: bundled.program, diagnostics }
}

async function identity(): Promise<string> {
  const { createRequire } = await import('node:module')
  const require = createRequire(import.meta.url)
  const v = (p: string) => (require(`${p}/package.json`) as { version: string }).version
  return `esbuild ${v('esbuild')} typescript ${v('typescript')}`
}

export const typeScriptCompiler: LanguageCompiler = {
  identity,
  compile: (ctx) => compileWith(ctx, ctx.typeCheck, 'ts', TS, 'TypeScript'),
}

export const javaScriptCompiler: LanguageCompiler = {
  identity,
  compile: (ctx) => compileWith(ctx, false, 'js', JS, 'JavaScript'),
}
