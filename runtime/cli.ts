/**
 * @module The `caplet` command line. `caplet run [flags] MODULE.wasm [ARGS...]`.
 * Errors are one line (what failed, why, what to do), never a stack trace; caplet's own
 * failures use exit codes that a guest's own exit cannot be confused with in scripts.
 * Flags and `--policy FILE.json` are two spellings of one Policy (`policy.ts`).
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs'
import {
  buildMain,
  BUILD_HELP,
  BuildUsageError,
  COMPILE_EXIT_CODE,
  compileForCli,
  compileScriptForCli,
  isSource,
  newBuildFlags,
  parseBuildFlag,
  scriptLanguage,
  type BuildFlags,
} from './cli-compile.js'
import { ModuleError, NetworkError, PolicyError, UnknownImportsError } from './errors.js'
import { parseDuration, parseSize } from './units.js'
import { unknownImportsMessage } from './link/imports.js'
import { denialLines } from './denials.js'
import { formatFrame } from './trap.js'
import { formatTraceSummary } from '../wasi-host/trace/tracer.js'
import type { TraceSummaryRow } from './trace-output.js'
import { explainPolicy } from './explain.js'
import { fdsNeeded, resolvePolicy } from './policy.js'
import { prepare } from './program.js'
import { defaultPool } from './worker/pool.js'
import type { OverlayReport } from './mounts.js'
import type { MountSpec, RunOptions } from './policy.js'
import { LIMIT_EXIT_CODE, run, TRAP_EXIT_CODE, type RunResult } from './program.js'
import type { ScriptProgram } from '../toolchain/js/index.js'
import { defaultCacheDir } from '../toolchain/cache.js'
import { useModuleCache } from './module-cache.js'
import { keepCompiledModules, validateBigModulesLazily } from './module.js'
import { CAPLET_VERSION } from './version.js'

export const ExitCode = {
  /** A limit stopped the guest (timeout, fuel, output). */
  LIMIT: LIMIT_EXIT_CODE,
  /** Bad invocation or policy: a flag, a mount, a missing file. */
  USAGE: 125,
  /** The module was rejected: unreadable, invalid, or importing what caplet does not provide. */
  MODULE: 126,
  /** The guest trapped (bad memory access, unreachable, stack overflow, bad syscall pointer). */
  TRAP: TRAP_EXIT_CODE,
  /** The source (hello.c, prog.wat, ...) did not compile. */
  COMPILE: COMPILE_EXIT_CODE,
} as const

