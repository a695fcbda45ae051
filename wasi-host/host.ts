/**
 * @module WasiHost: builds the `wasi_snapshot_preview1` import object from a configuration,
 * and runs a command module.
 *
 * The dispatcher here is the one place that (1) normalises raw wasm arguments (i32 arrive
 * signed: `>>> 0`; u64 arrive as signed bigint: `asUintN`), (2) looks descriptors up, checks
 * their kind and the rights `SYSCALL_RIGHTS` names, and (3) holds the only `try/catch`:
 * a `WasiError` becomes its errno; `ProcExit`, `LimitExceeded` and `GuestFault` unwind the guest;
 * anything else is a host bug and traps as `HostInvariantError`, never a made-up `EIO`.
 */
import { Errno, Filetype } from './abi/constants.js'
import { encodeUtf8, GuestMemory } from './abi/guest-memory.js'
import { createPortableClocks, platformRandomFill } from './clocks.js'
import { GuestFault, HostInvariantError, LimitExceeded, ProcExit, WasiError } from './errors.js'
import { FdTable, type Descriptor, type DirDescriptor, type Mount, type StreamReader, type StreamWriter } from './fd-table.js'
import type { Filesystem } from './fs/filesystem.js'
import { readOnly } from './fs/read-only.js'
import { DEFAULT_RESOLVER_LIMITS } from './fs/path-resolver.js'
import { DEFAULT_HOST_LIMITS, type ClockSource, type HostLimits, type HostState, type HostStats } from './host-state.js'
import {
  denialErrno, DIRECTORY_RIGHTS, domainRights, FILE_RIGHTS, missingRightDenial, STDIN_RIGHTS, STDOUT_RIGHTS,
  SYSCALL_RIGHTS, TARGET_RIGHTS, type MountMode,
} from './rights.js'
import * as argsEnv from './syscalls/args-env.js'
import * as clockRandom from './syscalls/clock-random.js'
import * as fd from './syscalls/fd.js'
import * as path from './syscalls/path.js'
import * as poll from './syscalls/poll.js'
import * as proc from './syscalls/proc.js'

export interface PreopenSpec {
  /** The path the guest sees, e.g. `/data`. */
  guestPath: string
  fs: Filesystem
  /** `ro` grants no mutation at all (rights and a read-only wrapper). Default `rw`. */
  mode?: MountMode
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
   * Which standard streams are terminals. A terminal is a character device; anything else
   * (a pipe, a buffer, a capture) is reported as `UNKNOWN`, so the guest's `isatty()` tells the
   * truth (wasi-testsuite `stdio_not_isatty`). Default: none.
   */
  ttys?: { stdin?: boolean; stdout?: boolean; stderr?: boolean }
  clocks?: ClockSource
  randomFill?: (dst: Uint8Array) => void
  limits?: Partial<HostLimits>
}

type ArgKind = 'u32' | 'u64' | 's64'
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

const u32 = 'u32', u64 = 'u64', s64 = 's64'
const FILE: readonly DescriptorKind[] = ['file']
const DIR: readonly DescriptorKind[] = ['dir']
const FILE_OR_DIR: readonly DescriptorKind[] = ['file', 'dir']
const IO: readonly DescriptorKind[] = ['file', 'stream']
const NONE: readonly DescriptorKind[] = []
/** Seeking calls: a stream cannot seek (SPIPE); a directory is the wrong kind (BADF). */
const UNSEEKABLE = { stream: Errno.SPIPE, dir: Errno.BADF } as const

