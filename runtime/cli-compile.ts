/**
 * @module The CLI's source side: `caplet run hello.c` / `main.cpp` / `prog.wat` / `x.as.ts`
 * compile (cached) before running, and `caplet build SRC... -o out.wasm`. Build flags are an
 * allow-list (-O0..-O3, -g, -D NAME[=VALUE], -std=, --lang), never passed through raw. Source
 * files are read as regular files only (a symlink is refused: a planted link must not pull a
 * host file into the compile), each at most the toolchain's size limit. A compile error prints
 * the diagnostics and exits COMPILE_EXIT_CODE. A spinner shows on a terminal after ~300 ms.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, unlinkSync, writeFileSync, constants as fsc } from 'node:fs'
import { basename, dirname, relative, resolve, sep } from 'node:path'
import { CompileError, ToolchainError } from './errors.js'
import {
  compile,
  formatDiagnostics,
  languageByName,
  languageForFile,
  LANGUAGES,
  type CompileOptions,
  type CompileResult,
} from '../toolchain/index.js'
import { MAX_SOURCE_FILE_BYTES, nameProblem } from '../toolchain/source-files.js'
import { compileScript, formatDiagnostics as formatScriptDiagnostics, type ScriptProgram } from '../toolchain/js/index.js'
import { isScriptPath, scriptFromDisk } from '../toolchain/js/local-files.js'

/** `caplet run`/`build` exit status when the source did not compile (sysexits EX_DATAERR). */
export const COMPILE_EXIT_CODE = 65
const USAGE_EXIT_CODE = 125
/** Compiles faster than this show no spinner. */
const SPINNER_DELAY_MS = 300

export class BuildUsageError extends Error {}

/** Build flags as parsed from the command line (before validation by the toolchain). */
export interface BuildFlags {
  lang?: string
  optimize?: 0 | 1 | 2 | 3
  debug?: boolean
  defines: Record<string, string | true>
  std?: string
  /** Extra source files for `run` (headers, other units). */
  extra: string[]
  trustSource: boolean
  quiet: boolean
  noCache: boolean
  /** TypeScript: skip the type check (`--no-check`). */
  noCheck: boolean
  timeout?: string
}

/** Fresh build flags; CAPLET_NO_CACHE (set, not empty, not `0`) turns the caches off as `--no-cache` does. */
export function newBuildFlags(env: Readonly<Record<string, string | undefined>> = {}): BuildFlags {
  const noCache = env.CAPLET_NO_CACHE !== undefined && env.CAPLET_NO_CACHE !== '' && env.CAPLET_NO_CACHE !== '0'
  return { defines: {}, extra: [], trustSource: false, quiet: false, noCache, noCheck: false }
}

/**
 * Consumes one build flag (`arg` as given, `flag` without an inline `=value`); false when `arg`
 * is not a build flag. `next()` takes the flag's value.
 */
export function parseBuildFlag(b: BuildFlags, arg: string, flag: string, next: () => string): boolean {
  const m = /^-O([0-3])$/.exec(arg)
  if (m) {
    b.optimize = Number(m[1]) as 0 | 1 | 2 | 3
    return true
  }
  if (arg === '-g') {
    b.debug = true
    return true
  }
  if (arg === '-D' || (arg.startsWith('-D') && !arg.startsWith('--'))) {
    const v = arg === '-D' ? next() : arg.slice(2)
    const eq = v.indexOf('=')
    const name = eq < 0 ? v : v.slice(0, eq)
    if (name === '') throw new BuildUsageError(`-D ${v}: the name is empty`)
    b.defines[name] = eq < 0 ? true : v.slice(eq + 1)
    return true
  }
  if (arg.startsWith('-std=')) {
    b.std = arg.slice(5)
    return true
  }
  switch (flag) {
    case '--std':
      b.std = next()
      return true
    case '--lang': {
      const l = next()
      if (!languageByName(l)) throw new BuildUsageError(`--lang ${l}: unknown language (known: ${LANGUAGES.map((x) => x.name).join(', ')})`)
      b.lang = l
      return true
    }
    case '--src':
      b.extra.push(next())
      return true
    case '--trust-source':
      b.trustSource = true
      return true
    case '--quiet':
    case '-q':
      b.quiet = true
      return true
    case '--no-cache':
      b.noCache = true
      return true
    case '--no-check':
      b.noCheck = true
      return true
    case '--compile-timeout':
      b.timeout = next()
      return true
    default:
      return false
  }
}