export const HELP = `caplet — run untrusted WebAssembly (WASI preview1) in a capability sandbox

Usage:
  caplet run [FLAGS] MODULE.wasm [ARGS...]
  caplet run [FLAGS] SCRIPT.ts|.js|.mjs [ARGS...]
                                          (inside caplet's JS engine; .ts type-checked unless --no-check)
  caplet inspect [--json] MODULE.wasm     what the module can ever ask of the host
  caplet MODULE.wasm [ARGS...]            (same as run, with no flags)
  caplet run [FLAGS] SOURCE [ARGS...]     compile hello.c, main.cpp, prog.wat, x.as.ts (cached),
                                          then run it the same way (build flags: caplet build --help)
  caplet build [FLAGS] SRC... -o OUT.wasm compile only
  caplet serve [--port 8080] [--queue redis://HOST:PORT]   (an HTTP API; caplet serve --help)
  caplet worker --queue redis://HOST:PORT                  (runs queued runs)

By default the guest gets stdin, stdout, stderr, its arguments and nothing else:
no files, no environment variables, no network. It runs in a worker thread.

Grants (each may be repeated; flags go before MODULE):
  --dir HOST:GUEST[:ro|:rw]  Show host directory HOST to the guest at GUEST (read-write
                             unless :ro). Example: --dir ./data:/data:ro
  --overlay HOST:GUEST       Show HOST at GUEST copy-on-write: the guest may change anything,
                             but every change stays in a private in-memory layer and HOST is
                             never modified. See --overlay-out and --overlay-apply.
  --tmp GUEST[:SIZE]         An empty in-memory directory at GUEST (at most SIZE bytes),
                             discarded after the run.
  --env NAME=VALUE           Set an environment variable for the guest.
  --env NAME                 Pass the host's value of NAME (nothing else is inherited).
  --stdin FILE               Read the guest's stdin from FILE (default: caplet's own stdin).

Sockets (literal addresses only, no DNS; nothing else of the network is reachable):
  --listen ADDR              A listening socket for the guest: IP:PORT ([IPv6]:PORT) or
                             unix:PATH. Port 0 picks a free port; caplet prints the address.
  --connect [NAME=]ADDR      One connection to ADDR, made before the guest starts; sock_accept
                             on it dials ADDR again (never another address) for a new one.
  --listen-env               Also set LISTEN_FDS, LISTEN_FDNAMES and LISTEN_FDS_START (systemd
                             socket activation) for the granted sockets.
  --max-connections N        At most N connections open at once (default 64); more are closed
                             at once.
  --max-bytes-in SIZE        Stop the guest once it received SIZE bytes (exit 124).
  --max-bytes-out SIZE       Stop the guest once it sent SIZE bytes (exit 124).
  --idle-timeout DURATION    Close a connection idle this long (the guest sees ETIMEDOUT).
  Granted sockets are descriptors after the --dir/--tmp/--overlay directories, in the order
  given (fd 3 when nothing is mounted). A server finds its listener by probing descriptors
  from 3 with fd_fdstat_get (filetype SOCKET_STREAM, right SOCK_ACCEPT and not FD_READ), as
  with wasmtime's --tcplisten, or through LISTEN_FDS_START. C: accept(fd, NULL, NULL); Rust:
  TcpListener::from_raw_fd(fd); Go (GOOS=wasip1): net.FileListener(os.NewFile(fd, "")).

Limits (sizes take KiB/MiB/GiB, durations ms/s/m):
  --memory SIZE              Cap the guest's linear memory (memory.grow past it fails).
  --timeout DURATION         Stop the guest after this wall-clock time (exit 124).
  --fuel N                   Stop the guest after about N units of work (exit 124): one per
                             wasm instruction, one per 64 bytes of bulk memory or host I/O;
                             the same program and input always use the same fuel.
  --max-output SIZE          Stop the guest once it wrote SIZE bytes to stdout or stderr.
  --max-fds N                At most N open descriptors (stdio and mounts included).
  --disk SIZE                At most SIZE bytes added across writable mounts (then EDQUOT).
  --max-files N              At most N files, directories and symlinks created (then EDQUOT).

Other:
  --policy FILE.json         Read the policy from a JSON file (flags add to it). Its fields:
                             args, env, mounts [{guest, host|tmp, mode}], limits {memory,
                             timeout, fuel, stdout, stderr, fds, disk, inodes}, deterministic,
                             seed, clocks {resolution, cputime}, syscalls [names allowed].
  --overlay-out DIR          After the run, save each overlay's changes into DIR (a new or
                             empty directory; with several overlays, DIR/<guest path>), with
                             .caplet-overlay.json listing added, modified and deleted paths.
  --overlay-apply            After the run, apply each overlay's changes to its host directory.
  --deterministic            Virtual clocks and seeded random: identical output every run.
  --seed N                   Seed for --deterministic (default 0; only with --deterministic).
  --no-cache                 Neither read nor write caplet's on-disk caches (compiled sources,
                             big modules' analysis); also CAPLET_NO_CACHE=1. The caches live in
                             CAPLET_CACHE_DIR, else $XDG_CACHE_HOME/caplet or ~/.cache/caplet.
  --in-process               Run on caplet's own thread (faster start; --timeout unavailable).
  --tier auto|optimized|baseline
                             Engine tier (default auto: optimise up front the looping
                             functions that run once, e.g. main; baseline: V8's own tiering,
                             fastest start, the default for modules with over 2 MiB of code;
                             optimized: everything, slow start for big modules).
  --json                     Print the result (exit code, trap, limit, stats, output) as JSON.
  --verbose                  Longer messages (every import a refused module lacks).
  --trace[=FILE|=summary]    Print every host call with its decoded arguments and result
                             (to stderr, or to FILE); =summary counts calls, errors and
                             time per function instead, printed at the end (strace -c).
  --trace-format text|json   One line of text (default) or one JSON object per call.
  --explain                  Before running, print what the policy grants: reads, writes,
                             creates, network, env, clocks, randomness, imports and every
                             limit (unlimited ones flagged).
  --dry-run                  Print that, check the module would start, and stop.
  --explain-denials          After the run, one line per distinct call the policy refused,
                             with the flag that would grant it (default when stderr is a
                             terminal).

Imports (see caplet inspect MODULE for what a module imports):
  --trap-unknown-imports     Link each import caplet does not provide to a function that
                             traps, naming it, if it is ever called.
  --default-unknown-imports  Link each such import to a function that returns zeros.
  --allow-syscalls LIST      Only these WASI functions (comma-separated) may be imported.
  --deny-syscalls LIST       These WASI functions may not be imported.
  --stub-denied-syscalls     A denied WASI import returns ENOSYS when called instead of
                             the module being refused.
  --output-encoding utf8|base64
                             How --json spells stdout and stderr (default utf8: bytes that
                             are not UTF-8 become U+FFFD; base64 keeps binary output exact).
  -h, --help                 Show this help.
  -V, --version              Show the version.

Exit status:
  0-255  the guest's own exit code (proc_exit; 0 when main returns; codes above 255 wrap
         as in POSIX)
  124    a limit stopped the guest: --timeout, --fuel or --max-output (the message says which)
  125    caplet could not start the run: bad flag, bad --dir, unreadable --stdin file,
         unreadable source file, invalid policy
  126    the module was rejected: not found, not WebAssembly, or it imports a function
         caplet does not provide (the message names it); for a module over 2 MiB of
         code, also an invalid function found when it is first called
  134    the guest trapped: invalid memory access, unreachable, stack overflow, or a bad
         pointer passed to a WASI call (the message says which)
  65     (SOURCE or SCRIPT only) the source did not compile (a script: did not type-check
         or bundle); the compiler's diagnostics are on stderr

Examples:
  caplet run samples/hello.wasm
  caplet run --tmp /scratch --dir ./data:/data:ro prog.wasm arg1
  caplet run --timeout 2s --memory 64MiB --fuel 5000000000 judge.wasm < input.txt
  caplet run --listen 127.0.0.1:8080 --dir ./site:/www:ro samples/http-server.wasm
`

