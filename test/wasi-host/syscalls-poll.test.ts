/**
 * poll_oneoff, called directly as wasm would: clock subscriptions that really wait (asserted as
 * a lower bound only), descriptor readiness, bad subscriptions and bad pointers.
 */
import { describe, expect, it } from 'vitest'
import type { ClockSource } from '../../wasi-host/host-state.js'
import { BAD_FD, DATA, errnoName, expectErrno, expectTrap, harness, NEG_PTR, SANDBOX, STDIN, STDOUT, type Harness } from './harness.js'

const CLOCK = 0,
  FD_READ = 1,
  FD_WRITE = 2
const REALTIME = 0,
  MONOTONIC = 1
const ABSTIME = 1
const MS = 1_000_000n

type Sub =
  | { userdata: bigint; clock: { id: number; timeout: bigint; precision?: bigint; flags?: number } }
  | { userdata: bigint; fd: number; tag: typeof FD_READ | typeof FD_WRITE }
  | { userdata: bigint; tag: number }

interface Event {
  userdata: bigint
  error: number
  type: number
  nbytes: bigint
  flags: number
}

function writeSubs(h: Harness, subs: readonly Sub[], at?: number): number {
  const ptr = at ?? h.alloc(subs.length * 48, 8)
  subs.forEach((s, i) => {
    const p = ptr + i * 48
    h.fill(p, 48, 0)
    h.setU64(p, s.userdata)
    if ('clock' in s) {
      h.setU8(p + 8, CLOCK)
      h.setU32(p + 16, s.clock.id)
      h.setU64(p + 24, s.clock.timeout)
      h.setU64(p + 32, s.clock.precision ?? 0n)
      h.setU16(p + 40, s.clock.flags ?? 0)
    } else if ('fd' in s) {
      h.setU8(p + 8, s.tag)
      h.setU32(p + 16, s.fd)
    } else {
      h.setU8(p + 8, s.tag)
    }
  })
  return ptr
}

function readEvents(h: Harness, out: number, n: number): Event[] {
  const events: Event[] = []
  for (let i = 0; i < n; i++) {
    const e = out + i * 32
    events.push({ userdata: h.u64(e), error: h.u16(e + 8), type: h.u8(e + 10), nbytes: h.u64(e + 16), flags: h.u16(e + 24) })
  }
  return events
}

function poll(h: Harness, subs: readonly Sub[]): { errno: number; events: Event[] } {
  const inPtr = writeSubs(h, subs)
  const out = h.alloc(subs.length * 32, 8)
  h.fill(out, subs.length * 32, 0xcc)
  const nev = h.alloc(4, 4)
  const errno = h.wasi.poll_oneoff(inPtr, out, subs.length, nev)
  return { errno, events: errno === 0 ? readEvents(h, out, h.u32(nev)) : [] }
}

/** A virtual clock: sleeping advances it, and every sleep is recorded. */
function virtualClock(start = 1_000n * MS): ClockSource & { slept: bigint[] } {
  let now = start
  const slept: bigint[] = []
  return {
    slept,
    realtime: () => now + 5_000n * MS,
    monotonic: () => now,
    processCputime: () => now,
    threadCputime: () => now,
    resolution: { realtime: 1n, monotonic: 1n, processCputime: 1n, threadCputime: 1n },
    sleep: (ns) => {
      slept.push(ns)
      now += ns
    },
  }
}

