/**
 * @module The toolchain's one entry: untrusted source in, a WebAssembly module (or, for
 * TypeScript/JavaScript, a QuickJS script program) out, never trusting the source at any stage.
 * `compile()` validates the request (names, sizes, options against an allow-list: never raw
 * compiler flags), looks in the content-addressed cache, and otherwise runs the language's
 * compiler under its limits (native compilers jailed, JS ones in a capped worker).
 * `runtime/` calls this; `wasi-host/` never does.
 *
 * @example
 *   const { module, diagnostics } = await compile({ language: 'c', files: { 'main.c': src } })
 *   const result = await run(module, { limits: { fuel: 5e9 } })
 */
import { CompileError, ToolchainError } from '../runtime/errors.js'
import type { Duration, Size } from '../runtime/policy.js'
import { parseDuration, parseSize } from '../runtime/units.js'
import { cacheKey, CompileCache, type CacheSettings } from './cache.js'
import type { Diagnostic } from './diagnostics.js'
import { languageByName, languageNames, type BuildOptions, type CompileContext, type Language } from './languages.js'
import { nameProblem, quoteName, validateSources } from './source-files.js'
import { isScriptProgram, type ScriptProgram } from './js/index.js'

export type { Diagnostic, Severity } from './diagnostics.js'
export { formatDiagnostic, formatDiagnostics } from './diagnostics.js'
export { LANGUAGES, languageByName, languageForFile, type Language } from './languages.js'
export { CompileCache, defaultCacheDir, type CacheSettings } from './cache.js'

export const DEFAULT_COMPILE_TIMEOUT_MS = 60_000
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024

export interface CompileOptions {
  /** -O0..-O3 (default 2). */
  optimize?: 0 | 1 | 2 | 3
  /** Keep debug information (-g). */
  debug?: boolean
  /** -D NAME[=VALUE] for C and C++: NAME an identifier, VALUE printable ASCII (at most 256). */
  defines?: Record<string, string | true>
  /** -std=, from the language's list (e.g. c11, c++20). */
  std?: string
  /** Wall-time limit for the compiler (default 60 s). */
  timeout?: Duration
  /** Largest module (and largest file the compiler may write), default 64 MiB. */
  maxOutput?: Size
  /** Compile without the jail where bubblewrap is missing: only for source you trust. */
  trustSource?: boolean
  /** false: no cache; otherwise where and how large (default: see `defaultCacheDir`). */
  cache?: false | CacheSettings
  signal?: AbortSignal
  /** TypeScript: type-check before bundling (default true); false skips it (`--no-check`). */
  typeCheck?: boolean
  /** The environment the toolchain looks up CAPLET_CLANG, CAPLET_BWRAP, PATH in (default process.env). */
  env?: Readonly<Record<string, string | undefined>>
}

export interface CompileRequest {
  /** A language name or alias from the registry: c, cpp, wat, as, ... */
  language: string
  /** Guest-relative file names -> contents. */
  files: Record<string, string | Uint8Array>
  /** The file to start from (AssemblyScript, WAT with several files); must be among `files`. */
  entry?: string
  options?: CompileOptions
}

interface CompileResultBase {
  /** Warnings and notes (errors throw CompileError). */
  diagnostics: Diagnostic[]
  /** The result came from the cache. */
  cached: boolean
  /** The language's canonical name (c, cpp, wat, as, typescript, javascript). */
  language: string
}

/** C, C++, WAT, AssemblyScript: a WebAssembly module for `run(module, policy)`. */
export interface WasmCompileResult extends CompileResultBase {
  kind: 'wasm'
  module: Uint8Array<ArrayBuffer>
}

/** TypeScript, JavaScript: a program that `run(program, policy)` runs inside QuickJS. */
export interface ScriptCompileResult extends CompileResultBase {
  kind: 'script'
  program: ScriptProgram
}

/**
 * What `compile()` gives: narrow on `kind` (`'wasm'` has `module`, `'script'` has `program`).
 * A caller that needs module bytes (e.g. to store a .wasm) must refuse `kind: 'script'`; both
 * run with `run(result.module ?? result.program, policy)` after narrowing.
 */
export type CompileResult = WasmCompileResult | ScriptCompileResult

/** Language names whose result is a script; any other literal name gives a WasmCompileResult. */
export type ScriptLanguageName = 'typescript' | 'ts' | 'javascript' | 'js'
export type WasmLanguageName = 'c' | 'C' | 'cpp' | 'c++' | 'cxx' | 'C++' | 'wat' | 'wast' | 'as' | 'assemblyscript'

const DEFINE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
const DEFINE_VALUE = /^[\x20-\x7e]{0,256}$/

