/**
 * @module Writers for the structs the host hands back (filestat, fdstat, dirent listings), and
 * the decoding of `fstflags` shared by `fd_filestat_set_times` and `path_filestat_set_times`.
 * Callers check the destination pointer before any side effect; these only write.
 */
import { Errno, Filetype, Fstflags, FSTFLAGS_ALL, rightsToAbi } from './constants.js'
import type { GuestMemory } from './guest-memory.js'
import { HostInvariantError, WasiError } from '../errors.js'
import type { DirEntry, NodeStat, TimeSpec } from '../fs/filesystem.js'

export function writeFilestat(m: GuestMemory, ptr: number, dev: bigint, st: NodeStat): void {
  m.check(ptr, 64, 8)
  const dv = m.dataView
  dv.setBigUint64(ptr, dev, true)
  dv.setBigUint64(ptr + 8, st.ino, true)
  dv.setUint8(ptr + 16, st.filetype)
  dv.setUint8(ptr + 17, 0) // padding up to nlink
  dv.setUint16(ptr + 18, 0)
  dv.setUint32(ptr + 20, 0)
  dv.setBigUint64(ptr + 24, st.nlink, true)
  dv.setBigUint64(ptr + 32, st.size, true)
  dv.setBigUint64(ptr + 40, st.atim, true)
  dv.setBigUint64(ptr + 48, st.mtim, true)
  dv.setBigUint64(ptr + 56, st.ctim, true)
}

export function writeFdstat(m: GuestMemory, ptr: number, filetype: number, fdflags: number, base: number, inheriting: number): void {
  m.check(ptr, 24, 8)
  const dv = m.dataView
  dv.setUint8(ptr, filetype)
  dv.setUint8(ptr + 1, 0)
  dv.setUint16(ptr + 2, fdflags, true)
  dv.setUint32(ptr + 4, 0, true)
  dv.setBigUint64(ptr + 8, rightsToAbi(base), true)
  dv.setBigUint64(ptr + 16, rightsToAbi(inheriting), true)
}

/** Decodes `fstflags` into the two times to set. @throws WasiError INVAL for contradictory or unknown flags */
export function decodeFstflags(flags: number, atim: bigint, mtim: bigint): [TimeSpec, TimeSpec] {
  if ((flags & ~FSTFLAGS_ALL) !== 0) throw new WasiError(Errno.INVAL, 'unknown fstflags')
  if (flags & Fstflags.ATIM && flags & Fstflags.ATIM_NOW) throw new WasiError(Errno.INVAL, 'ATIM with ATIM_NOW')
  if (flags & Fstflags.MTIM && flags & Fstflags.MTIM_NOW) throw new WasiError(Errno.INVAL, 'MTIM with MTIM_NOW')
  const a: TimeSpec = flags & Fstflags.ATIM_NOW ? 'now' : flags & Fstflags.ATIM ? atim : undefined
  const t: TimeSpec = flags & Fstflags.MTIM_NOW ? 'now' : flags & Fstflags.MTIM ? mtim : undefined
  return [a, t]
}

const DIRENT_HEADER = 24
const utf8 = new TextEncoder()

/**
 * A directory listing laid out once the way `fd_readdir` hands it out: dirents (a 24-byte header,
 * then the name's UTF-8 bytes, unterminated) back to back, `.` and `..` first. A call resuming at
 * cookie i copies from `offsets[i]` on: one copy per call, and each name encoded once per listing
 * rather than once per call.
 */
export interface DirentListing {
  readonly bytes: Uint8Array
  /** Where entry i starts; `offsets[count]` is the end. */
  readonly offsets: Uint32Array
  /** Entries, `.` and `..` included. */
  readonly count: number
  /** `.` and `..` carry the directory's own inode, filled in when first served (`setSelfIno`). */
  selfIno: boolean
}

/** Where each header goes in the text of a listing: 24 NULs encode to the 24 zero bytes then overwritten. */
const HEADER_HOLE = '\0'.repeat(DIRENT_HEADER)
const NON_ASCII = /[^\0-\x7f]/

/** Lays out `.`, `..` (inode 0 until `setSelfIno`) and `entries`, in that order. */
export function layoutDirents(entries: readonly DirEntry[]): DirentListing {
  const n = entries.length
  const names = entries.map((e) => e.name)
  // The whole listing as one text, each header a hole of NULs, encoded in one native call: no
  // buffer per name. Only the headers are then written, at offsets known from the name lengths
  // (in bytes: the UTF-16 length for ASCII, the usual case, else measured).
  const text = `${HEADER_HOLE}.${HEADER_HOLE}..${n > 0 ? HEADER_HOLE + names.join(HEADER_HOLE) : ''}`
  const bytes = utf8.encode(text)
  const ascii = !NON_ASCII.test(text)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const count = n + 2
  const offsets = new Uint32Array(count + 1)
  let at = 0
  for (let i = 0; i < count; i++) {
    offsets[i] = at
    dv.setUint32(at, i + 1, true) // d_next: a cookie fits 32 bits, the high half stays zero
    let len: number
    if (i < 2) {
      len = i + 1
      dv.setUint8(at + 20, Filetype.DIRECTORY)
    } else {
      const e = entries[i - 2]!
      const name = names[i - 2]!
      len = ascii ? name.length : utf8.encode(name).byteLength
      dv.setBigUint64(at + 8, e.ino, true)
      dv.setUint8(at + 20, e.filetype)
    }
    dv.setUint32(at + 16, len, true)
    at += DIRENT_HEADER + len
  }
  if (at !== bytes.byteLength) throw new HostInvariantError(`dirent layout: ${at} bytes laid out, ${bytes.byteLength} encoded`)
  offsets[count] = at
  return { bytes, offsets, count, selfIno: false }
}

/** Fills in the inode of `.` and `..` (the directory's own, as the host has always reported). */
export function setSelfIno(listing: DirentListing, ino: bigint): void {
  const dv = new DataView(listing.bytes.buffer, listing.bytes.byteOffset)
  dv.setBigUint64(8, ino, true)
  dv.setBigUint64(DIRENT_HEADER + 1 + 8, ino, true)
  listing.selfIno = true
}