class UsageError extends Error {}

interface Invocation {
  module: string
  options: RunOptions
  json: boolean
  verbose: boolean
  explainDenials: boolean
  explain: boolean
  dryRun: boolean
  build: BuildFlags
  /** How `--json` spells the guest's output: UTF-8 text (invalid bytes become U+FFFD) or base64. */
  encoding: 'utf8' | 'base64'
}

function syscallList(flag: string, v: string): string[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (names.length === 0) throw new UsageError(`${flag} needs a comma-separated list of WASI functions, e.g. ${flag} fd_write,proc_exit`)
  return names
}

function parseDir(value: string, flag = '--dir'): MountSpec {
  const parts = value.split(':')
  let mode: 'ro' | 'rw' | 'overlay' = flag === '--overlay' ? 'overlay' : 'rw'
  const last = parts[parts.length - 1]
  if (flag === '--dir' && parts.length >= 3 && last !== undefined && !last.startsWith('/')) {
    if (last !== 'ro' && last !== 'rw')
      throw new UsageError(`--dir ${value}: unknown mode ${JSON.stringify(last)}: expected ro or rw, e.g. --dir ./data:/data:ro`)
    mode = parts.pop() as typeof mode
  }
  if (parts.length < 2) {
    throw new UsageError(
      flag === '--dir'
        ? `--dir ${value}: expected HOST:GUEST[:ro|:rw], e.g. --dir ./data:/data:ro`
        : `${flag} ${value}: expected HOST:GUEST, e.g. ${flag} ./site:/www`,
    )
  }
  const guest = parts.pop()!
  const host = parts.join(':')
  if (host === '') throw new UsageError(`${flag} ${value}: the host directory is empty`)
  if (!guest.startsWith('/')) throw new UsageError(`${flag} ${value}: the guest path must be absolute, e.g. /data`)
  let isDir = false
  try {
    isDir = statSync(host).isDirectory()
  } catch {
    /* reported below */
  }
  if (!isDir) throw new UsageError(`${flag} ${value}: ${JSON.stringify(host)} is not an existing directory on this machine`)
  return { host, guest, mode }
}

