/**
 * @module The host-directory backend: a `Filesystem` on a real directory, synchronously
 * (`fs.*Sync`), one component per call. It never walks a path, never resolves `..` and never
 * follows a symlink in the final component; host inode numbers never leave it, and every fd it
 * opens is closed exactly once. Two strategies: `proc-fd` (Linux: children reached through
 * `/proc/self/fd/<dirfd>/<name>`, race-free) and `fallback` (lstat/dev-ino checks, with a
 * residual race against other host processes that a run reports in its `warnings`).
 * Details: docs/security.md, "Host directories", and docs/internals.md, "Host directories".
 */
import * as fs from 'node:fs'
import { Errno, Filetype } from '../abi/constants.js'
import { muteStacks, restoreStacks, WasiError } from '../errors.js'
import {
  assertComponent,
  type DirEntry,
  type DirHandle,
  type FileHandle,
  type Filesystem,
  type FilesystemCaps,
  type NodeStat,
  type OpenFileOptions,
  type TimeSpec,
} from '../fs/filesystem.js'
import { wasiErrorFrom } from './host-errno.js'
import { SandboxInos } from './sandbox-inos.js'

/** Which confinement technique a `createHostDirFs` instance uses. */
export type HostDirStrategy = 'proc-fd' | 'fallback'

export interface HostDirFsOptions {
  /** `auto` (default): `proc-fd` where it works, else `fallback`. `proc` fails if unavailable. */
  mode?: 'auto' | 'proc' | 'fallback'
}

/** A mounted host directory. */
export interface HostDirFs extends Filesystem {
  readonly strategy: HostDirStrategy
  /** Releases the mount's own root fd (idempotent). Handles already given out stay usable. */
  close(): void
}

const C = fs.constants
// Absent on Windows: there the fallback relies on its lstat checks alone (see openFile).
const O_DIRECTORY = C.O_DIRECTORY ?? 0
const O_NOFOLLOW = C.O_NOFOLLOW ?? 0
const O_NONBLOCK = C.O_NONBLOCK ?? 0
// Node does not export O_CLOEXEC; libuv adds it to every open anyway. Spelled out where known
// so that no fd can leak into a child process even if that libuv behaviour changed.
const O_CLOEXEC = process.platform === 'linux' ? 0o2000000 : 0
const DIR_FLAGS = C.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
const BIG = { bigint: true } as const
/** A number lstat that answers `undefined` for a missing name instead of building an exception. */
const NUMBER_OR_NONE = { bigint: false, throwIfNoEntry: false } as const
const BIG_OR_NONE = { bigint: true, throwIfNoEntry: false } as const
const S_IFMT = C.S_IFMT
// Absent on Windows where they cannot occur: -1 never equals a masked mode.
const S_IFREG = C.S_IFREG
const S_IFDIR = C.S_IFDIR
const S_IFLNK = C.S_IFLNK ?? -1
const S_IFCHR = C.S_IFCHR ?? -1
const S_IFBLK = C.S_IFBLK ?? -1
const S_IFSOCK = C.S_IFSOCK ?? -1
const NS_PER_S = 1_000_000_000n
/** Largest file position `fs.writeSync`/`ftruncateSync` take exactly (beyond it Node silently misbehaves). */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
/** Largest `off_t`; `pread` beyond it is `EINVAL` in the kernel and a `RangeError` in Node. */
const MAX_OFF_T = (1n << 63n) - 1n
/** Node refuses single I/O calls above this; a shorter read or write is a legal short count. */
const MAX_IO = 0x7fff_f000
/** Attempts of a fallback open whose target changed between lookup and open. */
const FALLBACK_OPEN_ATTEMPTS = 3
// `ignoreBOM`: a host name that starts with U+FEFF keeps it (stripped, it would alias another name).
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Runs one host call and converts known host errors to `WasiError`. Node's exception for a failed
 * call is built without a stack (`muteStacks`): it only ever becomes an errno. An unknown error
 * (a host bug) gets the stack of the call site afterwards (`hostError`).
 */
function host<T>(call: () => T): T {
  const limit = muteStacks()
  try {
    return call()
  } catch (err) {
    throw hostError(err, limit)
  } finally {
    restoreStacks(limit)
  }
}

/**
 * `wasiErrorFrom` for a call made with stacks muted. An error that is no errno is a host bug
 * (it becomes a trap marked as a host fault): it was built without a stack, so it gets the
 * stack of this call site, with the limit restored, for the fault to say where it happened.
 */
function hostError(err: unknown, limit: number | undefined): unknown {
  const e = wasiErrorFrom(err)
  if (limit !== undefined && e instanceof Error && !(e instanceof WasiError)) {
    restoreStacks(limit)
    try {
      Error.captureStackTrace(e, hostError)
    } catch {
      // A frozen error keeps what it has; the fault is reported all the same.
    }
  }
  return e
}

