/**
 * @module `withQuota(fs, quota)`: a view of a `Filesystem` that bounds the bytes and inodes a
 * guest can add to it (docs/security.md invariant 7), refusing with `DQUOT` before the backend
 * is asked. Conservative by construction: growth is charged against sizes it knows, and only its
 * own shrinks and removals give anything back.
 * SECURITY: the inner handles are never handed out, and two-handle calls accept only this
 * wrapper's own handles (`XDEV` otherwise). The accounting rule and its one residual case
 * (overlapping writable mounts): docs/internals.md, "Quotas".
 */
import { Errno, Filetype } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import { denial } from '../rights.js'
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
  wrapperCaps,
} from './filesystem.js'

/** What has been charged: a mutable counter, shared by every mount that should draw on one total. */
export interface QuotaUsage {
  bytes: number
  inodes: number
}

export interface Quota {
  /** Most bytes the usage may reach (see the module comment for what counts). Default: unlimited. */
  bytes?: number
  /** Most files, directories and symlinks the usage may reach. Default: unlimited. */
  inodes?: number
  /** The counter to charge; pass one object to several mounts for a shared total. Default: a new one. */
  usage?: QuotaUsage
  /** Named in a refusal's detail, to tell which of nested quotas refused (`MOUNT_QUOTA`). */
  scope?: string
}

/** The scope of a quota on one mount alone (inside a run's total): its refusals end with it in parentheses. */
export const MOUNT_QUOTA = "the mount's own limit"

/** A quota-wrapped `Filesystem`, with its counter and limits for reporting. */
export interface QuotaFilesystem extends Filesystem {
  readonly usage: QuotaUsage
  /** `Infinity` where no limit was given. */
  readonly limits: { readonly bytes: number; readonly inodes: number }
}

/**
 * What each hard link made through the wrapper costs in bytes: a stand-in for the directory entry
 * it adds, never less than one costs on ext4 (8 bytes of header plus a 255-byte name, rounded up).
 */
export const LINK_NAME_BYTES = 264

/** `off_t` is signed 64-bit: positions above it are `INVAL` on every POSIX system. */
const MAX_OFFSET = (1n << 63n) - 1n
/** Sizes are counted as numbers: beyond 2^53 no backend here stores a file (`FBIG`), and counts stay exact. */
const MAX_SIZE = BigInt(Number.MAX_SAFE_INTEGER)

/** A new, zeroed counter to share between mounts. */
export function createQuotaUsage(): QuotaUsage {
  return { bytes: 0, inodes: 0 }
}

function quotaExceeded(state: QuotaState, what: string): WasiError {
  return denial('quota', `disk quota exceeded: ${what}${state.scope !== undefined ? ` (${state.scope})` : ''}`)
}

function isNoent(e: unknown): boolean {
  return e instanceof WasiError && e.errno === Errno.NOENT
}

/** What the wrapper knows about one node of the inner backend. */
class NodeRecord {
  /** Bytes charged for this node's size (or symlink target) and not given back. */
  grown = 0
  /** The size the wrapper last set or observed; a bound it may use only while `trusted`. */
  size = 0
  /** `grown >= size` and `size` came from this wrapper: writes need no stat (see the module comment). */
  trusted = false
  /** Hard links made through this wrapper, each charged `LINK_NAME_BYTES`, not yet given back. */
  links = 0
  /** Open file handles of this wrapper on the node. */
  handles = 0
  /** Its last name is gone; the charges come back when `handles` reaches 0. */
  unlinked = false

  constructor(
    readonly ino: bigint,
    readonly filetype: Filetype,
    public created: boolean,
  ) {}

  /** Records that the node's real size is `size` now, and re-decides trust from it. */
  observe(size: number): void {
    this.size = size
    this.trusted = this.grown >= size
  }
}

/** A file handle's link to its record; set later for a handle opened read-only (`identify`). */
interface Binding {
  rec: NodeRecord | undefined
  readonly inner: FileHandle
  /** The node a still-unbound handle holds, once asked (it never changes for an open handle). */
  ino?: bigint
}

/** Per-wrapper state shared by every handle of one `withQuota` instance (and nothing else). */
class QuotaState {
  readonly usage: QuotaUsage
  readonly maxBytes: number
  readonly maxInodes: number
  readonly records = new Map<bigint, NodeRecord>()
  /** Open read-only handles whose node is not known yet: only a release decision needs it. */
  readonly anonymous = new Set<Binding>()
  readonly encoder = new TextEncoder()

