import { describe, expect, it } from 'vitest'
import {
  ByteWriter,
  InstrumentError,
  encodeS32,
  encodeS64,
  encodeU32,
  encodeU64,
  readS32,
  readS33,
  readS64,
  readU32,
  readU64,
  skipLeb,
} from '../../../runtime/instrument/index.js'

const b = (...xs: number[]) => new Uint8Array(xs)

function malformed(fn: () => unknown): void {
  expect(fn).toThrow(InstrumentError)
  try {
    fn()
  } catch (e) {
    expect((e as InstrumentError).code).toBe('MALFORMED')
  }
}

describe('LEB128', () => {
  it('reads and writes u32 at the byte boundaries', () => {
    for (const [n, bytes] of [
      [0, [0x00]],
      [1, [0x01]],
      [127, [0x7f]],
      [128, [0x80, 0x01]],
      [16383, [0xff, 0x7f]],
      [16384, [0x80, 0x80, 0x01]],
      [0xffffffff, [0xff, 0xff, 0xff, 0xff, 0x0f]],
      [0x80000000, [0x80, 0x80, 0x80, 0x80, 0x08]],
    ] as const) {
      expect([...encodeU32(n)]).toEqual(bytes)
      expect(readU32(b(...bytes, 0xaa), 0)).toEqual({ value: n, next: bytes.length })
    }
  })

  it('accepts over-long but in-range encodings, as the spec does', () => {
    expect(readU32(b(0x80, 0x80, 0x80, 0x80, 0x00), 0)).toEqual({ value: 0, next: 5 })
    expect(readU32(b(0x81, 0x00), 0)).toEqual({ value: 1, next: 2 })
    expect(readS32(b(0xff, 0xff, 0xff, 0xff, 0x7f), 0)).toEqual({ value: -1, next: 5 })
    expect(readS64(b(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 0)).toEqual({ value: 0n, next: 10 })
  })

  it('refuses encodings that are too long, out of range or truncated', () => {
    malformed(() => readU32(b(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 0)) // 6 bytes
    malformed(() => readU32(b(0xff, 0xff, 0xff, 0xff, 0x1f), 0)) // 2^33 - 1
    malformed(() => readU32(b(0x80, 0x80), 0)) // truncated
    malformed(() => readU32(b(), 0))
    malformed(() => readS32(b(0xff, 0xff, 0xff, 0xff, 0x0f), 0)) // sign bits disagree: 2^32 - 1
    malformed(() => readS32(b(0x80, 0x80, 0x80, 0x80, 0x70), 0)) // sign bits disagree
    malformed(() => readS64(b(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02), 0))
    malformed(() => readU64(b(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), 0))
    malformed(() => skipLeb(b(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 0, 5))
    malformed(() => skipLeb(b(0x80), 0, 5))
  })

  it('reads and writes signed 32-bit values at the edges', () => {
    for (const [n, bytes] of [
      [0, [0x00]],
      [-1, [0x7f]],
      [63, [0x3f]],
      [64, [0xc0, 0x00]],
      [-64, [0x40]],
      [-65, [0xbf, 0x7f]],
      [0x7fffffff, [0xff, 0xff, 0xff, 0xff, 0x07]],
      [-0x80000000, [0x80, 0x80, 0x80, 0x80, 0x78]],
    ] as const) {
      expect([...encodeS32(n)]).toEqual(bytes)
      expect(readS32(b(...bytes), 0)).toEqual({ value: n, next: bytes.length })
    }
  })

  it('reads and writes 64-bit values at the edges', () => {
    for (const n of [0n, 1n, -1n, 63n, 64n, -64n, -65n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)]) {
      const bytes = encodeS64(n)
      expect(readS64(bytes, 0)).toEqual({ value: n, next: bytes.length })
    }
    expect(encodeS64(2n ** 63n - 1n).length).toBe(10)
    for (const n of [0n, 127n, 128n, 2n ** 32n, 2n ** 64n - 1n]) {
      const bytes = encodeU64(n)
      expect(readU64(bytes, 0)).toEqual({ value: n, next: bytes.length })
    }
    expect(() => encodeS64(2n ** 63n)).toThrow(RangeError)
  })

  it('reads signed 33-bit block-type indices', () => {
    expect(readS33(b(0x40), 0).value).toBe(-64) // the empty block type
    expect(readS33(b(0x7f), 0).value).toBe(-1) // i32
    expect(readS33(b(0x05), 0).value).toBe(5)
    expect(readS33(b(0xff, 0xff, 0xff, 0xff, 0x0f), 0).value).toBe(2 ** 32 - 1)
    expect(readS33(b(0x80, 0x80, 0x80, 0x80, 0x70), 0).value).toBe(-(2 ** 32))
    malformed(() => readS33(b(0x80, 0x80, 0x80, 0x80, 0x20), 0))
  })

  it('writes names and grows its buffer', () => {
    const w = new ByteWriter(16)
    for (let i = 0; i < 1000; i++) w.u32(i * 4099)
    w.name('caplet_fuel')
    const out = w.finish()
    let pos = 0
    for (let i = 0; i < 1000; i++) {
      const r = readU32(out, pos)
      expect(r.value).toBe(i * 4099)
      pos = r.next
    }
    expect(out[pos]).toBe(11)
    expect(new TextDecoder().decode(out.subarray(pos + 1))).toBe('caplet_fuel')
  })
})
