/**
 * @module The fd_* calls. The dispatcher has already looked the descriptor up, checked that it
 * is of a kind the call accepts and that it holds the rights `SYSCALL_RIGHTS` names; what is
 * left here is effect-derived checks and the work.
 *
 * NOTE: every output pointer is checked before the first side effect, so a fault never leaves
 * half-done work (bun#34468 class).
 */
import { Advice, Errno, errnoName, Fdflags, FDFLAGS_ALL, Filetype, Preopentype, Whence, rightsFromAbi } from '../abi/constants.js'
import { decodeFstflags, layoutDirents, setSelfIno, writeFdstat, writeFilestat, type DirentListing } from '../abi/structs.js'
import { encodeUtf8 } from '../abi/guest-memory.js'
import { WasiError } from '../errors.js'
import {
  discardWriter,
  releaseDescriptor,
  type Descriptor,
  type DirDescriptor,
  type FileDescriptor,
  type StreamWriter,
} from '../fd-table.js'
import type { DirEntry, NodeStat } from '../fs/filesystem.js'
import type { HostState } from '../host-state.js'
import { readSocket, writeSocket } from './sock.js'
import { checkedIovecSnapshot, checkIovecs } from './iovecs.js'

const MAX_FILE_OFFSET = (1n << 63n) - 1n

const STREAM_STAT: NodeStat = Object.freeze({
  filetype: Filetype.CHARACTER_DEVICE,
  ino: 0n,
  nlink: 1n,
  size: 0n,
  atim: 0n,
  mtim: 0n,
  ctim: 0n,
})

/** The descriptor's metadata, whatever its kind. */
export function statDescriptor(d: Descriptor): NodeStat {
  if (d.kind === 'file') return d.handle.stat()
  if (d.kind === 'dir') return d.dir.handle.stat()
  if (d.kind === 'socket') return SOCKET_STAT
  return d.filetype === STREAM_STAT.filetype ? STREAM_STAT : { ...STREAM_STAT, filetype: d.filetype }
}

const SOCKET_STAT: NodeStat = Object.freeze({ ...STREAM_STAT, filetype: Filetype.SOCKET_STREAM })

export function devOf(d: Descriptor): bigint {
  return d.kind === 'stream' || d.kind === 'socket' ? 0n : d.mount.dev
}

function writeFile(h: HostState, d: FileDescriptor, iovs: number, iovsLen: number, at: bigint | undefined): number {
  const m = h.memory
  const dv = m.dataView
  const bytes = m.bytes
  let pos = at ?? ((d.fdflags & Fdflags.APPEND) !== 0 ? d.handle.stat().size : d.position)
  let total = 0
  for (let i = 0; i < iovsLen; i++) {
    const p = dv.getUint32(iovs + i * 8, true)
    const l = dv.getUint32(iovs + i * 8 + 4, true)
    if (l === 0) continue
    let n: number
    try {
      n = d.handle.write(bytes.subarray(p, p + l), pos)
    } catch (e) {
      // POSIX: once some bytes are written, a later failure (a quota, a full disk) makes a
      // short write; the guest learns of the error at its next call. A refusal is still one.
      if (total > 0 && e instanceof WasiError) {
        if (e.denial !== undefined)
          h.denials.record({
            call: at === undefined ? 'fd_write' : 'fd_pwrite',
            kind: e.denial,
            errno: errnoName(e.errno),
            detail: `${e.detail ?? e.message} (a short write)`,
            mount: d.mount.guestPath,
            mode: d.mount.mode,
          })
        break
      }
      throw e
    }
    pos += BigInt(n)
    total += n
    if (n < l) break
  }
  if (at === undefined) d.position = pos
  if ((d.fdflags & (Fdflags.SYNC | Fdflags.DSYNC)) !== 0 && total > 0) d.handle.datasync()
  return total
}

/** Reads into the iovecs (a snapshot: `checkedIovecSnapshot`). */
function readFile(h: HostState, d: FileDescriptor, vecs: Uint32Array, iovsLen: number, at: bigint | undefined): number {
  const bytes = h.memory.bytes
  let pos = at ?? d.position
  let total = 0
  for (let i = 0; i < iovsLen; i++) {
    const p = vecs[i * 2]!
    const l = vecs[i * 2 + 1]!
    if (l === 0) continue
    const n = d.handle.read(bytes.subarray(p, p + l), pos)
    pos += BigInt(n)
    total += n
    if (n < l) break
  }
  if (at === undefined) d.position = pos
  return total
}