/** Closes an fd during error cleanup; the original error matters more than a close failure. */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd)
  } catch {
    // The fd is released by the kernel even when close reports an error.
  }
}

/**
 * SECURITY: the single-component check, plus what makes a component more than one on Windows:
 * `\` is a separator there, `:` names a stream or drive, and DOS device names or a trailing dot
 * or space alias other files. Untested on Windows; refusing is the safe side.
 */
function assertHostComponent(name: string): void {
  assertComponent(name)
  if (process.platform === 'win32' && (/[\\:]/.test(name) || /[. ]$/.test(name) || /^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(name))) {
    throw new WasiError(Errno.INVAL, `not a portable component on Windows: ${JSON.stringify(name)}`)
  }
}

/** The preview1 filetype of a host `st_mode` (plain arithmetic: no `Stats.is*()` calls, no bigint). */
function filetypeOfMode(mode: number): Filetype {
  const type = mode & S_IFMT
  if (type === S_IFREG) return Filetype.REGULAR_FILE
  if (type === S_IFDIR) return Filetype.DIRECTORY
  if (type === S_IFLNK) return Filetype.SYMBOLIC_LINK
  if (type === S_IFCHR) return Filetype.CHARACTER_DEVICE
  if (type === S_IFBLK) return Filetype.BLOCK_DEVICE
  if (type === S_IFSOCK) return Filetype.SOCKET_STREAM
  return Filetype.UNKNOWN // FIFOs and anything else have no preview1 filetype
}

function filetypeOf(st: fs.BigIntStats): Filetype {
  return filetypeOfMode(Number(st.mode))
}

function sameNode(a: fs.BigIntStats, b: fs.BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino
}

/**
 * A time for `fs.futimesSync`/`lutimesSync`, as a numeric string of seconds. Strings are the
 * documented form that keeps negative (pre-1970) values: Node turns a negative *number* into
 * "now". Precision is what a double holds (about a microsecond today).
 */
function hostTime(spec: TimeSpec, currentNs: bigint): string {
  if (spec === 'now') return String(Date.now() / 1000)
  const ns = spec ?? currentNs
  const abs = ns < 0n ? -ns : ns
  return `${ns < 0n ? '-' : ''}${abs / NS_PER_S}.${(abs % NS_PER_S).toString().padStart(9, '0')}`
}

function assertTimeSpec(spec: TimeSpec): void {
  if (typeof spec === 'bigint' && spec < 0n) throw new WasiError(Errno.INVAL, 'negative timestamp')
}

/** Host flags for a file open; `O_NOFOLLOW` always, `O_NONBLOCK` so a FIFO cannot hang the host. */
function fileFlags(o: OpenFileOptions): number {
  let flags = o.write ? (o.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY
  if (o.create) flags |= C.O_CREAT
  if (o.create && o.exclusive) flags |= C.O_EXCL
  if (o.truncate) flags |= C.O_TRUNC
  // SECURITY: O_NONBLOCK: opening a host FIFO without it blocks the (synchronous) host until a
  // writer appears. It has no effect on regular files.
  return flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
}

/** Where a fallback directory handle's directory is, as far as this mount knows. */
interface DirPath {
  path: string
  /** This mount removed it (rmdir, or replaced by a rename): it behaves as an unlinked directory. */
  gone: boolean
}

/**
 * Fallback only: the paths of live directory handles, kept current across this mount's own
 * renames and removals, so that a handle follows its directory as an fd would. Held through
 * `WeakRef`s: a handle its user forgot to close does not pin memory here.
 */
class DirPaths {
  readonly #live = new Set<WeakRef<DirPath>>()

  add(path: string): { rec: DirPath; ref: WeakRef<DirPath> } {
    const rec: DirPath = { path, gone: false }
    const ref = new WeakRef(rec)
    this.#live.add(ref)
    return { rec, ref }
  }

  delete(ref: WeakRef<DirPath>): void {
    this.#live.delete(ref)
  }

  /** After `rename(from, to)` succeeded: whatever was at `to` is gone; `from` and below move. */
  moved(from: string, to: string): void {
    if (from === to) return // POSIX: renaming a name onto itself does nothing
    const recs = this.#records()
    for (const rec of recs) if (!rec.gone && under(rec.path, to)) rec.gone = true
    for (const rec of recs) if (!rec.gone && under(rec.path, from)) rec.path = to + rec.path.slice(from.length)
  }

  /** After `rmdir(path)` succeeded. */
  removed(path: string): void {
    for (const rec of this.#records()) if (under(rec.path, path)) rec.gone = true
  }

  #records(): DirPath[] {
    const recs: DirPath[] = []
    for (const ref of this.#live) {
      const rec = ref.deref()
      if (rec === undefined) this.#live.delete(ref)
      else recs.push(rec)
    }
    return recs
  }
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : dir + '/')
}

