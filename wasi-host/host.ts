/**
 * @module WasiHost: builds the `wasi_snapshot_preview1` import object from a configuration,
 * and runs a command module.
 *
 * The dispatcher here (and its copy specialised for `clock_time_get`) is the one place that
 * (1) normalises raw wasm arguments (i32 arrive signed: `>>> 0`; u64 arrive as signed bigint:
 * 2^64 added when negative), (2) looks descriptors up, checks their kind and the rights
 * `SYSCALL_RIGHTS` names, (3) holds the only `try/catch`:
 * a `WasiError` becomes its errno; `ProcExit`, `LimitExceeded` and `GuestFault` unwind the guest;
 * anything else is a host bug and traps as `HostInvariantError`, never a made-up `EIO` (and once
 * a call has thrown to end the run, every later one throws the same: `#ended`), and
 * (4) writes out held file writes before every call but `fd_write` (`write-behind.ts`).
 */
import { Errno, errnoName, Filetype } from './abi/constants.js'
import { PREVIEW1_FUNCTIONS, type Preview1Function } from './abi/preview1.js'
import { encodeUtf8, GuestMemory } from './abi/guest-memory.js'
import { createPortableClocks, platformRandomFill } from './clocks.js'
import { GuestFault, HostInvariantError, LimitExceeded, ProcExit, WasiError } from './errors.js'
import { FdTable, type Descriptor, type DirDescriptor, type Mount, type StreamReader, type StreamWriter } from './fd-table.js'
import type { SocketBackend, SocketGrant } from './net/sockets.js'
import type { Filesystem } from './fs/filesystem.js'
import { readOnly } from './fs/read-only.js'
import { DEFAULT_RESOLVER_LIMITS } from './fs/path-resolver.js'
import { DEFAULT_HOST_LIMITS, type ClockSource, type HeldOutput, type HostLimits, type HostState, type HostStats } from './host-state.js'
import {
  CONNECTION_RIGHTS,
  denial,
  denialErrno,
  DIRECTORY_RIGHTS,
  domainRights,
  FILE_RIGHTS,
  LISTENER_RIGHTS,
  missingRightDenial,
  REDIAL_CONNECTION_RIGHTS,
  STDIN_RIGHTS,
  STDOUT_RIGHTS,
  SYSCALL_RIGHTS,
  TARGET_RIGHTS,
  type MountMode,
} from './rights.js'
import * as argsEnv from './syscalls/args-env.js'
import * as clockRandom from './syscalls/clock-random.js'
import * as fd from './syscalls/fd.js'
import { discardWriter } from './fd-table.js'
import * as path from './syscalls/path.js'
import * as poll from './syscalls/poll.js'
import * as proc from './syscalls/proc.js'
import * as sock from './syscalls/sock.js'
import { WriteBehind } from './write-behind.js'
import { DenialLog, rightNames } from './denials.js'

export interface PreopenSpec {
  /** The path the guest sees, e.g. `/data`. */
  guestPath: string
  fs: Filesystem
  /** `ro` grants no mutation at all (rights and a read-only wrapper). Default `rw`. */
  mode?: MountMode
  /**
   * The tree is visible to programs outside the sandbox (a host directory, or an overlay that
   * may be applied to one): links the guest creates there may not have absolute targets or `..`
   * components, and links whose target has them may not be renamed or linked. A lexical check
   * of such targets cannot stay true once directories move or links compose. Default: what the
   * backend says (`caps.hostVisible`: true for host directories and overlays over them).
   */
  hostVisible?: boolean
}

/** Bytes, a string, a synchronous reader (returns 0 at end), or nothing (empty). */
export type StdinSource = Uint8Array | string | StreamReader | undefined

export interface WasiHostOptions {
  /** argv, including argv[0]. */
  args?: readonly string[]
  env?: Readonly<Record<string, string>> | readonly string[]
  preopens?: readonly PreopenSpec[]
  stdin?: StdinSource
  /** Receives a view of guest memory valid only during the call; copy what you keep. Default: discard. */
  stdout?: StreamWriter
  stderr?: StreamWriter
  /**
   * Bytes `stdout`/`stderr` hold back, flushed by the dispatcher before every call but a stream
   * write, after `_start` returns and in `close()`. Default: none (every write goes out at once).
   */
  heldOutput?: HeldOutput
  /**
   * Which standard streams are terminals. A terminal is a character device; anything else
   * (a pipe, a buffer, a capture) is reported as `UNKNOWN`, so the guest's `isatty()` tells the
   * truth (wasi-testsuite `stdio_not_isatty`). Default: none.
   */
  ttys?: { stdin?: boolean; stdout?: boolean; stderr?: boolean }
  clocks?: ClockSource
  randomFill?: (dst: Uint8Array) => void
  limits?: Partial<HostLimits>
  /** Receives the bytes each call moved, to charge them to a fuel budget (see HostState.chargeWork). */
  chargeWork?: (bytes: number) => void
  /**
   * Build only these functions of `imports` (a module's imports, from `WebAssembly.Module.imports`):
   * a host made for one known module need not make all 46. Default: every function.
   */
  functions?: readonly string[]
  /**
   * Granted sockets, in order: they become descriptors after the preopened directories. Their
   * handles come from `net`, which `poll_oneoff` waits on.
   */
  sockets?: readonly SocketGrant[]
  net?: SocketBackend
}

