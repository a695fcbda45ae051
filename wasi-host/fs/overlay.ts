/**
 * @module `createOverlayFs(lower)`: a copy-on-write `Filesystem`, like Linux overlayfs with an
 * in-memory upper layer. Reads come from the lower layer until a node changes; every change
 * happens in the upper layer; `changes()` lists the result (`wasi-host/node/overlay-apply.ts`
 * applies or exports it).
 * SECURITY: the lower `Filesystem` is never mutated (only read calls, with frozen read-only open
 * options), and two-handle calls accept only this overlay's own handles (`XDEV` otherwise).
 * How the layers combine (copy-up, whiteouts, opaque directories, inode numbers):
 * docs/internals.md, "Overlays".
 */
import { Errno, Filetype } from '../abi/constants.js'
import { HostInvariantError, WasiError } from '../errors.js'
import {
  CREATE_NEW,
  READ_ONLY,
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
import { createMemFs } from './mem-fs.js'
import { diffLayers, readFully, type LayeredDir, type OverlayChange } from './overlay-changes.js'

export type { OverlayChange } from './overlay-changes.js'

export interface OverlayFsOptions {
  /** Where changes go; it must be empty. Default: a new `createMemFs()`. */
  upper?: Filesystem
  /**
   * Where a lower file that was unlinked while open is copied when a handle must change it
   * (see `OverlayFile`). Default: a new `createMemFs()`. Give it the upper layer's quota so every
   * byte the overlay stores is charged.
   */
  scratch?: Filesystem
  /** Clock of the default in-memory upper layer (ignored when `upper` is given), in ns. */
  now?: () => bigint
}

/** An overlay mount: a `Filesystem` plus what the caller needs to inspect or keep the result. */
export interface OverlayFs extends Filesystem {
  /** The layer read through; never changed by the overlay. */
  readonly lower: Filesystem
  /** The layer holding every change (without whiteouts: see `changes()` for deletions). */
  readonly upper: Filesystem
  /** What differs between the merged view and the lower layer now, sorted by path. */
  changes(): OverlayChange[]
}

/** SECURITY: the only options the lower layer is ever opened with (read, nothing else). */
const LOWER_READ = READ_ONLY
const UPPER_READ: OpenFileOptions = LOWER_READ
const UPPER_NEW = CREATE_NEW
const SCRATCH_NEW: OpenFileOptions = Object.freeze({ read: true, write: true, create: true, exclusive: true, truncate: false })
const CHUNK = 64 * 1024

/** Where a merged entry comes from, with its lstat in that layer (raw inode number). */
interface Entry {
  layer: 'upper' | 'lower'
  st: NodeStat
}

function closedError(): WasiError {
  return new WasiError(Errno.BADF, 'handle is closed')
}

function cannotCopyUp(): WasiError {
  // Devices, FIFOs and sockets of a host lower layer cannot be recreated in the upper layer.
  return new WasiError(Errno.NOTSUP, 'cannot copy up a special file')
}

/** lstat of `name` in `dir`, or `undefined` if it does not exist. */
function tryStat(dir: DirHandle, name: string): NodeStat | undefined {
  try {
    return dir.statChild(name)
  } catch (err) {
    if (err instanceof WasiError && err.errno === Errno.NOENT) return undefined
    throw err
  }
}

/** Runs cleanup after a failure; the original error matters more than a cleanup error. */
function quietly(fn: () => void): void {
  try {
    fn()
  } catch {
    // The operation already failed; its error is the one reported.
  }
}

function copyOptions(o: OpenFileOptions): OpenFileOptions {
  // A fresh object: what reaches the upper backend cannot change after the checks here.
  return { read: o.read, write: o.write, create: o.create, exclusive: o.exclusive, truncate: o.truncate }
}

function isZero(buf: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[i] !== 0) return false
  return true
}

/** Copies `size` bytes; all-zero chunks are skipped, so a sparse lower file stays sparse above. */
function copyContent(src: FileHandle, dst: FileHandle, size: bigint): void {
  const buf = new Uint8Array(CHUNK)
  let pos = 0n
  while (pos < size) {
    const want = size - pos < BigInt(CHUNK) ? Number(size - pos) : CHUNK
    const n = readFully(src, buf.subarray(0, want), pos)
    if (n === 0) break
    if (!isZero(buf, n)) {
      let done = 0
      while (done < n) {
        const w = dst.write(buf.subarray(done, n), pos + BigInt(done))
        if (w <= 0) throw new WasiError(Errno.NOSPC, 'copy-up write made no progress')
        done += w
      }
    }
    pos += BigInt(n)
  }
  dst.setSize(pos)
}

/**
 * One directory of the merged tree. Directories with an upper directory are kept for the life
 * of the overlay (they hold the whiteouts); lower-only ones only while a handle needs them.
 * There is exactly one `MergedDir` per directory, so every handle on it sees a copy-up, and a
 * rename moves the object: handles follow their directory.
 */