/** A time the guest set to the nanosecond, and what the host stored for it. */
type SetTime = readonly [exact: bigint, stored: bigint]

/** How many nodes' exact times a mount remembers (the oldest is forgotten first). */
const MAX_REMEMBERED_TIMES = 4096

/** Per-instance state shared by every handle of one mount. */
class Mount {
  /** SECURITY: what the guest sees instead of host inode numbers (see `SandboxInos`). */
  readonly inos = new SandboxInos()
  /** Only the fallback strategy needs to know where its directories are. */
  readonly paths: DirPaths | undefined
  /**
   * Times the guest set, by sandbox inode. Node's utimes keeps whole microseconds (a double of
   * seconds, which libuv truncates), so the exact value is remembered and reported for as long as
   * the host still holds what was stored for it; any other change on the host shows through.
   */
  readonly #setTimes = new Map<bigint, { atim: SetTime | undefined; mtim: SetTime | undefined }>()

  constructor(paths?: DirPaths) {
    this.paths = paths
  }

  nodeStat(st: fs.BigIntStats): NodeStat {
    const ino = this.inos.of(st.dev, st.ino)
    let atim = st.atimeNs
    let mtim = st.mtimeNs
    if (this.#setTimes.size > 0) {
      const set = this.#setTimes.get(ino)
      if (set?.atim && set.atim[1] === atim) atim = set.atim[0]
      if (set?.mtim && set.mtim[1] === mtim) mtim = set.mtim[0]
    }
    return { filetype: filetypeOf(st), ino, nlink: st.nlink, size: st.size, atim, mtim, ctim: st.ctimeNs }
  }

  /**
   * After a set-times call: `before` is the node's stat before it (taken when a time was
   * omitted: Node cannot omit one, so it was re-set to its current value, whole microseconds
   * only), `after` its stat once the host stored the times.
   */
  rememberTimes(before: fs.BigIntStats | undefined, after: fs.BigIntStats, atim: TimeSpec, mtim: TimeSpec): void {
    const ino = this.inos.of(after.dev, after.ino)
    const prior = this.#setTimes.get(ino)
    const exact = (spec: TimeSpec, was: SetTime | undefined, current: bigint | undefined, stored: bigint): SetTime | undefined => {
      if (typeof spec === 'bigint') return [spec, stored]
      if (spec === 'now' || current === undefined) return undefined
      // Omitted: what the guest saw before the call stays what it sees.
      return [was !== undefined && was[1] === current ? was[0] : current, stored]
    }
    const next = {
      atim: exact(atim, prior?.atim, before?.atimeNs, after.atimeNs),
      mtim: exact(mtim, prior?.mtim, before?.mtimeNs, after.mtimeNs),
    }
    this.#setTimes.delete(ino)
    if (next.atim === undefined && next.mtim === undefined) return
    this.#setTimes.set(ino, next)
    if (this.#setTimes.size > MAX_REMEMBERED_TIMES) this.#setTimes.delete(this.#setTimes.keys().next().value!)
  }
}

/** An open host file; shared by both strategies (a file fd needs no path afterwards). */
class HostFile implements FileHandle {
  readonly kind = 'file' as const
  /** Learned from the fstat that followed the open: an open node never changes type. */
  readonly filetype: Filetype
  readonly #mount: Mount
  #fd: number

  constructor(mount: Mount, fd: number, filetype: Filetype) {
    this.#mount = mount
    this.#fd = fd
    this.filetype = filetype
  }

  /** SECURITY: never hand a closed fd number to the host; it may belong to someone else now. */
  #open(): number {
    if (this.#fd < 0) throw new WasiError(Errno.BADF, 'file handle is closed')
    return this.#fd
  }

  stat(): NodeStat {
    const fd = this.#open()
    // Hot path (a guest's fstat after each open): no closure, no stack muting; an fstat of an
    // open fd fails only on a host fault (EIO), never as a guest's everyday answer.
    let st: fs.BigIntStats
    try {
      st = fs.fstatSync(fd, BIG)
    } catch (err) {
      throw wasiErrorFrom(err)
    }
    return this.#mount.nodeStat(st)
  }