/** Whether `module` names a source file caplet compiles to WebAssembly (by --lang or its extension). */
export function isSource(module: string, b: BuildFlags): boolean {
  if (scriptLanguage(module, b) !== undefined) return false
  if (b.lang !== undefined) return true
  if (module.toLowerCase().endsWith('.wasm')) return false
  return languageForFile(module) !== undefined
}

/** The script language (typescript, javascript) `module` is run as, by --lang or its extension. */
export function scriptLanguage(module: string, b: BuildFlags): string | undefined {
  const l = b.lang !== undefined ? languageByName(b.lang) : isScriptPath(module) ? languageForFile(module) : undefined
  return l?.output === 'script' ? l.name : undefined
}

/** Reads one host source file: a regular file, not a symlink, within the size limit. */
function readSource(path: string): Uint8Array {
  let fd: number
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ELOOP')
      throw new BuildUsageError(`${path}: is a symbolic link; caplet compiles only regular files (copy the file instead)`)
    throw new BuildUsageError(`${path}: cannot read it (${code ?? e})`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new BuildUsageError(`${path}: not a regular file`)
    if (st.size > MAX_SOURCE_FILE_BYTES) throw new BuildUsageError(`${path}: larger than ${MAX_SOURCE_FILE_BYTES} bytes`)
    const buf = new Uint8Array(st.size)
    let off = 0
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off)
      if (n === 0) break
      off += n
    }
    return buf.subarray(0, off)
  } finally {
    closeSync(fd)
  }
}

/** Reads the sources, naming each relative to their common directory (`src/a.c` -> `a.c`). */
export function readSources(paths: readonly string[]): { files: Record<string, Uint8Array>; names: string[] } {
  const abs = paths.map((p) => resolve(p))
  let common = dirname(abs[0]!)
  for (const p of abs) {
    while (common !== dirname(common) && !p.startsWith(common + sep)) common = dirname(common)
  }
  const files: Record<string, Uint8Array> = {}
  const names: string[] = []
  for (let i = 0; i < abs.length; i++) {
    const name = relative(common, abs[i]!).split(sep).join('/')
    const problem = nameProblem(name)
    if (problem) throw new BuildUsageError(`${paths[i]}: its name ${JSON.stringify(name)} ${problem}`)
    if (Object.hasOwn(files, name)) throw new BuildUsageError(`${paths[i]}: given twice`)
    files[name] = readSource(paths[i]!)
    names.push(name)
  }
  return { files, names }
}

export interface CompileIo {
  err: (s: string) => void
  env: Readonly<Record<string, string | undefined>>
  /** stderr is a terminal: a spinner may show. */
  stderrIsTTY?: boolean
}

async function withSpinner<T>(io: CompileIo, b: BuildFlags, text: string, work: Promise<T>): Promise<T> {
  if (b.quiet || !io.stderrIsTTY) return work
  let spinner: { stop(): unknown } | undefined
  let done = false
  const timer = setTimeout(() => {
    void import('yocto-spinner').then(
      ({ default: yoctoSpinner }) => {
        if (!done) spinner = yoctoSpinner({ text, stream: process.stderr }).start()
      },
      () => {
        /* no spinner, no harm */
      },
    )
  }, SPINNER_DELAY_MS)
  try {
    return await work
  } finally {
    done = true
    clearTimeout(timer)
    spinner?.stop()
  }
}

/**
 * `caplet run` exit status when a script did not bundle or type-check: the source did not
 * compile, as for C or WAT (65, EX_DATAERR), not a rejected module (126).
 */
export const SCRIPT_COMPILE_EXIT_CODE = COMPILE_EXIT_CODE

/**
 * Compiles a script given on the command line: the files it imports are found beside it
 * (`local-files.ts`: nothing outside its directory) by bundling it, then compiled through
 * `compile()` (type check unless --no-check, cache), which takes that bundle rather than making
 * it again (`compileScript`'s hand-off). Resolves with the program, or an exit code after
 * printing the diagnostics and one line.
 */