  constructor(
    usage: QuotaUsage,
    maxBytes: number,
    maxInodes: number,
    readonly scope: string | undefined,
  ) {
    this.usage = usage
    this.maxBytes = maxBytes
    this.maxInodes = maxInodes
  }

  byteRoom(): number {
    return Math.max(0, this.maxBytes - this.usage.bytes)
  }

  inodeRoom(): number {
    return Math.max(0, this.maxInodes - this.usage.inodes)
  }

  chargeBytes(rec: NodeRecord | undefined, n: number): void {
    if (n <= 0) return
    this.usage.bytes += n
    if (rec !== undefined) rec.grown += n
  }

  /** Gives back `n` bytes of `rec`'s size charge, never more than it holds. */
  creditGrown(rec: NodeRecord, n: number): void {
    const back = Math.min(n, rec.grown)
    if (back <= 0) return
    rec.grown -= back
    this.usage.bytes = Math.max(0, this.usage.bytes - back)
  }

  /** The record for the node `st` describes, made if absent. */
  record(st: NodeStat, created: boolean): NodeRecord {
    let rec = this.records.get(st.ino)
    if (rec !== undefined && rec.filetype !== st.filetype) {
      // The inode number was reused for another node (a host file system does that) after the
      // old node was removed behind this wrapper's back: its charges stay (conservative).
      this.records.delete(st.ino)
      rec = undefined
    }
    if (rec === undefined) {
      rec = new NodeRecord(st.ino, st.filetype, created)
      this.records.set(st.ino, rec)
    } else if (created) {
      rec.created = true
    }
    return rec
  }

  /** After a name of the node `st` (read just before) was removed through this wrapper. */
  nameRemoved(st: NodeStat): void {
    const rec = this.records.get(st.ino)
    if (rec === undefined) return
    if (rec.filetype !== st.filetype) {
      this.records.delete(st.ino)
      return
    }
    if (st.filetype === Filetype.DIRECTORY || st.nlink <= 1n) {
      rec.unlinked = true
      // SECURITY: a read-only handle also keeps the bytes on disk: find which node each
      // unidentified handle holds before deciding that nothing holds this one.
      if (!this.#identifyAnonymous()) return // cannot tell: never give back (conservative)
      if (rec.handles === 0) this.release(rec)
    } else if (rec.links > 0) {
      rec.links--
      this.usage.bytes = Math.max(0, this.usage.bytes - LINK_NAME_BYTES)
    }
  }

  /** Binds every open read-only handle to its node's record, if any. False if one cannot be identified. */
  #identifyAnonymous(): boolean {
    let ok = true
    for (const b of this.anonymous) {
      if (b.ino === undefined) {
        try {
          b.ino = b.inner.stat().ino
        } catch {
          ok = false
          continue
        }
      }
      const rec = this.records.get(b.ino)
      if (rec === undefined) continue
      b.rec = rec
      rec.handles++
      this.anonymous.delete(b)
    }
    return ok
  }

  /** A handle on `rec` closed. */
  closed(rec: NodeRecord): void {
    rec.handles--
    if (rec.handles > 0) return
    if (rec.unlinked) this.release(rec)
    else if (!rec.created && rec.grown === 0 && rec.links === 0) this.#forget(rec)
  }

  #forget(rec: NodeRecord): void {
    // Only if it is still the record for that number (not one made after the number was reused).
    if (this.records.get(rec.ino) === rec) this.records.delete(rec.ino)
  }

  /** The node is gone: every charge it holds comes back. */
  release(rec: NodeRecord): void {
    const bytes = rec.grown + rec.links * LINK_NAME_BYTES
    rec.grown = 0
    rec.links = 0
    this.usage.bytes = Math.max(0, this.usage.bytes - bytes)
    if (rec.created) {
      rec.created = false
      this.usage.inodes = Math.max(0, this.usage.inodes - 1)
    }
    this.#forget(rec)
  }
}

class QuotaFile implements FileHandle {
  readonly kind = 'file' as const
  readonly #state: QuotaState
  readonly #b: Binding
  readonly #writable: boolean
  #closed = false

  constructor(state: QuotaState, binding: Binding, writable: boolean) {
    this.#state = state
    this.#b = binding
    this.#writable = writable
  }

  get filetype(): Filetype | undefined {
    return this.#b.inner.filetype
  }

  /** The size growth is measured from: the trusted bound, or a fresh stat when in doubt. */
  #sizeOf(rec: NodeRecord): number {
    if (rec.trusted) return rec.size
    const size = Number(this.#b.inner.stat().size)
    rec.observe(size)
    return size
  }