export function fd_write(h: HostState, d: Descriptor, iovs: number, iovsLen: number, nwrittenPtr: number): number {
  const m = h.memory
  if (d.kind === 'socket') {
    m.check(nwrittenPtr, 4, 4)
    // Held file bytes first, as for a stream: whoever reads the socket may look at the file.
    if (h.writeBehind.pending !== null) h.writeBehind.flush()
    if (h.heldOutput?.pending === true) h.heldOutput.flush()
    m.setU32(nwrittenPtr, writeSocket(h, d, iovs, iovsLen))
    return Errno.SUCCESS
  }
  const length = checkIovecs(h, iovs, iovsLen)
  m.check(nwrittenPtr, 4, 4)
  const wb = h.writeBehind
  let total: number
  if (d.kind === 'stream') {
    // Held file bytes first: whoever reads the stream may look at the file.
    if (wb.pending !== null) wb.flush()
    // A stream takes every buffer whole (or throws: a limit, a closed reader).
    const write = d.write!
    if (write !== discardWriter) {
      const dv = m.dataView
      const bytes = m.bytes
      for (let i = 0; i < iovsLen; i++) {
        const p = dv.getUint32(iovs + i * 8, true)
        const l = dv.getUint32(iovs + i * 8 + 4, true)
        if (l !== 0) write(bytes.subarray(p, p + l))
      }
    }
    total = length
  } else {
    // Held stdio bytes go out before a file write: whoever reads the file may look at stdout.
    if (h.heldOutput?.pending === true) h.heldOutput.flush()
    if (wb.hold(m, d as FileDescriptor, iovs, iovsLen, length)) {
      total = length
    } else {
      wb.flush()
      reportDeferredError(h, d as FileDescriptor)
      total = writeFile(h, d as FileDescriptor, iovs, iovsLen, undefined)
    }
  }
  h.stats.bytesWritten += total
  if (total >= 64) h.chargeWork(total)
  m.dataView.setUint32(nwrittenPtr, total, true)
  return Errno.SUCCESS
}

/** A held write to `d` failed after its call returned: this call reports it (write-behind.ts). */
function reportDeferredError(h: HostState, d: FileDescriptor): void {
  const e = h.writeBehind.takeError(d)
  if (e !== undefined) throw e
}

export function fd_read(h: HostState, d: Descriptor, iovs: number, iovsLen: number, nreadPtr: number): number {
  const m = h.memory
  if (d.kind === 'socket') {
    m.check(nreadPtr, 4, 4)
    m.setU32(nreadPtr, readSocket(h, d, iovs, iovsLen))
    return Errno.SUCCESS
  }
  const vecs = checkedIovecSnapshot(h, iovs, iovsLen)
  m.check(nreadPtr, 4, 4)
  let total: number
  if (d.kind === 'stream') {
    total = 0
    for (let i = 0; i < iovsLen; i++) {
      const p = vecs[i * 2]!
      const l = vecs[i * 2 + 1]!
      if (l === 0) continue
      const n = d.read!(m.bytes.subarray(p, p + l))
      total += n
      if (n < l) break
    }
  } else {
    total = readFile(h, d as FileDescriptor, vecs, iovsLen, undefined)
  }
  h.stats.bytesRead += total
  if (total >= 64) h.chargeWork(total)
  m.dataView.setUint32(nreadPtr, total, true)
  return Errno.SUCCESS
}

export function fd_pwrite(h: HostState, d: FileDescriptor, iovs: number, iovsLen: number, offset: bigint, nwrittenPtr: number): number {
  checkIovecs(h, iovs, iovsLen)
  h.memory.check(nwrittenPtr, 4, 4)
  if (offset > MAX_FILE_OFFSET) throw new WasiError(Errno.INVAL, 'offset too large')
  const total = writeFile(h, d, iovs, iovsLen, offset)
  h.stats.bytesWritten += total
  if (total >= 64) h.chargeWork(total)
  h.memory.setU32(nwrittenPtr, total)
  return Errno.SUCCESS
}