  read(dst: Uint8Array, position: bigint): number {
    const fd = this.#open()
    if (position < 0n || position > MAX_OFF_T) throw new WasiError(Errno.INVAL, 'read position out of range')
    // Up to 2^53 (every real file): a number position, and no bigint arithmetic. Node checks a
    // bigint position against `2n ** 63n` computed anew on every call, and a 64 KiB read runs
    // cold (a thousand calls): a cold read cost a third more (bench/cli.bench.mjs `fileio-64k`).
    // Further out, the kernel refuses a range whose end passes 2^63-1 (EINVAL); no file has
    // bytes there, so the read is shortened to end at 2^63-1: 0 bytes, end of file, as POSIX says.
    let at: number | bigint = position
    let len = Math.min(dst.byteLength, MAX_IO)
    if (position <= MAX_SAFE) at = Number(position)
    else {
      const room = MAX_OFF_T - position
      if (room < BigInt(len)) len = Number(room)
    }
    if (len === 0) return 0
    // Hot path: a plain try/catch instead of `host()`, so no closure is allocated per call.
    try {
      return fs.readSync(fd, dst, 0, len, at)
    } catch (err) {
      throw wasiErrorFrom(err)
    }
  }

  write(src: Uint8Array, position: bigint): number {
    const fd = this.#open()
    if (position < 0n || position > MAX_OFF_T) throw new WasiError(Errno.INVAL, 'write position out of range')
    // NOTE: Node's writeSync takes no bigint position and treats an unsafe number as "the current
    // position", so a write there would land somewhere else. No host file system holds bytes
    // that far out in practice: report the file as too large, as the kernel would.
    if (position > MAX_SAFE) throw new WasiError(Errno.FBIG, 'write position beyond 2^53')
    const len = Math.min(src.byteLength, MAX_IO)
    if (len === 0) return 0
    try {
      return fs.writeSync(fd, src, 0, len, Number(position))
    } catch (err) {
      throw wasiErrorFrom(err)
    }
  }

  setSize(size: bigint): void {
    const fd = this.#open()
    // Node clamps a negative length to 0 and throws RangeError past 2^53: check before calling.
    if (size < 0n) throw new WasiError(Errno.INVAL, 'negative size')
    if (size > MAX_SAFE) throw new WasiError(Errno.FBIG, 'size beyond 2^53')
    host(() => fs.ftruncateSync(fd, Number(size)))
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    const fd = this.#open()
    assertTimeSpec(atim)
    assertTimeSpec(mtim)
    if (atim === undefined && mtim === undefined) return
    // Node cannot pass UTIME_OMIT: an unchanged time is re-set to its current value.
    const cur = atim === undefined || mtim === undefined ? host(() => fs.fstatSync(fd, BIG)) : undefined
    host(() => fs.futimesSync(fd, hostTime(atim, cur?.atimeNs ?? 0n), hostTime(mtim, cur?.mtimeNs ?? 0n)))
    this.#mount.rememberTimes(
      cur,
      host(() => fs.fstatSync(fd, BIG)),
      atim,
      mtim,
    )
  }

  allocate(offset: bigint, len: bigint): void {
    const fd = this.#open()
    if (offset < 0n || len < 0n) throw new WasiError(Errno.INVAL, 'negative allocate range')
    const end = offset + len
    if (end > MAX_SAFE) throw new WasiError(Errno.FBIG, 'allocate beyond 2^53')
    // Node has no fallocate: growing the size gives the same guest-visible result (a sparse
    // extension); it never shrinks.
    const size = host(() => fs.fstatSync(fd, BIG)).size
    if (end > size) host(() => fs.ftruncateSync(fd, Number(end)))
  }

  sync(): void {
    const fd = this.#open()
    host(() => fs.fsyncSync(fd))
  }

  datasync(): void {
    const fd = this.#open()
    host(() => fs.fdatasyncSync(fd))
  }

  close(): void {
    const fd = this.#fd
    if (fd < 0) return
    this.#fd = -1 // before the call: the fd is gone even if close reports an error
    try {
      fs.closeSync(fd)
    } catch (err) {
      throw wasiErrorFrom(err)
    }
  }
}

/**
 * What both strategies share: every child operation is `assertHostComponent`, then `enter()`
 * (the handle is open and, for the fallback, still names its directory), then one host call on
 * `at(name)`.
 */
abstract class HostDir implements DirHandle {
  readonly kind = 'dir' as const
  readonly #mount: Mount

  protected constructor(mount: Mount) {
    this.#mount = mount
  }

  protected get mount(): Mount {
    return this.#mount
  }

  /** Throws unless the handle may be used now (`BADF` when closed; `NOENT`, `STALE` for the fallback). */
  protected abstract enter(): void
  /** The directory was removed through this mount (fallback only; an fd needs no such record). */
  protected abstract gone(): boolean
  /** After a call that returned information: the fallback re-checks to narrow its race window. */
  protected abstract settle(): void
  /** The host path through which `name` is reached inside this directory; no checks. */
  protected abstract at(name: string): string
  /** The host path that lists this directory; no checks. */
  protected abstract self(): string

