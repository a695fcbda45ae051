/**
 * @module The path_* calls. Every one resolves through the one resolver (`fs/path-resolver.ts`)
 * and then acts on a single component with a non-following backend call (cap-std `via_parent`).
 *
 * SECURITY: the rights `path_open` grants are derived from effects, not from the flags the
 * guest asked for (wasmtime GHSA-2r75: `TRUNC` is a write). Two-handle calls (`path_link`,
 * `path_rename`) never cross mounts (`XDEV`), so no authority moves from a read-only mount into
 * a writable one (wasmtime ghsa-4ch3). The preopen's root has no name in any directory the
 * guest can reach, so it cannot be removed, renamed or replaced.
 */
import { Errno, Fdflags, FDFLAGS_ALL, Filetype, Lookupflags, Oflags, OFLAGS_ALL, Rights as R, rightsFromAbi } from '../abi/constants.js'
import { decodeFstflags, writeFilestat } from '../abi/structs.js'
import { WasiError } from '../errors.js'
import type { Descriptor, DirDescriptor } from '../fd-table.js'
import type { DirHandle, FileHandle, OpenFileOptions } from '../fs/filesystem.js'
import { resolve, type Resolution } from '../fs/path-resolver.js'
import type { HostState } from '../host-state.js'
import { denial, domainRights, maxRightsFor } from '../rights.js'

/** Reads a guest path: length checked before copying, strict UTF-8. */
function readPath(h: HostState, ptr: number, len: number): string {
  h.memory.check(ptr, len)
  if (len > h.limits.maxPathBytes) throw new WasiError(Errno.NAMETOOLONG, 'path too long')
  return h.memory.string(ptr, len)
}

function checkLookupflags(flags: number): boolean {
  if ((flags & ~Lookupflags.SYMLINK_FOLLOW) !== 0) throw new WasiError(Errno.INVAL, 'unknown lookupflags')
  return (flags & Lookupflags.SYMLINK_FOLLOW) !== 0
}

/** `'entry'`: act on the final entry itself, never following it, even with a trailing slash. */
function withResolution<T>(
  h: HostState,
  d: DirDescriptor,
  path: string,
  follow: boolean | 'entry',
  fn: (r: Resolution) => T,
  probe?: (dir: DirHandle, name: string) => boolean,
): T {
  const r = resolve(d.dir.handle, path, { follow: follow === true, keepLinkWithSlash: follow === 'entry', probe }, h.limits)
  try {
    return fn(r)
  } finally {
    r.release()
  }
}

/** Whether `target`, read from a link `depth` directories beneath the mount's start, could climb out of it. */
function escapesLexically(target: string, depth: number): boolean {
  if (target.startsWith('/')) return true
  let level = depth
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') {
      if (--level < 0) return true
    } else level++
  }
  return false
}

/** A target that climbs (`..`) or is absolute: its meaning depends on where the link sits. */
function climbs(target: string): boolean {
  return target.startsWith('/') || target.split('/').includes('..')
}

/**
 * SECURITY: on a host-visible mount, a link whose target climbs may not be moved or linked
 * elsewhere: moved shallower it could point out of the mount for host programs; moved deeper a
 * host-made one would reveal its target to the guest.
 */
function refuseMovingClimbingLink(d: DirDescriptor, r: Resolution): void {
  if (!d.mount.hostVisible || r.stat?.filetype !== Filetype.SYMBOLIC_LINK || r.name === undefined) return
  if (climbs(r.dir.readlink(r.name))) throw denial('escape', 'a link whose target climbs cannot be moved on a host-visible mount')
}