/** `x64`: an i64 the call ignores (clock_time_get's precision), passed through unconverted. */
type ArgKind = 'u32' | 'u64' | 's64' | 'x64'
type DescriptorKind = Descriptor['kind']

interface SyscallSpec {
  args: readonly ArgKind[]
  /** Index of the descriptor argument the dispatcher resolves and checks. */
  fd?: number
  /** Kinds of descriptor the call accepts; others get `wrongKind` (by kind, else BADF). */
  on?: readonly DescriptorKind[]
  wrongKind?: Errno | Partial<Record<DescriptorKind, Errno>>
  /** Index of a second descriptor argument (two-handle calls), resolved but checked by the call. */
  fd2?: number
  // Each implementation has its own typed signature; the dispatcher calls them uniformly.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  impl: (h: HostState, ...args: any[]) => number
}

const u32 = 'u32',
  u64 = 'u64',
  s64 = 's64',
  x64 = 'x64'
const FILE: readonly DescriptorKind[] = ['file']
const DIR: readonly DescriptorKind[] = ['dir']
const FILE_OR_DIR: readonly DescriptorKind[] = ['file', 'dir']
const IO: readonly DescriptorKind[] = ['file', 'stream']
const IO_OR_SOCKET: readonly DescriptorKind[] = ['file', 'stream', 'socket']
const SOCKET: readonly DescriptorKind[] = ['socket']
/** Seeking calls: a stream or socket cannot seek (SPIPE); a directory is the wrong kind (BADF). */
const UNSEEKABLE = { stream: Errno.SPIPE, socket: Errno.SPIPE, dir: Errno.BADF } as const