export async function compileScriptForCli(path: string, language: string, b: BuildFlags, io: CompileIo): Promise<ScriptProgram | number> {
  const seen: Record<string, string> = {}
  let entry: string
  try {
    const source = scriptFromDisk(path)
    const read = source.files as (name: string) => string | undefined
    entry = source.entry
    const probe = await compileScript({
      entry,
      loader: language === 'typescript' ? 'ts' : 'js',
      files: (name) => {
        const t = read(name)
        if (t !== undefined) seen[name] = t
        return t
      },
    })
    if (probe.program === undefined) {
      io.err(`${formatScriptDiagnostics(probe.diagnostics)}\ncaplet: ${path}: the script did not compile\n`)
      return SCRIPT_COMPILE_EXIT_CODE
    }
  } catch (e) {
    // The script itself could not be read (missing, not a regular file): as for an unreadable C source.
    io.err(`caplet: ${(e as Error).message}\n`)
    return USAGE_EXIT_CODE
  }
  const options: CompileOptions = {
    env: io.env,
    typeCheck: !b.noCheck,
    ...(b.timeout !== undefined ? { timeout: b.timeout } : {}),
    ...(b.noCache ? { cache: false as const } : {}),
  }
  try {
    const check = language === 'typescript' && !b.noCheck
    const result = await withSpinner(
      io,
      b,
      `${check ? 'type-checking' : 'compiling'} ${basename(path)}`,
      compile({ language, files: seen, entry, options }),
    )
    if (!b.quiet && result.diagnostics.length > 0) io.err(formatDiagnostics(result.diagnostics))
    if (result.kind !== 'script') throw new BuildUsageError(`${path}: not a script`)
    return result.program
  } catch (e) {
    return compileFailure(e, io, SCRIPT_COMPILE_EXIT_CODE, (c) => {
      const typeErrors = c.limit === undefined && c.diagnostics.some((d) => d.severity === 'error' && /\(TS\d+\)$/.test(d.message))
      return `${path}: ${typeErrors ? 'the script did not type-check (--no-check runs it without the check)' : c.reason.split('\n')[0]}`
    })
  }
}

/**
 * Compiles `sources` (the first is the entry) with the CLI's build flags. Resolves with the
 * result, or with an exit code after printing the one-line error and the diagnostics.
 */
export async function compileForCli(sources: readonly string[], b: BuildFlags, io: CompileIo): Promise<CompileResult | number> {
  try {
    const { files, names } = readSources(sources)
    const entry = names[0]!
    const language = b.lang ?? languageForFile(entry)?.name
    if (language === undefined) {
      throw new BuildUsageError(
        `${sources[0]}: unknown kind of source; name the language with --lang (${LANGUAGES.map((l) => l.name).join(', ')})`,
      )
    }
    const options: CompileOptions = {
      defines: b.defines,
      trustSource: b.trustSource,
      env: io.env,
      ...(b.optimize !== undefined ? { optimize: b.optimize } : {}),
      ...(b.debug ? { debug: true } : {}),
      ...(b.std !== undefined ? { std: b.std } : {}),
      ...(b.timeout !== undefined ? { timeout: b.timeout } : {}),
      ...(b.noCache ? { cache: false as const } : {}),
    }
    const result = await withSpinner(io, b, `compiling ${basename(sources[0]!)}`, compile({ language, files, entry, options }))
    if (!b.quiet && result.diagnostics.length > 0) io.err(formatDiagnostics(result.diagnostics))
    return result
  } catch (e) {
    return compileFailure(e, io, COMPILE_EXIT_CODE, (c) => `compile failed: ${c.reason.split('\n')[0]}`)
  }
}

/**
 * The CLI's answer to a compile that threw: a usage or toolchain problem is one line and exit
 * 125; a `CompileError` prints its diagnostics, then `line(e)`, and exits `code`. Anything else
 * is rethrown.
 */
function compileFailure(e: unknown, io: CompileIo, code: number, line: (e: CompileError) => string): number {
  if (e instanceof BuildUsageError || e instanceof ToolchainError) {
    io.err(`caplet: ${e instanceof BuildUsageError ? e.message : e.reason}\n`)
    return USAGE_EXIT_CODE
  }
  if (e instanceof CompileError) {
    if (e.diagnostics.length > 0) io.err(formatDiagnostics(e.diagnostics))
    io.err(`caplet: ${line(e)}\n`)
    return code
  }
  throw e
}

