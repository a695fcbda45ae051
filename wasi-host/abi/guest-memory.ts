/**
 * @module GuestMemory: the one bounds-checked view of a guest's linear memory.
 *
 * SECURITY: every guest pointer and length goes through here before any side effect.
 * Out-of-range, wrapping or misaligned accesses throw `GuestFault`, which the dispatcher turns
 * into a trap (witx: "an out-of-bounds pointer ... traps"). Views are re-derived whenever an
 * access finds them stale (`memory.grow` detaches the old `ArrayBuffer`).
 * Pointers arrive here already normalised to unsigned by the dispatcher (`>>> 0`).
 */
import { Errno } from './constants.js'
import { GuestFault, WasiError } from '../errors.js'

// SECURITY: `ignoreBOM`: a leading U+FEFF is part of the string. Stripped, the bytes
// `EF BB BF 78` would name `x`: two different byte strings, one name (an alias).
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
/** Up to this many bytes, `string()` tries the byte-by-byte ASCII read first. */
const SHORT_STRING = 32
const utf8Encoder = new TextEncoder()
// Views of no memory, shared by every unbound GuestMemory: a host is built per run, and three
// buffer allocations per host were a measurable part of a short run.
const NO_BUFFER = new ArrayBuffer(0)
const NO_BYTES = new Uint8Array(NO_BUFFER)
const NO_VIEW = new DataView(NO_BUFFER)

export class GuestMemory {
  #memory: WebAssembly.Memory | undefined
  // Unbound: the shared empty views (zero-length, so nothing can be read or written through them).
  #buffer: ArrayBufferLike = NO_BUFFER
  #u8: Uint8Array = NO_BYTES
  #dv: DataView = NO_VIEW
  #shared = false

  /** Binds the guest's exported memory; called once the instance exists. */
  bind(memory: WebAssembly.Memory): void {
    this.#memory = memory
    this.#shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer
    // Drop the views of any memory bound before, so that refresh() cannot keep them.
    this.#buffer = NO_BUFFER
    this.#u8 = NO_BYTES
    this.#dv = NO_VIEW
    this.refresh()
  }

  get bound(): boolean {
    return this.#memory !== undefined
  }

