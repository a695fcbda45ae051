/**
 * @module poll_oneoff: clock subscriptions that really wait (the clock source blocks the thread,
 * no busy loop) and descriptor readiness. Files and the standard streams are always ready, so
 * a poll with any such subscription returns at once. Sockets are ready when their backend says
 * so: a poll over sockets (and clocks) waits in the socket backend, until a socket is ready or
 * the earliest clock is due, never in a loop.
 */
import { Clockid, Errno, Eventrwflags, Eventtype, Rights as R, Subclockflags } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import type { HostState } from '../host-state.js'
import type { SocketInterest } from '../net/sockets.js'
import { readClock } from './clock-random.js'

const SUB_SIZE = 48
const EVENT_SIZE = 32

interface PendingEvent {
  userdata: bigint
  error: number
  type: number
  nbytes: bigint
  flags?: number
}

export function poll_oneoff(h: HostState, inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
  if (nsubs === 0) throw new WasiError(Errno.INVAL, 'no subscriptions')
  const m = h.memory
  // Bounds first (a trap), then the cap (INVAL), as for iovecs.
  m.checkArray(inPtr, nsubs, SUB_SIZE, 8)
  m.checkArray(outPtr, nsubs, EVENT_SIZE, 8)
  m.check(neventsPtr, 4, 4)
  if (nsubs > h.limits.maxPollSubscriptions) throw new WasiError(Errno.INVAL, 'too many subscriptions')
  const dv = m.dataView

  const ready: PendingEvent[] = []
  const clocks: { userdata: bigint; deadline: bigint; id: number }[] = []
  const sockets: (SocketInterest & { userdata: bigint; type: number })[] = []
  let now: bigint | undefined
  for (let i = 0; i < nsubs; i++) {
    const s = inPtr + i * SUB_SIZE
    const userdata = dv.getBigUint64(s, true)
    const tag = dv.getUint8(s + 8)
    if (tag === Eventtype.CLOCK) {
      const id = dv.getUint32(s + 16, true)
      const timeout = dv.getBigUint64(s + 24, true)
      const flags = dv.getUint16(s + 40, true)
      if (id > Clockid.THREAD_CPUTIME_ID || (flags & ~Subclockflags.ABSTIME) !== 0) {
        ready.push({ userdata, error: Errno.INVAL, type: tag, nbytes: 0n })
        continue
      }
      // Deadlines are kept on the monotonic clock: one timeline to sleep on.
      now ??= h.clocks.monotonic()
      const relative = (flags & Subclockflags.ABSTIME) !== 0 ? timeout - readClock(h.clocks, id) : timeout
      clocks.push({ userdata, deadline: now + (relative > 0n ? relative : 0n), id })
    } else if (tag === Eventtype.FD_READ || tag === Eventtype.FD_WRITE) {
      const fd = dv.getUint32(s + 16, true)
      const d = h.fds.get(fd)
      let error: number = Errno.SUCCESS
      let nbytes = 0n
      if (d === undefined) error = Errno.BADF
      else if ((d.rightsBase & R.POLL_FD_READWRITE) === 0 && d.kind !== 'stream') error = Errno.NOTCAPABLE
      else if (d.kind === 'dir') error = Errno.BADF
      else if (d.kind === 'socket') {
        // A listener is readable when a connection waits (it holds SOCK_ACCEPT, not FD_READ).
        const can = tag === Eventtype.FD_READ ? (d.rightsBase & (R.FD_READ | R.SOCK_ACCEPT)) !== 0 : (d.rightsBase & R.FD_WRITE) !== 0
        if (can) {
          sockets.push({ socket: d.socket, write: tag === Eventtype.FD_WRITE, userdata, type: tag })
          continue
        }
        error = Errno.BADF
      } else if (tag === Eventtype.FD_READ) {
        if ((d.rightsBase & R.FD_READ) === 0) error = Errno.BADF
        else if (d.kind === 'file') {
          const size = d.handle.stat().size
          nbytes = size > d.position ? size - d.position : 0n
        }
      } else if ((d.rightsBase & R.FD_WRITE) === 0) error = Errno.BADF
      ready.push({ userdata, error, type: tag, nbytes })
    } else {
      throw new WasiError(Errno.INVAL, 'unknown subscription type')
    }
  }

  if (sockets.length > 0) {
    // Wait in the backend: not at all when something is ready already, else until the earliest clock.
    let timeout: bigint | undefined
    if (ready.length > 0) timeout = 0n
    else if (clocks.length > 0) {
      let earliest = clocks[0]!.deadline
      for (const c of clocks) if (c.deadline < earliest) earliest = c.deadline
      const wait = earliest - h.clocks.monotonic()
      timeout = wait > 0n ? wait : 0n
    }
    const answers = h.net!.poll(sockets, timeout)
    for (let i = 0; i < sockets.length; i++) {
      const a = answers[i]!
      if (!a.ready && a.errno === 0) continue
      ready.push({
        userdata: sockets[i]!.userdata,
        error: a.errno,
        type: sockets[i]!.type,
        nbytes: BigInt(a.nbytes),
        flags: a.hangup ? Eventrwflags.HANGUP : 0,
      })
    }
    if (clocks.length > 0) {
      const after = h.clocks.monotonic()
      for (const c of clocks) {
        if (c.deadline <= after) ready.push({ userdata: c.userdata, error: Errno.SUCCESS, type: Eventtype.CLOCK, nbytes: 0n })
      }
      // The backend's wait ended at the deadline, a hair before this clock says so: the guest is owed it.
      if (ready.length === 0) {
        let first = clocks[0]!
        for (const c of clocks) if (c.deadline < first.deadline) first = c
        ready.push({ userdata: first.userdata, error: Errno.SUCCESS, type: Eventtype.CLOCK, nbytes: 0n })
      }
    }
  } else if (ready.length === 0 && clocks.length > 0) {
    let earliest = clocks[0]!.deadline
    for (const c of clocks) if (c.deadline < earliest) earliest = c.deadline
    const wait = earliest - h.clocks.monotonic()
    // Sends held back for batching go out before the guest sleeps, not after.
    if (wait > 0n) {
      h.net?.flush?.()
      h.clocks.sleep(wait)
    }
    const after = h.clocks.monotonic()
    for (const c of clocks) {
      if (c.deadline <= after) ready.push({ userdata: c.userdata, error: Errno.SUCCESS, type: Eventtype.CLOCK, nbytes: 0n })
    }
    // A sleep that woke a hair early still owes the guest its earliest event.
    if (ready.length === 0) {
      const first = clocks.find((c) => c.deadline === earliest)!
      ready.push({ userdata: first.userdata, error: Errno.SUCCESS, type: Eventtype.CLOCK, nbytes: 0n })
    }
  }

  for (let i = 0; i < ready.length; i++) {
    const e = outPtr + i * EVENT_SIZE
    const ev = ready[i]!
    for (let b = 0; b < EVENT_SIZE; b += 4) dv.setUint32(e + b, 0, true)
    dv.setBigUint64(e, ev.userdata, true)
    dv.setUint16(e + 8, ev.error, true)
    dv.setUint8(e + 10, ev.type)
    dv.setBigUint64(e + 16, ev.nbytes, true)
    if (ev.flags) dv.setUint16(e + 24, ev.flags, true)
  }
  dv.setUint32(neventsPtr, ready.length, true)
  return Errno.SUCCESS
}
