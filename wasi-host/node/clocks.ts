/**
 * @module Clocks on Node: `process.hrtime` for time, `process.cpuUsage` for CPU time.
 *
 * DIVERGENCE(clock-cputime): Node 20 has no per-thread CPU clock, so the thread CPU-time
 * clock reports the process's CPU time (the guest runs on one thread of it).
 */
import { blockingSleep } from '../clocks.js'
import type { ClockSource } from '../host-state.js'

export function createNodeClocks(): ClockSource {
  const hrStart = process.hrtime.bigint()
  const epochStart = BigInt(Date.now()) * 1_000_000n
  const cpu = () => {
    const u = process.cpuUsage()
    return BigInt(u.user + u.system) * 1000n
  }
  return {
    realtime: () => epochStart + (process.hrtime.bigint() - hrStart),
    monotonic: () => process.hrtime.bigint(),
    processCputime: cpu,
    threadCputime: cpu,
    resolution: { realtime: 1n, monotonic: 1n, processCputime: 1000n, threadCputime: 1000n },
    sleep: blockingSleep,
  }
}