/** Validates the user's build options against the language's allow-list. */
export function buildOptions(language: Language, o: CompileOptions): BuildOptions {
  const problems: string[] = []
  const optimize = o.optimize ?? 2
  if (![0, 1, 2, 3].includes(optimize)) problems.push(`optimize must be 0, 1, 2 or 3, not ${JSON.stringify(optimize)}`)
  if (o.debug !== undefined && typeof o.debug !== 'boolean') problems.push('debug must be true or false')
  let std: string | undefined
  if (o.std !== undefined) {
    if (!language.standards.includes(o.std)) {
      problems.push(
        language.standards.length === 0
          ? `${language.name} takes no std option`
          : `std ${quoteName(o.std)} is not one of ${language.standards.join(', ')}`,
      )
    } else std = o.std
  }
  const defines: Array<[string, string | null]> = []
  if (o.defines !== undefined) {
    if (typeof o.defines !== 'object' || o.defines === null || Array.isArray(o.defines))
      problems.push('defines must be an object of NAME: VALUE')
    else {
      if (!language.defines && Object.keys(o.defines).length > 0) problems.push(`${language.name} takes no defines`)
      const names = Object.keys(o.defines).sort()
      if (names.length > 64) problems.push('at most 64 defines')
      for (const name of names.slice(0, 64)) {
        const value = o.defines[name]
        if (!DEFINE_NAME.test(name)) {
          problems.push(`define ${quoteName(name)}: the name must be an identifier (letters, digits, _)`)
          continue
        }
        if (value === true) defines.push([name, null])
        else if (typeof value === 'string' && DEFINE_VALUE.test(value)) defines.push([name, value])
        else problems.push(`define ${name}: the value must be printable ASCII, at most 256 characters`)
      }
    }
  }
  if (problems.length > 0) throw new CompileError(`invalid build options: ${problems.join('; ')}`)
  return { optimize: optimize as BuildOptions['optimize'], debug: o.debug === true, defines, std }
}

/**
 * Compiles untrusted source to a WebAssembly module.
 * @throws CompileError the source or the options are invalid, the compile failed (diagnostics
 *   attached) or a limit stopped it (`limit`).
 * @throws ToolchainError the compiler (or its jail) is not available here.
 */
export async function compile(request: CompileRequest & { language: WasmLanguageName }): Promise<WasmCompileResult>
export async function compile(request: CompileRequest & { language: ScriptLanguageName }): Promise<ScriptCompileResult>
export async function compile(request: CompileRequest): Promise<CompileResult>
export async function compile(request: CompileRequest): Promise<CompileResult> {
  if (typeof request !== 'object' || request === null) throw new CompileError('compile() needs { language, files }')
  const language = typeof request.language === 'string' ? languageByName(request.language) : undefined
  if (!language) throw new CompileError(`unknown language ${quoteName(request.language)} (known: ${languageNames()})`)
  const files = validateSources(request.files)
  const entry = request.entry
  if (entry !== undefined) {
    const problem = nameProblem(entry)
    if (problem) throw new CompileError(`entry ${quoteName(entry)} ${problem}`)
    if (!files.has(entry)) throw new CompileError(`entry ${quoteName(entry)} is not among the files`)
  }
  const o = request.options ?? {}
  const options = buildOptions(language, o)
  let timeoutMs: number
  let maxOutputBytes: number
  try {
    timeoutMs = o.timeout === undefined ? DEFAULT_COMPILE_TIMEOUT_MS : parseDuration(o.timeout)
    maxOutputBytes = o.maxOutput === undefined ? DEFAULT_MAX_OUTPUT_BYTES : parseSize(o.maxOutput)
  } catch (e) {
    throw new CompileError(`invalid compile limits: ${(e as Error).message}`)
  }
  if (!(timeoutMs > 0) || !(maxOutputBytes > 0)) throw new CompileError('compile limits must be positive')
  const ctx: CompileContext = {
    files,
    entry,
    options,
    timeoutMs,
    maxOutputBytes,
    trustSource: o.trustSource === true,
    signal: o.signal,
    env: o.env ?? process.env,
    typeCheck: o.typeCheck !== false,
  }
  const compiler = await language.load()
  const cache = o.cache === false ? undefined : new CompileCache(o.cache ?? {})
  let key: string | undefined
  if (cache) {
    const keyOptions = language.output === 'script' ? { ...options, typeCheck: ctx.typeCheck } : options
    key = cacheKey({ language: language.name, compiler: await compiler.identity(ctx), options: keyOptions, entry, files })
    const hit = cache.get(key)
    if (hit && hit.module.byteLength <= maxOutputBytes) {
      const out = fromCache(language, hit.module)
      if (out) return { ...out, diagnostics: hit.diagnostics, cached: true, language: language.name }
    }
  }
  if (o.signal?.aborted) throw new CompileError('compilation aborted', [], { limit: 'aborted' })
  const result = await compiler.compile(ctx)
  const bytes = result.kind === 'wasm' ? result.module : new TextEncoder().encode(JSON.stringify(result.program))
  if (bytes.byteLength > maxOutputBytes) {
    throw new CompileError(`compilation stopped: the output grew past the limit of ${maxOutputBytes} bytes`, result.diagnostics, {
      limit: 'output',
    })
  }
  if (cache && key) cache.put(key, { module: bytes, diagnostics: result.diagnostics })
  return result.kind === 'wasm'
    ? { kind: 'wasm', module: result.module, diagnostics: result.diagnostics, cached: false, language: language.name }
    : { kind: 'script', program: result.program, diagnostics: result.diagnostics, cached: false, language: language.name }
}

/** A cached entry's payload as the language's output, or undefined when it is not one (then recompiled). */
function fromCache(
  language: Language,
  bytes: Uint8Array<ArrayBuffer>,
): { kind: 'wasm'; module: Uint8Array<ArrayBuffer> } | { kind: 'script'; program: ScriptProgram } | undefined {
  if (language.output === 'wasm') return WebAssembly.validate(bytes) ? { kind: 'wasm', module: bytes } : undefined
  try {
    const program = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown
    return isScriptProgram(program) ? { kind: 'script', program } : undefined
  } catch {
    return undefined
  }
}

export { CompileError, ToolchainError }