/** The 46 functions of `wasi_snapshot_preview1`, with their argument kinds. */
const SYSCALLS: Record<string, SyscallSpec> = {
  args_get: { args: [u32, u32], impl: argsEnv.args_get },
  args_sizes_get: { args: [u32, u32], impl: argsEnv.args_sizes_get },
  environ_get: { args: [u32, u32], impl: argsEnv.environ_get },
  environ_sizes_get: { args: [u32, u32], impl: argsEnv.environ_sizes_get },
  clock_res_get: { args: [u32, u32], impl: clockRandom.clock_res_get },
  clock_time_get: { args: [u32, u64, u32], impl: clockRandom.clock_time_get },
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
  fd_read: { args: [u32, u32, u32, u32], fd: 0, on: IO, impl: fd.fd_read },
  fd_readdir: { args: [u32, u32, u32, u64, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: fd.fd_readdir },
  fd_renumber: { args: [u32, u32], impl: fd.fd_renumber },
  fd_seek: { args: [u32, s64, u32, u32], fd: 0, on: FILE, wrongKind: UNSEEKABLE, impl: fd.fd_seek },
  fd_sync: { args: [u32], fd: 0, on: FILE_OR_DIR, wrongKind: Errno.INVAL, impl: fd.fd_sync },
  fd_tell: { args: [u32, u32], fd: 0, on: FILE, wrongKind: UNSEEKABLE, impl: fd.fd_tell },
  fd_write: { args: [u32, u32, u32, u32], fd: 0, on: IO, impl: fd.fd_write },
  path_create_directory: { args: [u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_create_directory },
  path_filestat_get: { args: [u32, u32, u32, u32, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_filestat_get },
  path_filestat_set_times: { args: [u32, u32, u32, u32, u64, u64, u32], fd: 0, on: DIR, wrongKind: Errno.NOTDIR, impl: path.path_filestat_set_times },
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
  // No socket can be granted yet: every descriptor is the wrong kind (NOTSOCK), a free number is BADF.
  sock_accept: { args: [u32, u32, u32], fd: 0, on: NONE, wrongKind: Errno.NOTSOCK, impl: neverCalled },
  sock_recv: { args: [u32, u32, u32, u32, u32, u32], fd: 0, on: NONE, wrongKind: Errno.NOTSOCK, impl: neverCalled },
  sock_send: { args: [u32, u32, u32, u32, u32], fd: 0, on: NONE, wrongKind: Errno.NOTSOCK, impl: neverCalled },
  sock_shutdown: { args: [u32, u32], fd: 0, on: NONE, wrongKind: Errno.NOTSOCK, impl: neverCalled },
}

function neverCalled(): number {
  throw new HostInvariantError('a socket call reached its implementation without a socket')
}

/** The names of every preview1 function this host provides. */
export const WASI_PREVIEW1_FUNCTIONS: readonly string[] = Object.freeze(Object.keys(SYSCALLS))

export interface WasiImports {
  wasi_snapshot_preview1: Record<string, (...args: never[]) => number>
}

export class WasiHost implements HostState {
  readonly memory = new GuestMemory()
  readonly fds: FdTable
  readonly args: readonly Uint8Array[]
  readonly env: readonly Uint8Array[]
  readonly clocks: ClockSource
  readonly randomFill: (dst: Uint8Array) => void
  readonly limits: HostLimits
  readonly stats: HostStats = { syscalls: {}, bytesRead: 0, bytesWritten: 0 }
  /** The last syscalls made, oldest first once wrapped (for trap reports). */
  readonly #recent: string[] = []
  #recentAt = 0
  readonly imports: WasiImports

  constructor(options: WasiHostOptions = {}) {
    this.limits = { ...DEFAULT_RESOLVER_LIMITS, ...DEFAULT_HOST_LIMITS, ...options.limits }
    this.fds = new FdTable(this.limits.maxFds)
    this.args = (options.args ?? []).map(encodeUtf8)
    const env = options.env ?? []
    this.env = (Array.isArray(env) ? env as readonly string[] : Object.entries(env).map(([k, v]) => `${k}=${v}`)).map(encodeUtf8)
    this.clocks = options.clocks ?? createPortableClocks()
    this.randomFill = options.randomFill ?? platformRandomFill
    this.#installStdio(options)
    let dev = 1n
    for (const p of options.preopens ?? []) this.#preopen(p, dev++)
    const table: Record<string, (...args: never[]) => number> = {}
    for (const [name, spec] of Object.entries(SYSCALLS)) table[name] = this.#dispatcher(name, spec)
    this.imports = { wasi_snapshot_preview1: table }
  }

  /** The last few syscalls, oldest first. */
  recentSyscalls(): string[] {
    const n = this.#recent.length
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push(this.#recent[(this.#recentAt + i) % n]!)
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
    try {
      _start()
      return 0
    } catch (e) {
      if (e instanceof ProcExit) return e.code
      throw e
    } finally {
      this.close()
    }
  }

  /** Binds a reactor module's memory and runs its `_initialize`, if any. */
  initialize(instance: WebAssembly.Instance): void {
    const { memory, _initialize } = instance.exports as { memory?: unknown; _initialize?: unknown }
    if (!(memory instanceof WebAssembly.Memory)) throw new TypeError('module does not export "memory"')
    this.memory.bind(memory)
    if (typeof _initialize === 'function') _initialize()
  }

  /** Closes every descriptor still open (idempotent). */
  close(): void {
    for (const n of this.fds.numbers()) fd.fd_close(this, n)
  }

  #installStdio(options: WasiHostOptions): void {
    const stream = (name: 'stdin' | 'stdout' | 'stderr', read: StreamReader | undefined, write: StreamWriter | undefined, rights: number) => {
      this.fds.insert({
        kind: 'stream', name, read, write, filetype: options.ttys?.[name] ? Filetype.CHARACTER_DEVICE : Filetype.UNKNOWN,
        rightsAtOpen: rights, rightsBase: rights, rightsInheriting: 0, fdflags: 0,
      })
    }
    stream('stdin', stdinReader(options.stdin), undefined, STDIN_RIGHTS)
    stream('stdout', undefined, options.stdout ?? discard, STDOUT_RIGHTS)
    stream('stderr', undefined, options.stderr ?? discard, STDOUT_RIGHTS)
  }

  #preopen(p: PreopenSpec, dev: bigint): void {
    const mode = p.mode ?? 'rw'
    if (!p.guestPath.startsWith('/') && p.guestPath !== '.') throw new TypeError(`preopen guest path must be absolute: ${p.guestPath}`)
    const fs = mode === 'ro' ? readOnly(p.fs) : p.fs
    const mount: Mount = { fs, mode, dev, guestPath: p.guestPath }
    const d: DirDescriptor = {
      kind: 'dir', filetype: Filetype.DIRECTORY, dir: { handle: fs.root(), refs: 1 }, mount,
      preopenPath: p.guestPath, listing: undefined, depth: 0, fdflags: 0,
      rightsAtOpen: DIRECTORY_RIGHTS & domainRights(mode),
      rightsBase: DIRECTORY_RIGHTS & domainRights(mode),
      // Generous inheriting rights; the mode is enforced at open (LESSONS.md, "Decisions taken", 7).
      rightsInheriting: DIRECTORY_RIGHTS | FILE_RIGHTS,
    }
    this.fds.insert(d)
  }

  #dispatcher(name: string, spec: SyscallSpec): (...raw: never[]) => number {
    const kinds = spec.args
    const arity = kinds.length
    const fdAt = spec.fd
    const fd2At = spec.fd2
    const on = spec.on
    const wrongKinds = typeof spec.wrongKind === 'object' ? spec.wrongKind : undefined
    const wrongKind = typeof spec.wrongKind === 'number' ? spec.wrongKind : Errno.BADF
    const need = (SYSCALL_RIGHTS as Record<string, number>)[name] ?? 0
    const need2 = (TARGET_RIGHTS as Record<string, number>)[name] ?? 0
    const impl = spec.impl
    const stats = this.stats.syscalls
    stats[name] = 0
    const recent = this.#recent
    return (...raw: never[]): number => {
      stats[name]!++
      if (recent.length < 8) recent.push(name)
      else {
        recent[this.#recentAt] = name
        this.#recentAt = (this.#recentAt + 1) & 7
      }
      try {
        const args: unknown[] = new Array(arity)
        for (let i = 0; i < arity; i++) {
          const k = kinds[i]
          const v = raw[i] as unknown
          args[i] = k === 'u32' ? (v as number) >>> 0 : k === 'u64' ? BigInt.asUintN(64, v as bigint) : BigInt.asIntN(64, v as bigint)
        }
        if (fdAt !== undefined) {
          const d = this.fds.get(args[fdAt] as number)
          if (d === undefined) return denialErrno('bad-descriptor')
          if (on !== undefined && !on.includes(d.kind)) return wrongKinds?.[d.kind] ?? wrongKind
          if ((d.rightsBase & need) !== need) return missingRightErrno(d, need)
          args[fdAt] = d
        }
        if (fd2At !== undefined) {
          const d2 = this.fds.get(args[fd2At] as number)
          if (d2 === undefined) return denialErrno('bad-descriptor')
          if (d2.kind !== 'dir') return denialErrno('not-a-directory-fd')
          if ((d2.rightsBase & need2) !== need2) return missingRightErrno(d2, need2)
          args[fd2At] = d2
        }
        this.memory.refresh()
        return impl(this, ...args)
      } catch (e) {
        return this.#fail(name, e)
      }
    }
  }

  #fail(name: string, e: unknown): number {
    if (e instanceof WasiError) return e.errno
    if (e instanceof ProcExit || e instanceof LimitExceeded) throw e
    if (e instanceof GuestFault) {
      e.syscall ??= name
      throw e
    }
    const fault = new HostInvariantError(`host fault in ${name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
    fault.syscall = name
    throw fault
  }
}

function missingRightErrno(d: Descriptor, need: number): number {
  return denialErrno(missingRightDenial(need, d.rightsBase, d.rightsAtOpen, d.kind !== 'stream' && d.mount.mode === 'ro'))
}

function discard(): void {}

function stdinReader(src: StdinSource): StreamReader | undefined {
  if (typeof src === 'function') return src
  const bytes = typeof src === 'string' ? encodeUtf8(src) : src ?? new Uint8Array(0)
  let at = 0
  return (dst) => {
    const n = Math.min(dst.byteLength, bytes.byteLength - at)
    dst.set(bytes.subarray(at, at + n))
    at += n
    return n
  }
}