export function fd_pread(h: HostState, d: FileDescriptor, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number): number {
  const vecs = checkedIovecSnapshot(h, iovs, iovsLen)
  h.memory.check(nreadPtr, 4, 4)
  if (offset > MAX_FILE_OFFSET) throw new WasiError(Errno.INVAL, 'offset too large')
  const total = readFile(h, d, vecs, iovsLen, offset)
  h.stats.bytesRead += total
  if (total >= 64) h.chargeWork(total)
  h.memory.setU32(nreadPtr, total)
  return Errno.SUCCESS
}

export function fd_seek(h: HostState, d: FileDescriptor, offset: bigint, whence: number, newOffsetPtr: number): number {
  h.memory.check(newOffsetPtr, 8, 8)
  let base: bigint
  switch (whence) {
    case Whence.SET:
      base = 0n
      break
    case Whence.CUR:
      base = d.position
      break
    case Whence.END:
      base = d.handle.stat().size
      break
    default:
      throw new WasiError(Errno.INVAL, 'bad whence')
  }
  const next = base + offset
  if (next < 0n) throw new WasiError(Errno.INVAL, 'negative offset')
  if (next > MAX_FILE_OFFSET) throw new WasiError(Errno.OVERFLOW, 'offset overflow')
  d.position = next
  h.memory.setU64(newOffsetPtr, next)
  return Errno.SUCCESS
}

export function fd_tell(h: HostState, d: FileDescriptor, offsetPtr: number): number {
  h.memory.check(offsetPtr, 8, 8)
  h.memory.setU64(offsetPtr, d.position)
  return Errno.SUCCESS
}

export function fd_close(h: HostState, fd: number): number {
  const d = h.fds.take(fd)
  if (d === undefined) return Errno.BADF
  releaseDescriptor(d)
  // Closed all the same, as on Linux, where close reports a write-back error too.
  return d.kind === 'file' ? (h.writeBehind.takeError(d)?.errno ?? Errno.SUCCESS) : Errno.SUCCESS
}

export function fd_renumber(h: HostState, from: number, to: number): number {
  const src = h.fds.get(from)
  if (src === undefined) return Errno.BADF
  // DIVERGENCE(uvwasi): a free target number is allowed, as dup2 allows it (yosys moves stdout
  // onto a closed number), but only below the descriptor limit, so the table stays bounded.
  if (to >= h.fds.maxFds) return Errno.BADF
  if (from === to) return Errno.SUCCESS
  const dst = h.fds.take(to)
  if (dst !== undefined) {
    releaseDescriptor(dst)
    // dup2 closes silently: a failure `dst` still had to report becomes a warning instead.
    if (dst.kind === 'file') h.writeBehind.forget(dst)
  }
  h.fds.take(from)
  h.fds.place(to, src)
  return Errno.SUCCESS
}

export function fd_fdstat_get(h: HostState, d: Descriptor, ptr: number): number {
  writeFdstat(h.memory, ptr, d.filetype, d.fdflags, d.rightsBase, d.rightsInheriting)
  return Errno.SUCCESS
}

export function fd_fdstat_set_flags(_h: HostState, d: Descriptor, flags: number): number {
  if ((flags & ~FDFLAGS_ALL) !== 0) throw new WasiError(Errno.INVAL, 'unknown fdflags')
  d.fdflags = flags
  return Errno.SUCCESS
}

export function fd_fdstat_set_rights(_h: HostState, d: Descriptor, base: bigint, inheriting: bigint): number {
  const b = rightsFromAbi(base)
  const i = rightsFromAbi(inheriting)
  // SECURITY: rights only shrink (wasmtime#7051): any bit not already held is refused.
  if (b.unknown || i.unknown || (b.rights & ~d.rightsBase) !== 0 || (i.rights & ~d.rightsInheriting) !== 0) {
    return Errno.NOTCAPABLE
  }
  d.rightsBase = b.rights
  d.rightsInheriting = i.rights
  return Errno.SUCCESS
}

export function fd_filestat_get(h: HostState, d: Descriptor, ptr: number): number {
  h.memory.check(ptr, 64, 8)
  writeFilestat(h.memory, ptr, devOf(d), statDescriptor(d))
  return Errno.SUCCESS
}

export function fd_filestat_set_size(_h: HostState, d: FileDescriptor, size: bigint): number {
  if (size > MAX_FILE_OFFSET) throw new WasiError(Errno.FBIG, 'size too large')
  d.handle.setSize(size)
  return Errno.SUCCESS
}

