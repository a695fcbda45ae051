/**
 * @module MemFs: the in-memory `Filesystem` backend, with real inodes (nodes are objects and
 * handles references, so handles survive renames and unlinks). Every instance owns its inode
 * counter and clock. It must never resolve paths (names are single, checked components), follow
 * symlinks, or allocate without bound (file size is capped by `maxFileSize`; growth is sparse).
 * Timestamps (`atim` only changes through `setTimes`): docs/internals.md, "MemFs".
 */
import { Errno, Filetype } from '../abi/constants.js'
import { WasiError } from '../errors.js'
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
} from './filesystem.js'

export interface MemFsOptions {
  /** Clock for timestamps, in ns since the Unix epoch. Default: `Date.now()` in ns. */
  now?: () => bigint
  /**
   * Largest size of one file in bytes (default 2^32). Writes, `setSize` and `allocate` beyond it
   * fail with `FBIG`. Must be at most `Number.MAX_SAFE_INTEGER` so offsets convert exactly.
   */
  maxFileSize?: bigint | number
}

/** A symlink in a `TreeSpec`: `{ symlink: 'target' }` (an object with exactly this one string key). */
export interface SymlinkSpec {
  symlink: string
}

/**
 * A tree to seed a MemFs with: a string (UTF-8 file content), bytes (file content, copied), a
 * `{ symlink }` object, or a nested `TreeSpec` (a directory). Entries are created in key order.
 *
 * NOTE: an object whose only key is `symlink` with a string value is always read as a symlink,
 * so a directory containing just a file named `symlink` cannot be written this way; create it
 * through the `DirHandle` API instead.
 */
export interface TreeSpec {
  [name: string]: string | Uint8Array | SymlinkSpec | TreeSpec
}

/** `off_t` is signed 64-bit: positions above this are `INVAL` on every POSIX system. */
const MAX_OFFSET = (1n << 63n) - 1n
/** A truncate that leaves a buffer larger than this three-quarters empty gives the memory back. */
const SHRINK_THRESHOLD = 64 * 1024
/** Below this many bytes a plain loop beats creating a `subarray` view for the copy. */
const SMALL_COPY = 32
const NS_PER_MS = 1_000_000n
const DEFAULT_MAX_FILE_SIZE = 1n << 32n
const FS_CAPS: FilesystemCaps = Object.freeze({ symlinks: true, hardLinks: true })

/** State shared by every node and handle of one MemFs instance (and nothing else). */
class MemFsState {
  #nextIno = 1n
  readonly now: () => bigint
  readonly maxFileSize: number
  readonly maxFileSizeBig: bigint
  readonly encoder = new TextEncoder()

  constructor(options: MemFsOptions) {
    this.now = options.now ?? (() => BigInt(Date.now()) * NS_PER_MS)
    const max = BigInt(options.maxFileSize ?? DEFAULT_MAX_FILE_SIZE)
    if (max < 0n || max > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`[mem-fs] maxFileSize must be in [0, 2^53-1], got ${max}`)
    }
    this.maxFileSizeBig = max
    this.maxFileSize = Number(max)
  }

  ino(): bigint {
    return this.#nextIno++
  }
}

class FileNode {
  readonly filetype = Filetype.REGULAR_FILE
  nlink = 1
  /**
   * Capacity buffer. Invariant: every byte at index >= `size` is zero, and bytes past
   * `data.length` (up to `size`) are implicitly zero, which is what makes growth sparse.
   */
  data: Uint8Array = new Uint8Array(0)
  size = 0
  constructor(
    readonly ino: bigint,
    public atim: bigint,
    public mtim: bigint,
    public ctim: bigint,
  ) {}
}

class SymlinkNode {
  readonly filetype = Filetype.SYMBOLIC_LINK
  nlink = 1
  constructor(
    readonly ino: bigint,
    readonly target: string,
    /** lstat size of a symlink is the byte length of its target, as on POSIX. */
    readonly size: number,
    public atim: bigint,
    public mtim: bigint,
    public ctim: bigint,
  ) {}
}

class DirNode {
  readonly filetype = Filetype.DIRECTORY
  /** Insertion-ordered, so readdir is stable; a Map so names like `__proto__` are plain keys. */
  readonly #entries = new Map<string, MemNode>()
  /** The last listing, while no entry was added or removed since (see `DirHandle.readdir`). */
  #listing: readonly DirEntry[] | undefined = undefined
  /** Directories cannot be hard-linked, so the parent is unique; `null` for the root or once removed. */
  parent: DirNode | null
  subdirs = 0
  removed = false
  constructor(
    readonly ino: bigint,
    parent: DirNode | null,
    public atim: bigint,
    public mtim: bigint,
    public ctim: bigint,
  ) {
    this.parent = parent
  }

