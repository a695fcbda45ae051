/**
 * @module The portable clock source: `performance` for time, `Atomics.wait` for sleeping.
 *
 * DIVERGENCE(clock-cputime): a portable host cannot read CPU time; the process and thread
 * CPU-time clocks here count the time since the host was created, an upper bound of the guest's
 * CPU time. The Node host (`node/clocks.ts`) supplies the real process CPU time.
 */
import { Errno } from './abi/constants.js'
import { WasiError } from './errors.js'
import type { ClockSource } from './host-state.js'

const NS_PER_MS = 1_000_000

/** Blocks without spinning. @throws WasiError NOTSUP where the thread may not block (a browser's main thread). */
export function blockingSleep(ns: bigint): void {
  const cell = new Int32Array(new SharedArrayBuffer(4))
  let remaining = Number(ns) / NS_PER_MS
  const end = performance.now() + remaining
  while (remaining > 0) {
    try {
      Atomics.wait(cell, 0, 0, remaining)
    } catch {
      throw new WasiError(Errno.NOTSUP, 'this thread cannot block; run the guest in a worker')
    }
    remaining = end - performance.now()
  }
}

export function createPortableClocks(): ClockSource {
  const originUs = BigInt(Math.round(performance.timeOrigin * 1000))
  const start = performance.now()
  const monotonic = () => BigInt(Math.round(performance.now() * NS_PER_MS))
  const sinceStart = () => BigInt(Math.round((performance.now() - start) * NS_PER_MS))
  return {
    realtime: () => originUs * 1000n + monotonic(),
    monotonic,
    processCputime: sinceStart,
    threadCputime: sinceStart,
    // performance.now() is microsecond-coarse or worse in browsers (timer coarsening).
    resolution: { realtime: 1000n, monotonic: 1000n, processCputime: 1000n, threadCputime: 1000n },
    sleep: blockingSleep,
  }
}

/** Fills `dst` from the platform CSPRNG, 64 KiB at a time (the `getRandomValues` limit). */
export function platformRandomFill(dst: Uint8Array): void {
  const shared = typeof SharedArrayBuffer !== 'undefined' && dst.buffer instanceof SharedArrayBuffer
  for (let at = 0; at < dst.byteLength; at += 65536) {
    const chunk = dst.subarray(at, Math.min(at + 65536, dst.byteLength))
    if (shared) {
      // Browsers refuse views of shared memory here.
      const tmp = new Uint8Array(chunk.byteLength)
      crypto.getRandomValues(tmp)
      chunk.set(tmp)
    } else {
      crypto.getRandomValues(chunk)
    }
  }
}
