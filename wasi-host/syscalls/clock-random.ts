/**
 * @module clock_res_get, clock_time_get, random_get.
 */
import { Clockid, Errno } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import type { ClockSource, HostState } from '../host-state.js'

/** Reads clock `id`. @throws WasiError INVAL for an unknown clock */
export function readClock(clocks: ClockSource, id: number): bigint {
  switch (id) {
    case Clockid.REALTIME:
      return clocks.realtime()
    case Clockid.MONOTONIC:
      return clocks.monotonic()
    case Clockid.PROCESS_CPUTIME_ID:
      return clocks.processCputime()
    case Clockid.THREAD_CPUTIME_ID:
      return clocks.threadCputime()
    default:
      throw new WasiError(Errno.INVAL, `unknown clock ${id}`)
  }
}

function clockResolution(clocks: ClockSource, id: number): bigint {
  const r = clocks.resolution
  switch (id) {
    case Clockid.REALTIME:
      return r.realtime
    case Clockid.MONOTONIC:
      return r.monotonic
    case Clockid.PROCESS_CPUTIME_ID:
      return r.processCputime
    case Clockid.THREAD_CPUTIME_ID:
      return r.threadCputime
    default:
      throw new WasiError(Errno.INVAL, `unknown clock ${id}`)
  }
}

export function clock_res_get(h: HostState, id: number, resPtr: number): number {
  h.memory.check(resPtr, 8, 8)
  h.memory.setU64(resPtr, clockResolution(h.clocks, id))
  return Errno.SUCCESS
}

export function clock_time_get(h: HostState, id: number, _precision: unknown, timePtr: number): number {
  const m = h.memory
  m.check(timePtr, 8, 8)
  // Hot path: one check above, then the unchecked view (setU64 would check again).
  m.dataView.setBigUint64(timePtr, readClock(h.clocks, id), true)
  return Errno.SUCCESS
}

export function random_get(h: HostState, bufPtr: number, len: number): number {
  const dst = h.memory.view(bufPtr, len)
  h.randomFill(dst)
  if (len >= 64) h.chargeWork(len)
  return Errno.SUCCESS
}
