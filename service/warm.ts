/**
 * @module Warms the worker pool when a server or a queue worker starts: the first runs would
 * otherwise pay for starting worker threads (tens of ms, seconds on a loaded machine) inside
 * their own time limit. Reserves `n` workers (kept idle between runs, replaced in the
 * background when a run kills one) and runs a tiny command of ours (an empty `_start`) on each.
 */
import { availableParallelism } from 'node:os'
import { defaultPool } from '../runtime/worker/pool.js'
import { prepare } from '../runtime/sandbox.js'

/** `(module (memory (export "memory") 1) (func (export "_start")))`, written out by hand. */
const EMPTY_COMMAND = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01,
  0x07, 0x13, 0x02, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x0a, 0x04,
  0x01, 0x02, 0x00, 0x0b,
])

/** Runs at once by default: as many as the cores, at least 2. */
export const WARM_WORKERS = Math.max(2, availableParallelism())

export async function warmPool(n = WARM_WORKERS): Promise<void> {
  defaultPool.reserve(n)
  const program = await prepare(EMPTY_COMMAND)
  await Promise.all(Array.from({ length: n }, () => program.run()))
}