  /** Read-only: every change goes through `add`/`remove`, which drop the kept listing. */
  get entries(): ReadonlyMap<string, MemNode> {
    return this.#entries
  }

  add(name: string, node: MemNode): void {
    this.#entries.set(name, node)
    this.#listing = undefined
  }

  remove(name: string): void {
    this.#entries.delete(name)
    this.#listing = undefined
  }

  /** The entries, one frozen array for as long as they do not change (a node's type and ino never do). */
  listing(): readonly DirEntry[] {
    if (this.#listing !== undefined) return this.#listing
    const out: DirEntry[] = []
    this.#entries.forEach((node, name) => {
      out.push({ name, filetype: node.filetype, ino: node.ino })
    })
    return (this.#listing = Object.freeze(out))
  }
}

type MemNode = FileNode | SymlinkNode | DirNode

function nodeStat(node: MemNode): NodeStat {
  let nlink: number
  let size: number
  if (node instanceof DirNode) {
    // POSIX convention: `.` and the parent's entry, plus each subdirectory's `..`.
    nlink = node.removed ? 0 : 2 + node.subdirs
    size = 0
  } else {
    nlink = node.nlink
    size = node.size
  }
  return {
    filetype: node.filetype,
    ino: node.ino,
    nlink: BigInt(nlink),
    size: BigInt(size),
    atim: node.atim,
    mtim: node.mtim,
    ctim: node.ctim,
  }
}

function applyTimes(state: MemFsState, node: MemNode, atim: TimeSpec, mtim: TimeSpec): void {
  const now = state.now()
  const a = resolveTime(atim, now)
  const m = resolveTime(mtim, now)
  if (a !== undefined) node.atim = a
  if (m !== undefined) node.mtim = m
  node.ctim = now
}

function resolveTime(spec: TimeSpec, now: bigint): bigint | undefined {
  if (spec === undefined) return undefined
  if (spec === 'now') return now
  // WASI timestamps are u64; anything else did not come from a guest and is a caller bug.
  if (spec < 0n || spec >= 1n << 64n) throw new WasiError(Errno.INVAL, 'timestamp out of range')
  return spec
}

function touchDir(dir: DirNode, now: bigint): void {
  dir.mtim = now
  dir.ctim = now
}

function closedError(): WasiError {
  return new WasiError(Errno.BADF, 'handle is closed')
}

class MemFileHandle implements FileHandle {
  readonly kind = 'file' as const
  readonly filetype = Filetype.REGULAR_FILE
  readonly #state: MemFsState
  readonly #node: FileNode
  readonly #readable: boolean
  readonly #writable: boolean
  #closed = false

  constructor(state: MemFsState, node: FileNode, readable: boolean, writable: boolean) {
    this.#state = state
    this.#node = node
    this.#readable = readable
    this.#writable = writable
  }

