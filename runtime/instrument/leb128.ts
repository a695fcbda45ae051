/**
 * @module LEB128 as the WebAssembly binary format uses it, and a growable byte writer.
 *
 * Readers are strict in the way the spec is: an N-bit integer takes at most ceil(N/7) bytes, and
 * the unused bits of the last byte must be zero (unsigned) or copies of the sign bit (signed).
 * Over-long but in-range encodings (`0x80 0x80 0x00` for 0) are valid and accepted. Every reader
 * throws `InstrumentError('MALFORMED')` on truncated or out-of-range input.
 */
import { malformed } from './errors.js'

export interface Decoded<T> {
  value: T
  /** Offset of the first byte after the encoding. */
  next: number
}

function byteAt(bytes: Uint8Array, pos: number): number {
  const b = bytes[pos]
  if (b === undefined) throw malformed('unexpected end of input inside a LEB128 integer', pos)
  return b
}

/** Unsigned 32-bit (vector lengths, indices, section sizes). */
export function readU32(bytes: Uint8Array, offset: number): Decoded<number> {
  let result = 0
  let pos = offset
  for (let i = 0; i < 4; i++) {
    const b = byteAt(bytes, pos++)
    result |= (b & 0x7f) << (7 * i)
    if ((b & 0x80) === 0) return { value: result >>> 0, next: pos }
  }
  const b = byteAt(bytes, pos++)
  if ((b & 0xf0) !== 0) throw malformed('u32 LEB128 too long or out of range', offset)
  return { value: (result >>> 0) + b * 0x10000000, next: pos }
}

/** Signed 32-bit (`i32.const`). */
export function readS32(bytes: Uint8Array, offset: number): Decoded<number> {
  let result = 0
  let pos = offset
  for (let i = 0; i < 4; i++) {
    const b = byteAt(bytes, pos++)
    result |= (b & 0x7f) << (7 * i)
    if ((b & 0x80) === 0) {
      const bits = 7 * (i + 1)
      return { value: (b & 0x40) !== 0 ? result | (-1 << bits) : result, next: pos }
    }
  }
  const b = byteAt(bytes, pos++)
  // Bits 0-3 are value bits 28-31; bits 4-6 must repeat bit 3 (the sign); no continuation.
  const high = b & 0xf8
  if (high !== 0 && high !== 0x78) throw malformed('s32 LEB128 too long or out of range', offset)
  return { value: result | (b << 28), next: pos }
}

/**
 * Signed 33-bit, as a block type's type index is encoded. Returned as a JS number (exact).
 * Negative values are the one-byte value-type and empty-type codes.
 */
export function readS33(bytes: Uint8Array, offset: number): Decoded<number> {
  let result = 0
  let scale = 1
  let pos = offset
  for (let i = 0; i < 4; i++) {
    const b = byteAt(bytes, pos++)
    result += (b & 0x7f) * scale
    scale *= 128
    if ((b & 0x80) === 0) return { value: (b & 0x40) !== 0 ? result - scale : result, next: pos }
  }
  const b = byteAt(bytes, pos++)
  // Bits 0-4 are value bits 28-32 (bit 4 the sign); bits 5-6 must repeat it.
  const high = b & 0xf0
  if (high !== 0 && high !== 0x70) throw malformed('s33 LEB128 too long or out of range', offset)
  result += (b & 0x1f) * scale
  return { value: (b & 0x10) !== 0 ? result - scale * 32 : result, next: pos }
}

/** Unsigned 64-bit (memory64 limits and offsets). */
export function readU64(bytes: Uint8Array, offset: number): Decoded<bigint> {
  let result = 0n
  let pos = offset
  for (let i = 0; i < 9; i++) {
    const b = byteAt(bytes, pos++)
    result |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) return { value: result, next: pos }
  }
  const b = byteAt(bytes, pos++)
  if ((b & 0xfe) !== 0) throw malformed('u64 LEB128 too long or out of range', offset)
  return { value: result | (BigInt(b) << 63n), next: pos }
}

/** Signed 64-bit (`i64.const`). */
export function readS64(bytes: Uint8Array, offset: number): Decoded<bigint> {
  let result = 0n
  let pos = offset
  for (let i = 0; i < 9; i++) {
    const b = byteAt(bytes, pos++)
    result |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) {
      const bits = BigInt(7 * (i + 1))
      return { value: (b & 0x40) !== 0 ? result - (1n << bits) : result, next: pos }
    }
  }
  const b = byteAt(bytes, pos++)
  // Bit 0 is value bit 63 (the sign); bits 1-6 must repeat it.
  if (b !== 0 && b !== 0x7f) throw malformed('s64 LEB128 too long or out of range', offset)
  return { value: BigInt.asIntN(64, result | (BigInt(b & 1) << 63n)), next: pos }
}

/** The offset just past the LEB128 integer at `offset`, at most `maxBytes` long. */
export function skipLeb(bytes: Uint8Array, offset: number, maxBytes: number): number {
  let pos = offset
  const limit = offset + maxBytes
  while (pos < limit) {
    const b = bytes[pos++]
    if (b === undefined) break
    if ((b & 0x80) === 0) return pos
  }
  throw malformed(pos >= bytes.length ? 'unexpected end of input inside a LEB128 integer' : 'LEB128 integer too long', offset)
}