function readPolicyFile(file: string): RunOptions {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new UsageError(`--policy ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? e})`)
  }
  try {
    const v = JSON.parse(text) as unknown
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('the top level must be an object')
    return v as RunOptions
  } catch (e) {
    throw new UsageError(`--policy ${file}: not valid JSON (${(e as Error).message})`)
  }
}

/** A positive whole number, also in `1e9` or `5_000` form. */
function positiveInt(flag: string, v: string): number {
  const n = /^\d[\d_]*(\.\d+)?(e\d+)?$/i.test(v) ? Number(v.replace(/_/g, '')) : NaN
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${flag} ${v}: expected a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, e.g. 1e9`)
  return n
}

/** A duration flag's value, checked here so the message names the flag. */
function positiveDuration(flag: string, v: string): string {
  let ms: number
  try {
    ms = parseDuration(v)
  } catch (e) {
    throw new UsageError(`${flag} ${v}: ${(e as Error).message}`)
  }
  if (!(ms > 0)) throw new UsageError(`${flag} ${v}: must be more than 0, e.g. 2s or 500ms`)
  return v
}

/** A size flag's value, at most `max` bytes. */
function sizeAtMost(flag: string, v: string, max: number, why: string): string {
  let bytes: number
  try {
    bytes = parseSize(v)
  } catch (e) {
    throw new UsageError(`${flag} ${v}: ${(e as Error).message}`)
  }
  if (bytes > max) throw new UsageError(`${flag} ${v}: at most ${why}`)
  return v
}

export function parseArgs(argv: readonly string[], hostEnv: Readonly<Record<string, string | undefined>>): Invocation | 'help' | 'version' {
  const rest = [...argv]
  if (rest[0] === 'run') rest.shift()
  else if (rest.length === 0) return 'help'
  let options: RunOptions = {}
  const mounts: MountSpec[] = []
  const env: Record<string, string> = {}
  const limits: NonNullable<RunOptions['limits']> = {}
  let stdinFile: string | undefined
  let json = false
  let overlayOut: string | undefined
  let overlayApply = false
  let verbose = false
  let explainDenials = false
  let explain = false
  let dryRun = false
  const build = newBuildFlags(hostEnv)
  const sockets: NonNullable<RunOptions['sockets']>[number][] = []
  let seed: string | undefined
  let encoding: 'utf8' | 'base64' = 'utf8'
  const value = (flag: string) => {
    const v = rest.shift()
    if (v === undefined) throw new UsageError(`${flag} needs a value (see caplet --help)`)
    return v
  }
  for (;;) {
    const a = rest[0]
    if (a === undefined) throw new UsageError('no module given: caplet run [FLAGS] MODULE.wasm [ARGS...]')
    if (!a.startsWith('-')) break
    rest.shift()
    let flag = a
    let inline: string | undefined
    const eq = a.indexOf('=')
    if (a.startsWith('--') && eq > 0) {
      flag = a.slice(0, eq)
      inline = a.slice(eq + 1)
    }
    const next = () => inline ?? value(flag)
    if (flag === '--') {
      if (rest.length === 0) throw new UsageError('no module given after --')
      break
    }
    switch (flag) {
      case '-h':
      case '--help':
        return 'help'
      case '-V':
      case '--version':
        return 'version'
      case '--dir':
        mounts.push(parseDir(next()))
        break
      case '--overlay':
        mounts.push(parseDir(next(), '--overlay'))
        break
      case '--overlay-out':
        overlayOut = next()
        break
      case '--overlay-apply':
        overlayApply = true
        break
      case '--tmp': {
        const v = next()
        const i = v.lastIndexOf(':')
        const guest = i > 0 ? v.slice(0, i) : v
        if (!guest.startsWith('/')) throw new UsageError(`--tmp ${v}: the guest path must be absolute, e.g. /tmp or /tmp:64MiB`)
        mounts.push({ guest, tmp: true, ...(i > 0 ? { size: v.slice(i + 1) } : {}) })
        break
      }
      case '--env': {
        const kv = next()
        const i = kv.indexOf('=')
        if (i === 0) throw new UsageError(`--env ${kv}: the name is empty`)
        if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1)
        else {
          const v = hostEnv[kv]
          if (v === undefined) throw new UsageError(`--env ${kv}: not set in caplet's environment (use --env ${kv}=VALUE)`)
          env[kv] = v
        }
        break
      }
      case '--stdin':
        stdinFile = next()
        break
      case '--memory':
        limits.memory = sizeAtMost(flag, next(), 4 * 1024 ** 3, "4GiB (wasm32's address space)")
        break
      case '--timeout':
        limits.timeout = positiveDuration(flag, next())
        break
      case '--fuel':
        limits.fuel = positiveInt(flag, next())
        break
      case '--max-output': {
        const v = next()
        limits.stdout = v
        limits.stderr = v
        break
      }
      case '--max-fds':
        limits.fds = positiveInt(flag, next())
        break
      case '--disk':
        limits.disk = next()
        break
      case '--max-files':
        limits.inodes = positiveInt(flag, next())
        break
      case '--policy':
        options = { ...readPolicyFile(next()), ...options }
        break
      case '--deterministic':
        options.deterministic = true
        break
      case '--seed':
        seed = next()
        break
      case '--in-process':
        options.isolation = 'in-process'
        break
      case '--tier': {
        const t = next()
        if (t !== 'auto' && t !== 'optimized' && t !== 'baseline') throw new UsageError(`--tier ${t}: expected auto, optimized or baseline`)
        options.tier = t
        break
      }
      case '--json':
        json = true
        break
      case '--verbose':
        verbose = true
        break
      case '--explain-denials':
        explainDenials = true
        break
      case '--explain':
        explain = true
        break
      case '--dry-run':
        dryRun = true
        break
      case '--trace': {
        // --trace alone takes no value (the next word is the module); --trace=FILE or =summary.
        const prev = typeof options.trace === 'object' ? options.trace : {}
        options.trace =
          inline === undefined
            ? { ...prev, file: undefined }
            : inline === 'summary'
              ? { ...prev, summary: true }
              : { ...prev, file: inline }
        break
      }
      case '--trace-format': {
        const f = next()
        if (f !== 'text' && f !== 'json') throw new UsageError(`--trace-format ${f}: expected text or json`)
        options.trace = { ...(typeof options.trace === 'object' ? options.trace : {}), format: f }
        break
      }
      case '--trap-unknown-imports':
        options.unknownImports = 'trap'
        break
      case '--default-unknown-imports':
        options.unknownImports = 'default'
        break
      case '--allow-syscalls':
        options.syscalls = syscallList(flag, next())
        break
      case '--deny-syscalls':
        options.denySyscalls = syscallList(flag, next())
        break
      case '--stub-denied-syscalls':
        options.deniedSyscalls = 'enosys'
        break
      case '--listen':
        sockets.push({ listen: next() })
        break
      case '--connect': {
        const v = next()
        const i = v.indexOf('=')
        sockets.push(i > 0 ? { connect: v.slice(i + 1), name: v.slice(0, i) } : { connect: v })
        break
      }
      case '--listen-env':
        options.listenEnv = true
        break
      case '--max-connections':
        limits.connections = positiveInt(flag, next())
        break
      case '--max-bytes-in':
        limits.bytesIn = next()
        break
      case '--max-bytes-out':
        limits.bytesOut = next()
        break
      case '--idle-timeout':
        limits.idleTimeout = next()
        break
      case '--output-encoding': {
        const e = next()
        if (e !== 'utf8' && e !== 'base64') throw new UsageError(`--output-encoding ${e}: expected utf8 or base64`)
        encoding = e
        break
      }
      default:
        try {
          if (parseBuildFlag(build, a, flag, next)) break
        } catch (e) {
          if (e instanceof BuildUsageError) throw new UsageError(e.message)
          throw e
        }
        throw new UsageError(`unknown flag ${a} (see caplet --help)`)
    }
  }
  const module = rest.shift()!
  if (seed !== undefined) {
    if (!options.deterministic) throw new UsageError(`--seed ${seed}: applies only with --deterministic`)
    if (!/^\d+$/.test(seed) || !Number.isSafeInteger(Number(seed)))
      throw new UsageError(`--seed ${seed}: expected a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`)
    options.seed = Number(seed)
  }
  if (encoding !== 'utf8' && !json) throw new UsageError('--output-encoding applies only with --json')
  const overlays = mounts.filter((m) => m.mode === 'overlay')
  if ((overlayOut !== undefined || overlayApply) && overlays.length === 0) {
    throw new UsageError(`${overlayOut !== undefined ? '--overlay-out' : '--overlay-apply'} needs an --overlay mount`)
  }
  for (const m of overlays) {
    if (overlayApply) m.apply = true
    if (overlayOut !== undefined)
      m.saveTo = overlays.length === 1 ? overlayOut : `${overlayOut}/${m.guest.replace(/^\/+/, '').replace(/\//g, '_') || 'root'}`
  }
  let stdin: RunOptions['stdin'] = options.stdin ?? 'inherit'
  if (stdinFile !== undefined) {
    // Streamed as the guest reads: a large input is never held in memory whole.
    let isFile = false
    try {
      closeSync(openSync(stdinFile, 'r'))
      isFile = statSync(stdinFile).isFile()
    } catch (e) {
      throw new UsageError(`--stdin ${stdinFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? e})`)
    }
    stdin = isFile ? { file: stdinFile } : readFileSync(stdinFile)
  } else if (options.deterministic && stdin === 'inherit') {
    stdin = readFileSync(0)
  }
  if (limits.fds !== undefined) {
    // The policy's count, checked here too so that the message names the flag (the policy names
    // limits.fds; and the schema refuses a limit below 3 without the count).
    const mountCount = (options.mounts?.length ?? 0) + mounts.length
    const socketCount = (options.sockets?.length ?? 0) + sockets.length
    const needed = fdsNeeded(mountCount, socketCount)
    if (limits.fds < needed)
      throw new UsageError(
        `--max-fds ${limits.fds}: too few for stdio (3), ${mountCount} mount(s) and ${socketCount} socket(s), which are open before the guest starts; at least ${needed}`,
      )
  }
  const name = module.split('/').pop() ?? module
  return {
    module,
    json,
    verbose,
    explainDenials,
    explain,
    dryRun,
    build,
    encoding,
    options: {
      ...options,
      args: rest.length > 0 || options.args === undefined ? [name, ...rest] : options.args,
      env: { ...options.env, ...env },
      mounts: [...(options.mounts ?? []), ...mounts],
      ...(sockets.length > 0 || options.sockets !== undefined ? { sockets: [...(options.sockets ?? []), ...sockets] } : {}),
      limits: { ...options.limits, ...limits },
      stdin,
      stdout: json ? 'capture' : 'inherit',
      stderr: json ? 'capture' : 'inherit',
    },
  }
}

