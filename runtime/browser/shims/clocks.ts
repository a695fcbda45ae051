/**
 * @module The guest's clocks in a browser worker (swapped in for `wasi-host/node/clocks.ts` by the
 * browser build, which is why it keeps that module's export name). Time from `performance`, as
 * the portable host reads it. Sleeping: `Atomics.wait` where the page is cross-origin isolated
 * (a `SharedArrayBuffer` exists); otherwise the worker spins on `performance.now()` until the
 * deadline, which costs a core for as long as the guest sleeps but is bounded by the run's
 * timeout and only ever blocks the guest's own worker, never the page.
 */
import { blockingSleep, createPortableClocks } from '../../../wasi-host/clocks.js'
import type { ClockSource } from '../../../wasi-host/index.js'

function spinSleep(ns: bigint): void {
  const end = performance.now() + Number(ns) / 1e6
  while (performance.now() < end) {
    /* a worker without SharedArrayBuffer cannot block */
  }
}

export function createNodeClocks(): ClockSource {
  return { ...createPortableClocks(), sleep: typeof SharedArrayBuffer === 'function' ? blockingSleep : spinSleep }
}