export function path_open(
  h: HostState,
  d: DirDescriptor,
  dirflags: number,
  pathPtr: number,
  pathLen: number,
  oflags: number,
  rightsBase: bigint,
  rightsInheriting: bigint,
  fdflags: number,
  fdPtr: number,
): number {
  const follow = checkLookupflags(dirflags)
  if ((oflags & ~OFLAGS_ALL) !== 0) throw new WasiError(Errno.INVAL, 'unknown oflags')
  if ((fdflags & ~FDFLAGS_ALL) !== 0) throw new WasiError(Errno.INVAL, 'unknown fdflags')
  const path = readPath(h, pathPtr, pathLen)
  h.memory.check(fdPtr, 4, 4)
  const requested = rightsFromAbi(rightsBase).rights
  const requestedInheriting = rightsFromAbi(rightsInheriting).rights
  const create = (oflags & Oflags.CREAT) !== 0
  const exclusive = (oflags & Oflags.EXCL) !== 0
  const truncate = (oflags & Oflags.TRUNC) !== 0
  const wantDir = (oflags & Oflags.DIRECTORY) !== 0
  // Effects, not requested bits, decide what is needed (GHSA-2r75).
  const writes = (requested & (R.FD_WRITE | R.FD_ALLOCATE | R.FD_FILESTAT_SET_SIZE)) !== 0 || (fdflags & Fdflags.APPEND) !== 0
  const mutates = create || truncate || writes
  const mount = d.mount
  if (mutates && mount.mode === 'ro') throw denial('read-only', 'write open on a read-only mount')
  if (create && (d.rightsBase & R.PATH_CREATE_FILE) === 0) throw denial('missing-right', 'CREAT needs PATH_CREATE_FILE')
  if (truncate && (d.rightsBase & R.PATH_FILESTAT_SET_SIZE) === 0) throw denial('missing-right', 'TRUNC needs PATH_FILESTAT_SET_SIZE')
  if ((requested & ~d.rightsInheriting & (R.FD_WRITE | R.FD_READ)) !== 0) {
    throw denial('missing-right', "requested read/write beyond the directory's inheriting rights")
  }
  const domain = domainRights(mount.mode)
  // A descriptor slot must exist before any effect (a create or a truncate) happens.
  h.fds.assertRoom()
  const fileBase = requested & d.rightsInheriting & maxRightsFor(Filetype.REGULAR_FILE) & domain
  const fileOptions: OpenFileOptions = {
    read: (fileBase & R.FD_READ) !== 0,
    // SECURITY: the backend opens for writing only when the descriptor will hold a right that
    // writes; a write right asked for but not granted (not in the directory's inheriting
    // rights) must not leave a writable host fd, a copy-up or a broken lease behind a read-only
    // descriptor. (`writes`, from the request, still decides the read-only-mount refusal.)
    write: (fileBase & (R.FD_WRITE | R.FD_ALLOCATE | R.FD_FILESTAT_SET_SIZE)) !== 0,
    create,
    exclusive,
    truncate,
  }
  const fileDescriptor = (handle: FileHandle): number => {
    const filetype = handle.filetype ?? handle.stat().filetype
    const child: Descriptor = {
      kind: 'file',
      filetype,
      handle,
      mount,
      position: 0n,
      rightsAtOpen: fileBase & maxRightsFor(filetype),
      rightsBase: fileBase & maxRightsFor(filetype),
      rightsInheriting: requestedInheriting & d.rightsInheriting & domain,
      fdflags,
    }
    return insertChild(h, child, fdPtr, () => handle.close())
  }
  // The common open of a file by name: the final component is opened straight away, as the
  // general path below would open it, instead of being looked up first (one host call fewer).
  // The backend never follows a symlink there, so whatever depends on what the name is (a
  // symlink to follow or refuse, a directory, nothing there, it exists) fails that open without
  // effect; any failure then takes the general path, which decides as if the probe had not run,
  // except the two answers it would give whatever the name is (a symlink, a directory, a file):
  // nothing there without O_CREAT is NOENT, something there with O_CREAT|O_EXCL is EXIST.
  // (Such an answer is kept and thrown once, below, rather than rethrown through the walk.)
  let probed: FileHandle | DirHandle | WasiError | undefined
  // The same for a directory asked for as one (`opendir`), when nothing it asks for could fail on
  // a directory: `openDir` never follows a symlink either, so it succeeds only on a directory
  // (settled), and a missing name is NOENT whatever else; anything else (a symlink to follow, a
  // file: NOTDIR) takes the general path.
  const probe = wantDir
    ? mutates
      ? undefined
      : (dir: DirHandle, name: string): boolean => {
          try {
            probed = dir.openDir(name)
            return true
          } catch (e) {
            if (!(e instanceof WasiError)) throw e
            if (e.errno === Errno.NOENT) {
              probed = e
              return true
            }
            return false
          }
        }
    : (dir: DirHandle, name: string): boolean => {
        try {
          probed = dir.openFile(name, fileOptions)
          return true
        } catch (e) {
          if (!(e instanceof WasiError)) throw e
          if ((e.errno === Errno.NOENT && !create) || (e.errno === Errno.EXIST && create && exclusive)) {
            probed = e
            return true
          }
          return false
        }
      }

  // POSIX: O_CREAT|O_EXCL never follows a symlink in the last component, dangling or not.
  return withResolution(
    h,
    d,
    path,
    follow && !(create && exclusive),
    (r) => {
      const st = r.stat
      if (r.probed) {
        if (probed instanceof WasiError) throw probed
        const got = probed!
        if (got.kind === 'file') return fileDescriptor(got)
      }
      if (r.probed || r.name === undefined || (st !== undefined && st.filetype === Filetype.DIRECTORY)) {
        // The target is a directory. (Neither refusal applies to a probed one: it is probed only when nothing mutates.)
        if (create && exclusive) throw new WasiError(Errno.EXIST, 'exists')
        if (writes || truncate || create) throw new WasiError(Errno.ISDIR, 'is a directory')
        const handle = r.probed ? (probed as DirHandle) : r.name === undefined ? r.dir : r.dir.openDir(r.name)
        const shared = r.name === undefined
        const dirRef = shared && handle === d.dir.handle ? d.dir : { handle, refs: 0 }
        if (shared && handle !== d.dir.handle) r.keep(handle)
        const child: DirDescriptor = {
          kind: 'dir',
          filetype: Filetype.DIRECTORY,
          dir: dirRef,
          mount,
          preopenPath: undefined,
          listing: undefined,
          depth: d.depth + r.depth + (r.name === undefined ? 0 : 1),
          rightsAtOpen: requested & d.rightsInheriting & maxRightsFor(Filetype.DIRECTORY) & domain,
          rightsBase: requested & d.rightsInheriting & maxRightsFor(Filetype.DIRECTORY) & domain,
          // Directories pass on generous inheriting rights; the mode is enforced at open
          // (docs/decisions.md, 4), so a write-open fails early with ROFS.
          rightsInheriting: requestedInheriting & d.rightsInheriting,
          fdflags,
        }
        return insertChild(h, child, fdPtr, () => {
          if (dirRef.refs === 0) handle.close()
        })
      }
      const name = r.name
      if (st !== undefined && st.filetype === Filetype.SYMBOLIC_LINK) {
        if (create && exclusive) throw new WasiError(Errno.EXIST, 'exists')
        throw new WasiError(wantDir ? Errno.NOTDIR : Errno.LOOP, 'symlink not followed')
      }
      if (wantDir) throw new WasiError(st === undefined && !create ? Errno.NOENT : Errno.NOTDIR, 'not a directory')
      if (r.trailingSlash)
        throw new WasiError(
          st === undefined && create ? Errno.ISDIR : st === undefined ? Errno.NOENT : Errno.NOTDIR,
          'trailing slash on a non-directory',
        )
      if (st === undefined && !create) throw new WasiError(Errno.NOENT, 'no such file')
      if (st !== undefined && create && exclusive) throw new WasiError(Errno.EXIST, 'exists')
      return fileDescriptor(r.dir.openFile(name, fileOptions))
    },
    probe,
  )
}