export interface CliIo {
  out: (s: string) => void
  err: (s: string) => void
  env: Readonly<Record<string, string | undefined>>
  /** Whether stderr is a terminal: denials are then explained at the end of a run, and a compile spinner may show. */
  stderrIsTTY?: boolean
  /** The process exits after this command (`caplet` itself): compiled modules are not kept for later loads. */
  oneShot?: boolean
  /**
   * Calls `stop` on the first SIGINT or SIGTERM instead of dying at once (the process's own
   * default for any later one); returns the unsubscriber. `done(signal)` ends the process as that signal would.
   */
  interrupts?: { on(stop: (signal: string) => void): () => void; done(signal: string): void }
}

/** The reason a run stopped by SIGINT or SIGTERM was aborted with. */
class Interrupted extends Error {
  /** The `--trace=summary` counts up to the interruption (attached by the run when it stops). */
  traceSummary?: TraceSummaryRow[]
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`)
  }
}

/** A trace the worker buffers (a file's tail, a summary's counts): Ctrl-C must stop the run to get it out. */
const tracesToBufferOption = (t: RunOptions['trace']): boolean =>
  typeof t === 'object' && t.sink === undefined && (t.file !== undefined || t.summary === true)

function describe(result: RunResult): string | undefined {
  if (result.trap?.kind === 'invalid-code') return `caplet: ${result.trap.message}`
  if (result.trap) {
    const t = result.trap
    const recent = t.recentSyscalls.length > 0 ? ` (last syscalls: ${t.recentSyscalls.join(', ')})` : ''
    const frames = (t.frames ?? [])
      .slice(0, 8)
      .map((f) => `\n  at ${formatFrame(f)}`)
      .join('')
    return `caplet: guest trapped: ${t.kind}: ${t.message}${recent}${frames}`
  }
  for (const o of result.overlays ?? []) {
    if (o.error) return `caplet: overlay ${o.guest}: ${o.error}`
  }
  if (result.limit) {
    const what: Record<string, string> = {
      timeout: 'it ran past --timeout',
      fuel: 'it used all its --fuel',
      stdout: 'it wrote more than --max-output to stdout',
      stderr: 'it wrote more than --max-output to stderr',
      memory: 'it needed more than --memory',
      aborted: 'the run was aborted',
      network: 'it moved more than --max-bytes-in or --max-bytes-out over its sockets',
    }
    return `caplet: guest stopped: ${what[result.limit] ?? result.limit}`
  }
  return undefined
}

function overlaySummary(o: OverlayReport): string {
  const count = (k: string) => o.changes.filter((c) => c.kind === k).length
  const what = `${count('added')} added, ${count('modified')} modified, ${count('deleted')} deleted`
  const fate = o.applied
    ? 'applied to the host directory'
    : o.savedTo !== undefined
      ? `saved to ${o.savedTo}`
      : 'discarded (keep them with --overlay-out DIR or --overlay-apply)'
  return `caplet: overlay ${o.guest}: ${what}; ${fate}`
}

function toJson(result: RunResult, encoding: 'utf8' | 'base64'): string {
  const dec = new TextDecoder()
  const spell = (b: Uint8Array) =>
    encoding === 'base64' ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') : dec.decode(b)
  return (
    JSON.stringify(
      {
        exitCode: result.exitCode,
        ...(result.trap ? { trap: result.trap } : {}),
        ...(result.limit ? { limit: result.limit } : {}),
        ...(result.overlays ? { overlays: result.overlays } : {}),
        ...(result.denials ? { denials: result.denials, denialCount: result.denialCount } : {}),
        ...(result.warnings ? { warnings: result.warnings } : {}),
        ...(encoding === 'base64' ? { encoding } : {}),
        stdout: spell(result.stdout),
        stderr: spell(result.stderr),
        stats: result.stats,
      },
      null,
      2,
    ) + '\n'
  )
}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  // `caplet inspect` (its analysis and rendering) is loaded only when asked for: a run never parses it.
  if (argv[0] === 'inspect') return (await import('./inspect/cli.js')).inspectMain(argv.slice(1), io)
  if (argv[0] === 'build') return buildMain(argv.slice(1), io)
  if (argv[0] === 'help' && argv[1] === 'build') {
    io.out(BUILD_HELP)
    return 0
  }
  // `caplet serve` / `caplet worker`: the HTTP service (service/), loaded only when asked for.
  if (argv[0] === 'serve' || argv[0] === 'worker') return (await import('../service/cli.js')).serviceMain(argv, io)
  let inv: ReturnType<typeof parseArgs>
  try {
    inv = parseArgs(argv, io.env)
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`caplet: ${e.message}\n`)
      return ExitCode.USAGE
    }
    throw e
  }
  if (inv === 'help') {
    io.out(HELP)
    return 0
  }
  if (inv === 'version') {
    io.out(`caplet ${CAPLET_VERSION}\n`)
    return 0
  }
  useModuleCache(inv.build.noCache ? false : { dir: defaultCacheDir(io.env) })
  if (io.oneShot) keepCompiledModules(false)
  if (io.oneShot && !inv.dryRun) validateBigModulesLazily(true)
  let module: string | Uint8Array = inv.module
  if (isSource(inv.module, inv.build)) {
    const compiled = await compileForCli([inv.module, ...inv.build.extra], inv.build, io)
    if (typeof compiled === 'number') return compiled
    if (compiled.kind !== 'wasm') {
      io.err(`caplet: ${inv.module}: not a WebAssembly language\n`)
      return ExitCode.USAGE
    }
    module = compiled.module
  }
  // The worker boots on another core while this thread reads, checks and compiles the module.
  if (inv.options.isolation !== 'in-process') defaultPool.warm()
  let program: ScriptProgram | undefined
  const scriptLang = scriptLanguage(inv.module, inv.build)
  if (scriptLang !== undefined) {
    // JavaScript/TypeScript: bundled from the entry's directory (type-checked), run inside caplet's JS engine.
    const compiled = await compileScriptForCli(inv.module, scriptLang, inv.build, io)
    if (typeof compiled === 'number') return compiled
    program = compiled
  }
  try {
    if (inv.explain || inv.dryRun) {
      for (const line of explainPolicy(resolvePolicy(inv.options))) io.err(`${line}\n`)
      if (inv.dryRun) {
        await prepare(program ?? module, inv.options)
        io.err('caplet: dry run: the module and the policy are valid; nothing ran\n')
        return 0
      }
    }
    // A trace file's tail or a summary is in a worker's buffer: Ctrl-C stops the run (the tail is
    // written, the summary printed), then the process.
    const stop = inv.options.isolation !== 'in-process' && tracesToBufferOption(inv.options.trace) ? new AbortController() : undefined
    const unsubscribe = stop !== undefined ? io.interrupts?.on((sig) => stop.abort(new Interrupted(sig))) : undefined
    const result = await run(program ?? module, {
      ...inv.options,
      ...(stop !== undefined ? { signal: stop.signal } : {}),
      // Tell the user where the guest listens (a port 0 resolved), before it starts.
      ...(inv.options.sockets !== undefined && !inv.json
        ? {
            onListen: (ss) => {
              for (const s of ss)
                io.err(
                  `caplet: ${s.role === 'listener' ? 'listening on' : 'connected to'} ${s.address} (fd ${s.fd}${s.name !== undefined ? `, ${s.name}` : ''})\n`,
                )
            },
          }
        : {}),
    })
      .catch((e: unknown) => {
        if (e instanceof Interrupted) return e
        throw e
      })
      .finally(() => unsubscribe?.())
    if (result instanceof Interrupted) {
      if (result.traceSummary !== undefined) io.err(formatTraceSummary(result.traceSummary))
      io.err(`caplet: interrupted (${result.signal}); the trace is complete up to the interruption\n`)
      io.interrupts?.done(result.signal)
      return 128 + (result.signal === 'SIGINT' ? 2 : 15)
    }
    if (inv.json) io.out(toJson(result, inv.encoding))
    const explain = !inv.json && (inv.explainDenials || io.stderrIsTTY) && result.denials !== undefined
    // A limit that stopped the run is a denial too: explained, its one line says what stopped it and the flag.
    const message = explain && result.limit !== undefined && result.denials!.some((d) => d.kind === 'limit') ? undefined : describe(result)
    if (message) io.err(`${message}\n`)
    if (!inv.json) for (const o of result.overlays ?? []) io.err(`${overlaySummary(o)}\n`)
    if (!inv.json) for (const w of result.warnings ?? []) io.err(`caplet: warning: ${w}\n`)
    if (result.traceSummary !== undefined) io.err(formatTraceSummary(result.traceSummary))
    if (explain) {
      for (const line of denialLines({ denials: result.denials!, count: result.denialCount ?? result.denials!.length })) io.err(`${line}\n`)
    }
    if (result.trap?.kind === 'invalid-code') return ExitCode.MODULE
    if (result.trap) return ExitCode.TRAP
    if (result.limit) return ExitCode.LIMIT
    return result.exitCode & 0xff
  } catch (e) {
    if (e instanceof PolicyError) {
      io.err(`caplet: invalid policy: ${e.problems.join('; ')}\n`)
      return ExitCode.USAGE
    }
    if (e instanceof UnknownImportsError && inv.verbose) {
      io.err(`caplet: ${unknownImportsMessage(e.imports, true)}\n`)
      return ExitCode.MODULE
    }
    if (e instanceof ModuleError) {
      io.err(`caplet: ${e.reason}\n`)
      return ExitCode.MODULE
    }
    if (e instanceof NetworkError) {
      io.err(`caplet: ${e.reason}\n`)
      return ExitCode.USAGE
    }
    throw e
  }
}
