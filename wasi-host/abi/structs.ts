/**
 * @module Writers for the structs the host hands back (filestat, fdstat), and the decoding of
 * `fstflags` shared by `fd_filestat_set_times` and `path_filestat_set_times`.
 * Callers check the destination pointer before any side effect; these only write.
 */
import { Errno, Fstflags, FSTFLAGS_ALL, rightsToAbi } from './constants.js'
import type { GuestMemory } from './guest-memory.js'
import { WasiError } from '../errors.js'
import type { NodeStat, TimeSpec } from '../fs/filesystem.js'

export function writeFilestat(m: GuestMemory, ptr: number, dev: bigint, st: NodeStat): void {
  m.check(ptr, 64, 8)
  const dv = m.dataView
  dv.setBigUint64(ptr, dev, true)
  dv.setBigUint64(ptr + 8, st.ino, true)
  dv.setUint8(ptr + 16, st.filetype)
  for (let i = 17; i < 24; i++) dv.setUint8(ptr + i, 0)
  dv.setBigUint64(ptr + 24, st.nlink, true)
  dv.setBigUint64(ptr + 32, st.size, true)
  dv.setBigUint64(ptr + 40, st.atim, true)
  dv.setBigUint64(ptr + 48, st.mtim, true)
  dv.setBigUint64(ptr + 56, st.ctim, true)
}

export function writeFdstat(
  m: GuestMemory, ptr: number, filetype: number, fdflags: number, base: number, inheriting: number,
): void {
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
  if ((flags & Fstflags.ATIM) && (flags & Fstflags.ATIM_NOW)) throw new WasiError(Errno.INVAL, 'ATIM with ATIM_NOW')
  if ((flags & Fstflags.MTIM) && (flags & Fstflags.MTIM_NOW)) throw new WasiError(Errno.INVAL, 'MTIM with MTIM_NOW')
  const a: TimeSpec = flags & Fstflags.ATIM_NOW ? 'now' : flags & Fstflags.ATIM ? atim : undefined
  const t: TimeSpec = flags & Fstflags.MTIM_NOW ? 'now' : flags & Fstflags.MTIM ? mtim : undefined
  return [a, t]
}