  stat(): NodeStat {
    if (this.#closed) throw closedError()
    return nodeStat(this.#node)
  }

  read(dst: Uint8Array, position: bigint): number {
    if (this.#closed) throw closedError()
    if (!this.#readable) throw new WasiError(Errno.BADF, 'handle not open for reading')
    if (position < 0n || position > MAX_OFFSET) throw new WasiError(Errno.INVAL, 'position out of range')
    const node = this.#node
    // size <= maxFileSize, so this bigint comparison answers "past EOF" before any narrowing.
    if (position >= this.#state.maxFileSizeBig) return 0
    const pos = Number(position)
    const size = node.size
    if (pos >= size) return 0
    const n = Math.min(dst.length, size - pos)
    const data = node.data
    // Only a prefix may be materialised; the sparse rest reads as zeros.
    const stored = Math.max(0, Math.min(n, data.length - pos))
    if (stored < SMALL_COPY) {
      for (let i = 0; i < stored; i++) dst[i] = data[pos + i]!
    } else {
      dst.set(data.subarray(pos, pos + stored))
    }
    if (stored < n) dst.fill(0, stored, n)
    return n
  }

  write(src: Uint8Array, position: bigint): number {
    if (this.#closed) throw closedError()
    if (!this.#writable) throw new WasiError(Errno.BADF, 'handle not open for writing')
    if (position < 0n || position > MAX_OFFSET) throw new WasiError(Errno.INVAL, 'position out of range')
    const n = src.length
    // POSIX: a zero-length write has no effect, not even on timestamps.
    if (n === 0) return 0
    const state = this.#state
    if (position >= state.maxFileSizeBig) throw new WasiError(Errno.FBIG, 'write beyond the maximum file size')
    const pos = Number(position)
    // Like Linux against s_maxbytes: a write straddling the limit is shortened, the next one fails.
    const count = Math.min(n, state.maxFileSize - pos)
    const end = pos + count
    const node = this.#node
    if (end > node.data.length) grow(node, end, state.maxFileSize)
    if (count === n) node.data.set(src, pos)
    else node.data.set(src.subarray(0, count), pos)
    if (end > node.size) node.size = end
    const now = state.now()
    node.mtim = now
    node.ctim = now
    return count
  }

  setSize(size: bigint): void {
    if (this.#closed) throw closedError()
    if (!this.#writable) throw new WasiError(Errno.BADF, 'handle not open for writing')
    if (size < 0n || size > MAX_OFFSET) throw new WasiError(Errno.INVAL, 'size out of range')
    if (size > this.#state.maxFileSizeBig) throw new WasiError(Errno.FBIG, 'size beyond the maximum file size')
    resize(this.#node, Number(size))
    const now = this.#state.now()
    this.#node.mtim = now
    this.#node.ctim = now
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    if (this.#closed) throw closedError()
    // futimens needs ownership, not a writable descriptor: the host's rights check decides.
    applyTimes(this.#state, this.#node, atim, mtim)
  }

  allocate(offset: bigint, len: bigint): void {
    if (this.#closed) throw closedError()
    if (!this.#writable) throw new WasiError(Errno.BADF, 'handle not open for writing')
    // posix_fallocate: EINVAL for offset < 0 or len <= 0, EFBIG past the largest file.
    if (offset < 0n || len <= 0n || offset > MAX_OFFSET || len > MAX_OFFSET) {
      throw new WasiError(Errno.INVAL, 'offset or length out of range')
    }
    const end = offset + len
    if (end > this.#state.maxFileSizeBig) throw new WasiError(Errno.FBIG, 'allocation beyond the maximum file size')
    const node = this.#node
    const newSize = Number(end)
    // Sparse: the size grows now, memory only when bytes are written (see `FileNode.data`).
    if (newSize > node.size) {
      node.size = newSize
      const now = this.#state.now()
      node.mtim = now
      node.ctim = now
    }
  }

  sync(): void {
    if (this.#closed) throw closedError()
  }

  datasync(): void {
    if (this.#closed) throw closedError()
  }

  close(): void {
    if (this.#closed) throw closedError()
    this.#closed = true
  }
}

/** Grows the capacity to at least `needed`, doubling so that many small appends cost O(n) in total. */
function grow(node: FileNode, needed: number, max: number): void {
  const capacity = Math.min(Math.max(needed, node.data.length * 2, 64), Math.max(max, needed))
  let next: Uint8Array
  try {
    next = new Uint8Array(capacity)
  } catch {
    // Doubling may overshoot the engine's ArrayBuffer limit where the exact size still fits.
    // If even that fails, memory is exhausted: report a full disk (tmpfs does), never crash the host.
    try {
      next = new Uint8Array(needed)
    } catch {
      throw new WasiError(Errno.NOSPC, 'out of memory for file content')
    }
  }
  const keep = Math.min(node.size, node.data.length)
  if (keep > 0) next.set(node.data.subarray(0, keep))
  node.data = next
}

function resize(node: FileNode, size: number): void {
  if (size < node.size) {
    const data = node.data
    if (data.length > SHRINK_THRESHOLD && size < data.length / 4) {
      // Give memory back after a big truncate; slice() copies only what is kept.
      node.data = data.slice(0, size)
    } else {
      // Keep the invariant that bytes past `size` are zero, so a later grow reads zeros.
      data.fill(0, size, Math.min(node.size, data.length))
    }
  }
  node.size = size
}

class MemDirHandle implements DirHandle {
  readonly kind = 'dir' as const
  readonly #state: MemFsState
  readonly #node: DirNode
  #closed = false

  constructor(state: MemFsState, node: DirNode) {
    this.#state = state
    this.#node = node
  }

  #dir(): DirNode {
    if (this.#closed) throw closedError()
    return this.#node
  }

  /** The node behind `other` if it is a handle of this very instance, else `XDEV`. */
  #sameFs(other: DirHandle): DirNode {
    // SECURITY: a brand check, not duck typing: a foreign or wrapped handle (another MemFs,
    // a read-only view) must never be treated as ours, or a rename could cross domains.
    if (!(#node in other) || other.#state !== this.#state) {
      throw new WasiError(Errno.XDEV, 'directory belongs to another filesystem')
    }
    if (other.#closed) throw closedError()
    return other.#node
  }

  #child(name: string): MemNode {
    assertComponent(name)
    const node = this.#dir().entries.get(name)
    if (node === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    return node
  }

  /** Checks that `name` may be created here: the directory still exists and the name is free. */
  #creatable(dir: DirNode, name: string): void {
    // Linux gives ENOENT for creating inside a directory that has been removed.
    if (dir.removed) throw new WasiError(Errno.NOENT, 'directory has been removed')
    if (dir.entries.has(name)) throw new WasiError(Errno.EXIST, 'entry exists')
  }

  stat(): NodeStat {
    return nodeStat(this.#dir())
  }

  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    applyTimes(this.#state, this.#dir(), atim, mtim)
  }

  statChild(name: string): NodeStat {
    return nodeStat(this.#child(name))
  }

  openDir(name: string): DirHandle {
    const node = this.#child(name)
    if (!(node instanceof DirNode)) throw new WasiError(Errno.NOTDIR, 'not a directory')
    return new MemDirHandle(this.#state, node)
  }

  openFile(name: string, options: OpenFileOptions): FileHandle {
    assertComponent(name)
    const dir = this.#dir()
    let node = dir.entries.get(name)
    if (node === undefined) {
      if (!options.create) throw new WasiError(Errno.NOENT, 'no such entry')
      this.#creatable(dir, name)
      const now = this.#state.now()
      node = new FileNode(this.#state.ino(), now, now, now)
      dir.add(name, node)
      touchDir(dir, now)
    } else {
      if (options.create && options.exclusive) throw new WasiError(Errno.EXIST, 'entry exists')
      if (node instanceof DirNode) throw new WasiError(Errno.ISDIR, 'is a directory')
      // O_NOFOLLOW on the last component: a symlink is never opened through.
      if (node instanceof SymlinkNode) throw new WasiError(Errno.LOOP, 'is a symlink')
      if (options.truncate) {
        resize(node, 0)
        const now = this.#state.now()
        node.mtim = now
        node.ctim = now
      }
    }
    return new MemFileHandle(this.#state, node, options.read, options.write)
  }

  readlink(name: string): string {
    const node = this.#child(name)
    if (!(node instanceof SymlinkNode)) throw new WasiError(Errno.INVAL, 'not a symlink')
    return node.target
  }

  mkdir(name: string): void {
    assertComponent(name)
    const dir = this.#dir()
    this.#creatable(dir, name)
    const now = this.#state.now()
    dir.add(name, new DirNode(this.#state.ino(), dir, now, now, now))
    dir.subdirs++
    touchDir(dir, now)
  }

  symlink(target: string, name: string): void {
    assertComponent(name)
    // Same refusals as symlink(2): an empty target is ENOENT, and NUL cannot be stored.
    if (target.length === 0) throw new WasiError(Errno.NOENT, 'empty symlink target')
    if (target.includes('\0')) throw new WasiError(Errno.INVAL, 'NUL in symlink target')
    const dir = this.#dir()
    this.#creatable(dir, name)
    const now = this.#state.now()
    const size = this.#state.encoder.encode(target).length
    dir.add(name, new SymlinkNode(this.#state.ino(), target, size, now, now, now))
    touchDir(dir, now)
  }

  unlink(name: string): void {
    const node = this.#child(name)
    if (node instanceof DirNode) throw new WasiError(Errno.ISDIR, 'is a directory')
    const dir = this.#node
    dir.remove(name)
    const now = this.#state.now()
    node.nlink--
    node.ctim = now
    touchDir(dir, now)
  }

  rmdir(name: string): void {
    const node = this.#child(name)
    if (!(node instanceof DirNode)) throw new WasiError(Errno.NOTDIR, 'not a directory')
    if (node.entries.size > 0) throw new WasiError(Errno.NOTEMPTY, 'directory not empty')
    const dir = this.#node
    dir.remove(name)
    dir.subdirs--
    removeDir(node, this.#state.now())
    touchDir(dir, node.ctim)
  }

  rename(name: string, toDir: DirHandle, toName: string): void {
    assertComponent(name)
    assertComponent(toName)
    const from = this.#dir()
    const to = this.#sameFs(toDir)
    const node = from.entries.get(name)
    if (node === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (to.removed) throw new WasiError(Errno.NOENT, 'target directory has been removed')
    const replaced = to.entries.get(toName)
    // POSIX: if both names are links to the same node (including the very same entry), do nothing.
    if (replaced === node) return
    if (node instanceof DirNode) {
      for (let d: DirNode | null = to; d !== null; d = d.parent) {
        if (d === node) throw new WasiError(Errno.INVAL, 'cannot move a directory into itself')
      }
    }
    if (replaced !== undefined) {
      if (node instanceof DirNode) {
        if (!(replaced instanceof DirNode)) throw new WasiError(Errno.NOTDIR, 'target is not a directory')
        if (replaced.entries.size > 0) throw new WasiError(Errno.NOTEMPTY, 'target directory not empty')
      } else if (replaced instanceof DirNode) {
        throw new WasiError(Errno.ISDIR, 'target is a directory')
      }
    }
    const now = this.#state.now()
    if (replaced instanceof DirNode) {
      to.subdirs--
      removeDir(replaced, now)
    } else if (replaced !== undefined) {
      replaced.nlink--
      replaced.ctim = now
    }
    from.remove(name)
    to.add(toName, node)
    if (node instanceof DirNode) {
      from.subdirs--
      to.subdirs++
      node.parent = to
    }
    node.ctim = now
    touchDir(from, now)
    touchDir(to, now)
  }

  link(name: string, toDir: DirHandle, toName: string): void {
    assertComponent(name)
    assertComponent(toName)
    const from = this.#dir()
    const to = this.#sameFs(toDir)
    const node = from.entries.get(name)
    if (node === undefined) throw new WasiError(Errno.NOENT, 'no such entry')
    if (node instanceof DirNode) throw new WasiError(Errno.PERM, 'cannot hard-link a directory')
    this.#creatable(to, toName)
    const now = this.#state.now()
    to.add(toName, node)
    node.nlink++
    node.ctim = now
    touchDir(to, now)
  }

  setTimesChild(name: string, atim: TimeSpec, mtim: TimeSpec): void {
    applyTimes(this.#state, this.#child(name), atim, mtim)
  }

  readdir(): readonly DirEntry[] {
    return this.#dir().listing()
  }

  close(): void {
    if (this.#closed) throw closedError()
    this.#closed = true
  }
}

function removeDir(node: DirNode, now: bigint): void {
  node.removed = true
  node.parent = null
  node.ctim = now
}

/**
 * Creates an empty in-memory filesystem.
 *
 * @example
 * const fs = createMemFs({ now: () => 0n })
 * const root = fs.root()
 * root.openFile('a.txt', { read: true, write: true, create: true, exclusive: true, truncate: false })
 */
export function createMemFs(options: MemFsOptions = {}): Filesystem {
  const state = new MemFsState(options)
  const now = state.now()
  const rootNode = new DirNode(state.ino(), null, now, now, now)
  return {
    caps: FS_CAPS,
    root: () => new MemDirHandle(state, rootNode),
  }
}

/**
 * Creates a MemFs holding `tree` (see `TreeSpec`), for tests and for seeding from data.
 *
 * @throws WasiError INVAL for a name that is not a single component, FBIG for content larger
 *   than `maxFileSize`, NOENT for an empty symlink target.
 * @example
 * memFsFromTree({ 'a.txt': 'hi', sub: { 'b.bin': new Uint8Array([1, 2]) }, l: { symlink: 'a.txt' } })
 */
export function memFsFromTree(tree: TreeSpec, options: MemFsOptions = {}): Filesystem {
  const fs = createMemFs(options)
  const root = fs.root()
  try {
    seed(root, tree, new TextEncoder())
  } finally {
    root.close()
  }
  return fs
}

function seed(dir: DirHandle, tree: TreeSpec, encoder: TextEncoder): void {
  for (const name of Object.keys(tree)) {
    const spec = tree[name]!
    if (typeof spec === 'string' || spec instanceof Uint8Array) {
      const content = typeof spec === 'string' ? encoder.encode(spec) : spec
      const file = dir.openFile(name, { read: false, write: true, create: true, exclusive: true, truncate: false })
      try {
        // A short write means the content hit maxFileSize: refuse rather than seed a cut file.
        if (file.write(content, 0n) !== content.length) {
          throw new WasiError(Errno.FBIG, `content of ${JSON.stringify(name)} exceeds maxFileSize`)
        }
      } finally {
        file.close()
      }
    } else if (isSymlinkSpec(spec)) {
      dir.symlink(spec.symlink, name)
    } else {
      dir.mkdir(name)
      const sub = dir.openDir(name)
      try {
        seed(sub, spec, encoder)
      } finally {
        sub.close()
      }
    }
  }
}

function isSymlinkSpec(spec: SymlinkSpec | TreeSpec): spec is SymlinkSpec {
  const keys = Object.keys(spec)
  return keys.length === 1 && keys[0] === 'symlink' && typeof spec.symlink === 'string'
}