class MergedDir implements LayeredDir {
  parent: MergedDir | null
  name: string
  readonly ino: bigint
  upper: DirHandle | undefined
  /** Lower entries at the same path show through (false once opaque). Never turns true again. */
  hasLower: boolean
  /** lstat of the lower directory when first seen: the times a copy-up gives the upper one. */
  readonly lowerStat: NodeStat | undefined
  whiteouts: Set<string> | undefined
  /** Child directories known to the overlay: every upper one, plus lower ones in use. */
  readonly children = new Map<string, MergedDir>()
  /** Open directory handles on it, and lower files read in place inside it. */
  refs = 0
  removed = false

  constructor(parent: MergedDir | null, name: string, ino: bigint, upper: DirHandle | undefined, lowerStat: NodeStat | undefined) {
    this.parent = parent
    this.name = name
    this.ino = ino
    this.upper = upper
    this.lowerStat = lowerStat
    this.hasLower = lowerStat !== undefined
  }

  hidesLower(name: string): boolean {
    return this.whiteouts?.has(name) === true
  }

  upperChild(name: string): MergedDir | undefined {
    return this.children.get(name)
  }
}

/** Everything one overlay instance shares between its handles (and nothing module-wide). */
class OverlayState {
  readonly lower: Filesystem
  readonly upper: Filesystem
  readonly root: MergedDir
  readonly #now: (() => bigint) | undefined
  readonly #scratchFs: Filesystem | undefined
  /** Upper inode -> overlay inode, for copied-up nodes (others are `2U+1`). */
  readonly #upperInos = new Map<bigint, bigint>()
  /** Lower inode -> handles reading that lower file in place. */
  readonly #readers = new Map<bigint, Set<OverlayFile>>()
  /** Where a file unlinked while read in place goes when its times are set (see `OverlayFile`). */
  #scratch: DirHandle | undefined
  #scratchCount = 0

  constructor(lower: Filesystem, upper: Filesystem, now: (() => bigint) | undefined, scratch?: Filesystem) {
    this.lower = lower
    this.upper = upper
    this.#now = now
    this.#scratchFs = scratch
    const upperRoot = upper.root()
    try {
      // Whiteouts live only in this object: a pre-filled upper would be half a state.
      if (upperRoot.readdir().length > 0) throw new Error('[overlay] the upper layer must start empty')
    } finally {
      upperRoot.close()
    }
    const lowerRoot = lower.root()
    let st: NodeStat
    try {
      st = lowerRoot.stat()
    } finally {
      lowerRoot.close()
    }
    this.root = new MergedDir(null, '', this.lowerIno(st.ino), undefined, st)
  }

  lowerIno(ino: bigint): bigint {
    return ino * 2n
  }

  upperIno(ino: bigint): bigint {
    return this.#upperInos.get(ino) ?? ino * 2n + 1n
  }