/**
 * Where the last `u32At` stopped. Module state, so the hot code scanners read an index without
 * allocating a `Decoded` per instruction: they are synchronous and never re-entered.
 */
export const leb = { next: 0 }

/**
 * A u32 LEB128 at `at` for the code scanners, the offset after it left in `leb.next`. Lenient on
 * the last byte's unused bits (the engine validates the output, and any over-long form it
 * accepts decodes the same); at most 5 bytes. @throws InstrumentError MALFORMED
 */
export function u32At(p: Uint8Array, at: number): number {
  let b = p[at]
  if (b === undefined) throw malformed('unexpected end of input in a LEB128 immediate', at)
  if (b < 0x80) {
    leb.next = at + 1
    return b
  }
  let v = b & 0x7f
  let scale = 128
  for (let i = 1; i < 5; i++) {
    b = p[at + i]
    if (b === undefined) throw malformed('unexpected end of input in a LEB128 immediate', at)
    v += (b & 0x7f) * scale
    if (b < 0x80) {
      leb.next = at + i + 1
      return v
    }
    scale *= 128
  }
  throw malformed('LEB128 immediate too long', at)
}

/** Writes `value` (a u32) as LEB128 into `b` at `at`, which must have room; returns the offset after it. */
export function putU32(b: Uint8Array, at: number, value: number): number {
  let o = at
  let v = value
  while (v >= 0x80) {
    b[o++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  b[o++] = v
  return o
}

/** Writes a non-negative 31-bit `value` as a signed LEB128 (what `i64.const` takes); returns the offset after it. */
export function putSleb(b: Uint8Array, at: number, value: number): number {
  let o = at
  let v = value
  while (v >= 0x40) {
    b[o++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  b[o++] = v
  return o
}

/** A growable output buffer with the encoders the rewriter needs. */
export class ByteWriter {
  #buf: Uint8Array
  length = 0

  constructor(initialCapacity = 1024) {
    this.#buf = new Uint8Array(Math.max(16, initialCapacity))
  }

  /** Makes room for `n` more bytes and returns the backing array (valid until the next write). */
  reserve(n: number): Uint8Array {
    const need = this.length + n
    if (need > this.#buf.length) {
      let cap = this.#buf.length * 2
      while (cap < need) cap *= 2
      const next = new Uint8Array(cap)
      next.set(this.#buf.subarray(0, this.length))
      this.#buf = next
    }
    return this.#buf
  }

  u8(b: number): void {
    this.reserve(1)[this.length++] = b
  }

  u32(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`u32 out of range: ${n}`)
    const buf = this.reserve(5)
    let v = n
    do {
      let b = v % 128
      v = Math.floor(v / 128)
      if (v !== 0) b |= 0x80
      buf[this.length++] = b
    } while (v !== 0)
  }

  /** Unsigned, any size (memory64 limits). */
  u64(n: bigint): void {
    if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${n}`)
    const buf = this.reserve(10)
    let v = n
    do {
      let b = Number(v & 0x7fn)
      v >>= 7n
      if (v !== 0n) b |= 0x80
      buf[this.length++] = b
    } while (v !== 0n)
  }

  s32(n: number): void {
    if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`s32 out of range: ${n}`)
    const buf = this.reserve(5)
    let v = n | 0
    for (;;) {
      const b = v & 0x7f
      v >>= 7
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
        buf[this.length++] = b
        return
      }
      buf[this.length++] = b | 0x80
    }
  }

  s64(n: bigint): void {
    if (n < -0x8000000000000000n || n > 0x7fffffffffffffffn) throw new RangeError(`s64 out of range: ${n}`)
    const buf = this.reserve(10)
    let v = n
    for (;;) {
      const b = Number(v & 0x7fn)
      v >>= 7n
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
        buf[this.length++] = b
        return
      }
      buf[this.length++] = b | 0x80
    }
  }

  bytes(src: Uint8Array): void {
    this.reserve(src.length).set(src, this.length)
    this.length += src.length
  }

  /** A length-prefixed UTF-8 name. */
  name(s: string): void {
    const encoded = new TextEncoder().encode(s)
    this.u32(encoded.length)
    this.bytes(encoded)
  }

  /** The bytes written so far (a copy the writer no longer touches). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.length)
  }

  /** The bytes written so far, without a copy: valid until the next write. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.length)
  }
}

function encodeWith(write: (w: ByteWriter) => void): Uint8Array {
  const w = new ByteWriter(16)
  write(w)
  return w.finish()
}

export const encodeU32 = (n: number): Uint8Array => encodeWith((w) => w.u32(n))
export const encodeS32 = (n: number): Uint8Array => encodeWith((w) => w.s32(n))
export const encodeU64 = (n: bigint): Uint8Array => encodeWith((w) => w.u64(n))
export const encodeS64 = (n: bigint): Uint8Array => encodeWith((w) => w.s64(n))
