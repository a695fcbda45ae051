/**
 * GuestMemory: the one bounds-checked view of guest memory. Boundaries exactly at the end
 * (wasmer#1258, ladybird#6086), zero lengths, wrapping past 2^32, alignment, views after
 * `memory.grow`, and strict UTF-8.
 */
import { describe, expect, it } from 'vitest'
import { encodeUtf8, GuestMemory } from '../../wasi-host/abi/guest-memory.js'
import { Errno } from '../../wasi-host/abi/constants.js'
import { GuestFault, WasiError } from '../../wasi-host/errors.js'

const PAGE = 65536

function bound(pages = 1, maximum = 4): { m: GuestMemory; mem: WebAssembly.Memory } {
  const mem = new WebAssembly.Memory({ initial: pages, maximum })
  const m = new GuestMemory()
  m.bind(mem)
  return { m, mem }
}

function fault(fn: () => unknown): void {
  expect(fn).toThrow(GuestFault)
}

function ilseq(fn: () => unknown): void {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(WasiError)
    expect((e as WasiError).errno).toBe(Errno.ILSEQ)
    return
  }
  throw new Error('expected ILSEQ')
}

describe('GuestMemory', () => {
  describe('binding', () => {
    it('is unbound and empty until bind(); refresh() then faults', () => {
      const m = new GuestMemory()
      expect(m.bound).toBe(false)
      expect(m.size).toBe(0)
      fault(() => m.refresh())
      fault(() => m.check(0, 1))
      m.check(0, 0)
    })

    it('binds to a memory and reports its size', () => {
      const { m } = bound(2)
      expect(m.bound).toBe(true)
      expect(m.size).toBe(2 * PAGE)
      expect(m.isShared).toBe(false)
    })
  })

  describe('bounds', () => {
    it('accepts an access ending exactly at the end of memory', () => {
      const { m } = bound()
      m.check(PAGE - 1, 1)
      m.check(0, PAGE)
      m.check(PAGE - 8, 8)
      expect(m.u8(PAGE - 1)).toBe(0)
      expect(m.u32(PAGE - 4)).toBe(0)
      expect(m.u64(PAGE - 8)).toBe(0n)
      m.setU64(PAGE - 8, 1n)
      expect(m.view(PAGE - 8, 8)).toHaveLength(8)
    })

    it('faults one byte past the end', () => {
      const { m } = bound()
      fault(() => m.check(PAGE, 1))
      fault(() => m.check(PAGE - 1, 2))
      fault(() => m.check(0, PAGE + 1))
      fault(() => m.u8(PAGE))
      fault(() => m.u32(PAGE - 2))
      fault(() => m.u64(PAGE - 4))
      fault(() => m.setU32(PAGE, 1))
      fault(() => m.view(PAGE - 3, 4))
      fault(() => m.copyOut(PAGE, 1))
    })

    it('accepts length 0 at the end of memory, but not past it', () => {
      const { m } = bound()
      m.check(PAGE, 0)
      expect(m.view(PAGE, 0)).toHaveLength(0)
      expect(m.copyOut(PAGE, 0)).toHaveLength(0)
      expect(m.string(PAGE, 0)).toBe('')
      m.write(PAGE, new Uint8Array(0))
      fault(() => m.check(PAGE + 1, 0))
      fault(() => m.view(0xffffffff, 0))
    })

    it('faults when ptr + len passes 2^32 (no 32-bit wraparound)', () => {
      const { m } = bound()
      fault(() => m.check(0xffffffff, 1))
      fault(() => m.check(0xfffffff0, 0x20))
      fault(() => m.check(16, 0xffffffff))
      fault(() => m.check(0xffffffff, 0xffffffff))
      fault(() => m.view(0x80000000, 16))
      fault(() => m.string(0xfffffffe, 4))
    })

    it('checkArray guards count × size and the end of memory', () => {
      const { m } = bound()
      m.checkArray(0, PAGE / 8, 8, 8)
      m.checkArray(PAGE, 0, 48, 8)
      fault(() => m.checkArray(0, PAGE / 8 + 1, 8))
      fault(() => m.checkArray(0, 0xffffffff, 48))
      fault(() => m.checkArray(8, 0x20000000, 8))
    })

    it('write() writes nothing when it would not fit', () => {
      const { m, mem } = bound()
      const u8 = new Uint8Array(mem.buffer)
      fault(() => m.write(PAGE - 2, new Uint8Array([1, 2, 3])))
      expect([u8[PAGE - 2], u8[PAGE - 1]]).toEqual([0, 0])
      m.write(PAGE - 3, new Uint8Array([1, 2, 3]))
      expect([...u8.subarray(PAGE - 3)]).toEqual([1, 2, 3])
    })
  })

  describe('alignment', () => {
    it('u16/u32/u64 and their setters require natural alignment', () => {
      const { m } = bound()
      fault(() => m.u16(1))
      fault(() => m.u32(2))
      fault(() => m.u64(4))
      fault(() => m.setU16(3, 0))
      fault(() => m.setU32(6, 0))
      fault(() => m.setU64(12, 0n))
      m.u16(2)
      m.u32(4)
      m.u64(8)
      m.u8(3)
    })

    it('check() with an alignment faults on a misaligned pointer even in bounds', () => {
      const { m } = bound()
      fault(() => m.check(4, 24, 8))
      fault(() => m.checkArray(2, 1, 8, 4))
      m.check(8, 24, 8)
    })
  })

  describe('values', () => {
    it('reads and writes little-endian integers', () => {
      const { m, mem } = bound()
      m.setU32(8, 0x01020304)
      expect([...new Uint8Array(mem.buffer, 8, 4)]).toEqual([4, 3, 2, 1])
      m.setU64(16, 0xffffffffffffffffn)
      expect(m.u64(16)).toBe(0xffffffffffffffffn)
      m.setU16(2, 0xbeef)
      expect(m.u16(2)).toBe(0xbeef)
      m.setU8(1, 0x1ff)
      expect(m.u8(1)).toBe(0xff)
    })

    it('view() is live, copyOut() is a copy', () => {
      const { m } = bound()
      const v = m.view(100, 4)
      const c = m.copyOut(100, 4)
      m.setU8(100, 7)
      expect(v[0]).toBe(7)
      expect(c[0]).toBe(0)
    })

    it('iovecs() returns [ptr, len] pairs after checking every buffer', () => {
      const { m } = bound()
      m.setU32(64, 200)
      m.setU32(68, 10)
      m.setU32(72, PAGE - 5)
      m.setU32(76, 5)
      expect([...m.iovecs(64, 2)]).toEqual([200, 10, PAGE - 5, 5])
      expect([...m.iovecs(PAGE, 0)]).toEqual([])
      m.setU32(76, 6)
      fault(() => m.iovecs(64, 2))
      fault(() => m.iovecs(66, 1))
      fault(() => m.iovecs(PAGE - 4, 1))
    })
  })

  describe('strings', () => {
    it('decodes UTF-8, including multi-byte characters', () => {
      const { m } = bound()
      const bytes = encodeUtf8('héllo 日本 🎉')
      m.write(10, bytes)
      expect(m.string(10, bytes.length)).toBe('héllo 日本 🎉')
    })

    it('is strict: invalid UTF-8 is ILSEQ, never replaced', () => {
      const { m } = bound()
      const cases = [
        [0xff],
        [0x80],
        [0xc3],
        [0xc0, 0xaf],
        [0xe0, 0x80, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xf4, 0x90, 0x80, 0x80],
        [0x61, 0xe6, 0x97, 0x62],
      ]
      for (const c of cases) {
        m.write(100, new Uint8Array(c))
        ilseq(() => m.string(100, c.length))
      }
    })

    it('reads short and long ASCII alike, and a non-ASCII byte anywhere in a short one still decodes strictly', () => {
      const { m } = bound()
      for (const text of ['statme', 'a\0b', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(33), 'many/entry-000123/'.repeat(5)]) {
        m.write(200, encodeUtf8(text))
        expect(m.string(200, text.length)).toBe(text)
      }
      m.write(300, encodeUtf8('abcdé'))
      expect(m.string(300, 6)).toBe('abcdé')
      m.write(300, new Uint8Array([0x61, 0x62, 0xff, 0x63]))
      ilseq(() => m.string(300, 4))
      m.write(300, new Uint8Array([0x61, 0x62, 0xc3]))
      ilseq(() => m.string(300, 3))
    })

    it('decoding checks bounds first (fault, not ILSEQ)', () => {
      const { m } = bound()
      m.write(PAGE - 1, new Uint8Array([0xff]))
      fault(() => m.string(PAGE - 1, 2))
    })

    it('decodes from shared memory (TextDecoder refuses shared views)', () => {
      const mem = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true })
      const m = new GuestMemory()
      m.bind(mem)
      expect(m.isShared).toBe(true)
      m.write(0, encodeUtf8('shared ✓'))
      expect(m.string(0, encodeUtf8('shared ✓').length)).toBe('shared ✓')
      m.write(50, new Uint8Array([0xff]))
      ilseq(() => m.string(50, 1))
    })

    it('encodeUtf8 gives byte lengths, not UTF-16 lengths', () => {
      expect(encodeUtf8('héllo').byteLength).toBe(6)
      expect(encodeUtf8('日本').byteLength).toBe(6)
      expect(encodeUtf8('🎉').byteLength).toBe(4)
    })

    it("encodeUtf8 gives exactly TextEncoder's bytes, on its ASCII fast path and off it", () => {
      const encoder = new TextEncoder()
      const ascii = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join('')
      for (const s of [
        '',
        'a',
        'hello',
        ascii.slice(0, 64),
        ascii.slice(0, 65),
        ascii,
        'x'.repeat(63) + 'é',
        'é' + 'x'.repeat(70),
        '\u007f\u0080',
        'lone \ud800 surrogate',
        '\udfff',
        '🎉'.repeat(20),
      ]) {
        expect([...encodeUtf8(s)]).toEqual([...encoder.encode(s)])
      }
    })
  })

  describe('memory.grow', () => {
    it('after refresh(), the new region is addressable and the size is re-derived', () => {
      const { m, mem } = bound(1)
      mem.grow(1)
      m.refresh()
      expect(m.size).toBe(2 * PAGE)
      m.setU32(PAGE + 4, 0xabcdef)
      expect(new DataView(mem.buffer).getUint32(PAGE + 4, true)).toBe(0xabcdef)
      m.check(2 * PAGE - 8, 8)
      fault(() => m.check(2 * PAGE - 7, 8))
    })

    it('without refresh(), a check re-derives the views: the detached old view is never used', () => {
      const { m, mem } = bound(1)
      const old = m.bytes
      new Uint8Array(mem.buffer)[3] = 7
      mem.grow(1)
      expect(old.byteLength).toBe(0) // detached
      // A check of the new region, then the unchecked views, as a call uses them.
      m.check(PAGE + 4, 4, 4)
      expect(m.bytes === old).toBe(false)
      m.dataView.setUint32(PAGE + 4, 0xabcdef, true)
      expect(new DataView(mem.buffer).getUint32(PAGE + 4, true)).toBe(0xabcdef)
      expect(m.u8(3)).toBe(7)
      // An empty access at 0 fits any view, even a detached one: it re-derives them too.
      mem.grow(1)
      m.check(0, 0)
      expect(m.bytes.byteLength).toBe(3 * PAGE)
      // Past the grown end is still a fault.
      fault(() => m.check(3 * PAGE - 3, 4))
      fault(() => m.u8(3 * PAGE))
    })

    it('a shared memory that grows is re-derived by the check of an access past its old end', () => {
      const mem = new WebAssembly.Memory({ initial: 1, maximum: 3, shared: true })
      const m = new GuestMemory()
      m.bind(mem)
      mem.grow(1)
      m.setU8(PAGE + 1, 9)
      expect(new Uint8Array(mem.buffer)[PAGE + 1]).toBe(9)
      expect(m.size).toBe(2 * PAGE)
      fault(() => m.check(2 * PAGE, 1))
    })

    it('refresh() is idempotent when nothing changed', () => {
      const { m } = bound(1)
      const dv = m.dataView
      m.refresh()
      expect(m.dataView).toBe(dv)
    })

    it('a shared memory that grows is re-derived by refresh()', () => {
      const mem = new WebAssembly.Memory({ initial: 1, maximum: 3, shared: true })
      const m = new GuestMemory()
      m.bind(mem)
      mem.grow(1)
      m.refresh()
      expect(m.size).toBe(2 * PAGE)
      m.setU8(PAGE + 1, 9)
      expect(new Uint8Array(mem.buffer)[PAGE + 1]).toBe(9)
    })
  })
})