  abstract stat(): NodeStat
  abstract setTimes(atim: TimeSpec, mtim: TimeSpec): void
  abstract openDir(name: string): DirHandle
  abstract openFile(name: string, options: OpenFileOptions): FileHandle
  abstract close(): void

  /** Checks `name` and the handle, and gives the path to use for one host call. */
  protected child(name: string): string {
    assertHostComponent(name)
    this.enter()
    return this.at(name)
  }

  /**
   * SECURITY: two-handle operations only work between handles of this very mount (identity, not
   * host path): anything else, another `createHostDirFs` instance or another backend, is `XDEV`.
   */
  #peer(toDir: DirHandle): HostDir {
    // A brand check, not `instanceof`: a look-alike object with HostDir's prototype fails it.
    if (!(#mount in toDir) || toDir.#mount !== this.#mount) {
      throw new WasiError(Errno.XDEV, 'target directory belongs to another mount')
    }
    return toDir
  }

  statChild(name: string): NodeStat {
    const p = this.child(name)
    let st: fs.BigIntStats | undefined
    try {
      st = fs.lstatSync(p, BIG_OR_NONE)
    } catch (err) {
      throw wasiErrorFrom(err)
    }
    // A missing name is the common failure (probing for files): no host exception is built for it.
    if (st === undefined) throw new WasiError(Errno.NOENT, p)
    this.settle()
    return this.#mount.nodeStat(st)
  }

  readlink(name: string): string {
    const p = this.child(name)
    const target = host(() => fs.readlinkSync(p))
    this.settle()
    return target
  }

  mkdir(name: string): void {
    const p = this.child(name)
    host(() => fs.mkdirSync(p))
  }

  symlink(target: string, name: string): void {
    // Node throws a non-errno validation error for NUL; the kernel could never store it anyway.
    if (target.includes('\0')) throw new WasiError(Errno.INVAL, 'NUL in symlink target')
    const p = this.child(name)
    host(() => fs.symlinkSync(target, p))
  }

  unlink(name: string): void {
    const p = this.child(name)
    host(() => fs.unlinkSync(p))
  }

  rmdir(name: string): void {
    const p = this.child(name)
    host(() => fs.rmdirSync(p))
    this.#mount.paths?.removed(p)
  }

  rename(name: string, toDir: DirHandle, toName: string): void {
    assertHostComponent(toName)
    const to = this.#peer(toDir)
    const from = this.child(name)
    const dest = to.child(toName)
    host(() => fs.renameSync(from, dest))
    this.#mount.paths?.moved(from, dest)
  }

  link(name: string, toDir: DirHandle, toName: string): void {
    assertHostComponent(toName)
    const to = this.#peer(toDir)
    const from = this.child(name)
    const dest = to.child(toName)
    // link(2) on Linux does not follow a symlink source: the link itself is linked (no follow).
    host(() => fs.linkSync(from, dest))
  }

  setTimesChild(name: string, atim: TimeSpec, mtim: TimeSpec): void {
    assertTimeSpec(atim)
    assertTimeSpec(mtim)
    const p = this.child(name)
    const cur = atim === undefined || mtim === undefined ? host(() => fs.lstatSync(p, BIG)) : undefined
    if (atim === undefined && mtim === undefined) return
    // lutimes: utimensat(AT_SYMLINK_NOFOLLOW), so a symlink's own times change, never its target's.
    host(() => fs.lutimesSync(p, hostTime(atim, cur?.atimeNs ?? 0n), hostTime(mtim, cur?.mtimeNs ?? 0n)))
    this.mount.rememberTimes(
      cur,
      host(() => fs.lstatSync(p, BIG)),
      atim,
      mtim,
    )
  }

  readdir(): DirEntry[] {
    if (this.gone()) return [] // an unlinked directory has no entries
    this.enter()
    const names = this.#names()
    const mount = this.#mount
    const entries: DirEntry[] = []
    for (const name of names) {
      const p = this.at(name)
      // Only the type and the identity are needed: a number lstat (no bigint conversions), exact
      // for every dev/ino up to 2^53; beyond that, the entry is stat'ed again as bigint.
      let mode: number
      let ino: bigint | undefined
      try {
        const st = fs.lstatSync(p, NUMBER_OR_NONE)
        if (st === undefined) continue // removed since the listing
        mode = st.mode
        ino = mount.inos.ofNumbers(st.dev, st.ino)
        if (ino === undefined) {
          const big = fs.lstatSync(p, BIG_OR_NONE)
          if (big === undefined) continue
          mode = Number(big.mode)
          ino = mount.inos.of(big.dev, big.ino)
        }
      } catch (err) {
        throw wasiErrorFrom(err)
      }
      entries.push({ name, filetype: filetypeOfMode(mode), ino })
    }
    this.settle()
    return entries
  }