function insertChild(h: HostState, child: Descriptor, fdPtr: number, undo: () => void): number {
  let fd: number
  try {
    fd = h.fds.insert(child)
  } catch (e) {
    undo()
    throw e
  }
  if (child.kind === 'dir') child.dir.refs++
  h.memory.setU32(fdPtr, fd)
  return Errno.SUCCESS
}

export function path_filestat_get(h: HostState, d: DirDescriptor, flags: number, pathPtr: number, pathLen: number, bufPtr: number): number {
  const follow = checkLookupflags(flags)
  const path = readPath(h, pathPtr, pathLen)
  h.memory.check(bufPtr, 64, 8)
  const st = withResolution(h, d, path, follow, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'no such file')
    if (r.trailingSlash && r.stat.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'not a directory')
    // SECURITY: a link's size is its target's length; for a (host-made) link leading out of the
    // mount, whose target readlink refuses to show, even the length is not the guest's to know.
    if (r.stat.filetype === Filetype.SYMBOLIC_LINK && r.name !== undefined && escapesLexically(r.dir.readlink(r.name), d.depth + r.depth))
      return { ...r.stat, size: 0n }
    return r.stat
  })
  writeFilestat(h.memory, bufPtr, d.mount.dev, st)
  return Errno.SUCCESS
}