  #keepIno(upperIno: bigint, overlayIno: bigint): void {
    if (overlayIno !== upperIno * 2n + 1n) this.#upperInos.set(upperIno, overlayIno)
  }

  openRoot(): DirHandle {
    const root = this.root
    return new OverlayDir(this, root, root.hasLower ? this.lower.root() : undefined)
  }

  changes(): OverlayChange[] {
    const lowerRoot = this.lower.root()
    try {
      return diffLayers(this.root, lowerRoot)
    } finally {
      lowerRoot.close()
    }
  }

  /** The cached merged directory `name` of `dir`, or a new lower-only one for the lower dir `lowerStat`. */
  childOf(dir: MergedDir, name: string, lowerStat: NodeStat): MergedDir {
    const cached = dir.children.get(name)
    if (cached !== undefined) return cached
    const child = new MergedDir(dir, name, this.lowerIno(lowerStat.ino), undefined, lowerStat)
    dir.children.set(name, child)
    return child
  }

  /** Forgets lower-only directories nobody uses any more (they are re-created on demand). */
  prune(dir: MergedDir): void {
    let d: MergedDir | null = dir
    while (d !== null && d.parent !== null && !d.removed && d.refs === 0 && d.upper === undefined && d.children.size === 0) {
      const parent: MergedDir = d.parent
      if (parent.children.get(d.name) === d) parent.children.delete(d.name)
      d = parent
    }
  }

  release(dir: MergedDir): void {
    dir.refs--
    if (dir.refs > 0) return
    if (dir.removed) {
      // The last handle on a removed directory is gone: its upper handle can go too.
      const upper = dir.upper
      dir.upper = undefined
      upper?.close()
    } else {
      this.prune(dir)
    }
  }

  /**
   * Creates the upper directory of `dir` (and of its ancestors) with the lower directory's
   * times, leaving the parent's times as they were. @throws NOENT for a removed directory
   */
  copyUpDir(dir: MergedDir): DirHandle {
    if (dir.removed) throw new WasiError(Errno.NOENT, 'directory has been removed')
    if (dir.upper !== undefined) return dir.upper
    const lowerStat = dir.lowerStat
    if (lowerStat === undefined)
      throw new HostInvariantError('[overlay] invariant: a directory without an upper directory has no lower one')
    let upper: DirHandle
    if (dir.parent === null) {
      upper = this.upper.root()
      try {
        upper.setTimes(lowerStat.atim, lowerStat.mtim)
      } catch (err) {
        upper.close()
        throw err
      }
    } else {
      const parentUpper = this.copyUpDir(dir.parent)
      const name = dir.name
      upper = this.#invisibly(
        parentUpper,
        name,
        () => {
          parentUpper.mkdir(name)
          const h = parentUpper.openDir(name)
          try {
            h.setTimes(lowerStat.atim, lowerStat.mtim)
          } catch (err) {
            h.close()
            throw err
          }
          return h
        },
        () => parentUpper.rmdir(name),
      )
    }
    this.#keepIno(upper.stat().ino, dir.ino)
    dir.upper = upper
    return upper
  }

  /**
   * Copies the lower file `name` of `dir`, read through `src` with lstat `st`, into the upper
   * layer (content unless `withContent` is false, then times), and moves in-place readers to it.
   */
  copyUpFile(dir: MergedDir, name: string, src: FileHandle, st: NodeStat, withContent: boolean): void {
    const parentUpper = this.copyUpDir(dir)
    this.#invisibly(
      parentUpper,
      name,
      () => {
        const dst = parentUpper.openFile(name, UPPER_NEW)
        try {
          if (withContent) copyContent(src, dst, st.size)
          dst.setTimes(st.atim, st.mtim)
          if (st.nlink <= 1n) this.#keepIno(dst.stat().ino, this.lowerIno(st.ino))
        } finally {
          dst.close()
        }
      },
      () => parentUpper.unlink(name),
    )
    const readers = this.#readers.get(st.ino)
    if (readers !== undefined) for (const f of [...readers]) OverlayFile.retarget(f, dir, name, parentUpper)
  }

  /** Copies the lower symlink `name` of `dir` (read through `lowerDir`) into the upper layer. */
  copyUpSymlink(dir: MergedDir, name: string, lowerDir: DirHandle): void {
    const target = lowerDir.readlink(name)
    const st = lowerDir.statChild(name)
    const parentUpper = this.copyUpDir(dir)
    this.#invisibly(
      parentUpper,
      name,
      () => {
        parentUpper.symlink(target, name)
        parentUpper.setTimesChild(name, st.atim, st.mtim)
        if (st.nlink <= 1n) this.#keepIno(parentUpper.statChild(name).ino, this.lowerIno(st.ino))
      },
      () => parentUpper.unlink(name),
    )
  }

  /** Copies everything of `dir` that shows through from `lowerDir` up, recursively; `dir` becomes opaque. */
  copyUpTree(dir: MergedDir, lowerDir: DirHandle): void {
    const upper = this.copyUpDir(dir)
    for (const e of lowerDir.readdir()) {
      const name = e.name
      if (dir.hidesLower(name)) continue
      const above = tryStat(upper, name)
      if (above !== undefined) {
        const child = dir.children.get(name)
        if (above.filetype === Filetype.DIRECTORY && child?.hasLower === true) this.#copyUpSubdir(child, lowerDir, name)
        continue
      }
      const st = lowerDir.statChild(name)
      if (st.filetype === Filetype.REGULAR_FILE) {
        const src = lowerDir.openFile(name, LOWER_READ)
        try {
          this.copyUpFile(dir, name, src, st, true)
        } finally {
          src.close()
        }
      } else if (st.filetype === Filetype.SYMBOLIC_LINK) {
        this.copyUpSymlink(dir, name, lowerDir)
      } else if (st.filetype === Filetype.DIRECTORY) {
        this.#copyUpSubdir(this.childOf(dir, name, st), lowerDir, name)
      } else {
        throw cannotCopyUp()
      }
    }
    dir.hasLower = false
    dir.whiteouts = undefined
  }

  #copyUpSubdir(child: MergedDir, lowerParent: DirHandle, name: string): void {
    const lowerChild = lowerParent.openDir(name)
    try {
      this.copyUpTree(child, lowerChild)
    } finally {
      lowerChild.close()
    }
  }

  /**
   * Runs `make`, which creates `name` in `parentUpper` as part of a copy-up, and restores the
   * parent's times after it; on failure, `undo` removes what was created.
   */
  #invisibly<T>(parentUpper: DirHandle, name: string, make: () => T, undo: () => void): T {
    const saved = parentUpper.stat()
    if (tryStat(parentUpper, name) !== undefined) {
      throw new HostInvariantError(`[overlay] invariant: copy-up target ${JSON.stringify(name)} already exists in the upper layer`)
    }
    try {
      const result = make()
      parentUpper.setTimes(saved.atim, saved.mtim)
      return result
    } catch (err) {
      // `name` was absent before, so whatever is there now is this copy-up's partial work.
      if (existsQuietly(parentUpper, name)) quietly(undo)
      quietly(() => parentUpper.setTimes(saved.atim, saved.mtim))
      throw err
    }
  }

  /** Hides the lower entry `name` of `dir` (only meaningful while lower entries show through). */
  whiteout(dir: MergedDir, name: string): void {
    if (!dir.hasLower) return
    ;(dir.whiteouts ??= new Set()).add(name)
  }

  /** `dir` left the merged tree (rmdir, or replaced by a rename). */
  removeDir(dir: MergedDir): void {
    dir.removed = true
    dir.whiteouts = undefined
    const parent = dir.parent
    if (parent !== null && parent.children.get(dir.name) === dir) parent.children.delete(dir.name)
    if (dir.refs === 0) {
      const upper = dir.upper
      dir.upper = undefined
      upper?.close()
    }
  }

  /** `dir` is now the entry `name` of `to`. */
  moveDir(dir: MergedDir, to: MergedDir, name: string): void {
    const from = dir.parent!
    if (from.children.get(dir.name) === dir) from.children.delete(dir.name)
    dir.parent = to
    dir.name = name
    to.children.set(name, dir)
  }

  addReader(f: OverlayFile, lowerIno: bigint): void {
    let set = this.#readers.get(lowerIno)
    if (set === undefined) this.#readers.set(lowerIno, (set = new Set()))
    set.add(f)
  }

  removeReader(f: OverlayFile, lowerIno: bigint): void {
    const set = this.#readers.get(lowerIno)
    if (set === undefined) return
    set.delete(f)
    if (set.size === 0) this.#readers.delete(lowerIno)
  }

  /** The lower file `name` of `dir` was hidden: its in-place readers now hold an unlinked file. */
  detachReaders(dir: MergedDir, name: string, lowerIno: bigint): void {
    const set = this.#readers.get(lowerIno)
    if (set !== undefined) for (const f of set) OverlayFile.detach(f, dir, name)
  }

  /** A private in-memory directory for unlinked files that must become writable (see `OverlayFile`). */
  scratch(): { dir: DirHandle; name: string } {
    this.#scratch ??= (this.#scratchFs ?? createMemFs(this.#now === undefined ? {} : { now: this.#now })).root()
    return { dir: this.#scratch, name: `f${this.#scratchCount++}` }
  }
}

