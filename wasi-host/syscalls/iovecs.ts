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

/** A checked iovec array copied out of guest memory (its pairs from offset 0), for a read to scatter into. */
export function iovecSnapshot(h: HostState, iovs: number, iovsLen: number): DataView {
  return new DataView(h.memory.bytes.slice(iovs, iovs + iovsLen * 8).buffer)
}