  /**
   * After a growing call from size `from` to `attemptedEnd` failed: the backend may have done
   * part of it (a short host write before an error), so what it may have added is charged, as
   * if it had succeeded that far. A call cannot make the file larger than `attemptedEnd`, so a
   * larger size is someone else's and was already covered: the charge stays within the room
   * that was checked before the call.
   */
  #afterFailure(rec: NodeRecord, from: number, attemptedEnd: number): void {
    if (attemptedEnd <= from) return
    let size: number
    try {
      size = Number(this.#b.inner.stat().size)
    } catch {
      // Cannot tell what happened: charge all that was attempted and stop trusting the size.
      this.#state.chargeBytes(rec, attemptedEnd - from)
      rec.trusted = false
      return
    }
    const added = Math.min(size, attemptedEnd) - from
    if (added > 0) this.#state.chargeBytes(rec, added)
    rec.observe(size)
  }

  /** The record to charge, or undefined to let the backend answer (a closed handle: BADF). */
  #writer(): NodeRecord | undefined {
    if (this.#closed) return undefined
    // SECURITY: refused here, not by the backend: a handle opened without write is never
    // accounted, so no backend may be asked to change a file through it.
    if (!this.#writable) throw new WasiError(Errno.BADF, 'handle not open for writing')
    return this.#b.rec
  }

  stat(): NodeStat {
    const st = this.#b.inner.stat()
    const rec = this.#b.rec
    // Free validation: a size someone else changed shows here and re-decides trust.
    if (rec !== undefined && !this.#closed) rec.observe(Number(st.size))
    return st
  }

  read(dst: Uint8Array, position: bigint): number {
    return this.#b.inner.read(dst, position)
  }

  write(src: Uint8Array, position: bigint): number {
    const rec = this.#writer()
    const inner = this.#b.inner
    // Zero bytes never grow a file; a closed handle is the backend's to refuse.
    if (rec === undefined || src.length === 0) return inner.write(src, position)
    if (position < 0n || position > MAX_OFFSET) throw new WasiError(Errno.INVAL, 'write position out of range')
    if (position > MAX_SIZE) throw new WasiError(Errno.FBIG, 'write position beyond 2^53')
    const state = this.#state
    const pos = Number(position)
    const size = this.#sizeOf(rec)
    let data = src
    let end = pos + src.length
    if (end > size) {
      const limit = size + state.byteRoom()
      if (end > limit) {
        // POSIX: write what fits (a short count); refuse only when nothing does.
        if (pos >= limit) throw quotaExceeded(state, 'write')
        data = src.subarray(0, limit - pos)
        end = limit
      }
    }
    let n: number
    try {
      n = inner.write(data, position)
    } catch (e) {
      this.#afterFailure(rec, size, end)
      throw e
    }
    const written = pos + n
    if (written > size) {
      state.chargeBytes(rec, written - size)
      rec.observe(written)
    } else {
      rec.observe(size)
    }
    return n
  }

  setSize(size: bigint): void {
    const rec = this.#writer()
    const inner = this.#b.inner
    if (rec === undefined) return inner.setSize(size)
    if (size < 0n) throw new WasiError(Errno.INVAL, 'negative size')
    if (size > MAX_SIZE) throw new WasiError(Errno.FBIG, 'size beyond 2^53')
    const state = this.#state
    const target = Number(size)
    const current = this.#sizeOf(rec)
    if (target > current && target - current > state.byteRoom()) throw quotaExceeded(state, 'setSize')
    try {
      inner.setSize(size)
    } catch (e) {
      this.#afterFailure(rec, current, target)
      throw e
    }
    if (target > current) state.chargeBytes(rec, target - current)
    else state.creditGrown(rec, current - target)
    rec.observe(target)
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    this.#b.inner.setTimes(atim, mtim)
  }

  allocate(offset: bigint, len: bigint): void {
    const rec = this.#writer()
    const inner = this.#b.inner
    if (rec === undefined) return inner.allocate(offset, len)
    if (offset < 0n || len < 0n || offset > MAX_OFFSET || len > MAX_OFFSET) {
      throw new WasiError(Errno.INVAL, 'offset or length out of range')
    }
    if (offset + len > MAX_SIZE) throw new WasiError(Errno.FBIG, 'allocation beyond 2^53')
    const state = this.#state
    const end = Number(offset + len)
    const current = this.#sizeOf(rec)
    if (end > current && end - current > state.byteRoom()) throw quotaExceeded(state, 'allocate')
    try {
      inner.allocate(offset, len)
    } catch (e) {
      this.#afterFailure(rec, current, end)
      throw e
    }
    if (end > current) {
      state.chargeBytes(rec, end - current)
      rec.observe(end)
    } else {
      rec.observe(current)
    }
  }

  sync(): void {
    this.#b.inner.sync()
  }

  datasync(): void {
    this.#b.inner.datasync()
  }

  close(): void {
    // A second close is the backend's to answer (BADF or nothing), without counting twice.
    if (this.#closed) return this.#b.inner.close()
    this.#closed = true
    const rec = this.#b.rec
    if (rec === undefined) this.#state.anonymous.delete(this.#b)
    else this.#state.closed(rec)
    this.#b.inner.close()
  }
}

class QuotaDir implements DirHandle {
  readonly kind = 'dir' as const
  readonly #state: QuotaState
  readonly #inner: DirHandle

  constructor(state: QuotaState, inner: DirHandle) {
    this.#state = state
    this.#inner = inner
  }

  /** The inner handle behind `other` if it belongs to this very wrapper, else `XDEV`. */
  #peer(other: DirHandle): DirHandle {
    // SECURITY: a brand check: another wrapper's handle (even over the same backend) would let
    // a rename or link move charged nodes out of this quota's sight, or unwrap foreign handles.
    if (!(#inner in other) || other.#state !== this.#state) {
      throw new WasiError(Errno.XDEV, 'directory belongs to another filesystem')
    }
    return other.#inner
  }

  /** Whether `name` exists here (for POSIX errno order: an existing name is EXIST, not DQUOT). */
  #exists(name: string): boolean {
    try {
      this.#inner.statChild(name)
      return true
    } catch (e) {
      if (isNoent(e)) return false
      throw e
    }
  }

  /** lstat of `name`, or undefined when absent. */
  #lstat(dir: DirHandle, name: string): NodeStat | undefined {
    try {
      return dir.statChild(name)
    } catch (e) {
      if (isNoent(e)) return undefined
      throw e
    }
  }

  stat(): NodeStat {
    return this.#inner.stat()
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    this.#inner.setTimes(atim, mtim)
  }

  statChild(name: string): NodeStat {
    return this.#inner.statChild(name)
  }

  openDir(name: string): DirHandle {
    return new QuotaDir(this.#state, this.#inner.openDir(name))
  }

  openFile(name: string, options: OpenFileOptions): FileHandle {
    assertComponent(name)
    const state = this.#state
    const inner = this.#inner
    // A fresh options object: the caller's cannot change between the checks and the call.
    const o: OpenFileOptions = {
      read: options.read,
      write: options.write,
      create: options.create,
      exclusive: options.exclusive,
      truncate: options.truncate,
    }
    let before: NodeStat | undefined
    let creating = false
    if (o.create || o.truncate) {
      before = this.#lstat(inner, name)
      creating = before === undefined && o.create
      if (creating && state.inodeRoom() < 1) throw quotaExceeded(state, 'no inode left to create a file')
    }
    const handle = inner.openFile(name, o)
    if (creating) state.usage.inodes++
    if (!o.write && !creating && !o.truncate) {
      // Read-only: no size can change through it, so no stat on this path; it is identified
      // only if a release decision needs to know what it holds open.
      const binding: Binding = { rec: undefined, inner: handle }
      state.anonymous.add(binding)
      return new QuotaFile(state, binding, false)
    }
    let rec: NodeRecord
    try {
      const st = handle.stat()
      rec = state.record(st, creating)
      if (o.truncate && before !== undefined && before.ino === st.ino) {
        // The open emptied the file: give back what this wrapper had charged for its content.
        state.creditGrown(rec, Number(before.size))
      }
      rec.observe(Number(st.size))
    } catch (e) {
      handle.close()
      throw e
    }
    rec.handles++
    return new QuotaFile(state, { rec, inner: handle }, o.write)
  }

  readlink(name: string): string {
    return this.#inner.readlink(name)
  }

  mkdir(name: string): void {
    assertComponent(name)
    const state = this.#state
    if (state.inodeRoom() < 1) {
      if (this.#exists(name)) throw new WasiError(Errno.EXIST, 'entry exists')
      throw quotaExceeded(state, 'no inode left for a directory')
    }
    this.#inner.mkdir(name)
    state.usage.inodes++
    const st = this.#lstat(this.#inner, name)
    // Not found again (the host removed it already): the charge stays, conservatively.
    if (st !== undefined) state.record(st, true)
  }

  symlink(target: string, name: string): void {
    assertComponent(name)
    // Refused here, as symlink(2) does, so that no backend can be asked to store them uncharged.
    if (target.length === 0) throw new WasiError(Errno.NOENT, 'empty symlink target')
    if (target.includes('\0')) throw new WasiError(Errno.INVAL, 'NUL in symlink target')
    const state = this.#state
    const bytes = state.encoder.encode(target).byteLength
    if (state.inodeRoom() < 1 || state.byteRoom() < bytes) {
      if (this.#exists(name)) throw new WasiError(Errno.EXIST, 'entry exists')
      throw quotaExceeded(state, 'no room for a symlink')
    }
    this.#inner.symlink(target, name)
    state.usage.inodes++
    const st = this.#lstat(this.#inner, name)
    state.chargeBytes(st === undefined ? undefined : state.record(st, true), bytes)
  }

  unlink(name: string): void {
    assertComponent(name)
    const st = this.#inner.statChild(name)
    this.#inner.unlink(name)
    this.#state.nameRemoved(st)
  }

  rmdir(name: string): void {
    assertComponent(name)
    const st = this.#inner.statChild(name)
    this.#inner.rmdir(name)
    this.#state.nameRemoved(st)
  }

  rename(name: string, toDir: DirHandle, toName: string): void {
    assertComponent(name)
    assertComponent(toName)
    const to = this.#peer(toDir)
    const src = this.#inner.statChild(name)
    let replaced: NodeStat | undefined
    try {
      replaced = to.statChild(toName)
    } catch (e) {
      // Absent (or unreadable: then the rename fails too, or nothing is given back).
      if (!(e instanceof WasiError)) throw e
    }
    this.#inner.rename(name, to, toName)
    // POSIX: two names of one node is a no-op; otherwise the replaced node lost a name.
    if (replaced !== undefined && replaced.ino !== src.ino) this.#state.nameRemoved(replaced)
  }

  link(name: string, toDir: DirHandle, toName: string): void {
    assertComponent(name)
    assertComponent(toName)
    const to = this.#peer(toDir)
    const state = this.#state
    const inner = this.#inner
    if (state.byteRoom() < LINK_NAME_BYTES) {
      // The errnos link(2) gives before it would need space.
      const src = inner.statChild(name)
      if (src.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.PERM, 'cannot hard-link a directory')
      if (this.#lstat(to, toName) !== undefined) throw new WasiError(Errno.EXIST, 'entry exists')
      throw quotaExceeded(state, 'no room for another name')
    }
    inner.link(name, to, toName)
    state.usage.bytes += LINK_NAME_BYTES
    const st = this.#lstat(inner, name)
    // Not found again: the charge stays and is never given back (conservative).
    if (st !== undefined) state.record(st, false).links++
  }

  setTimesChild(name: string, atim: TimeSpec, mtim: TimeSpec): void {
    this.#inner.setTimesChild(name, atim, mtim)
  }

  readdir(): readonly DirEntry[] {
    return this.#inner.readdir()
  }

  close(): void {
    this.#inner.close()
  }
}

function limitOf(value: number | undefined, what: string): number {
  if (value === undefined) return Infinity
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`[quota] ${what} must be a non-negative integer, got ${value}`)
  }
  return value
}

/**
 * Wraps `fs` so that what a guest adds through it is bounded by `quota` (see the module comment
 * for the accounting rule). Nothing is counted for what `fs` already holds.
 *
 * @throws RangeError if a limit is not a non-negative safe integer, or `usage` is malformed.
 * @example
 * const disk = createQuotaUsage()
 * const a = withQuota(createMemFs(), { bytes: 64 << 20, inodes: 10_000, usage: disk })
 * const b = withQuota(createHostDirFs('/srv/scratch'), { bytes: 64 << 20, usage: disk })
 * // a and b together never hold more than 64 MiB added by the guest.
 */
export function withQuota(fs: Filesystem, quota: Quota): QuotaFilesystem {
  const maxBytes = limitOf(quota.bytes, 'bytes')
  const maxInodes = limitOf(quota.inodes, 'inodes')
  const usage = quota.usage ?? createQuotaUsage()
  if (!Number.isSafeInteger(usage.bytes) || !Number.isSafeInteger(usage.inodes) || usage.bytes < 0 || usage.inodes < 0) {
    throw new RangeError('[quota] usage must hold non-negative integer bytes and inodes')
  }
  const state = new QuotaState(usage, maxBytes, maxInodes, quota.scope)
  // NOTE: every write is charged when it happens: a write held back would fail late (writeBehind).
  const caps: FilesystemCaps = wrapperCaps(fs.caps)
  return {
    caps,
    usage,
    limits: Object.freeze({ bytes: maxBytes, inodes: maxInodes }),
    root: () => new QuotaDir(state, fs.root()),
  }
}