describe('poll_oneoff', () => {
  it('is INVAL for zero subscriptions', () => {
    const h = harness()
    const nev = h.alloc(4, 4)
    h.setU32(nev, 77)
    expectErrno(h.wasi.poll_oneoff(h.alloc(48, 8), h.alloc(32, 8), 0, nev), 'INVAL')
    expect(h.u32(nev)).toBe(77)
  })

  it('is INVAL beyond the subscription limit when in bounds; a count past the end of memory traps', () => {
    const h = harness({ limits: { maxPollSubscriptions: 2 } })
    expectErrno(h.wasi.poll_oneoff(0, 0, 3, h.alloc(4, 4)), 'INVAL')
    expectTrap(() => h.wasi.poll_oneoff(0, 0, -1, h.alloc(4, 4)), 'poll_oneoff')
  })

  it('a 20 ms relative clock returns after at least 20 ms, with its event', () => {
    const h = harness()
    const t0 = performance.now()
    const r = poll(h, [{ userdata: 0xfeedn, clock: { id: MONOTONIC, timeout: 20n * MS } }])
    const elapsed = performance.now() - t0
    expectErrno(r.errno, 'SUCCESS')
    expect(elapsed).toBeGreaterThanOrEqual(20)
    expect(r.events).toEqual([{ userdata: 0xfeedn, error: 0, type: CLOCK, nbytes: 0n, flags: 0 }])
  })

  it('with two clocks, only the earlier fires', () => {
    const h = harness()
    const r = poll(h, [
      { userdata: 1n, clock: { id: MONOTONIC, timeout: 10_000n * MS } },
      { userdata: 2n, clock: { id: MONOTONIC, timeout: 5n * MS } },
    ])
    expectErrno(r.errno, 'SUCCESS')
    expect(r.events.map((e) => e.userdata)).toEqual([2n])
  })

  it('sleeps once, for the earliest deadline, on the clock source (virtual clock)', () => {
    const clocks = virtualClock()
    const h = harness({ clocks })
    const r = poll(h, [
      { userdata: 1n, clock: { id: MONOTONIC, timeout: 50n * MS } },
      { userdata: 2n, clock: { id: MONOTONIC, timeout: 20n * MS } },
      { userdata: 3n, clock: { id: REALTIME, timeout: 20n * MS } },
    ])
    expect(clocks.slept).toEqual([20n * MS])
    expect(r.events.map((e) => e.userdata).sort()).toEqual([2n, 3n])
  })

  it('an absolute deadline is measured on its own clock; one in the past fires at once', () => {
    const clocks = virtualClock()
    const h = harness({ clocks })
    const real = clocks.realtime()
    const r = poll(h, [{ userdata: 9n, clock: { id: REALTIME, timeout: real + 30n * MS, flags: ABSTIME } }])
    expect(clocks.slept).toEqual([30n * MS])
    expect(r.events.map((e) => e.userdata)).toEqual([9n])
    const past = poll(h, [{ userdata: 8n, clock: { id: MONOTONIC, timeout: 1n, flags: ABSTIME } }])
    expect(clocks.slept).toHaveLength(1)
    expect(past.events.map((e) => e.userdata)).toEqual([8n])
  })

  it('a zero timeout fires without sleeping', () => {
    const clocks = virtualClock()
    const h = harness({ clocks })
    const r = poll(h, [{ userdata: 1n, clock: { id: MONOTONIC, timeout: 0n } }])
    expect(clocks.slept).toEqual([])
    expect(r.events).toHaveLength(1)
  })

  it('reports clock id 9 and unknown subclockflags as INVAL', () => {
    const h = harness({ clocks: virtualClock() })
    for (const clock of [
      { id: 9, timeout: 0n },
      { id: MONOTONIC, timeout: 0n, flags: 2 },
    ]) {
      const r = poll(h, [{ userdata: 5n, clock }])
      if (r.errno !== 0) expectErrno(r.errno, 'INVAL')
      else expect(r.events.map((e) => [e.userdata, errnoName(e.error)])).toEqual([[5n, 'INVAL']])
    }
  })

  it('refuses an unknown subscription type with INVAL', () => {
    const h = harness()
    expectErrno(poll(h, [{ userdata: 1n, tag: 3 }]).errno, 'INVAL')
    expectErrno(poll(h, [{ userdata: 1n, tag: 255 }]).errno, 'INVAL')
  })

  it('an fd_read subscription on a file reports the bytes left to read', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    h.readFd(fd, 2)
    const r = poll(h, [{ userdata: 7n, fd, tag: FD_READ }])
    expectErrno(r.errno, 'SUCCESS')
    expect(r.events).toEqual([{ userdata: 7n, error: 0, type: FD_READ, nbytes: 4n, flags: 0 }])
  })

  it('stdin is ready to read and stdout to write', () => {
    const h = harness({ stdin: 'x' })
    const r = poll(h, [
      { userdata: 1n, fd: STDIN, tag: FD_READ },
      { userdata: 2n, fd: STDOUT, tag: FD_WRITE },
    ])
    expect(r.events.map((e) => [e.userdata, e.error, e.type])).toEqual([
      [1n, 0, FD_READ],
      [2n, 0, FD_WRITE],
    ])
  })

  it('a ready descriptor is reported without waiting for a clock', () => {
    const clocks = virtualClock()
    const h = harness({ clocks })
    const r = poll(h, [
      { userdata: 1n, clock: { id: MONOTONIC, timeout: 60_000n * MS } },
      { userdata: 2n, fd: STDOUT, tag: FD_WRITE },
    ])
    expect(clocks.slept).toEqual([])
    expect(r.events.map((e) => e.userdata)).toEqual([2n])
  })

  it('a bad, closed or unsuitable descriptor is an event with an error, not a failed call', () => {
    const h = harness()
    const file = h.openOk('a.txt')
    const closed = h.openOk('sub/b.txt')
    h.wasi.fd_close(closed)
    const r = poll(h, [
      { userdata: 1n, fd: BAD_FD, tag: FD_READ },
      { userdata: 2n, fd: closed, tag: FD_WRITE },
      { userdata: 3n, fd: SANDBOX, tag: FD_READ },
      { userdata: 4n, fd: file, tag: FD_WRITE },
      { userdata: 5n, fd: STDOUT, tag: FD_READ },
    ])
    expectErrno(r.errno, 'SUCCESS')
    const errs = Object.fromEntries(r.events.map((e) => [String(e.userdata), errnoName(e.error)]))
    expect(errs['1']).toBe('BADF')
    expect(errs['2']).toBe('BADF')
    expect(['BADF', 'NOTCAPABLE']).toContain(errs['3'])
    expect(['BADF', 'NOTCAPABLE']).toContain(errs['4'])
    expect(['BADF', 'NOTCAPABLE']).toContain(errs['5'])
  })

  it('an fd subscription needs POLL_FD_READWRITE on a file (NOTCAPABLE event)', () => {
    const h = harness()
    const fd = h.openOk('r.txt', { dirfd: DATA })
    h.restrict(fd, 1 << 27)
    const r = poll(h, [{ userdata: 1n, fd, tag: FD_READ }])
    expect(errnoName(r.events[0]!.error)).toBe('NOTCAPABLE')
  })

  it('keeps a userdata of all ones (a negative i64) intact', () => {
    const h = harness({ clocks: virtualClock() })
    const r = poll(h, [{ userdata: -1n, clock: { id: MONOTONIC, timeout: 0n } }])
    expect(r.events[0]!.userdata).toBe((1n << 64n) - 1n)
  })

  it('writes only nevents events', () => {
    const h = harness({ clocks: virtualClock() })
    const inPtr = writeSubs(h, [
      { userdata: 1n, clock: { id: MONOTONIC, timeout: 1n * MS } },
      { userdata: 2n, clock: { id: MONOTONIC, timeout: 9n * MS } },
    ])
    const out = h.alloc(64, 8)
    h.fill(out, 64, 0xcc)
    const nev = h.alloc(4, 4)
    expectErrno(h.wasi.poll_oneoff(inPtr, out, 2, nev), 'SUCCESS')
    expect(h.u32(nev)).toBe(1)
    expect([...h.read(out + 32, 32)].every((b) => b === 0xcc)).toBe(true)
  })

  it('traps on subscriptions, events or nevents out of bounds, before waiting', () => {
    const clocks = virtualClock()
    const h = harness({ clocks })
    const sub: Sub[] = [{ userdata: 1n, clock: { id: MONOTONIC, timeout: 10n * MS } }]
    const inPtr = writeSubs(h, sub)
    const out = h.alloc(32, 8)
    const nev = h.alloc(4, 4)
    expectTrap(() => h.wasi.poll_oneoff(h.size - 40, out, 1, nev), 'poll_oneoff')
    expectTrap(() => h.wasi.poll_oneoff(NEG_PTR, out, 1, nev))
    expectTrap(() => h.wasi.poll_oneoff(inPtr, h.size - 24, 1, nev))
    expectTrap(() => h.wasi.poll_oneoff(inPtr, NEG_PTR, 1, nev))
    expectTrap(() => h.wasi.poll_oneoff(inPtr, out, 1, h.size))
    expectTrap(() => h.wasi.poll_oneoff(inPtr, out, 1, NEG_PTR))
    // The event array must hold one event per subscription, even if fewer fire.
    const two = writeSubs(h, [...sub, ...sub])
    expectTrap(() => h.wasi.poll_oneoff(two, h.size - 32, 2, nev))
    expect(clocks.slept).toEqual([])
  })

  it('traps on misaligned subscriptions, events or nevents', () => {
    const h = harness({ clocks: virtualClock() })
    const area = h.alloc(48 + 16, 8)
    const inPtr = writeSubs(h, [{ userdata: 1n, clock: { id: MONOTONIC, timeout: 0n } }], area + 4)
    const good = writeSubs(h, [{ userdata: 1n, clock: { id: MONOTONIC, timeout: 0n } }])
    const out = h.alloc(40, 8)
    const nev = h.alloc(8, 4)
    expectTrap(() => h.wasi.poll_oneoff(inPtr, out, 1, nev))
    expectTrap(() => h.wasi.poll_oneoff(good, out + 4, 1, nev))
    expectTrap(() => h.wasi.poll_oneoff(good, out, 1, nev + 2))
  })

  it('reads subscriptions placed in memory grown after binding', () => {
    const h = harness({ clocks: virtualClock() })
    const old = h.size
    h.mem.grow(1)
    const inPtr = writeSubs(h, [{ userdata: 42n, clock: { id: MONOTONIC, timeout: 0n } }], old + 64)
    const out = old + 256
    const nev = old + 512
    expectErrno(h.wasi.poll_oneoff(inPtr, out, 1, nev), 'SUCCESS')
    expect(h.u32(nev)).toBe(1)
    expect(h.u64(out)).toBe(42n)
  })
})
