/**
 * clock_res_get, clock_time_get, random_get, called directly as wasm would.
 */
import { describe, expect, it } from 'vitest'
import { expectErrno, expectTrap, harness, HIGH_PTR, NEG_PTR } from './harness.js'

const CLOCKS = [0, 1, 2, 3] as const

describe('clock_res_get', () => {
  it.each(CLOCKS)('reports a positive resolution for clock %i', (id) => {
    const h = harness()
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.clock_res_get(id, p), 'SUCCESS')
    expect(h.u64(p)).toBeGreaterThan(0n)
  })

  it('refuses an unknown clock id with INVAL', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    h.setU64(p, 123n)
    expectErrno(h.wasi.clock_res_get(9, p), 'INVAL')
    expectErrno(h.wasi.clock_res_get(-1, p), 'INVAL')
    expect(h.u64(p)).toBe(123n)
  })

  it('traps on an out-of-bounds, negative or misaligned pointer', () => {
    const h = harness()
    expectTrap(() => h.wasi.clock_res_get(1, h.size - 4), 'clock_res_get')
    expectTrap(() => h.wasi.clock_res_get(1, h.size))
    expectTrap(() => h.wasi.clock_res_get(1, NEG_PTR))
    expectTrap(() => h.wasi.clock_res_get(1, HIGH_PTR))
    expectTrap(() => h.wasi.clock_res_get(1, h.alloc(16, 8) + 4))
  })

  it('writes exactly at the end of memory', () => {
    const h = harness()
    expectErrno(h.wasi.clock_res_get(0, h.size - 8), 'SUCCESS')
  })
})

describe('clock_time_get', () => {
  const fixed = {
    realtime: () => 42n,
    monotonic: () => 7n,
    processCputime: () => 1n,
    threadCputime: () => 2n,
    resolution: { realtime: 1n, monotonic: 1n, processCputime: 1n, threadCputime: 1n },
    sleep: () => {},
  }

  it('the monotonic clock never goes backwards', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    let last = 0n
    for (let i = 0; i < 200; i++) {
      expectErrno(h.wasi.clock_time_get(1, 0n, p), 'SUCCESS')
      const t = h.u64(p)
      expect(t).toBeGreaterThanOrEqual(last)
      last = t
    }
  })

  it('the realtime clock is close to Date.now()', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.clock_time_get(0, 1000n, p), 'SUCCESS')
    const ms = Number(h.u64(p) / 1_000_000n)
    expect(Math.abs(ms - Date.now())).toBeLessThan(60_000)
  })

  it.each(CLOCKS)('reads clock %i with any precision, including a negative i64', (id) => {
    const h = harness()
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.clock_time_get(id, -1n, p), 'SUCCESS')
  })

  it('uses a supplied clock source', () => {
    const h = harness({ clocks: fixed })
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.clock_time_get(0, 0n, p), 'SUCCESS')
    expect(h.u64(p)).toBe(42n)
    expectErrno(h.wasi.clock_time_get(1, 0n, p), 'SUCCESS')
    expect(h.u64(p)).toBe(7n)
  })

  it('ignores the precision argument, whatever its value', () => {
    const h = harness({ clocks: fixed })
    const p = h.alloc(8, 8)
    for (const precision of [0n, 1n, -1n, -(1n << 63n), (1n << 63n) - 1n]) {
      expectErrno(h.wasi.clock_time_get(1, precision, p), 'SUCCESS')
      expect(h.u64(p)).toBe(7n)
    }
  })

  it('writes into memory grown after binding, and traps past its new end', () => {
    const h = harness({ clocks: fixed })
    const old = h.size
    h.mem.grow(1)
    expectErrno(h.wasi.clock_time_get(1, 0n, old + 8), 'SUCCESS')
    expect(h.u64(old + 8)).toBe(7n)
    expectTrap(() => h.wasi.clock_time_get(1, 0n, h.size - 4), 'clock_time_get')
  })

  it('refuses clock id 9 with INVAL and writes nothing', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    h.setU64(p, 5n)
    expectErrno(h.wasi.clock_time_get(9, 0n, p), 'INVAL')
    expect(h.u64(p)).toBe(5n)
  })

  it('traps on bad pointers', () => {
    const h = harness()
    expectTrap(() => h.wasi.clock_time_get(1, 0n, h.size), 'clock_time_get')
    expectTrap(() => h.wasi.clock_time_get(1, 0n, NEG_PTR))
    expectTrap(() => h.wasi.clock_time_get(1, 0n, h.alloc(16, 8) + 2))
  })
})

describe('random_get', () => {
  it('fills the buffer, differently on each call', () => {
    const h = harness()
    const a = h.alloc(64, 1)
    const b = h.alloc(64, 1)
    expectErrno(h.wasi.random_get(a, 64), 'SUCCESS')
    expectErrno(h.wasi.random_get(b, 64), 'SUCCESS')
    expect(h.read(a, 64)).not.toEqual(h.read(b, 64))
    expect(h.read(a, 64).some((x) => x !== 0)).toBe(true)
  })

  it('touches only the requested bytes', () => {
    const h = harness()
    const a = h.alloc(32, 1)
    h.fill(a, 32, 0)
    expectErrno(h.wasi.random_get(a + 8, 16), 'SUCCESS')
    expect([...h.read(a, 8), ...h.read(a + 24, 8)].every((x) => x === 0)).toBe(true)
  })

  it('accepts length 0, even at the very end of memory', () => {
    const h = harness()
    expectErrno(h.wasi.random_get(h.alloc(1), 0), 'SUCCESS')
    expectErrno(h.wasi.random_get(h.size, 0), 'SUCCESS')
  })

  it('fills more than 64 KiB in one call (getRandomValues chunking)', () => {
    const h = harness({ memoryPages: 2 })
    expectErrno(h.wasi.random_get(0, 2 * 65536), 'SUCCESS')
    const tail = h.read(2 * 65536 - 64, 64)
    expect(tail.some((x) => x !== 0)).toBe(true)
  })

  it('uses a supplied randomFill', () => {
    const h = harness({ randomFill: (dst) => dst.fill(9) })
    const a = h.alloc(4, 1)
    expectErrno(h.wasi.random_get(a, 4), 'SUCCESS')
    expect([...h.read(a, 4)]).toEqual([9, 9, 9, 9])
  })

  it('traps past the end of memory or on wrap, filling nothing', () => {
    let calls = 0
    const h = harness({
      randomFill: () => {
        calls++
      },
    })
    expectTrap(() => h.wasi.random_get(h.size - 4, 5), 'random_get')
    expectTrap(() => h.wasi.random_get(h.size + 1, 0))
    expectTrap(() => h.wasi.random_get(NEG_PTR, 4))
    expectTrap(() => h.wasi.random_get(16, -1))
    expectTrap(() => h.wasi.random_get(HIGH_PTR, 1))
    expect(calls).toBe(0)
  })
})
