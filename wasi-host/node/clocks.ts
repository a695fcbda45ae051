/**
 * @module Clocks on Node: `process.hrtime` for time, `process.cpuUsage` for CPU time.
 *
 * DIVERGENCE(clock-cputime): Node 20 has no per-thread CPU clock, so the thread CPU-time
 * clock reports the process's CPU time (the guest runs on one thread of it).
 */
import { blockingSleep } from '../clocks.js'
import type { ClockSource } from '../host-state.js'

export function createNodeClocks(): ClockSource {
  // Bound once: `process.hrtime.bigint` needs no receiver, and a lookup per reading showed up
  // in the profile of clock_time_get.
  const hrtime = process.hrtime.bigint
  const hrStart = hrtime()
  const epochStart = BigInt(Date.now()) * 1_000_000n
  const cpu = () => {
    const u = process.cpuUsage()
    return BigInt(u.user + u.system) * 1000n
  }
  return {
    realtime: () => epochStart + (hrtime() - hrStart),
    monotonic: hrtime,
    processCputime: cpu,
    threadCputime: cpu,
    resolution: { realtime: 1n, monotonic: 1n, processCputime: 1000n, threadCputime: 1000n },
    sleep: blockingSleep,
  }
}
