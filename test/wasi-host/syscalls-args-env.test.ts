/**
 * args_get, args_sizes_get, environ_get, environ_sizes_get, called directly as wasm would.
 * Sizes count UTF-8 bytes plus one NUL per string; every pointer is checked before any write.
 */
import { describe, expect, it } from 'vitest'
import { expectErrno, expectTrap, harness, HIGH_PTR, NEG_PTR, type Harness } from './harness.js'

const ARGS = ['prog', 'héllo', '日本', '']
const ENV = { HOME: '/sandbox', NAME: 'zoë' }

function sizes(h: Harness, fn: 'args_sizes_get' | 'environ_sizes_get'): { count: number; size: number } {
  const c = h.alloc(4, 4)
  const s = h.alloc(4, 4)
  expectErrno(h.wasi[fn](c, s), 'SUCCESS')
  return { count: h.u32(c), size: h.u32(s) }
}

function strings(h: Harness, get: 'args_get' | 'environ_get', sz: 'args_sizes_get' | 'environ_sizes_get'): string[] {
  const { count, size } = sizes(h, sz)
  const ptrs = h.alloc(count * 4, 4)
  const buf = h.alloc(size, 1)
  expectErrno(h.wasi[get](ptrs, buf), 'SUCCESS')
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const p = h.u32(ptrs + i * 4)
    expect(p).toBeGreaterThanOrEqual(buf)
    expect(p).toBeLessThan(buf + size)
    let end = p
    while (h.u8(end) !== 0) end++
    out.push(h.readString(p, end - p))
  }
  return out
}

describe('args_sizes_get', () => {
  it('counts arguments and their UTF-8 bytes, one NUL each', () => {
    const h = harness({ args: ARGS })
    const utf8 = ARGS.reduce((n, a) => n + new TextEncoder().encode(a).byteLength + 1, 0)
    expect(sizes(h, 'args_sizes_get')).toEqual({ count: 4, size: utf8 })
    // "héllo" is 6 bytes, "日本" 6 bytes: UTF-16 lengths would give 5 and 2.
    expect(utf8).toBe(5 + 7 + 7 + 1)
  })

  it('reports zero for no arguments', () => {
    expect(sizes(harness(), 'args_sizes_get')).toEqual({ count: 0, size: 0 })
  })

  it('traps on an out-of-bounds or negative pointer, writing nothing', () => {
    const h = harness({ args: ARGS })
    const c = h.alloc(4, 4)
    h.setU32(c, 77)
    expectTrap(() => h.wasi.args_sizes_get(c, h.size), 'args_sizes_get')
    expectTrap(() => h.wasi.args_sizes_get(c, h.size - 2))
    expectTrap(() => h.wasi.args_sizes_get(NEG_PTR, c))
    expectTrap(() => h.wasi.args_sizes_get(c, HIGH_PTR))
    expect(h.u32(c)).toBe(77)
  })

  it('traps on a misaligned pointer', () => {
    const h = harness({ args: ARGS })
    const c = h.alloc(8, 4)
    expectTrap(() => h.wasi.args_sizes_get(c + 1, c + 4))
  })

  it('accepts a pointer whose 4 bytes end exactly at the end of memory', () => {
    const h = harness({ args: ARGS })
    expectErrno(h.wasi.args_sizes_get(h.size - 8, h.size - 4), 'SUCCESS')
    expect(h.u32(h.size - 8)).toBe(4)
  })
})

describe('args_get', () => {
  it('writes NUL-terminated UTF-8 strings and pointers to them', () => {
    const h = harness({ args: ARGS })
    expect(strings(h, 'args_get', 'args_sizes_get')).toEqual(ARGS)
  })

  it('succeeds with no arguments and any pointers (nothing to write)', () => {
    const h = harness()
    expectErrno(h.wasi.args_get(h.size, h.size), 'SUCCESS')
  })

  it('traps when the string buffer is one byte short, writing no pointer', () => {
    const h = harness({ args: ARGS })
    const { count, size } = sizes(h, 'args_sizes_get')
    const ptrs = h.alloc(count * 4, 4)
    h.fill(ptrs, count * 4, 0xaa)
    expectTrap(() => h.wasi.args_get(ptrs, h.size - size + 1), 'args_get')
    expect(h.u32(ptrs)).toBe(0xaaaaaaaa)
  })

  it('traps when the pointer array runs past the end, writing no string', () => {
    const h = harness({ args: ARGS })
    const { size } = sizes(h, 'args_sizes_get')
    const buf = h.alloc(size, 1)
    h.fill(buf, size, 0xaa)
    expectTrap(() => h.wasi.args_get(h.size - 8, buf))
    expectTrap(() => h.wasi.args_get(NEG_PTR, buf))
    expect(h.u8(buf)).toBe(0xaa)
  })

  it('traps on a misaligned pointer array', () => {
    const h = harness({ args: ARGS })
    const { count, size } = sizes(h, 'args_sizes_get')
    const ptrs = h.alloc(count * 4 + 4, 4)
    expectTrap(() => h.wasi.args_get(ptrs + 2, h.alloc(size)))
  })
})

describe('environ_sizes_get', () => {
  it('counts KEY=value strings in UTF-8 bytes', () => {
    const h = harness({ env: ENV })
    // "HOME=/sandbox\0" 14, "NAME=zoë\0" 10
    expect(sizes(h, 'environ_sizes_get')).toEqual({ count: 2, size: 14 + 10 })
  })

  it('accepts env as a list of strings, including non-ASCII', () => {
    const h = harness({ env: ['A=日本', 'B='] })
    expect(sizes(h, 'environ_sizes_get')).toEqual({ count: 2, size: 9 + 3 })
  })

  it('reports zero by default: nothing ambient', () => {
    expect(sizes(harness(), 'environ_sizes_get')).toEqual({ count: 0, size: 0 })
  })

  it('traps on bad pointers', () => {
    const h = harness({ env: ENV })
    const c = h.alloc(4, 4)
    expectTrap(() => h.wasi.environ_sizes_get(c, h.size), 'environ_sizes_get')
    expectTrap(() => h.wasi.environ_sizes_get(HIGH_PTR, c))
    expectTrap(() => h.wasi.environ_sizes_get(c + 1, c))
  })
})

describe('environ_get', () => {
  it('writes every variable as KEY=value', () => {
    const h = harness({ env: ENV })
    expect(strings(h, 'environ_get', 'environ_sizes_get')).toEqual(['HOME=/sandbox', 'NAME=zoë'])
  })

  it('traps on bad pointers without writing', () => {
    const h = harness({ env: ENV })
    const ptrs = h.alloc(8, 4)
    h.fill(ptrs, 8, 0xaa)
    expectTrap(() => h.wasi.environ_get(ptrs, h.size - 3), 'environ_get')
    expectTrap(() => h.wasi.environ_get(ptrs, NEG_PTR))
    expectTrap(() => h.wasi.environ_get(ptrs + 1, h.alloc(64)))
    expect(h.u32(ptrs)).toBe(0xaaaaaaaa)
  })
})
