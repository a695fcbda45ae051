/**
 * @module The `Filesystem` backend interface: node-level operations on handles.
 *
 * SECURITY: backends never see a multi-component path. Every `name` passed to a `DirHandle`
 * method is one validated component: non-empty, no `/`, no NUL, not `.` or `..`
 * (see `assertComponent`). Path walking, `..` and symlink expansion live once, in
 * `path-resolver.ts`, above every backend. No method here follows a symlink in its last
 * component: `openFile`/`openDir` on a symlink fail with `LOOP`/`NOTDIR`, `statChild` is lstat.
 *
 * Errors are thrown as `WasiError(errno)`.
 * Timestamps are nanoseconds since the Unix epoch as `bigint`.
 */
import { Errno, type Filetype } from '../abi/constants.js'
import { WasiError } from '../errors.js'

export interface NodeStat {
  filetype: Filetype
  /** Backend-local identity of the node, stable while it exists; the host maps it to its own numbering. */
  ino: bigint
  nlink: bigint
  size: bigint
  atim: bigint
  mtim: bigint
  ctim: bigint
}

export interface DirEntry {
  readonly name: string
  readonly filetype: Filetype
  readonly ino: bigint
}

export interface OpenFileOptions {
  read: boolean
  write: boolean
  /** Create if absent (`O_CREAT`). */
  create: boolean
  /** Fail with `EXIST` if present (`O_EXCL`, only with `create`). */
  exclusive: boolean
  /** Truncate to zero on open (`O_TRUNC`); only asked together with `write` rights checked by the host. */
  truncate: boolean
}

/** Open for reading only: no write, create, exclusive or truncate (frozen; shared by every reader). */
export const READ_ONLY: OpenFileOptions = Object.freeze({ read: true, write: false, create: false, exclusive: false, truncate: false })

/** Create a new file for writing only, failing with `EXIST` if the name is taken (frozen). */
export const CREATE_NEW: OpenFileOptions = Object.freeze({ read: false, write: true, create: true, exclusive: true, truncate: false })

/** Time to set: a value in ns, `'now'`, or `undefined` to leave unchanged. */
export type TimeSpec = bigint | 'now' | undefined

export interface FileHandle {
  readonly kind: 'file'
  /**
   * The type of the open node, as `stat().filetype` would say; fixed for the handle's life.
   * Optional (`path_open` then asks `stat()`), but saves a stat per open where the backend knows.
   */
  readonly filetype?: Filetype
  stat(): NodeStat
  /** Reads into `dst` from `position`; returns bytes read (0 at end of file). */
  read(dst: Uint8Array, position: bigint): number
  /** Writes `src` at `position`; returns bytes written. */
  write(src: Uint8Array, position: bigint): number
  setSize(size: bigint): void
  setTimes(atim: TimeSpec, mtim: TimeSpec): void
  /** Ensures `[offset, offset+len)` is allocated (grows the file if needed, never shrinks). */
  allocate(offset: bigint, len: bigint): void
  sync(): void
  datasync(): void
  close(): void
}

export interface DirHandle {
  readonly kind: 'dir'
  stat(): NodeStat
  setTimes(atim: TimeSpec, mtim: TimeSpec): void
  /** lstat of one child. @throws WasiError NOENT */
  statChild(name: string): NodeStat
  /** Opens a child directory (no follow). @throws NOENT, NOTDIR (also for a symlink) */
  openDir(name: string): DirHandle
  /** Opens or creates a child file (no follow). @throws NOENT, EXIST, ISDIR, LOOP (symlink) */
  openFile(name: string, options: OpenFileOptions): FileHandle
  /** The target of a child symlink, as stored. @throws NOENT, INVAL (not a symlink) */
  readlink(name: string): string
  /** @throws EXIST */
  mkdir(name: string): void
  /** Creates a symlink `name` whose content is `target`, stored as given. @throws EXIST */
  symlink(target: string, name: string): void
  /** Removes a non-directory. @throws NOENT, ISDIR */
  unlink(name: string): void
  /** Removes an empty directory. @throws NOENT, NOTDIR, NOTEMPTY */
  rmdir(name: string): void
  /**
   * Renames `name` to `toName` in `toDir` (POSIX rename semantics: replaces a file, or an empty
   * directory with a directory). @throws XDEV if `toDir` belongs to another backend instance.
   */
  rename(name: string, toDir: DirHandle, toName: string): void
  /** Hard-links the non-directory `name` as `toName` in `toDir` (no follow). @throws XDEV, PERM (directory), EXIST */
  link(name: string, toDir: DirHandle, toName: string): void
  /** Sets the times of a child without following it. */
  setTimesChild(name: string, atim: TimeSpec, mtim: TimeSpec): void
  /**
   * The entries, without `.` and `..`, in a stable order for an unchanged directory. A backend
   * may hand out the very same (frozen) array again while the directory is unchanged, and only
   * then: callers never modify it, and `fd_readdir` reuses what it derived from it.
   */
  readdir(): readonly DirEntry[]
  close(): void
}

export interface FilesystemCaps {
  symlinks: boolean
  hardLinks: boolean
  /**
   * The tree is (or may become, through an overlay's apply) visible to programs outside the
   * sandbox: links the guest creates here must not climb with `..` (see `PreopenSpec.hostVisible`).
   */
  hostVisible?: boolean
  /**
   * Each `FileHandle.write` costs far more than copying a few bytes (a system call), so the host
   * may hold small sequential writes and hand them over in one call (`write-behind.ts`): a write
   * then reaches the backend later, and its failure is reported at a later call. Only a backend
   * declares it, for itself: a wrapper that must see (or account for, or refuse) every write
   * when it happens, such as a quota or an overlay, must not pass it on.
   */
  writeBehind?: boolean
}

/**
 * The caps a wrapper passes on from the backend it wraps: all but `writeBehind`, since a
 * wrapper's own checks (a quota, read-only refusals, an overlay's copy-ups) belong to each write.
 */
export function wrapperCaps(inner: FilesystemCaps, changes: Partial<FilesystemCaps> = {}): FilesystemCaps {
  const { writeBehind: _, ...passed } = inner
  return Object.freeze({ ...passed, ...changes })
}

/** A mounted tree: the root handle and what the backend can do. */
export interface Filesystem {
  readonly caps: FilesystemCaps
  /** A new handle on the root directory; the caller closes it. */
  root(): DirHandle
}

/**
 * SECURITY: the one check that a string is a single path component, applied by backends on
 * every name they receive, as a second line behind the resolver.
 */
export function assertComponent(name: string): void {
  if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new WasiError(Errno.INVAL, `not a single path component: ${JSON.stringify(name)}`)
  }
}