export function path_filestat_set_times(
  h: HostState,
  d: DirDescriptor,
  flags: number,
  pathPtr: number,
  pathLen: number,
  atim: bigint,
  mtim: bigint,
  fstflags: number,
): number {
  const follow = checkLookupflags(flags)
  const [a, m] = decodeFstflags(fstflags, atim, mtim)
  const path = readPath(h, pathPtr, pathLen)
  withResolution(h, d, path, follow, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'no such file')
    if (r.trailingSlash && r.stat.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'not a directory')
    if (r.name === undefined) r.dir.setTimes(a, m)
    else r.dir.setTimesChild(r.name, a, m)
  })
  return Errno.SUCCESS
}

export function path_create_directory(h: HostState, d: DirDescriptor, pathPtr: number, pathLen: number): number {
  const path = readPath(h, pathPtr, pathLen)
  withResolution(h, d, path, false, (r) => {
    if (r.name === undefined || r.stat !== undefined) throw new WasiError(Errno.EXIST, 'exists')
    r.dir.mkdir(r.name)
  })
  return Errno.SUCCESS
}

export function path_remove_directory(h: HostState, d: DirDescriptor, pathPtr: number, pathLen: number): number {
  const path = readPath(h, pathPtr, pathLen)
  withResolution(h, d, path, 'entry', (r) => {
    // "." or "x/..": the directory has no name we may remove; this also protects the preopen root.
    if (r.name === undefined) throw new WasiError(Errno.INVAL, 'cannot remove "." or ".."')
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'no such directory')
    if (r.stat.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'not a directory')
    r.dir.rmdir(r.name)
  })
  return Errno.SUCCESS
}

export function path_unlink_file(h: HostState, d: DirDescriptor, pathPtr: number, pathLen: number): number {
  const path = readPath(h, pathPtr, pathLen)
  withResolution(h, d, path, 'entry', (r) => {
    if (r.name === undefined) throw new WasiError(Errno.ISDIR, 'is a directory')
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'no such file')
    if (r.stat.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.ISDIR, 'is a directory')
    if (r.trailingSlash) throw new WasiError(Errno.NOTDIR, 'trailing slash on a non-directory')
    r.dir.unlink(r.name)
  })
  return Errno.SUCCESS
}

export function path_readlink(
  h: HostState,
  d: DirDescriptor,
  pathPtr: number,
  pathLen: number,
  bufPtr: number,
  bufLen: number,
  bufusedPtr: number,
): number {
  const path = readPath(h, pathPtr, pathLen)
  h.memory.check(bufPtr, bufLen)
  h.memory.check(bufusedPtr, 4, 4)
  const target = withResolution(h, d, path, false, (r) => {
    if (r.name === undefined || r.stat === undefined) throw new WasiError(r.stat === undefined ? Errno.NOENT : Errno.INVAL, 'not a symlink')
    if (r.stat.filetype !== Filetype.SYMBOLIC_LINK) throw new WasiError(Errno.INVAL, 'not a symlink')
    const t = r.dir.readlink(r.name)
    // SECURITY: a link that leads out of the mount (host-made) would reveal a host path.
    if (escapesLexically(t, d.depth + r.depth)) throw denial('escape', 'symlink target leads out of the capability')
    return t
  })
  const bytes = new TextEncoder().encode(target)
  // POSIX readlink truncates silently to the buffer.
  const n = Math.min(bytes.byteLength, bufLen)
  h.memory.write(bufPtr, bytes.subarray(0, n))
  h.memory.setU32(bufusedPtr, n)
  return Errno.SUCCESS
}