function existsQuietly(dir: DirHandle, name: string): boolean {
  try {
    return tryStat(dir, name) !== undefined
  } catch {
    return false
  }
}

/** Where a handle reading a lower file in place found it. */
interface InPlace {
  dir: MergedDir
  name: string
  lowerIno: bigint
  /** The name was removed from the merged view (whiteout) while the handle stayed open. */
  detached: boolean
}

class OverlayFile implements FileHandle {
  readonly kind = 'file' as const
  readonly #state: OverlayState
  #inner: FileHandle
  readonly #readable: boolean
  readonly #writable: boolean
  /** Fixed for the handle's life: copy-up keeps a node's number. */
  #ino: bigint
  /** Set while the handle reads a lower file in place (then `#inner` is a lower handle). */
  #inPlace: InPlace | undefined
  #closed = false

  private constructor(
    state: OverlayState,
    inner: FileHandle,
    readable: boolean,
    writable: boolean,
    ino: bigint,
    inPlace: InPlace | undefined,
  ) {
    this.#state = state
    this.#inner = inner
    this.#readable = readable
    this.#writable = writable
    this.#ino = ino
    this.#inPlace = inPlace
  }

  /** A handle on an upper file (already opened with the caller's options). */
  static onUpper(state: OverlayState, inner: FileHandle, o: OpenFileOptions): OverlayFile {
    let ino: bigint
    try {
      ino = state.upperIno(inner.stat().ino)
    } catch (err) {
      inner.close()
      throw err
    }
    return new OverlayFile(state, inner, o.read, o.write, ino, undefined)
  }

  /** A read-only handle on the lower file `name` of `dir`, read in place until it is copied up. */
  static onLower(state: OverlayState, inner: FileHandle, readable: boolean, dir: MergedDir, name: string, st: NodeStat): OverlayFile {
    const f = new OverlayFile(state, inner, readable, false, state.lowerIno(st.ino), { dir, name, lowerIno: st.ino, detached: false })
    dir.refs++
    state.addReader(f, st.ino)
    return f
  }

  /** After a copy-up of `name` in `dir`: a handle reading it in place switches to the upper copy. */
  static retarget(f: OverlayFile, dir: MergedDir, name: string, parentUpper: DirHandle): void {
    const at = f.#inPlace
    if (at === undefined || at.detached || at.dir !== dir || at.name !== name) return
    const next = parentUpper.openFile(name, UPPER_READ)
    const old = f.#inner
    f.#inner = next
    f.#ino = f.#state.upperIno(next.stat().ino)
    f.#leaveInPlace(at)
    old.close()
  }