export const BUILD_HELP = `caplet build — compile source to a WASI module

Usage:
  caplet build [FLAGS] SRC... [-o OUT.wasm]

The first SRC is the entry; its extension picks the language (--lang to override):
  .c (C)  .cpp .cc .cxx (C++)  .wat (WebAssembly text)  .as.ts (AssemblyScript)
(.ts and .js are not built to a .wasm: caplet run compiles and runs them in its JS engine)
Other SRC files (headers, more units) are compiled or included as the language does.
OUT defaults to the entry's name with .wasm, in the current directory.

Build flags (also accepted by caplet run before a source file):
  -O0 .. -O3          optimisation (default -O2)
  -g                  keep debug information
  -D NAME[=VALUE]     define a macro (C, C++)
  -std=STD            language standard (c11, c17, c++17, c++20, ...)
  --lang LANG         c, cpp, wat, as (or ts, js for caplet run), whatever the extension
  --src FILE          (run only) one more source file, e.g. a header
  --trust-source      compile without the bubblewrap jail where it is missing
                      (only for source you trust)
  --compile-timeout DURATION   stop the compiler after this long (default 60s)
  --no-cache          do not use the compile cache (CAPLET_CACHE_DIR, else
                      $XDG_CACHE_HOME/caplet or ~/.cache/caplet)
  --no-check          (run, .ts) skip the TypeScript type check
  -q, --quiet         no spinner, no warnings

Exit status: 0 built; ${COMPILE_EXIT_CODE} the source did not compile (diagnostics on stderr);
125 bad flags, unreadable source, or no compiler/jail available.
`

/** `caplet build [FLAGS] SRC... [-o OUT]`. */
export async function buildMain(argv: readonly string[], io: CompileIo & { out: (s: string) => void }): Promise<number> {
  const b = newBuildFlags(io.env)
  const sources: string[] = []
  let out: string | undefined
  try {
    const rest = [...argv]
    while (rest.length > 0) {
      const a = rest.shift()!
      const eq = a.indexOf('=')
      const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a
      const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined
      const next = () => {
        if (inline !== undefined) return inline
        const v = rest.shift()
        if (v === undefined) throw new BuildUsageError(`${flag} needs a value (see caplet build --help)`)
        return v
      }
      if (a === '-h' || a === '--help') {
        io.out(BUILD_HELP)
        return 0
      }
      if (a === '-o' || flag === '--output') {
        out = next()
        continue
      }
      if (a === '--') {
        sources.push(...rest.splice(0))
        break
      }
      if (a.startsWith('-') && a !== '-') {
        if (flag === '--src') throw new BuildUsageError('--src is for caplet run; caplet build takes every source as an argument')
        if (!parseBuildFlag(b, a, flag, next)) throw new BuildUsageError(`unknown flag ${a} (see caplet build --help)`)
        continue
      }
      sources.push(a)
    }
    if (sources.length === 0) throw new BuildUsageError('no source given: caplet build [FLAGS] SRC... -o OUT.wasm')
  } catch (e) {
    if (e instanceof BuildUsageError) {
      io.err(`caplet: ${e.message}\n`)
      return USAGE_EXIT_CODE
    }
    throw e
  }
  if (scriptLanguage(sources[0]!, b) !== undefined) {
    io.err(
      `caplet: ${sources[0]}: TypeScript and JavaScript run inside caplet's JS engine, not as a .wasm of their own; run it with caplet run\n`,
    )
    return USAGE_EXIT_CODE
  }
  const result = await compileForCli(sources, b, io)
  if (typeof result === 'number') return result
  if (result.kind !== 'wasm') {
    io.err(`caplet: ${sources[0]}: not a WebAssembly language\n`)
    return USAGE_EXIT_CODE
  }
  const target = out ?? `${basename(sources[0]!).replace(/(\.as)?\.[^.]+$/, '')}.wasm`
  const tmp = `${target}.caplet-${process.pid}.tmp`
  try {
    writeFileSync(tmp, result.module, { flag: 'wx', mode: 0o644 })
    renameSync(tmp, target)
  } catch (e) {
    try {
      unlinkSync(tmp)
    } catch {
      /* not created */
    }
    io.err(`caplet: cannot write ${target} (${(e as NodeJS.ErrnoException).code ?? e})\n`)
    return USAGE_EXIT_CODE
  }
  if (!b.quiet) io.err(`caplet: built ${target} (${result.module.byteLength} bytes${result.cached ? ', cached' : ''})\n`)
  return 0
}