  /**
   * The names in this directory, without `.` and `..`, sorted: host order is stable for an
   * unchanged directory but differs between file systems; a sorted listing is stable everywhere.
   */
  #names(): string[] {
    const self = this.self()
    let names: string[]
    try {
      names = fs.readdirSync(self)
    } catch (err) {
      throw wasiErrorFrom(err)
    }
    // Node replaces bytes that are not UTF-8 with U+FFFD. Only then are the raw names needed
    // (a real U+FFFD in a name also lands here, and is kept).
    if (names.some((n) => n.includes('\uFFFD'))) names = this.#strictNames(self)
    return names.sort()
  }

  #strictNames(self: string): string[] {
    let raw: Buffer[]
    try {
      raw = fs.readdirSync(self, { encoding: 'buffer' })
    } catch (err) {
      throw wasiErrorFrom(err)
    }
    const names: string[] = []
    for (const bytes of raw) {
      try {
        names.push(fatalUtf8.decode(bytes))
      } catch {
        // NOTE: a host name that is not UTF-8 cannot be named through this string interface; a
        // lossy decoding could alias another entry, so such entries are left out.
      }
    }
    return names
  }
}

/** Linux: a directory handle is an open directory fd; children are reached beneath it. */
class ProcDir extends HostDir {
  /** `/proc/<pid>/fd/` (see `procFdBase`). */
  readonly #base: string
  #fd: number
  /** `/proc/<pid>/fd/<fd>/`, built once: every child path starts with it. */
  #prefix: string

  constructor(mount: Mount, base: string, fd: number) {
    super(mount)
    this.#base = base
    this.#fd = fd
    this.#prefix = `${base}${fd}/`
  }