export function path_symlink(
  h: HostState,
  oldPathPtr: number,
  oldPathLen: number,
  d: DirDescriptor,
  newPathPtr: number,
  newPathLen: number,
): number {
  const target = readPath(h, oldPathPtr, oldPathLen)
  const path = readPath(h, newPathPtr, newPathLen)
  if (target.length === 0) throw new WasiError(Errno.NOENT, 'empty target')
  withResolution(h, d, path, 'entry', (r) => {
    if (r.trailingSlash && r.stat !== undefined && r.stat.filetype !== Filetype.DIRECTORY) {
      throw new WasiError(Errno.NOTDIR, 'trailing slash on a non-directory')
    }
    if (r.name === undefined || r.stat !== undefined) throw new WasiError(Errno.EXIST, 'exists')
    if (r.trailingSlash) throw new WasiError(Errno.NOENT, 'trailing slash on a new link name')
    // SECURITY: refuse links that could only ever point out of the mount: they can never be
    // followed here, and on a host directory they would be a trap left for the host's user.
    if (escapesLexically(target, d.depth + r.depth)) throw denial('escape', 'symlink target leads out of the capability')
    if (d.mount.hostVisible && climbs(target)) throw denial('escape', 'symlinks on a host-visible mount may not climb with ".."')
    r.dir.symlink(target, r.name)
  })
  return Errno.SUCCESS
}

function twoHandleCheck(a: DirDescriptor, b: Descriptor): DirDescriptor {
  if (b.kind !== 'dir') throw denial('not-a-directory-fd', 'target is not a directory')
  // SECURITY (ghsa-4ch3): never move a node between mounts, whatever the two modes are.
  if (b.mount !== a.mount) throw denial('cross-domain', 'across mounts')
  return b
}

export function path_link(
  h: HostState,
  d: DirDescriptor,
  oldFlags: number,
  oldPathPtr: number,
  oldPathLen: number,
  target: Descriptor,
  newPathPtr: number,
  newPathLen: number,
): number {
  const follow = checkLookupflags(oldFlags)
  const oldPath = readPath(h, oldPathPtr, oldPathLen)
  const newPath = readPath(h, newPathPtr, newPathLen)
  const td = twoHandleCheck(d, target)
  withResolution(h, d, oldPath, follow, (src) => {
    if (src.name === undefined) throw new WasiError(Errno.PERM, 'cannot link a directory')
    if (src.stat === undefined) throw new WasiError(Errno.NOENT, 'no such file')
    if (src.stat.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.PERM, 'cannot link a directory')
    if (src.trailingSlash) throw new WasiError(Errno.NOTDIR, 'trailing slash on a non-directory')
    refuseMovingClimbingLink(d, src)
    withResolution(h, td, newPath, false, (dst) => {
      if (dst.name === undefined || dst.stat !== undefined) throw new WasiError(Errno.EXIST, 'exists')
      if (dst.trailingSlash) throw new WasiError(Errno.NOENT, 'trailing slash on a new file name')
      src.dir.link(src.name!, dst.dir, dst.name)
    })
  })
  return Errno.SUCCESS
}

export function path_rename(
  h: HostState,
  d: DirDescriptor,
  oldPathPtr: number,
  oldPathLen: number,
  target: Descriptor,
  newPathPtr: number,
  newPathLen: number,
): number {
  const oldPath = readPath(h, oldPathPtr, oldPathLen)
  const newPath = readPath(h, newPathPtr, newPathLen)
  const td = twoHandleCheck(d, target)
  withResolution(h, d, oldPath, 'entry', (src) => {
    if (src.name === undefined) throw new WasiError(Errno.BUSY, 'cannot rename "." or ".."')
    if (src.stat === undefined) throw new WasiError(Errno.NOENT, 'no such file')
    const srcIsDir = src.stat.filetype === Filetype.DIRECTORY
    if (src.trailingSlash && !srcIsDir) throw new WasiError(Errno.NOTDIR, 'trailing slash on a non-directory')
    refuseMovingClimbingLink(d, src)
    withResolution(h, td, newPath, 'entry', (dst) => {
      // SECURITY: renaming onto "." or ".." would replace a directory the guest holds (the root).
      if (dst.name === undefined) throw new WasiError(Errno.BUSY, 'cannot replace "." or ".."')
      if (dst.trailingSlash && !srcIsDir) throw new WasiError(Errno.NOTDIR, 'trailing slash on a non-directory')
      src.dir.rename(src.name!, dst.dir, dst.name)
    })
  })
  return Errno.SUCCESS
}
