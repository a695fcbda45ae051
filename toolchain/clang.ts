/**
 * @module C and C++ to a WASI command with the host's clang, run jailed by bubblewrap
 * (`native/bubblewrap.ts`) unless the caller trusts the source. The command line is caplet's:
 * fixed target, sysroot and limits, plus only the validated build options (-O, -g, -D, -std);
 * file names reach it only after validation (`source-files.ts`: no leading `-`, no `..`).
 * Diagnostics come back with guest-relative names: no host temp path survives.
 */
import { mkdirSync, mkdtempSync, openSync, closeSync, fstatSync, readSync, rmSync, writeFileSync, constants as fsc } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { CompileError, ToolchainError } from '../runtime/errors.js'
import { bound, parseDiagnostics, redactPaths, summarize, type Diagnostic } from './diagnostics.js'
import type { CompileContext, CompiledModule, LanguageCompiler } from './languages.js'
import { bubblewrapArgs, JAIL_OUT, JAIL_SRC, JAIL_TMP } from './native/bubblewrap.js'
import { CLANGXX_PACKAGES, clangFingerprint, findBubblewrap, findPrlimit, probeClang, type ClangInstall } from './native/clang-install.js'
import { spawnLimited } from './native/spawn-limited.js'
import { hasExtension } from './source-files.js'

/** The compiler may use at most this much address space (a template bomb fails, not the host). */
export const COMPILER_ADDRESS_SPACE = 4 * 1024 ** 3
/** The jail's /tmp (object files) is a tmpfs of this size. */
const JAIL_TMP_BYTES = 512 * 1024 ** 2
/** At most this much of what the compiler prints is kept. */
const MAX_PRINT_BYTES = 256 * 1024
/** Bumped when the fixed flags change, so cached modules built with old flags are not reused. */
const FLAGS_VERSION = '1'

const C_SOURCES = ['.c']
const CXX_SOURCES = ['.cpp', '.cc', '.cxx', '.c++', '.c']

function sourcesOf(ctx: CompileContext, exts: readonly string[]): string[] {
  const units = [...ctx.files.keys()].filter((n) => hasExtension(n, exts))
  if (units.length === 0) throw new CompileError(`no ${exts.join('/')} file to compile among the sources`)
  if (ctx.entry !== undefined && !ctx.files.has(ctx.entry))
    throw new CompileError(`the entry ${JSON.stringify(ctx.entry)} is not among the sources`)
  return units
}

function flags(ctx: CompileContext, cxx: boolean, install: ClangInstall, sysroot: string): string[] {
  const o = ctx.options
  const f = [
    '--target=wasm32-wasi',
    `--sysroot=${sysroot}`,
    `-O${o.optimize}`,
    '-fno-color-diagnostics',
    '-fno-crash-diagnostics',
    '-ferror-limit=50',
    '-fmacro-backtrace-limit=8',
    '-ftemplate-backtrace-limit=8',
    `-ffile-prefix-map=${JAIL_SRC}/=`,
    '-fdebug-compilation-dir=.',
    '-iquote',
    '.',
  ]
  if (cxx) {
    f.unshift('--driver-mode=g++')
    // Debian ships no unwinder for wasm32 (no libunwind.a): exceptions cannot link.
    if (!install.hasUnwind) f.push('-fno-exceptions')
    f.push('-Wno-deprecated')
  }
  if (o.debug) f.push('-g')
  else f.push('-Wl,--strip-debug')
  if (o.std !== undefined) f.push(`-std=${o.std}`)
  for (const [name, value] of o.defines) f.push(value === null ? `-D${name}` : `-D${name}=${value}`)
  return f
}

function readOutput(file: string, max: number): Uint8Array<ArrayBuffer> | 'missing' | 'too-large' {
  let fd: number
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW)
  } catch {
    return 'missing'
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) return 'missing'
    if (st.size > max) return 'too-large'
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