  protected enter(): void {
    if (this.#fd < 0) throw new WasiError(Errno.BADF, 'directory handle is closed')
  }

  protected gone(): boolean {
    return false
  }

  protected settle(): void {}

  protected at(name: string): string {
    return this.#prefix + name
  }

  protected self(): string {
    return this.#base + this.#fd
  }

  stat(): NodeStat {
    this.enter()
    let st: fs.BigIntStats
    try {
      st = fs.fstatSync(this.#fd, BIG)
    } catch (err) {
      throw wasiErrorFrom(err)
    }
    return this.mount.nodeStat(st)
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    this.enter()
    assertTimeSpec(atim)
    assertTimeSpec(mtim)
    if (atim === undefined && mtim === undefined) return
    const fd = this.#fd
    const cur = atim === undefined || mtim === undefined ? host(() => fs.fstatSync(fd, BIG)) : undefined
    host(() => fs.futimesSync(fd, hostTime(atim, cur?.atimeNs ?? 0n), hostTime(mtim, cur?.mtimeNs ?? 0n)))
    this.mount.rememberTimes(
      cur,
      host(() => fs.fstatSync(fd, BIG)),
      atim,
      mtim,
    )
  }

  openDir(name: string): DirHandle {
    const p = this.child(name)
    let fd: number
    try {
      // SECURITY: O_NOFOLLOW|O_DIRECTORY: a symlink in the final component is never followed.
      fd = fs.openSync(p, DIR_FLAGS)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // A symlink gives ELOOP (or ENOTDIR): to the resolver above, "not a directory".
      if (code === 'ELOOP') throw new WasiError(Errno.NOTDIR, `symlink ${p}`)
      throw wasiErrorFrom(err)
    }
    return new ProcDir(this.mount, this.#base, fd)
  }

  openFile(name: string, options: OpenFileOptions): FileHandle {
    const p = this.child(name)
    let fd: number
    // Inline `host()` (no closure per open): a name that is not there is a common answer.
    const limit = muteStacks()
    try {
      fd = fs.openSync(p, fileFlags(options), 0o666)
    } catch (err) {
      throw hostError(err, limit)
    } finally {
      restoreStacks(limit)
    }
    let filetype: Filetype
    try {
      // Only the type is needed (a number stat: no bigint conversions).
      filetype = filetypeOfMode(fs.fstatSync(fd).mode)
    } catch (err) {
      closeQuietly(fd)
      throw wasiErrorFrom(err)
    }
    if (filetype === Filetype.DIRECTORY) {
      // A read-only open of a directory succeeds on the host; the interface says ISDIR.
      closeQuietly(fd)
      throw new WasiError(Errno.ISDIR, p)
    }
    return new HostFile(this.mount, fd, filetype)
  }

  close(): void {
    const fd = this.#fd
    if (fd < 0) return
    this.#fd = -1
    // SECURITY: enter() refuses a closed handle first; should a path still be built, it names
    // no directory (`fd/-1` does not exist). Never '' (a name alone is relative to the host's
    // cwd) nor the old fd number (it may be reused by another open).
    this.#prefix = `${this.#base}-1/`
    try {
      fs.closeSync(fd)
    } catch (err) {
      throw wasiErrorFrom(err)
    }
  }
}

/** Elsewhere: a directory handle is a checked path plus the identity it must still have. */
class FallbackDir extends HostDir {
  readonly #dev: bigint
  readonly #ino: bigint
  /** Current path (moved by this mount's renames) and whether this mount removed the directory. */
  readonly #where: DirPath
  readonly #ref: WeakRef<DirPath>
  readonly #paths: DirPaths
  /** The last stat that matched: what `stat()` reports once the directory is gone. */
  #last: fs.BigIntStats
  #closed = false

  constructor(mount: Mount, paths: DirPaths, realPath: string, st: fs.BigIntStats) {
    super(mount)
    this.#dev = st.dev
    this.#ino = st.ino
    this.#last = st
    this.#paths = paths
    const { rec, ref } = paths.add(realPath)
    this.#where = rec
    this.#ref = ref
  }

  /**
   * SECURITY: the handle's path must still be this directory (lstat: a symlink put in its place
   * fails). `NOENT` once this mount removed it (POSIX, as for an unlinked directory); `STALE`
   * when the host moved, removed or replaced it behind the mount's back: the handle cannot
   * follow it.
   */
  #verify(): fs.BigIntStats {
    if (this.#closed) throw new WasiError(Errno.BADF, 'directory handle is closed')
    const path = this.#where.path
    if (this.#where.gone) throw new WasiError(Errno.NOENT, `${path} was removed`)
    let st: fs.BigIntStats
    try {
      st = fs.lstatSync(path, BIG)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new WasiError(Errno.STALE, `${path} is gone`)
      throw wasiErrorFrom(err)
    }
    if (!st.isDirectory() || st.dev !== this.#dev || st.ino !== this.#ino) {
      throw new WasiError(Errno.STALE, `${path} was replaced`)
    }
    this.#last = st
    return st
  }

  protected enter(): void {
    this.#verify()
  }

  protected gone(): boolean {
    if (this.#closed) throw new WasiError(Errno.BADF, 'directory handle is closed')
    return this.#where.gone
  }

  protected settle(): void {
    this.#verify()
  }

  protected at(name: string): string {
    const path = this.#where.path
    return path.endsWith('/') ? path + name : `${path}/${name}`
  }

  protected self(): string {
    return this.#where.path
  }

  stat(): NodeStat {
    if (this.gone()) return { ...this.mount.nodeStat(this.#last), nlink: 0n }
    return this.mount.nodeStat(this.#verify())
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    const cur = this.#verify()
    assertTimeSpec(atim)
    assertTimeSpec(mtim)
    if (atim === undefined && mtim === undefined) return
    // lutimes: if the path was swapped for a symlink since the check, its target is untouched.
    const path = this.#where.path
    host(() => fs.lutimesSync(path, hostTime(atim, cur.atimeNs), hostTime(mtim, cur.mtimeNs)))
    this.mount.rememberTimes(
      cur,
      host(() => fs.lstatSync(path, BIG)),
      atim,
      mtim,
    )
  }

  openDir(name: string): DirHandle {
    const p = this.child(name)
    const st = host(() => fs.lstatSync(p, BIG))
    if (!st.isDirectory()) throw new WasiError(Errno.NOTDIR, p) // a symlink included: never followed
    this.#verify()
    return new FallbackDir(this.mount, this.#paths, p, st)
  }

  openFile(name: string, options: OpenFileOptions): FileHandle {
    const flags = fileFlags(options)
    for (let attempt = 0; attempt < FALLBACK_OPEN_ATTEMPTS; attempt++) {
      const p = this.child(name)
      let before: fs.BigIntStats | undefined
      try {
        before = fs.lstatSync(p, BIG)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !options.create) throw wasiErrorFrom(err)
      }
      // Where O_NOFOLLOW is missing (Windows) this check is what refuses a final symlink.
      if (before?.isSymbolicLink() && !(options.create && options.exclusive)) {
        throw new WasiError(Errno.LOOP, `symlink ${p}`)
      }
      const fd = host(() => fs.openSync(p, flags, 0o666))
      let ok = false
      try {
        const opened = fs.fstatSync(fd, BIG)
        // SECURITY: what was opened must be what the lookup saw (or, when just created, what the
        // name designates now), and the directory must still be this one.
        const seen = before ?? fs.lstatSync(p, BIG)
        this.#verify()
        if (sameNode(seen, opened)) {
          if (opened.isDirectory()) throw new WasiError(Errno.ISDIR, p)
          ok = true
          return new HostFile(this.mount, fd, filetypeOf(opened))
        }
      } catch (err) {
        throw wasiErrorFrom(err)
      } finally {
        if (!ok) closeQuietly(fd)
      }
    }
    throw new WasiError(Errno.STALE, `${this.#where.path}: file kept changing while being opened`)
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#paths.delete(this.#ref)
  }
}

/**
 * `/proc/<pid>/fd/` if it reaches the directory `fd` holds, on a kernel whose semantics we rely
 * on; else undefined. `<pid>` is what `/proc/self` names: the pid in the pid namespace of that
 * /proc, which may differ from `process.pid`'s. Spelling it out saves the kernel following the
 * `self` symlink on every lookup; that it is this very process is checked here (the same node as
 * `/proc/self`, and the fd reached through it is the directory `fd` holds). A pid is never
 * reused while its process lives.
 */
function procFdBase(fd: number): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    const pid = fs.readlinkSync('/proc/self')
    if (!/^[1-9][0-9]*$/.test(pid)) return undefined
    const base = `/proc/${pid}/fd/`
    const held = fs.fstatSync(fd, BIG)
    const viaLink = fs.statSync(`${base}${fd}`, BIG)
    const viaChild = fs.statSync(`${base}${fd}/.`, BIG)
    const self = fs.statSync('/proc/self', BIG)
    const byPid = fs.lstatSync(`/proc/${pid}`, BIG)
    const works = held.isDirectory() && sameNode(held, viaLink) && sameNode(held, viaChild) && sameNode(self, byPid)
    return works ? base : undefined
  } catch {
    return undefined
  }
}

function mountError(hostPath: string, message: string, cause?: unknown): Error {
  return new Error(`[wasi-host] cannot mount host directory ${hostPath}: ${message}`, { cause })
}

/**
 * Mounts the host directory `hostPath` as a `Filesystem`.
 *
 * `hostPath` is the host's trusted configuration: symlinks in it are followed once, here. From
 * then on every lookup is anchored to what was opened.
 *
 * @throws Error if `hostPath` is not an accessible directory, or `mode: 'proc'` is unavailable.
 * @example
 * const mount = createHostDirFs('/srv/data')
 * const root = mount.root()
 * const f = root.openFile('a.txt', { read: true, write: false, create: false, exclusive: false, truncate: false })
 */
export function createHostDirFs(hostPath: string, options: HostDirFsOptions = {}): HostDirFs {
  const mode = options.mode ?? 'auto'
  // Every write is a system call: small sequential ones are worth holding (write-behind.ts).
  const caps: FilesystemCaps = Object.freeze({ symlinks: true, hardLinks: true, hostVisible: true, writeBehind: true })

  if (mode !== 'fallback') {
    let rootFd: number
    try {
      rootFd = fs.openSync(hostPath, C.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    } catch (err) {
      throw mountError(hostPath, (err as Error).message, err)
    }
    const base = procFdBase(rootFd)
    if (base !== undefined) {
      const mount = new Mount()
      let fd = rootFd
      return {
        strategy: 'proc-fd',
        caps,
        root(): DirHandle {
          if (fd < 0) throw new WasiError(Errno.BADF, 'mount is closed')
          // Re-opening the magic link (without O_NOFOLLOW, which would refuse it) yields a new
          // fd on the very directory the root fd holds: each handle owns and closes its own.
          const own = fd
          return new ProcDir(
            mount,
            base,
            host(() => fs.openSync(`${base}${own}`, C.O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
          )
        },
        close(): void {
          if (fd < 0) return
          const own = fd
          fd = -1
          fs.closeSync(own)
        },
      }
    }
    fs.closeSync(rootFd)
    if (mode === 'proc') throw mountError(hostPath, '/proc/self/fd is not usable on this system')
  }

  let realPath: string
  let st: fs.BigIntStats
  try {
    realPath = fs.realpathSync(hostPath)
    st = fs.lstatSync(realPath, BIG)
  } catch (err) {
    throw mountError(hostPath, (err as Error).message, err)
  }
  if (!st.isDirectory()) throw mountError(hostPath, 'not a directory')
  const paths = new DirPaths()
  const mount = new Mount(paths)
  let closed = false
  return {
    strategy: 'fallback',
    caps,
    root(): DirHandle {
      if (closed) throw new WasiError(Errno.BADF, 'mount is closed')
      const dir = new FallbackDir(mount, paths, realPath, st)
      dir.stat() // fails STALE now, not at first use, if the mount point itself was replaced
      return dir
    },
    close(): void {
      closed = true
    },
  }
}
