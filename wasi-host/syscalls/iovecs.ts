/**
 * @module The iovec arrays of the read and write calls (fd_* and sock_*): checked before any I/O,
 * and, for reads, copied out of guest memory first, as a kernel copies them in: bytes read may
 * land on the array itself (a buffer covering it) and must not redirect the rest of the read.
 */
import { Errno } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import type { HostState } from '../host-state.js'

const MAX_IO_TOTAL = 0x7fffffff

/**
 * Validates an iovec array and every buffer in it. Returns the total length.
 * @throws GuestFault on a bad pointer, WasiError INVAL on too many buffers or a total past 2^31-1
 */
export function checkIovecs(h: HostState, iovs: number, iovsLen: number): number {
  const m = h.memory
  // Bounds first: an array past the end of memory traps, whatever its count; only an in-bounds
  // array longer than the cap is INVAL.
  m.checkArray(iovs, iovsLen, 8, 4)
  if (iovsLen > h.limits.maxIovecs) throw new WasiError(Errno.INVAL, 'too many iovecs')
  const dv = m.dataView
  let total = 0
  for (let i = 0; i < iovsLen; i++) {
    const p = dv.getUint32(iovs + i * 8, true)
    const l = dv.getUint32(iovs + i * 8 + 4, true)
    m.check(p, l)
    total += l
  }
  if (total > MAX_IO_TOTAL) throw new WasiError(Errno.INVAL, 'iovec total too large')
  return total
}

/**
 * `checkIovecs` and a copy of the array in one pass, for a read to scatter into: buffer `i` is at
 * `[2 * i]`, its length at `[2 * i + 1]`. Read as numbers (little-endian, as the ABI says), not a
 * byte copy: a byte copy viewed through a DataView needs its own ArrayBuffer, which V8 allocates
 * off the heap, and that was a tenth of a small read's cost; a `Uint32Array` of up to 16
 * elements (8 iovecs, nearly every call) lives on the heap. The same errors, in the same order.
 */
export function checkedIovecSnapshot(h: HostState, iovs: number, iovsLen: number): Uint32Array {
  const m = h.memory
  m.checkArray(iovs, iovsLen, 8, 4)
  if (iovsLen > h.limits.maxIovecs) throw new WasiError(Errno.INVAL, 'too many iovecs')
  const dv = m.dataView
  const vecs = new Uint32Array(iovsLen * 2)
  let total = 0
  for (let i = 0; i < iovsLen; i++) {
    const p = dv.getUint32(iovs + i * 8, true)
    const l = dv.getUint32(iovs + i * 8 + 4, true)
    m.check(p, l)
    vecs[i * 2] = p
    vecs[i * 2 + 1] = l
    total += l
  }
  if (total > MAX_IO_TOTAL) throw new WasiError(Errno.INVAL, 'iovec total too large')
  return vecs
}

/** The total length of a snapshot's buffers (`checkedIovecSnapshot`: at most 2^31-1). */
export function iovecTotal(vecs: Uint32Array): number {
  let total = 0
  for (let i = 1; i < vecs.length; i += 2) total += vecs[i]!
  return total
}