/** Drops the crash report clang prints after an internal failure (program arguments, stack). */
function withoutCrashDump(text: string): { text: string; crashed: boolean } {
  const dump = /^(?:PLEASE submit a bug report|Stack dump:|\s*#\d+ 0x[0-9a-f]+ |\d+\.\t)/
  const lines = text.split('\n')
  const kept = lines.filter((l) => !dump.test(l))
  return { text: kept.join('\n'), crashed: kept.length !== lines.length }
}

async function compileClang(ctx: CompileContext, cxx: boolean): Promise<CompiledModule> {
  const install = probeClang(ctx.env)
  if (cxx && !install.hasLibcxx) throw new ToolchainError(`no C++ standard library for wasm32-wasi: install ${CXX_HINT}`)
  const units = sourcesOf(ctx, cxx ? CXX_SOURCES : C_SOURCES)
  const bwrap = findBubblewrap(ctx.env)
  if (bwrap === undefined && !ctx.trustSource) {
    throw new ToolchainError(
      'bubblewrap (bwrap) is not installed, so the C/C++ compiler cannot be jailed: install the Debian package bubblewrap, or compile only source you trust (--trust-source, or trustSource: true)',
    )
  }
  const work = mkdtempSync(join(tmpdir(), 'caplet-cc-'))
  try {
    const src = join(work, 'src')
    const out = join(work, 'out')
    const tmp = join(work, 'tmp')
    mkdirSync(src, { mode: 0o700 })
    mkdirSync(out, { mode: 0o700 })
    mkdirSync(tmp, { mode: 0o700 })
    for (const [name, bytes] of ctx.files) {
      const file = join(src, name)
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
      // 'wx': O_CREAT|O_EXCL, so nothing (not even a symlink) is ever written through.
      writeFileSync(file, bytes, { flag: 'wx', mode: 0o600 })
    }
    const jailed = bwrap !== undefined
    const outName = 'module.wasm'
    const outPath = jailed ? `${JAIL_OUT}/${outName}` : join(out, outName)
    const clangArgs = [...flags(ctx, cxx, install, install.sysroot), ...units, '-o', outPath]
    const prlimit = findPrlimit(ctx.env)
    // Every file the compiler writes (objects in /tmp, the module) is capped by RLIMIT_FSIZE.
    const limits = prlimit ? [prlimit, `--fsize=${ctx.maxOutputBytes}`, `--as=${COMPILER_ADDRESS_SPACE}`, '--core=0', '--'] : []
    const command = jailed
      ? [...limits, bwrap, ...bubblewrapArgs(install, { src, out, tmpBytes: JAIL_TMP_BYTES }), install.clang, ...clangArgs]
      : [...limits, install.clang, ...clangArgs]
    const env: Record<string, string> = jailed
      ? {}
      : {
          PATH: dirname(install.linker),
          LC_ALL: 'C',
          TMPDIR: tmp,
          SOURCE_DATE_EPOCH: '0',
        }
    const r = await spawnLimited(command[0]!, command.slice(1), {
      env,
      cwd: src,
      timeoutMs: ctx.timeoutMs,
      maxPrintBytes: MAX_PRINT_BYTES,
      signal: ctx.signal,
    })
    const redact: Array<[string, string]> = [
      [`${src}/`, ''],
      [`${out}/`, ''],
      [`${tmp}/`, ''],
      [work, '<build>'],
      [`${JAIL_SRC}/`, ''],
      [`${JAIL_OUT}/`, ''],
    ]
    const raw = withoutCrashDump(
      redactPaths(`${r.stderr}${r.stdout}`, redact)
        // clang's temporary objects: /tmp/main-1a2b3c.o -> main.o
        .replace(new RegExp(`(?:${JAIL_TMP}/)?([\\w.+-]+?)-[0-9a-f]{6}\\.o\\b`, 'g'), '$1.o'),
    )
    let diagnostics: Diagnostic[] = parseDiagnostics(raw.text)
    if (r.truncated) diagnostics = bound([...diagnostics, { severity: 'note', message: 'the compiler printed more; the rest was dropped' }])
    if (r.spawnError !== undefined) {
      throw new ToolchainError(`cannot start ${jailed ? 'bubblewrap' : 'the compiler'} (${r.spawnError})`)
    }
    if (r.aborted) throw new CompileError('compilation aborted', diagnostics, { limit: 'aborted' })
    if (r.timedOut) {
      throw new CompileError(`compilation stopped: it took longer than ${ctx.timeoutMs} ms`, diagnostics, { limit: 'timeout' })
    }
    if (jailed && r.code !== 0 && /^bwrap: /m.test(r.stderr) && diagnostics.every((d) => d.file === undefined)) {
      const line = r.stderr.split('\n').find((l) => l.startsWith('bwrap: ')) ?? 'bwrap failed'
      throw new ToolchainError(
        `the compiler's jail could not start (${line}); on hosts without unprivileged user namespaces, compile only trusted source with --trust-source`,
      )
    }
    const output = readOutput(join(out, outName), ctx.maxOutputBytes)
    if (
      output === 'too-large' ||
      r.signal === 'SIGXFSZ' ||
      (r.code !== 0 && /^\S+: error: unable to execute command: File size limit exceeded/m.test(raw.text))
    ) {
      throw new CompileError(`compilation stopped: the output grew past the limit of ${ctx.maxOutputBytes} bytes`, diagnostics, {
        limit: 'output',
      })
    }
    if (r.code !== 0 && (raw.crashed || /^LLVM ERROR: out of memory|std::bad_alloc/m.test(r.stderr))) {
      throw new CompileError(
        `compilation stopped: the compiler ran out of memory (limit ${COMPILER_ADDRESS_SPACE / 1024 ** 3} GiB) or crashed`,
        diagnostics,
        { limit: 'memory' },
      )
    }
    if (r.code !== 0 || output === 'missing') {
      throw new CompileError(summarize(diagnostics, `the compiler failed (exit ${r.code ?? r.signal})`), diagnostics)
    }
    if (!WebAssembly.validate(output)) throw new CompileError('the compiler produced an invalid module', diagnostics)
    return { kind: 'wasm', module: output, diagnostics }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

const CXX_HINT = CLANGXX_PACKAGES

function identity(ctx: CompileContext, cxx: boolean): string {
  return `clang ${clangFingerprint(ctx.env)} ${cxx ? 'c++' : 'c'} flags=${FLAGS_VERSION}`
}

export const cCompiler: LanguageCompiler = {
  identity: (ctx) => identity(ctx, false),
  compile: (ctx) => compileClang(ctx, false),
}

export const cppCompiler: LanguageCompiler = {
  identity: (ctx) => identity(ctx, true),
  compile: (ctx) => compileClang(ctx, true),
}
