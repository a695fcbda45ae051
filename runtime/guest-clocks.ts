/**
 * @module The clocks and random source a policy gives the guest: real clocks coarsened to the
 * policy's resolution (as browsers coarsen timers against timing side channels), optionally
 * without CPU-time clocks; or, in deterministic mode, virtual clocks and a seeded generator.
 */
import { Errno } from '../wasi-host/abi/constants.js'
import { WasiError } from '../wasi-host/errors.js'
import type { ClockSource } from '../wasi-host/host-state.js'

/**
 * The CPU-time clocks of one run: the time since the run started on the guest's thread, less the
 * time it slept. Node 20 cannot read one thread's CPU time, and the process's is shared by every
 * run in a worker pool (one tenant could watch another's work through it).
 */
export function runCputimeClocks(base: ClockSource): ClockSource {
  const start = base.monotonic()
  let slept = 0n
  const cpu = () => base.monotonic() - start - slept
  return {
    ...base,
    processCputime: cpu,
    threadCputime: cpu,
    resolution: { ...base.resolution, processCputime: base.resolution.monotonic, threadCputime: base.resolution.monotonic },
    sleep: (ns) => {
      const before = base.monotonic()
      base.sleep(ns)
      // Only what was really slept, so the clock never runs backwards.
      const took = base.monotonic() - before
      slept += took < ns ? took : ns
    },
  }
}

/** Rounds every reading down to `resolutionNs`; the CPU-time clocks are the run's own, the process's, or hidden (`NOTSUP`). */
export function coarsenClocks(source: ClockSource, resolutionNs: bigint, cputime: 'run' | 'process' | 'hidden'): ClockSource {
  const base = cputime === 'run' ? runCputimeClocks(source) : source
  const shown = cputime !== 'hidden'
  const r = resolutionNs
  const coarse = (f: () => bigint) =>
    r <= 1n
      ? f
      : () => {
          const t = f()
          return t - (t % r)
        }
  const hidden = () => {
    throw new WasiError(Errno.NOTSUP, 'CPU-time clocks are not granted')
  }
  const max = (a: bigint) => (a > r ? a : r)
  return {
    realtime: coarse(base.realtime),
    monotonic: coarse(base.monotonic),
    processCputime: shown ? coarse(base.processCputime) : hidden,
    threadCputime: shown ? coarse(base.threadCputime) : hidden,
    resolution: {
      realtime: max(base.resolution.realtime),
      monotonic: max(base.resolution.monotonic),
      processCputime: max(base.resolution.processCputime),
      threadCputime: max(base.resolution.threadCputime),
    },
    sleep: base.sleep,
  }
}

/** 2000-01-01T00:00:00Z in ns: the virtual realtime clock starts here. */
const VIRTUAL_EPOCH = 946_684_800_000_000_000n

/**
 * Virtual clocks: time advances by `stepNs` at every reading and by exactly the requested
 * amount on every sleep (which returns at once). Same calls, same readings.
 */
export function virtualClocks(stepNs: bigint): ClockSource {
  let now = 0n
  const tick = () => (now += stepNs)
  return {
    realtime: () => VIRTUAL_EPOCH + tick(),
    monotonic: tick,
    processCputime: tick,
    threadCputime: tick,
    resolution: { realtime: stepNs, monotonic: stepNs, processCputime: stepNs, threadCputime: stepNs },
    sleep: (ns) => {
      now += ns
    },
  }
}

/**
 * A seeded generator (sfc32, seeded through splitmix32) for deterministic runs.
 * NOTE: not cryptographic; deterministic mode is for reproducible runs, not for secrets.
 */
export function seededRandomFill(seed: number): (dst: Uint8Array) => void {
  let s = (seed >>> 0) ^ Math.floor(seed / 2 ** 32)
  const splitmix = () => {
    s = (s + 0x9e3779b9) | 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = splitmix(),
    b = splitmix(),
    c = splitmix(),
    d = splitmix()
  const next = () => {
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return t >>> 0
  }
  return (dst) => {
    for (let i = 0; i < dst.byteLength; i += 4) {
      let v = next()
      for (let j = 0; j < 4 && i + j < dst.byteLength; j++, v >>>= 8) dst[i + j] = v & 0xff
    }
  }
}