  static detach(f: OverlayFile, dir: MergedDir, name: string): void {
    const at = f.#inPlace
    if (at !== undefined && at.dir === dir && at.name === name) at.detached = true
  }

  #leaveInPlace(at: InPlace): void {
    this.#inPlace = undefined
    this.#state.removeReader(this, at.lowerIno)
    this.#state.release(at.dir)
  }

  #check(): void {
    if (this.#closed) throw closedError()
  }

  /** The inner handle's: a copy-up (which may switch it) keeps the type. */
  get filetype(): Filetype | undefined {
    return this.#inner.filetype
  }

  stat(): NodeStat {
    this.#check()
    const st = this.#inner.stat()
    // A lower file whose name was removed above keeps its lower link count: show one fewer.
    const nlink = this.#inPlace?.detached === true ? (st.nlink > 0n ? st.nlink - 1n : 0n) : st.nlink
    return { ...st, ino: this.#ino, nlink }
  }

  read(dst: Uint8Array, position: bigint): number {
    this.#check()
    // The in-place lower handle is always opened readable; the caller's mode is enforced here.
    if (!this.#readable) throw new WasiError(Errno.BADF, 'handle not open for reading')
    return this.#inner.read(dst, position)
  }

  write(src: Uint8Array, position: bigint): number {
    this.#check()
    if (!this.#writable) throw new WasiError(Errno.BADF, 'handle not open for writing')
    return this.#inner.write(src, position)
  }

  setSize(size: bigint): void {
    this.#check()
    if (!this.#writable) throw new WasiError(Errno.BADF, 'handle not open for writing')
    this.#inner.setSize(size)
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    this.#check()
    if (this.#inPlace !== undefined) this.#copyUpSelf(this.#inPlace)
    // SECURITY: a change never reaches a lower handle, even if a copy-up failed to switch this one.
    if (this.#inPlace !== undefined) throw new HostInvariantError('[overlay] invariant: copy-up left the handle on the lower file')
    this.#inner.setTimes(atim, mtim)
  }

  allocate(offset: bigint, len: bigint): void {
    this.#check()
    if (!this.#writable) throw new WasiError(Errno.BADF, 'handle not open for writing')
    this.#inner.allocate(offset, len)
  }

  sync(): void {
    this.#check()
    this.#inner.sync()
  }

  datasync(): void {
    this.#check()
    this.#inner.datasync()
  }

  close(): void {
    this.#check()
    this.#closed = true
    if (this.#inPlace !== undefined) this.#leaveInPlace(this.#inPlace)
    this.#inner.close()
  }

  /** Set-times on a file read in place: the change must land in the upper layer, never below. */
  #copyUpSelf(at: InPlace): void {
    const src = this.#inner
    const st = src.stat()
    if (!at.detached) {
      // Copies up at its name; `retarget` then switches this handle (and any other) to the copy.
      this.#state.copyUpFile(at.dir, at.name, src, st, true)
      return
    }
    // Unlinked from the merged view: no name to copy up to. Like O_TMPFILE, the copy goes to a
    // private scratch filesystem and is unlinked there at once; only this handle reaches it.
    const { dir, name } = this.#state.scratch()
    const copy = dir.openFile(name, SCRATCH_NEW)
    try {
      copyContent(src, copy, st.size)
      copy.setTimes(st.atim, st.mtim)
      dir.unlink(name)
    } catch (err) {
      copy.close()
      quietly(() => dir.unlink(name))
      throw err
    }
    this.#inner = copy
    this.#leaveInPlace(at)
    src.close()
  }
}

class OverlayDir implements DirHandle {
  readonly kind = 'dir' as const
  readonly #state: OverlayState
  readonly #node: MergedDir
  /** This handle's own lower handle, when the directory drew on the lower layer at open time. */
  readonly #lower: DirHandle | undefined
  #closed = false

  constructor(state: OverlayState, node: MergedDir, lower: DirHandle | undefined) {
    this.#state = state
    this.#node = node
    this.#lower = lower
    node.refs++
  }

  #check(): MergedDir {
    if (this.#closed) throw closedError()
    return this.#node
  }

  /** The lower directory; only called while `hasLower`, which implies the handle opened one. */
  #lowerDir(): DirHandle {
    if (this.#lower === undefined) throw new HostInvariantError('[overlay] invariant: a merged directory handle without its lower handle')
    return this.#lower
  }

  /**
   * SECURITY: a brand check, not duck typing: only a handle of this very overlay instance can be
   * the other end of a rename or link; anything else (another overlay, the raw layers) is `XDEV`.
   */
  #peer(other: DirHandle): OverlayDir {
    if (!(#node in other) || other.#state !== this.#state) {
      throw new WasiError(Errno.XDEV, 'directory belongs to another filesystem')
    }
    if (other.#closed) throw closedError()
    return other
  }

  /** The merged entry `name`: the upper one if any, else a lower one that no whiteout hides. */
  #look(name: string): Entry | undefined {
    const dir = this.#node
    if (dir.removed) return undefined
    if (dir.upper !== undefined) {
      const st = tryStat(dir.upper, name)
      if (st !== undefined) return { layer: 'upper', st }
    }
    const st = this.#lowerVisible(name)
    return st === undefined ? undefined : { layer: 'lower', st }
  }

  /** The lower entry `name` if the lower layer shows through here and no whiteout hides it. */
  #lowerVisible(name: string): NodeStat | undefined {
    const dir = this.#node
    if (!dir.hasLower || dir.hidesLower(name)) return undefined
    return tryStat(this.#lowerDir(), name)
  }

  /** The stat the guest sees: overlay inode numbers, and `nlink` 1 for a merged directory. */
  #present(name: string, e: Entry): NodeStat {
    const st = e.st
    if (e.layer === 'lower') return { ...st, ino: this.#state.lowerIno(st.ino) }
    const child = st.filetype === Filetype.DIRECTORY ? this.#node.children.get(name) : undefined
    return { ...st, ino: this.#state.upperIno(st.ino), nlink: child?.hasLower === true ? 1n : st.nlink }
  }

  /** The merged directory behind the directory entry `e` named `name`. */
  #childDir(name: string, e: Entry): MergedDir {
    const cached = this.#node.children.get(name)
    if (cached !== undefined) return cached
    if (e.layer === 'upper') throw new HostInvariantError('[overlay] invariant: an upper directory has no merged node')
    return this.#state.childOf(this.#node, name, e.st)
  }

  /** Whether the merged directory `child` (the entry `name`) has no entries. */
  #isEmpty(child: MergedDir, name: string): boolean {
    if (child.upper !== undefined && child.upper.readdir().length > 0) return false
    if (!child.hasLower) return true
    const lower = this.#lowerDir().openDir(name)
    try {
      return lower.readdir().every((e) => child.hidesLower(e.name))
    } finally {
      lower.close()
    }
  }

  /** Copies the lower entry `e` named `name` up (a directory: itself, not its content). */
  #copyUp(name: string, e: Entry): void {
    const state = this.#state
    const dir = this.#node
    switch (e.st.filetype) {
      case Filetype.REGULAR_FILE: {
        const src = this.#lowerDir().openFile(name, LOWER_READ)
        try {
          state.copyUpFile(dir, name, src, e.st, true)
        } finally {
          src.close()
        }
        return
      }
      case Filetype.SYMBOLIC_LINK:
        state.copyUpSymlink(dir, name, this.#lowerDir())
        return
      case Filetype.DIRECTORY:
        state.copyUpDir(this.#childDir(name, e))
        return
      default:
        throw cannotCopyUp()
    }
  }

  /** Marks a change that only touched whiteouts (the upper backend did not see it) in the times. */
  #touch(upper: DirHandle): void {
    upper.setTimes(undefined, 'now')
  }

  stat(): NodeStat {
    const dir = this.#check()
    const st = dir.upper !== undefined ? dir.upper.stat() : this.#lowerDir().stat()
    const nlink = dir.removed ? 0n : dir.upper !== undefined && dir.hasLower ? 1n : st.nlink
    return { ...st, ino: dir.ino, nlink }
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    const dir = this.#check()
    // DIVERGENCE: a removed directory that never had an upper directory has nowhere to keep times.
    const upper = dir.removed ? dir.upper : this.#state.copyUpDir(dir)
    if (upper === undefined) throw new WasiError(Errno.NOENT, 'directory has been removed')
    upper.setTimes(atim, mtim)
  }

  statChild(name: string): NodeStat {
    assertComponent(name)
    this.#check()
    const e = this.#look(name)
    if (e === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    return this.#present(name, e)
  }

  openDir(name: string): DirHandle {
    assertComponent(name)
    this.#check()
    const e = this.#look(name)
    if (e === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (e.st.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'not a directory')
    const child = this.#childDir(name, e)
    let lower: DirHandle | undefined
    try {
      lower = child.hasLower ? this.#lowerDir().openDir(name) : undefined
    } catch (err) {
      this.#state.prune(child)
      throw err
    }
    return new OverlayDir(this.#state, child, lower)
  }

  openFile(name: string, options: OpenFileOptions): FileHandle {
    assertComponent(name)
    const dir = this.#check()
    const o = copyOptions(options)
    const state = this.#state
    const e = this.#look(name)
    if (e === undefined) {
      if (!o.create) throw new WasiError(Errno.NOENT, 'no such entry')
      const upper = state.copyUpDir(dir)
      return OverlayFile.onUpper(state, upper.openFile(name, o), o)
    }
    if (o.create && o.exclusive) throw new WasiError(Errno.EXIST, 'entry exists')
    const type = e.st.filetype
    if (type === Filetype.DIRECTORY) throw new WasiError(Errno.ISDIR, 'is a directory')
    // O_NOFOLLOW on the last component: a symlink is never opened through.
    if (type === Filetype.SYMBOLIC_LINK) throw new WasiError(Errno.LOOP, 'is a symlink')
    if (e.layer === 'upper') return OverlayFile.onUpper(state, dir.upper!.openFile(name, o), o)
    if (o.write || o.truncate) {
      if (type !== Filetype.REGULAR_FILE) throw cannotCopyUp()
      // Copy up at open time, so every write of this handle lands in the copy. A truncating open
      // copies no content: it would be thrown away at once.
      const src = this.#lowerDir().openFile(name, LOWER_READ)
      try {
        state.copyUpFile(dir, name, src, e.st, !o.truncate)
      } finally {
        src.close()
      }
      return OverlayFile.onUpper(state, dir.upper!.openFile(name, o), o)
    }
    return OverlayFile.onLower(state, this.#lowerDir().openFile(name, LOWER_READ), o.read, dir, name, e.st)
  }

  readlink(name: string): string {
    assertComponent(name)
    const dir = this.#check()
    const e = this.#look(name)
    if (e === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (e.st.filetype !== Filetype.SYMBOLIC_LINK) throw new WasiError(Errno.INVAL, 'not a symlink')
    return e.layer === 'upper' ? dir.upper!.readlink(name) : this.#lowerDir().readlink(name)
  }

  mkdir(name: string): void {
    assertComponent(name)
    const dir = this.#check()
    // Linux gives ENOENT for creating inside a directory that has been removed.
    if (dir.removed) throw new WasiError(Errno.NOENT, 'directory has been removed')
    if (this.#look(name) !== undefined) throw new WasiError(Errno.EXIST, 'entry exists')
    const upper = this.#state.copyUpDir(dir)
    upper.mkdir(name)
    const handle = upper.openDir(name)
    // Opaque (no lower part): a re-created directory never shows the old lower entries again.
    dir.children.set(name, new MergedDir(dir, name, this.#state.upperIno(handle.stat().ino), handle, undefined))
  }

  symlink(target: string, name: string): void {
    assertComponent(name)
    // Same refusals as symlink(2), before anything is copied up.
    if (target.length === 0) throw new WasiError(Errno.NOENT, 'empty symlink target')
    if (target.includes('\0')) throw new WasiError(Errno.INVAL, 'NUL in symlink target')
    const dir = this.#check()
    if (dir.removed) throw new WasiError(Errno.NOENT, 'directory has been removed')
    if (this.#look(name) !== undefined) throw new WasiError(Errno.EXIST, 'entry exists')
    this.#state.copyUpDir(dir).symlink(target, name)
  }

  unlink(name: string): void {
    assertComponent(name)
    const dir = this.#check()
    const e = this.#look(name)
    if (e === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (e.st.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.ISDIR, 'is a directory')
    const state = this.#state
    if (e.layer === 'upper') {
      // A copied-up file still has its original below: hide it too.
      const below = this.#lowerVisible(name)
      dir.upper!.unlink(name)
      if (below !== undefined) state.whiteout(dir, name)
      return
    }
    const upper = state.copyUpDir(dir)
    state.whiteout(dir, name)
    state.detachReaders(dir, name, e.st.ino)
    this.#touch(upper)
  }

  rmdir(name: string): void {
    assertComponent(name)
    const dir = this.#check()
    const e = this.#look(name)
    if (e === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (e.st.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'not a directory')
    const state = this.#state
    const child = this.#childDir(name, e)
    try {
      if (!this.#isEmpty(child, name)) throw new WasiError(Errno.NOTEMPTY, 'directory not empty')
      if (e.layer === 'upper') {
        const below = this.#lowerVisible(name)
        dir.upper!.rmdir(name)
        if (below !== undefined) state.whiteout(dir, name)
      } else {
        const upper = state.copyUpDir(dir)
        state.whiteout(dir, name)
        this.#touch(upper)
      }
      state.removeDir(child)
    } finally {
      state.prune(child)
    }
  }

  rename(name: string, toDir: DirHandle, toName: string): void {
    assertComponent(name)
    assertComponent(toName)
    const from = this.#check()
    const target = this.#peer(toDir)
    const to = target.#node
    const state = this.#state
    const src = this.#look(name)
    if (src === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (to.removed) throw new WasiError(Errno.NOENT, 'target directory has been removed')
    const dst = target.#look(toName)
    // POSIX: if both names are links to the same node (including the very same entry), do nothing.
    if (from === to && name === toName) return
    if (dst !== undefined && src.layer === dst.layer && src.st.ino === dst.st.ino && src.st.filetype !== Filetype.DIRECTORY) return
    const srcIsDir = src.st.filetype === Filetype.DIRECTORY
    const moved = srcIsDir ? this.#childDir(name, src) : undefined
    let replaced: MergedDir | undefined
    try {
      if (moved !== undefined) {
        for (let d: MergedDir | null = to; d !== null; d = d.parent) {
          if (d === moved) throw new WasiError(Errno.INVAL, 'cannot move a directory into itself')
        }
      }
      if (dst !== undefined) {
        const dstIsDir = dst.st.filetype === Filetype.DIRECTORY
        if (srcIsDir) {
          if (!dstIsDir) throw new WasiError(Errno.NOTDIR, 'target is not a directory')
          replaced = target.#childDir(toName, dst)
          if (!target.#isEmpty(replaced, toName)) throw new WasiError(Errno.NOTEMPTY, 'target directory not empty')
        } else if (dstIsDir) {
          throw new WasiError(Errno.ISDIR, 'target is a directory')
        }
      }
      // Lower entries that the names hide now, and must still hide afterwards.
      const belowSource = this.#lowerVisible(name)
      const belowTarget = target.#lowerVisible(toName)
      // Materialise the source in the upper layer: a directory leaving its lower origin takes
      // everything that showed through with it (and becomes opaque).
      if (moved !== undefined) {
        if (moved.hasLower) {
          const lower = this.#lowerDir().openDir(name)
          try {
            state.copyUpTree(moved, lower)
          } finally {
            lower.close()
          }
        } else {
          state.copyUpDir(moved)
        }
      } else if (src.layer === 'lower') {
        this.#copyUp(name, src)
      }
      const toUpper = state.copyUpDir(to)
      from.upper!.rename(name, toUpper, toName)
      if (belowTarget !== undefined) {
        state.whiteout(to, toName)
        state.detachReaders(to, toName, belowTarget.ino)
      }
      if (belowSource !== undefined) state.whiteout(from, name)
      if (replaced !== undefined) state.removeDir(replaced)
      if (moved !== undefined) state.moveDir(moved, to, toName)
    } finally {
      if (moved !== undefined) state.prune(moved)
      if (replaced !== undefined) state.prune(replaced)
    }
  }

  link(name: string, toDir: DirHandle, toName: string): void {
    assertComponent(name)
    assertComponent(toName)
    const from = this.#check()
    const target = this.#peer(toDir)
    const to = target.#node
    const src = this.#look(name)
    if (src === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (src.st.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.PERM, 'cannot hard-link a directory')
    if (to.removed) throw new WasiError(Errno.NOENT, 'target directory has been removed')
    if (target.#look(toName) !== undefined) throw new WasiError(Errno.EXIST, 'entry exists')
    // The link must be to the upper copy: the lower node can gain no name.
    if (src.layer === 'lower') this.#copyUp(name, src)
    const toUpper = this.#state.copyUpDir(to)
    from.upper!.link(name, toUpper, toName)
  }

  setTimesChild(name: string, atim: TimeSpec, mtim: TimeSpec): void {
    assertComponent(name)
    const dir = this.#check()
    const e = this.#look(name)
    if (e === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (e.layer === 'lower') this.#copyUp(name, e)
    dir.upper!.setTimesChild(name, atim, mtim)
  }

  readdir(): DirEntry[] {
    const dir = this.#check()
    if (dir.removed) return []
    const state = this.#state
    const out: DirEntry[] = []
    const above = new Set<string>()
    if (dir.upper !== undefined) {
      for (const e of dir.upper.readdir()) {
        above.add(e.name)
        out.push({ name: e.name, filetype: e.filetype, ino: state.upperIno(e.ino) })
      }
    }
    if (dir.hasLower) {
      for (const e of this.#lowerDir().readdir()) {
        if (above.has(e.name) || dir.hidesLower(e.name)) continue
        out.push({ name: e.name, filetype: e.filetype, ino: state.lowerIno(e.ino) })
      }
    }
    // Sorted, so the order does not depend on which layer an entry currently lives in.
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return out
  }

  close(): void {
    if (this.#closed) throw closedError()
    this.#closed = true
    try {
      this.#lower?.close()
    } finally {
      this.#state.release(this.#node)
    }
  }
}

/**
 * Creates a copy-on-write view of `lower`: the guest sees and changes the merged tree, and
 * every change lands in `options.upper` (default: a new in-memory filesystem).
 *
 * @throws Error if `options.upper` is not empty.
 * @example
 * const overlay = createOverlayFs(createHostDirFs('./site'))
 * // ... run a guest with { guestPath: '/www', fs: overlay } ...
 * for (const c of overlay.changes()) console.log(c.kind, c.type, c.path)
 */
export function createOverlayFs(lower: Filesystem, options: OverlayFsOptions = {}): OverlayFs {
  const upper = options.upper ?? createMemFs(options.now === undefined ? {} : { now: options.now })
  const state = new OverlayState(lower, upper, options.now, options.scratch)
  // What can be created is what the upper layer can hold.
  const caps: FilesystemCaps = wrapperCaps(upper.caps, { hostVisible: lower.caps.hostVisible === true || upper.caps.hostVisible === true })
  return {
    caps,
    lower,
    upper,
    root: () => state.openRoot(),
    changes: () => state.changes(),
  }
}