/** The 46 functions of `wasi_snapshot_preview1`, with their argument kinds (one per name: a missing one does not compile). */
const SYSCALLS = {
  args_get: { args: [u32, u32], impl: argsEnv.args_get },
  args_sizes_get: { args: [u32, u32], impl: argsEnv.args_sizes_get },
  environ_get: { args: [u32, u32], impl: argsEnv.environ_get },
  environ_sizes_get: { args: [u32, u32], impl: argsEnv.environ_sizes_get },
  clock_res_get: { args: [u32, u32], impl: clockRandom.clock_res_get },
  clock_time_get: { args: [u32, x64, u32], impl: clockRandom.clock_time_get },
  fd_advise: { args: [u32, u64, u64, u32], fd: 0, on: IO, wrongKind: Errno.BADF, impl: fd.fd_advise },
  fd_allocate: { args: [u32, u64, u64], fd: 0, on: FILE, impl: fd.fd_allocate },
  fd_close: { args: [u32], impl: fd.fd_close },
  fd_datasync: { args: [u32], fd: 0, on: FILE_OR_DIR, wrongKind: Errno.INVAL, impl: fd.fd_datasync },
  fd_fdstat_get: { args: [u32, u32], fd: 0, impl: fd.fd_fdstat_get },
  fd_fdstat_set_flags: { args: [u32, u32], fd: 0, impl: fd.fd_fdstat_set_flags },
  fd_fdstat_set_rights: { args: [u32, u64, u64], fd: 0, impl: fd.fd_fdstat_set_rights },
  fd_filestat_get: { args: [u32, u32], fd: 0, impl: fd.fd_filestat_get },
  fd_filestat_set_size: { args: [u32, u64], fd: 0, on: FILE, impl: fd.fd_filestat_set_size },
  fd_filestat_set_times: { args: [u32, u64, u64, u32], fd: 0, on: FILE_OR_DIR, impl: fd.fd_filestat_set_times },
  fd_pread: { args: [u32, u32, u32, u64, u32], fd: 0, on: FILE, wrongKind: UNSEEKABLE, impl: fd.fd_pread },
  fd_prestat_get: { args: [u32, u32], fd: 0, impl: fd.fd_prestat_get },
  fd_prestat_dir_name: { args: [u32, u32, u32], fd: 0, impl: fd.fd_prestat_dir_name },
  fd_pwrite: { args: [u32, u32, u32, u64, u32], fd: 0, on: FILE, wrongKind: UNSEEKABLE, impl: fd.fd_pwrite },
  fd_read: { args: [u32, u32, u32, u32], fd: 0, on: IO_OR_SOCKET, impl: fd.fd_read },
  fd_readdir: { args: [u32, u32, u32, u64, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: fd.fd_readdir },
  fd_renumber: { args: [u32, u32], impl: fd.fd_renumber },
  fd_seek: { args: [u32, s64, u32, u32], fd: 0, on: FILE, wrongKind: UNSEEKABLE, impl: fd.fd_seek },
  fd_sync: { args: [u32], fd: 0, on: FILE_OR_DIR, wrongKind: Errno.INVAL, impl: fd.fd_sync },
  fd_tell: { args: [u32, u32], fd: 0, on: FILE, wrongKind: UNSEEKABLE, impl: fd.fd_tell },
  fd_write: { args: [u32, u32, u32, u32], fd: 0, on: IO_OR_SOCKET, impl: fd.fd_write },
  path_create_directory: { args: [u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_create_directory },
  path_filestat_get: { args: [u32, u32, u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_filestat_get },
  path_filestat_set_times: {
    args: [u32, u32, u32, u32, u64, u64, u32],
    fd: 0,
    on: DIR,
    wrongKind: Errno.NOTDIR,
    impl: path.path_filestat_set_times,
  },
  path_link: { args: [u32, u32, u32, u32, u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, fd2: 4, impl: path.path_link },
  path_open: { args: [u32, u32, u32, u32, u32, u64, u64, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_open },
  path_readlink: { args: [u32, u32, u32, u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_readlink },
  path_remove_directory: { args: [u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_remove_directory },
  path_rename: { args: [u32, u32, u32, u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, fd2: 3, impl: path.path_rename },
  path_symlink: { args: [u32, u32, u32, u32, u32], fd: 2, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_symlink },
  path_unlink_file: { args: [u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_unlink_file },
  poll_oneoff: { args: [u32, u32, u32, u32], impl: poll.poll_oneoff },
  proc_exit: { args: [u32], impl: proc.proc_exit },
  proc_raise: { args: [u32], impl: proc.proc_raise },
  sched_yield: { args: [], impl: proc.sched_yield },
  random_get: { args: [u32, u32], impl: clockRandom.random_get },
  // Only a granted (or accepted) socket: any other descriptor is NOTSOCK, a free number BADF.
  sock_accept: { args: [u32, u32, u32], fd: 0, on: SOCKET, wrongKind: Errno.NOTSOCK, impl: sock.sock_accept },
  sock_recv: { args: [u32, u32, u32, u32, u32, u32], fd: 0, on: SOCKET, wrongKind: Errno.NOTSOCK, impl: sock.sock_recv },
  sock_send: { args: [u32, u32, u32, u32, u32], fd: 0, on: SOCKET, wrongKind: Errno.NOTSOCK, impl: sock.sock_send },
  sock_shutdown: { args: [u32, u32], fd: 0, on: SOCKET, wrongKind: Errno.NOTSOCK, impl: sock.sock_shutdown },
} satisfies Record<Preview1Function, SyscallSpec>

export { WASI_PREVIEW1_FUNCTIONS } from './abi/preview1.js'

/** A type alias, not an interface, so it is assignable to `WebAssembly.Imports` (an index signature). */
export type WasiImports = {
  wasi_snapshot_preview1: Record<string, (...args: never[]) => number>
}

/** Syscall names by number (the dispatcher's counters and the recent-call ring hold numbers). */
const SYSCALL_NAMES: readonly Preview1Function[] = PREVIEW1_FUNCTIONS
const SYSCALL_NUMBERS: ReadonlyMap<string, number> = new Map(SYSCALL_NAMES.map((n, i) => [n, i]))
const RECENT = 8
const ZERO_COUNTS: Readonly<Record<string, number>> = Object.fromEntries(SYSCALL_NAMES.map((n) => [n, 0]))
/** One zero per syscall: copied (one memcpy) for each host's counters. */
const ZERO_COUNTERS: readonly number[] = SYSCALL_NAMES.map(() => 0)
const DEFAULT_LIMITS: Readonly<HostLimits> = Object.freeze({ ...DEFAULT_RESOLVER_LIMITS, ...DEFAULT_HOST_LIMITS })

/** What the dispatcher needs of one syscall's spec, derived once per process. */
interface Dispatch {
  readonly name: string
  /** Bit i: argument i is an i32, normalised with `>>> 0`. */
  readonly narrow: number
  /** Bit i: argument i is an i64 (`u64s`: unsigned, else signed). */
  readonly wide: number
  readonly u64s: number
  /** Argument index of the checked descriptor, and of the two-handle target; -1 for none. */
  readonly fdAt: number
  readonly fd2At: number
  readonly on: readonly DescriptorKind[] | undefined
  readonly wrongKinds: Partial<Record<DescriptorKind, Errno>> | undefined
  readonly wrongKind: Errno
  readonly need: number
  readonly need2: number
  readonly impl: SyscallSpec['impl']
}

const DISPATCH: readonly Dispatch[] = SYSCALL_NAMES.map((name) => {
  const spec: SyscallSpec = SYSCALLS[name]
  let u64s = 0,
    s64s = 0
  spec.args.forEach((k, i) => {
    if (k === 'u64') u64s |= 1 << i
    else if (k === 's64') s64s |= 1 << i
  })
  const wide = u64s | s64s
  const ignored = spec.args.reduce((bits, k, i) => (k === 'x64' ? bits | (1 << i) : bits), 0)
  const fdAt = spec.fd ?? -1
  const fd2At = spec.fd2 ?? -1
  // The dispatcher substitutes descriptors at these positions only.
  if (![-1, 0, 2].includes(fdAt) || ![-1, 3, 4].includes(fd2At)) throw new HostInvariantError(`${name}: descriptor position not dispatched`)
  const need2 = fd2At < 0 ? 0 : TARGET_RIGHTS[name]
  // Fail closed: a two-handle call without its target's rights is a host bug, refused at load.
  if (need2 === undefined) throw new HostInvariantError(`${name}: no rights named for its second descriptor`)
  return {
    name,
    narrow: ((1 << spec.args.length) - 1) & ~wide & ~ignored,
    wide,
    u64s,
    fdAt,
    fd2At,
    on: spec.on,
    wrongKinds: typeof spec.wrongKind === 'object' ? spec.wrongKind : undefined,
    wrongKind: typeof spec.wrongKind === 'number' ? spec.wrongKind : Errno.BADF,
    need: SYSCALL_RIGHTS[name],
    need2,
    impl: spec.impl,
  }
})

/** The one call with an import of its own (`#clockTimeGet`), whose spec it must match. */
const CLOCK_TIME_GET = SYSCALL_NUMBERS.get('clock_time_get')!
{
  const c = DISPATCH[CLOCK_TIME_GET]!
  if (c.narrow !== 0b101 || c.wide !== 0 || c.fdAt !== -1 || c.fd2At !== -1 || c.need !== 0) {
    throw new HostInvariantError('clock_time_get: its specialised import no longer matches its spec')
  }
}

const TWO_64 = 1n << 64n
const MIN_I64 = -(1n << 63n)
const MAX_I64 = (1n << 63n) - 1n

/**
 * An i64 argument as the call reads it. Wasm hands JS a *signed* bigint, so an s64 is already
 * right and a u64 only needs 2^64 added when negative. (`BigInt.asUintN` says the same but is a
 * runtime call on V8 11: it doubled the cost of a whole `clock_time_get`.)
 */
function wide64(c: Dispatch, v: bigint, i: number): bigint {
  // Wasm always passes a bigint; a JS caller may pass a number (a non-integer throws: host fault).
  if (typeof v !== 'bigint') v = BigInt(v)
  const unsigned = ((c.u64s >> i) & 1) !== 0
  // Only a caller other than wasm (a test, an embedder) can pass a value outside i64.
  if (v < MIN_I64 || v > MAX_I64) return unsigned ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v)
  return unsigned && v < 0n ? v + TWO_64 : v
}

/** The descriptor `n`, checked for the call's kinds and rights; or the errno to return. */
function checkedDescriptor(fds: FdTable, c: Dispatch, n: number): Descriptor | number {
  const d = fds.get(n)
  if (d === undefined) return denialErrno('bad-descriptor')
  if (c.on !== undefined && !c.on.includes(d.kind)) return c.wrongKinds?.[d.kind] ?? c.wrongKind
  if ((d.rightsBase & c.need) !== c.need) return missingRightErrno(d, c.need)
  return d
}

/** The target directory of a two-handle call, checked for its rights; or the errno to return. */
function checkedTarget(fds: FdTable, c: Dispatch, n: number): Descriptor | number {
  const d2 = fds.get(n)
  if (d2 === undefined) return denialErrno('bad-descriptor')
  if (d2.kind !== 'dir') return denialErrno('not-a-directory-fd')
  if ((d2.rightsBase & c.need2) !== c.need2) return missingRightErrno(d2, c.need2)
  return d2
}

/**
 * Per-call counters behind `stats.syscalls`: an array indexed by syscall number, so the hot path
 * adds one to a slot instead of updating a string-keyed record. Reading `syscalls` builds the
 * record (every function, zeros included, as before); `made()` only the functions called.
 * NOTE: a plain array of small integers, not a typed array: as fast to count in, and a host is
 * built per run, where allocating a typed array's backing store was a measurable cost.
 */
class SyscallStats implements HostStats {
  readonly counts: number[] = ZERO_COUNTERS.slice()
  bytesRead = 0
  bytesWritten = 0

  get syscalls(): Record<string, number> {
    // A copy of a template with every name already in place is one shape, filled in place.
    const out: Record<string, number> = { ...ZERO_COUNTS }
    for (let i = 0; i < SYSCALL_NAMES.length; i++) out[SYSCALL_NAMES[i]!] = this.counts[i]!
    return out
  }

  /** Calls per function, for the functions called at least once. */
  made(): Record<string, number> {
    const out: Record<string, number> = {}
    const counts = this.counts
    for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) out[SYSCALL_NAMES[i]!] = counts[i]!
    return out
  }
}

export class WasiHost implements HostState {
  readonly memory = new GuestMemory()
  readonly fds: FdTable
  readonly args: readonly Uint8Array[]
  readonly env: readonly Uint8Array[]
  readonly clocks: ClockSource
  readonly randomFill: (dst: Uint8Array) => void
  readonly limits: HostLimits
  readonly stats = new SyscallStats()
  readonly chargeWork: (bytes: number) => void
  readonly writeBehind = new WriteBehind()
  readonly heldOutput: HeldOutput | undefined
  /** Every call the policy refused (capped; `count` has them all). Cold path: only refusals touch it. */
  readonly denials = new DenialLog()
  readonly net: SocketBackend | undefined
  /** The last syscalls made, as numbers: a ring of `RECENT`, `#recentCount` of them valid. */
  readonly #recent = new Int16Array(RECENT)
  #recentAt = 0
  #recentCount = 0
  /**
   * What a call threw to end the run (`ProcExit`, `LimitExceeded`, a trap, a host fault), once
   * one did while `start` runs the module (a reactor's embedder sees what its exports throw and
   * decides). SECURITY: a module with the exception-handling proposal can `catch_all` what an
   * import throws; from then on every call throws it again and `start` ends as it says, so a
   * guest's handler can compute but call nothing past its exit, a limit, a fault or a host in a
   * state no call expected, and cannot change how its run ends.
   */
  #ended: unknown = undefined
  /** Whether `start` is running the module (what arms `#ended`). */
  #running = false
  readonly imports: WasiImports
  /** What `detach` runs: one per import, emptying what that import's function holds. */
  readonly #detachers: (() => void)[] = []

  constructor(options: WasiHostOptions = {}) {
    this.limits = options.limits === undefined ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...options.limits }
    this.fds = new FdTable(this.limits.maxFds)
    this.args = (options.args ?? []).map(encodeUtf8)
    const env = options.env ?? []
    this.env = (Array.isArray(env) ? (env as readonly string[]) : Object.entries(env).map(([k, v]) => `${k}=${v}`)).map(encodeUtf8)
    this.clocks = options.clocks ?? createPortableClocks()
    this.randomFill = options.randomFill ?? platformRandomFill
    this.chargeWork = options.chargeWork ?? noCharge
    this.heldOutput = options.heldOutput
    this.#installStdio(options)
    let dev = 1n
    for (const p of options.preopens ?? []) this.#preopen(p, dev++)
    this.net = options.net
    for (const g of options.sockets ?? []) this.#grantSocket(g)
    const table: Record<string, (...args: never[]) => number> = {}
    if (options.functions === undefined) {
      for (let i = 0; i < SYSCALL_NAMES.length; i++) table[SYSCALL_NAMES[i]!] = this.#dispatcher(i)
    } else {
      for (const name of options.functions) {
        const i = SYSCALL_NUMBERS.get(name)
        if (i === undefined) throw new TypeError(`not a wasi_snapshot_preview1 function: ${name}`)
        table[name] = this.#dispatcher(i)
      }
    }
    this.imports = { wasi_snapshot_preview1: table }
  }

  /** The last few syscalls, oldest first. */
  recentSyscalls(): string[] {
    const n = this.#recentCount
    const first = n < RECENT ? 0 : this.#recentAt
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push(SYSCALL_NAMES[this.#recent[(first + i) % RECENT]!]!)
    return out
  }

  /**
   * Runs a command module's `_start`. Returns the exit code (0 when `_start` returns).
   * Traps and limits propagate as exceptions (`GuestFault`, `WebAssembly.RuntimeError`,
   * `HostInvariantError`, `LimitExceeded`).
   */
  start(instance: WebAssembly.Instance): number {
    const { memory, _start } = instance.exports as { memory?: unknown; _start?: unknown }
    if (!(memory instanceof WebAssembly.Memory)) throw new TypeError('module does not export "memory"')
    if (typeof _start !== 'function') throw new TypeError('module does not export "_start"')
    this.memory.bind(memory)
    this.#running = true
    try {
      _start()
      // Inside the try: a failure writing held output out ends the run as the write would have.
      if (this.heldOutput?.pending === true) this.heldOutput.flush()
      // The guest caught what ended its run (see #ended) and returned: the run still ends so.
      if (this.#ended !== undefined) throw this.#ended
      return 0
    } catch (e) {
      const end = this.#ended ?? e
      if (end instanceof ProcExit) return end.code
      throw end
    } finally {
      this.close()
    }
  }

  /** Binds a reactor module's memory and runs its `_initialize`, if any. */
  initialize(instance: WebAssembly.Instance): void {
    const { memory, _initialize } = instance.exports as { memory?: unknown; _initialize?: unknown }
    if (!(memory instanceof WebAssembly.Memory)) throw new TypeError('module does not export "memory"')
    this.memory.bind(memory)
    // A reactor's exports return to the embedder with no last call to write held bytes out at.
    this.writeBehind.enabled = false
    if (typeof _initialize === 'function') _initialize()
  }

  /**
   * Ends the run's I/O: writes out what write-behind still holds, then closes every descriptor
   * still open (idempotent). A failure no guest call can report any more goes to
   * `writeFailures()`. Whoever drives the imports without `start` calls this at the end.
   */
  close(): void {
    const held = this.heldOutput
    if (held?.pending === true) {
      try {
        held.flush()
      } catch (e) {
        // The run has ended (a trap, a limit): nothing can report this to the guest any more.
        this.writeBehind.lost(`host fault while writing out held output: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
    const wb = this.writeBehind
    try {
      wb.flush()
    } catch (e) {
      wb.discard()
      wb.lost(`host fault while writing out buffered file writes: ${e instanceof Error ? e.message : String(e)}`)
    }
    wb.settle()
    for (const n of this.fds.numbers()) fd.fd_close(this, n)
  }

  /**
   * Cuts `imports` from this host, after its run has ended and been read: a call afterwards throws
   * a TypeError. For an instance that outlives its run: one importing a memory that is kept for
   * the next run stays on that memory's list of instances, which V8's young-generation GC treats
   * as strong until a full GC, and so would keep this host and everything it holds (#15).
   */
  detach(): void {
    for (const d of this.#detachers) d()
    this.#detachers.length = 0
  }

  /** Held writes that failed after their `fd_write` returned and that the guest never saw reported. */
  writeFailures(): string[] {
    return this.writeBehind.unreported()
  }

  #installStdio(options: WasiHostOptions): void {
    const stream = (
      name: 'stdin' | 'stdout' | 'stderr',
      read: StreamReader | undefined,
      write: StreamWriter | undefined,
      rights: number,
    ) => {
      this.fds.insert({
        kind: 'stream',
        name,
        read,
        write,
        filetype: options.ttys?.[name] ? Filetype.CHARACTER_DEVICE : Filetype.UNKNOWN,
        rightsAtOpen: rights,
        rightsBase: rights,
        rightsInheriting: 0,
        fdflags: 0,
      })
    }
    stream('stdin', stdinReader(options.stdin), undefined, STDIN_RIGHTS)
    stream('stdout', undefined, options.stdout ?? discardWriter, STDOUT_RIGHTS)
    stream('stderr', undefined, options.stderr ?? discardWriter, STDOUT_RIGHTS)
  }

  #preopen(p: PreopenSpec, dev: bigint): void {
    const mode = p.mode ?? 'rw'
    if (!p.guestPath.startsWith('/') && p.guestPath !== '.') throw new TypeError(`preopen guest path must be absolute: ${p.guestPath}`)
    const fs = mode === 'ro' ? readOnly(p.fs) : p.fs
    const mount: Mount = {
      fs,
      mode,
      dev,
      guestPath: p.guestPath,
      hostVisible: p.hostVisible ?? p.fs.caps.hostVisible === true,
      // `fs`, not `p.fs`: a read-only view never writes, and does not pass the flag on.
      writeBehind: fs.caps.writeBehind === true,
    }
    const d: DirDescriptor = {
      kind: 'dir',
      filetype: Filetype.DIRECTORY,
      dir: { handle: fs.root(), refs: 1 },
      mount,
      preopenPath: p.guestPath,
      listing: undefined,
      depth: 0,
      fdflags: 0,
      rightsAtOpen: DIRECTORY_RIGHTS & domainRights(mode),
      rightsBase: DIRECTORY_RIGHTS & domainRights(mode),
      // Generous inheriting rights; the mode is enforced at open (docs/decisions.md, 4).
      rightsInheriting: DIRECTORY_RIGHTS | FILE_RIGHTS,
    }
    this.fds.insert(d)
  }

  #grantSocket(g: SocketGrant): void {
    if (this.net === undefined) throw new TypeError('a socket grant needs the socket backend it came from (options.net)')
    const listener = g.socket.role === 'listener'
    // A connect grant may dial its one address again (`sock_accept` on it): SOCK_ACCEPT, and
    // its new connections get CONNECTION_RIGHTS (without SOCK_ACCEPT: only the grant redials).
    const redials = !listener && typeof g.socket.redial === 'function'
    const base = listener ? LISTENER_RIGHTS : redials ? REDIAL_CONNECTION_RIGHTS : CONNECTION_RIGHTS
    this.fds.insert({
      kind: 'socket',
      socket: g.socket,
      filetype: Filetype.SOCKET_STREAM,
      fdflags: 0,
      rightsAtOpen: base,
      rightsBase: base,
      rightsInheriting: listener || redials ? CONNECTION_RIGHTS : 0,
    })
  }

  /**
   * The import for one syscall. Hot path: no rest parameters, no argument array, no spread
   * call, no BigInt work for calls without 64-bit arguments; the counters are an array indexed
   * by syscall number (`SyscallStats`);
   * everything derived from the spec is computed once per process (`DISPATCH`), so a host
   * costs one closure per function. Arguments arrive as up to nine fixed parameters (the
   * widest call, `path_open`, has nine); those past the arity are `undefined` and never
   * normalised or used.
   */
  #dispatcher(index: number): (...raw: never[]) => number {
    if (index === CLOCK_TIME_GET) return this.#clockTimeGet()
    const c = DISPATCH[index]!
    const { narrow, wide, fdAt, fd2At, impl } = c
    // `let`, and the host too: `detach` empties them (see there).
    let host = this
    let fds = this.fds
    let writeBehind = this.writeBehind
    // Every call but fd_write sees held bytes in place (fd_write itself flushes unless it appends).
    const flushes = c.name !== 'fd_write'
    // Held stdio bytes go out before any other call, so nothing the guest does next overtakes them.
    let held = flushes ? this.heldOutput : undefined
    this.#detachers.push(() => {
      host = fds = writeBehind = held = undefined as never
    })
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    type A = any
    return ((a0: A, a1: A, a2: A, a3: A, a4: A, a5: A, a6: A, a7: A, a8: A): number => {
      host.#enter(index)
      try {
        if (held !== undefined && held.pending) held.flush()
        if (flushes && writeBehind.pending !== null) writeBehind.flush()
        if (narrow !== 0) {
          if ((narrow & 1) !== 0) a0 >>>= 0
          if ((narrow & 2) !== 0) a1 >>>= 0
          if ((narrow & 4) !== 0) a2 >>>= 0
          if ((narrow & 8) !== 0) a3 >>>= 0
          if ((narrow & 16) !== 0) a4 >>>= 0
          if ((narrow & 32) !== 0) a5 >>>= 0
          if ((narrow & 64) !== 0) a6 >>>= 0
          if ((narrow & 128) !== 0) a7 >>>= 0
          if ((narrow & 256) !== 0) a8 >>>= 0
        }
        if (wide !== 0) {
          if ((wide & 1) !== 0) a0 = wide64(c, a0, 0)
          if ((wide & 2) !== 0) a1 = wide64(c, a1, 1)
          if ((wide & 4) !== 0) a2 = wide64(c, a2, 2)
          if ((wide & 8) !== 0) a3 = wide64(c, a3, 3)
          if ((wide & 16) !== 0) a4 = wide64(c, a4, 4)
          if ((wide & 32) !== 0) a5 = wide64(c, a5, 5)
          if ((wide & 64) !== 0) a6 = wide64(c, a6, 6)
          if ((wide & 128) !== 0) a7 = wide64(c, a7, 7)
          if ((wide & 256) !== 0) a8 = wide64(c, a8, 8)
        }
        // SECURITY: the descriptor's kind and rights are checked here, before the call runs.
        if (fdAt === 0) {
          const d = checkedDescriptor(fds, c, a0)
          if (typeof d === 'number') return d
          a0 = d
        } else if (fdAt === 2) {
          const d = checkedDescriptor(fds, c, a2)
          if (typeof d === 'number') return d
          a2 = d
        }
        if (fd2At === 3) {
          const d2 = checkedTarget(fds, c, a3)
          if (typeof d2 === 'number') return d2
          a3 = d2
        } else if (fd2At === 4) {
          const d2 = checkedTarget(fds, c, a4)
          if (typeof d2 === 'number') return d2
          a4 = d2
        }
        // Guest memory needs no refresh here: every access is checked first, and `check`
        // re-derives views that a `memory.grow` made stale (abi/guest-memory.ts).
        return impl(host, a0, a1, a2, a3, a4, a5, a6, a7, a8)
      } catch (e) {
        return host.#fail(c.name, e, a0, a1, a2, a3, a4)
      }
    }) as (...raw: never[]) => number
  }

  /**
   * `clock_time_get`'s import: the dispatcher above, specialised by hand for this one call (no
   * descriptor, two i32 arguments normalised, the i64 precision ignored; `CLOCK_TIME_GET` checks
   * that the table still says so). A function of its own, so the engine compiles it for this
   * call alone and inlines the clock: the shared dispatcher's code serves 46 calls and inlines
   * none, which was a third of a clock reading's cost (bench/cli.bench.mjs `clock`).
   */
  #clockTimeGet(): (id: number, precision: bigint, timePtr: number) => number {
    let host = this
    let writeBehind = this.writeBehind
    let held = this.heldOutput
    this.#detachers.push(() => {
      host = writeBehind = held = undefined as never
    })
    return (id: number, precision: bigint, timePtr: number): number => {
      host.#enter(CLOCK_TIME_GET)
      try {
        if (held !== undefined && held.pending) held.flush()
        if (writeBehind.pending !== null) writeBehind.flush()
        return clockRandom.clock_time_get(host, id >>> 0, precision, timePtr >>> 0)
      } catch (e) {
        return host.#fail('clock_time_get', e, id, precision, timePtr)
      }
    }
  }

  /** Every call's first step: counts it, records it in the recent ring, and throws what ended the run, if anything did. */
  #enter(index: number): void {
    this.stats.counts[index]!++
    const at = this.#recentAt
    this.#recent[at] = index
    this.#recentAt = (at + 1) & (RECENT - 1)
    if (this.#recentCount < RECENT) this.#recentCount++
    if (this.#ended !== undefined) throw this.#ended
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  #fail(name: string, e: unknown, a0?: any, a1?: any, a2?: any, a3?: any, a4?: any): number {
    if (e instanceof WasiError) {
      if (e.denial !== undefined) this.#denied(name, e, [a0, a1, a2, a3, a4])
      return e.errno
    }
    if (e instanceof LimitExceeded) this.denials.record({ call: name, kind: 'limit', errno: 'trap', detail: e.detail, limit: e.limit })
    let end = e
    if (e instanceof GuestFault) e.syscall ??= name
    else if (!(e instanceof ProcExit || e instanceof LimitExceeded)) {
      const fault = new HostInvariantError(`host fault in ${name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
      fault.syscall = name
      end = fault
    }
    if (this.#running) this.#ended = end
    throw end
  }

  /**
   * Records a refusal with what the guest named: the descriptor, the mount it belongs to and the
   * guest path (never a host path). The arguments are as the dispatcher left them: a number or,
   * once checked, the descriptor itself. Reads guest memory only to decode the path, and a
   * pointer that faults only leaves the path out.
   */
  #denied(name: string, e: WasiError, args: readonly unknown[]): void {
    const at = PATH_ARGS[name]
    const raw = args[at?.[0] ?? 0]
    const d = typeof raw === 'number' ? this.fds.get(raw) : (raw as Descriptor | undefined)
    const event: Parameters<DenialLog['record']>[0] = { call: name, kind: e.denial!, errno: errnoName(e.errno), detail: e.detail ?? '' }
    if (typeof raw === 'number') event.fd = raw
    if (d !== undefined && typeof d === 'object') {
      if (typeof raw !== 'number') event.fd = this.fds.numbers().find((n) => this.fds.get(n) === d)
      if (d.kind === 'file' || d.kind === 'dir') {
        event.mount = d.mount.guestPath
        event.mode = d.mount.mode
      }
      if (at !== undefined && d.kind === 'dir') {
        try {
          const rel = this.memory.string(args[at[1]] as number, args[at[1] + 1] as number)
          const base = d.preopenPath ?? `${d.mount.guestPath.replace(/\/$/, '')}/…`
          event.path = rel.startsWith('/') ? rel : `${base.replace(/\/$/, '')}/${rel}`
        } catch {
          // A bad pointer: the call itself reported it; the denial goes without its path.
        }
      }
    }
    this.denials.record(event)
  }
}

/** A failed rights check, thrown so the dispatcher's one `catch` reports it (a cold path). */
function missingRightErrno(d: Descriptor, need: number): never {
  const missing = need & ~d.rightsBase
  throw denial(
    missingRightDenial(need, d.rightsBase, d.rightsAtOpen, (d.kind === 'file' || d.kind === 'dir') && d.mount.mode === 'ro'),
    `needs ${rightNames(missing)}`,
  )
}

/** Where each path-taking call has its directory descriptor and its (first) path pointer and length. */
const PATH_ARGS: Readonly<Record<string, readonly [fd: number, ptr: number]>> = {
  path_create_directory: [0, 1],
  path_filestat_get: [0, 2],
  path_filestat_set_times: [0, 2],
  path_link: [0, 2],
  path_open: [0, 2],
  path_readlink: [0, 1],
  path_remove_directory: [0, 1],
  path_rename: [0, 1],
  path_symlink: [2, 3],
  path_unlink_file: [0, 1],
}

function stdinReader(src: StdinSource): StreamReader | undefined {
  if (typeof src === 'function') return src
  const bytes = typeof src === 'string' ? encodeUtf8(src) : (src ?? new Uint8Array(0))
  let at = 0
  return (dst) => {
    const n = Math.min(dst.byteLength, bytes.byteLength - at)
    dst.set(bytes.subarray(at, at + n))
    at += n
    return n
  }
}

/** The default `chargeWork`: unmetered runs charge nothing. */
function noCharge(): void {}