  /**
   * Re-derives the views if the memory grew. Cheap when nothing changed: growing a non-shared
   * memory detaches its old buffer, and views of a detached buffer have length 0, so views
   * with a length are current and `memory.buffer` (a call into the engine) is not needed.
   * A shared memory's buffer is never detached; it is asked every time.
   * `check` calls this itself whenever an access does not fit the views it has (see there).
   */
  refresh(): void {
    if (this.#u8.byteLength !== 0 && !this.#shared) return
    const memory = this.#memory
    if (memory === undefined) throw new GuestFault('guest memory is not bound (no exported "memory")')
    const buffer = memory.buffer
    if (buffer !== this.#buffer) {
      this.#buffer = buffer
      this.#u8 = new Uint8Array(buffer)
      this.#dv = new DataView(buffer)
    }
  }

  get size(): number {
    if (this.#memory !== undefined) this.refresh()
    return this.#u8.byteLength
  }

  get isShared(): boolean {
    return this.#shared
  }

  /**
   * Checks that `[ptr, ptr+len)` lies within memory and `ptr` is aligned to `align`, and makes
   * the views current for it: an access that does not fit the views held (the memory grew
   * since: a detached view has length 0, a shared one the old length) re-derives them, then
   * checks again. So the views (`bytes`, `dataView`) are current for whatever a call checked,
   * and a call that touches no memory costs no refresh.
   */
  check(ptr: number, len: number, align = 1): void {
    // Negative values can only come from a caller that skipped the dispatcher's `>>> 0`: refuse them too.
    // Kept small so that the engine inlines it into every call; the rest is out of line.
    const size = this.#u8.byteLength
    if (ptr + len > size || size === 0 || ptr < 0 || len < 0 || (align > 1 && ptr % align !== 0)) this.#recheck(ptr, len, align)
  }

  /** `check` after re-deriving the views; faults if the access still does not fit. */
  #recheck(ptr: number, len: number, align: number): void {
    if (this.#memory !== undefined) this.refresh()
    if (ptr + len > this.#u8.byteLength || ptr < 0 || len < 0 || (align > 1 && ptr % align !== 0)) this.#fault(ptr, len, align)
  }

  #fault(ptr: number, len: number, align: number): never {
    if (ptr + len > this.#u8.byteLength || ptr < 0 || len < 0) {
      throw new GuestFault(`out-of-bounds access: ptr=${ptr} len=${len} memory=${this.#u8.byteLength}`)
    }
    throw new GuestFault(`misaligned pointer ${ptr} (needs ${align})`)
  }

  /** Checks an array of `count` elements of `elemSize` bytes; guards the multiplication. */
  checkArray(ptr: number, count: number, elemSize: number, align = 1): void {
    const len = count * elemSize
    if (!Number.isSafeInteger(len)) throw new GuestFault(`array length overflow: ${count} x ${elemSize}`)
    this.check(ptr, len, align)
  }

  u8(ptr: number): number {
    this.check(ptr, 1)
    return this.#u8[ptr]!
  }
  u16(ptr: number): number {
    this.check(ptr, 2, 2)
    return this.#dv.getUint16(ptr, true)
  }
  u32(ptr: number): number {
    this.check(ptr, 4, 4)
    return this.#dv.getUint32(ptr, true)
  }
  u64(ptr: number): bigint {
    this.check(ptr, 8, 8)
    return this.#dv.getBigUint64(ptr, true)
  }
  setU8(ptr: number, v: number): void {
    this.check(ptr, 1)
    this.#u8[ptr] = v
  }
  setU16(ptr: number, v: number): void {
    this.check(ptr, 2, 2)
    this.#dv.setUint16(ptr, v, true)
  }
  setU32(ptr: number, v: number): void {
    this.check(ptr, 4, 4)
    this.#dv.setUint32(ptr, v, true)
  }
  setU64(ptr: number, v: bigint): void {
    this.check(ptr, 8, 8)
    this.#dv.setBigUint64(ptr, v, true)
  }

  /** Unchecked accessors, for use only right after a `check` of the enclosing struct. */
  get dataView(): DataView {
    return this.#dv
  }
  get bytes(): Uint8Array {
    return this.#u8
  }

  /** A live view of guest bytes (no copy). Invalid after the next `memory.grow`. */
  view(ptr: number, len: number): Uint8Array {
    this.check(ptr, len)
    return this.#u8.subarray(ptr, ptr + len)
  }

  /** Copies guest bytes out. */
  copyOut(ptr: number, len: number): Uint8Array {
    this.check(ptr, len)
    return this.#u8.slice(ptr, ptr + len)
  }

  /** Writes `src` at `ptr` (bounds-checked). */
  write(ptr: number, src: Uint8Array): void {
    this.check(ptr, src.byteLength)
    this.#u8.set(src, ptr)
  }

  /**
   * Decodes a guest string strictly: invalid UTF-8 is `ILSEQ`, never replaced.
   * The bytes are copied first: `TextDecoder` refuses views of shared memory.
   */
  string(ptr: number, len: number): string {
    this.check(ptr, len)
    const u8 = this.#u8
    // Short ASCII strings (most path components and paths) are read byte by byte: cheaper than
    // a view and a decoder call. ASCII is UTF-8 read as is; any other byte takes the decoder.
    if (len <= SHORT_STRING) {
      let s = ''
      let i = ptr
      const end = ptr + len
      for (; i < end; i++) {
        const c = u8[i]!
        if (c >= 0x80) break
        s += String.fromCharCode(c)
      }
      if (i === end) return s
    }
    const bytes = this.isShared ? u8.slice(ptr, ptr + len) : u8.subarray(ptr, ptr + len)
    try {
      return utf8Strict.decode(bytes)
    } catch {
      throw new WasiError(Errno.ILSEQ, 'invalid UTF-8 in guest string')
    }
  }

  /**
   * Reads an iovec array and checks every buffer in it. Returns flat [ptr, len, ptr, len, …].
   * @throws GuestFault if the array or any buffer is out of bounds.
   */
  iovecs(iovsPtr: number, iovsLen: number): Uint32Array {
    this.checkArray(iovsPtr, iovsLen, 8, 4)
    const out = new Uint32Array(iovsLen * 2)
    const dv = this.#dv
    for (let i = 0; i < iovsLen; i++) {
      const p = dv.getUint32(iovsPtr + i * 8, true)
      const l = dv.getUint32(iovsPtr + i * 8 + 4, true)
      this.check(p, l)
      out[i * 2] = p
      out[i * 2 + 1] = l
    }
    return out
  }
}

/** UTF-8 bytes of a host string (args, env, names). */
export function encodeUtf8(s: string): Uint8Array {
  // Short ASCII strings (arguments, variables, directory entry names) are most of what is
  // encoded, and a loop is several times cheaper than a TextEncoder call for them.
  const n = s.length
  if (n > 64) return utf8Encoder.encode(s)
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return utf8Encoder.encode(s)
    out[i] = c
  }
  return out
}