export function fd_filestat_set_times(_h: HostState, d: FileDescriptor | DirDescriptor, atim: bigint, mtim: bigint, flags: number): number {
  const [a, m] = decodeFstflags(flags, atim, mtim)
  if (d.kind === 'file') d.handle.setTimes(a, m)
  else d.dir.handle.setTimes(a, m)
  return Errno.SUCCESS
}

export function fd_advise(_h: HostState, _d: FileDescriptor, offset: bigint, len: bigint, advice: number): number {
  if (advice > Advice.NOREUSE) throw new WasiError(Errno.INVAL, 'bad advice')
  if (offset + len > MAX_FILE_OFFSET) throw new WasiError(Errno.INVAL, 'range overflow')
  // Advice is a hint; every backend is free to ignore it.
  return Errno.SUCCESS
}

export function fd_allocate(_h: HostState, d: FileDescriptor, offset: bigint, len: bigint): number {
  if (len === 0n) throw new WasiError(Errno.INVAL, 'zero length')
  if (offset + len > MAX_FILE_OFFSET) throw new WasiError(Errno.FBIG, 'range too large')
  d.handle.allocate(offset, len)
  return Errno.SUCCESS
}

export function fd_sync(h: HostState, d: FileDescriptor | DirDescriptor): number {
  if (d.kind === 'file') {
    reportDeferredError(h, d)
    d.handle.sync()
  }
  return Errno.SUCCESS
}

export function fd_datasync(h: HostState, d: FileDescriptor | DirDescriptor): number {
  if (d.kind === 'file') {
    reportDeferredError(h, d)
    d.handle.datasync()
  }
  return Errno.SUCCESS
}

export function fd_prestat_get(h: HostState, d: Descriptor, ptr: number): number {
  if (d.kind !== 'dir' || d.preopenPath === undefined) return Errno.BADF
  const m = h.memory
  m.check(ptr, 8, 4)
  m.dataView.setUint32(ptr, Preopentype.DIR, true)
  m.dataView.setUint32(ptr + 4, encodeUtf8(d.preopenPath).byteLength, true)
  return Errno.SUCCESS
}

export function fd_prestat_dir_name(h: HostState, d: Descriptor, pathPtr: number, pathLen: number): number {
  if (d.kind !== 'dir' || d.preopenPath === undefined) return Errno.BADF
  const name = encodeUtf8(d.preopenPath)
  h.memory.check(pathPtr, pathLen)
  if (pathLen < name.byteLength) return Errno.NAMETOOLONG
  h.memory.write(pathPtr, name)
  return Errno.SUCCESS
}

/**
 * Fills `buf` with dirents from `cookie` on. The listing is taken at cookie 0 and kept on the
 * descriptor, laid out as dirents (`layoutDirents`), so cookies stay stable while the guest
 * deletes what it has read (`rm -r`), and a call costs one copy rather than a re-listing.
 */
export function fd_readdir(h: HostState, d: DirDescriptor, bufPtr: number, bufLen: number, cookie: bigint, bufusedPtr: number): number {
  const m = h.memory
  m.check(bufPtr, bufLen)
  m.check(bufusedPtr, 4, 4)
  if (cookie === 0n || d.listing === undefined) h.fds.cacheListing(d, layoutOf(d.dir.handle.readdir()))
  const listing = d.listing!
  const i = cookie > BigInt(listing.count) ? listing.count : Number(cookie)
  // The directory's own inode only for "." and "..": a call that resumes past them costs no stat.
  if (i < 2 && !listing.selfIno) setSelfIno(listing, d.dir.handle.stat().ino)
  const start = listing.offsets[i]!
  // Entries back to back, the last one cut at the end of the buffer (the guest asks again for it).
  const used = Math.min(bufLen, listing.bytes.byteLength - start)
  if (used > 0) m.bytes.set(listing.bytes.subarray(start, start + used), bufPtr)
  m.setU32(bufusedPtr, used)
  return Errno.SUCCESS
}

/**
 * Layouts of listings a backend may hand out again (the same frozen array while the directory
 * is unchanged: `DirHandle.readdir`), so an unchanged directory is laid out once, not per listing.
 */
const layouts = new WeakMap<readonly DirEntry[], DirentListing>()

function layoutOf(entries: readonly DirEntry[]): DirentListing {
  if (!Object.isFrozen(entries)) return layoutDirents(entries)
  let listing = layouts.get(entries)
  if (listing === undefined) layouts.set(entries, (listing = layoutDirents(entries)))
  return listing
}
