/**
 * @module Extism's plugin ABI (`extism:host/env`), our own implementation: a block store the
 * plugin addresses by 64-bit offsets (Extism's "kernel memory"), the call's input and output,
 * errors, config, variables, logs and HTTP. The store lives in host memory, is bounded, and is
 * emptied before every call (as Extism resets it). SECURITY: every offset and length a plugin
 * passes is checked against a live block before any byte moves; a bad one traps the call as a
 * memory fault; every string read back is validated UTF-8 before use. Nothing here may throw
 * anything but the deliberate unwinds (`GuestFault`, `PluginAbort`, `LimitExceeded`).
 */
import { GuestFault, LimitExceeded } from '../../wasi-host/index.js'
import { HostInput } from './host-input.js'

/** Unwinds the plugin with an error the embedder sees as the call's failure (not a trap). */
export class PluginAbort {
  constructor(
    readonly failure: 'plugin' | 'host',
    readonly message: string,
    readonly hostFunction?: string,
    readonly cause?: unknown,
  ) {}
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()
/** Offset 0 means "none" in the ABI; blocks start above it. */
const BASE = 8

export interface KernelServices {
  /** Sends an HTTP request (already parsed and checked for shape); throws PluginAbort when refused. */
  http(request: HttpRequestSpec, body: Uint8Array | undefined): { status: number; body: Uint8Array }
  log(level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string): void
}

export interface HttpRequestSpec {
  url: string
  method: string
  headers: Record<string, string>
}

export interface KernelLimits {
  /** Bytes of blocks the plugin may hold at once in one call. */
  blockBytes: number
  /** Total bytes of variable keys and values. */
  varBytes: number
  /** Largest output of one call. */
  outputBytes: number
}

/** The signatures of the functions, as (params)->(results) of value types. */
export const EXTISM_FUNCTIONS: Readonly<Record<string, { params: string[]; results: string[] }>> = {
  input_length: { params: [], results: ['i64'] },
  input_offset: { params: [], results: ['i64'] },
  input_load_u8: { params: ['i64'], results: ['i32'] },
  input_load_u64: { params: ['i64'], results: ['i64'] },
  length: { params: ['i64'], results: ['i64'] },
  length_unsafe: { params: ['i64'], results: ['i64'] },
  alloc: { params: ['i64'], results: ['i64'] },
  free: { params: ['i64'], results: [] },
  load_u8: { params: ['i64'], results: ['i32'] },
  load_u64: { params: ['i64'], results: ['i64'] },
  store_u8: { params: ['i64', 'i32'], results: [] },
  store_u64: { params: ['i64', 'i64'], results: [] },
  output_set: { params: ['i64', 'i64'], results: [] },
  error_set: { params: ['i64'], results: [] },
  config_get: { params: ['i64'], results: ['i64'] },
  var_get: { params: ['i64'], results: ['i64'] },
  var_set: { params: ['i64', 'i64'], results: [] },
  http_request: { params: ['i64', 'i64'], results: ['i64'] },
  http_status_code: { params: [], results: ['i32'] },
  log_trace: { params: ['i64'], results: [] },
  log_debug: { params: ['i64'], results: [] },
  log_info: { params: ['i64'], results: [] },
  log_warn: { params: ['i64'], results: [] },
  log_error: { params: ['i64'], results: [] },
  get_log_level: { params: [], results: ['i32'] },
}

const MAX_U32 = 0xffffffffn
/**
 * What one variable costs the host beyond its key and value bytes (map entry, string, typed
 * array: ~250 bytes measured). Charged against `varBytes`, so a flood of tiny variables is
 * bounded by host memory as well as by bytes (without it, 1 MiB of 3-byte keys held ~80 MB).
 */
export const VAR_ENTRY_COST = 256
/**
 * The least a block costs against `blockBytes` (its bookkeeping: ~30 host bytes measured), so
 * a flood of empty or 1-byte blocks cannot turn the limit into 30 times as much host memory.
 */
export const BLOCK_COST = 32

/**
 * The block store and per-call state. Blocks are allocated upwards (a bump allocator: a call is
 * short and the store is emptied before the next), so block starts are sorted and a lookup is
 * a binary search; `free` only marks a block dead.
 */
export class ExtismKernel {
  #buf: Uint8Array = new Uint8Array(4096)
  #dv: DataView = new DataView(this.#buf.buffer)
  #inputDv: DataView = new DataView(new ArrayBuffer(0))
  /** Bytes of the last string `#text` decoded. */
  #textBytes = 0
  #top = BASE
  /** Block starts (ascending), lengths (-1: freed). */
  #starts: number[] = []
  #lens: number[] = []
  #last = -1
  #input: Uint8Array = new Uint8Array(0)
  #inputOffset = 0
  /** Output: a block's [offset, length), or none. */
  #output: Uint8Array | undefined
  #error: string | undefined
  #httpStatus = 0
  #varBytes = 0
  readonly vars = new Map<string, Uint8Array>()

  constructor(
    readonly limits: KernelLimits,
    readonly config: ReadonlyMap<string, string>,
    readonly services: KernelServices,
  ) {}

  /** Empties the store and sets the call's input (kept as a block, as Extism does). */
  beginCall(input: Uint8Array): void {
    this.#top = BASE
    this.#starts.length = 0
    this.#lens.length = 0
    this.#last = -1
    this.#output = undefined
    this.#error = undefined
    this.#httpStatus = 0
    if (this.#buf.byteLength > 1 << 20) this.#setBuf(new Uint8Array(4096)) // give back what a big call took
    this.#input = input
    this.#inputDv = new DataView(input.buffer, input.byteOffset, input.byteLength)
    this.#inputOffset = input.byteLength > 0 ? this.#allocate(input.byteLength) : 0
    if (this.#inputOffset === 0 && input.byteLength > 0) throw new LimitExceeded('memory', 'input larger than the plugin memory limit')
    if (this.#inputOffset !== 0) this.#buf.set(input, this.#inputOffset - BASE)
  }

  /** The output set by `output_set` (a copy), if any. */
  get output(): Uint8Array | undefined {
    return this.#output
  }

  /** The message set by `error_set`, if any. */
  get error(): string | undefined {
    return this.#error
  }

  /** Forgets the variables (a fresh-state plugin starts every call without them). */
  resetVars(): void {
    this.vars.clear()
    this.#varBytes = 0
  }

  /** Offset of a new block of `n` bytes, 0 when the store is full. */
  #allocate(n: number): number {
    const at = this.#top
    const end = at + n
    if (n < 0 || end - BASE > this.limits.blockBytes) return 0
    if (this.#starts.length >= this.limits.blockBytes / BLOCK_COST) return 0
    if (end - BASE > this.#buf.byteLength) {
      let cap = this.#buf.byteLength * 2
      while (cap < end - BASE) cap *= 2
      const next = new Uint8Array(Math.min(cap, this.limits.blockBytes))
      next.set(this.#buf.subarray(0, this.#top - BASE))
      this.#setBuf(next)
    }
    this.#buf.fill(0, at - BASE, end - BASE)
    // Zero-length blocks still get a distinct offset (one byte of padding), as `length` must tell them apart.
    this.#top = n === 0 ? end + 1 : end
    this.#starts.push(at)
    this.#lens.push(n)
    return at
  }

  #setBuf(buf: Uint8Array): void {
    this.#buf = buf
    this.#dv = new DataView(buf.buffer)
  }

  /** Index of the live block holding `[off, off+n)`, or -1. */
  #find(off: number, n: number): number {
    const last = this.#last
    if (last >= 0) {
      const s = this.#starts[last]!
      const len = this.#lens[last]!
      // An empty range must lie strictly inside (or start) the block: the end of one block is the next one's start.
      if (off >= s && off + n <= s + len && (n > 0 ? true : off < s + len || off === s)) return last
    }
    let lo = 0
    let hi = this.#starts.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.#starts[mid]! <= off) lo = mid + 1
      else hi = mid - 1
    }
    if (hi < 0) return -1
    const len = this.#lens[hi]!
    const s = this.#starts[hi]!
    if (len < 0 || off + n > s + len || (n === 0 && off >= s + len && off !== s)) return -1
    this.#last = hi
    return hi
  }

  /** `[off, off+n)` inside one live block, as an index into the buffer. @throws GuestFault */
  #range(what: string, offset: bigint, n: number): number {
    // i64 arrives signed: a negative one is an offset above 2^63, never valid. (Compared as a
    // number: a bigint past 2^53 rounds, but stays far outside the u32 range either way.)
    const off = Number(offset)
    if (!(off >= 0 && off <= 0xffffffff)) throw fault(what, `offset ${offset} is outside the plugin's memory blocks`)
    if (this.#find(off, n) < 0) throw fault(what, `offset ${off} (+${n}) is not inside a live block`)
    return off - BASE
  }

  /** The bytes of the block starting exactly at `offset` (a copy). @throws GuestFault */
  #block(what: string, offset: bigint): Uint8Array {
    const off = Number(offset)
    if (!(off >= 0 && off <= 0xffffffff)) throw fault(what, `offset ${offset} is not a block`)
    const i = this.#find(off, 0)
    if (i < 0 || this.#starts[i] !== off) throw fault(what, `offset ${off} is not the start of a live block`)
    return this.#buf.slice(off - BASE, off - BASE + this.#lens[i]!)
  }

  #text(what: string, offset: bigint): string {
    const bytes = this.#block(what, offset)
    this.#textBytes = bytes.byteLength
    try {
      return utf8.decode(bytes)
    } catch {
      throw new PluginAbort('plugin', `${what}: the plugin passed ${bytes.byteLength} bytes that are not valid UTF-8`)
    }
  }

  /** Stores bytes in a new block; 0 for an empty value. @throws LimitExceeded when the store is full */
  store(bytes: Uint8Array): bigint {
    const at = this.#allocate(bytes.byteLength)
    if (at === 0) throw new LimitExceeded('memory', `a ${bytes.byteLength}-byte value does not fit in the plugin's memory blocks`)
    this.#buf.set(bytes, at - BASE)
    return BigInt(at)
  }

  /** A block's bytes as a host function's input (offset 0: empty). */
  hostInput(what: string, offset: bigint): HostInput {
    return new HostInput(offset === 0n ? new Uint8Array(0) : this.#block(what, offset))
  }

  /** The import object for `extism:host/env`, restricted to `names` (what the module imports). */
  imports(names: readonly string[]): Record<string, (...args: never[]) => unknown> {
    const all: Record<string, (...args: never[]) => unknown> = {
      input_length: () => BigInt(this.#input.byteLength),
      input_offset: () => BigInt(this.#inputOffset),
      input_load_u8: (i: bigint) => {
        const n = Number(i)
        if (!(n >= 0 && n < this.#input.byteLength))
          throw fault('input_load_u8', `index ${i} is past the input (${this.#input.byteLength} bytes)`)
        return this.#input[n]!
      },
      input_load_u64: (i: bigint) => {
        const n = Number(i)
        if (!(n >= 0 && n + 8 <= this.#input.byteLength))
          throw fault('input_load_u64', `index ${i} (+8) is past the input (${this.#input.byteLength} bytes)`)
        return this.#inputDv.getBigInt64(n, true)
      },
      length: (off: bigint) => {
        if (off === 0n) return 0n
        if (off < 0n || off > MAX_U32) return 0n
        const i = this.#find(Number(off), 0)
        return i >= 0 && this.#starts[i] === Number(off) ? BigInt(this.#lens[i]!) : 0n
      },
      length_unsafe: (off: bigint) => all.length!(off as never),
      alloc: (n: bigint) => {
        if (n < 0n || n > BigInt(this.limits.blockBytes)) return 0n
        return BigInt(this.#allocate(Number(n)))
      },
      free: (off: bigint) => {
        if (off === 0n || off < 0n || off > MAX_U32) return
        const i = this.#find(Number(off), 0)
        if (i >= 0 && this.#starts[i] === Number(off)) {
          this.#lens[i] = -1
          this.#last = -1
          // Blocks freed at the top give their room back (alloc/free in LIFO order reuses it).
          while (this.#lens.length > 0 && this.#lens[this.#lens.length - 1] === -1) {
            this.#top = this.#starts.pop()!
            this.#lens.pop()
          }
        }
      },
      load_u8: (off: bigint) => this.#buf[this.#range('load_u8', off, 1)]!,
      load_u64: (off: bigint) => this.#dv.getBigInt64(this.#range('load_u64', off, 8), true),
      store_u8: (off: bigint, v: number) => {
        this.#buf[this.#range('store_u8', off, 1)] = v & 0xff
      },
      store_u64: (off: bigint, v: bigint) => this.#dv.setBigInt64(this.#range('store_u64', off, 8), v, true),
      output_set: (off: bigint, len: bigint) => {
        if (len < 0n || len > BigInt(this.limits.outputBytes)) {
          if (len > 0n) throw new LimitExceeded('stdout', `output of ${len} bytes exceeds the limit of ${this.limits.outputBytes}`)
          throw fault('output_set', `negative length ${len}`)
        }
        const n = Number(len)
        if (n === 0) {
          this.#output = new Uint8Array(0)
          return
        }
        const at = this.#range('output_set', off, n)
        this.#output = this.#buf.slice(at, at + n)
      },
      error_set: (off: bigint) => {
        if (off === 0n) {
          this.#error = undefined
          return
        }
        const bytes = this.#block('error_set', off)
        let message: string
        // Cut at 4 KiB, backing off to a character boundary: a valid message stays valid.
        let cut = Math.min(bytes.byteLength, 4096)
        while (cut < bytes.byteLength && cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--
        try {
          message = utf8.decode(bytes.subarray(0, cut))
        } catch {
          message = `(the plugin's error message, ${bytes.byteLength} bytes, is not valid UTF-8)`
        }
        this.#error = message
      },
      config_get: (off: bigint) => {
        const key = this.#text('config_get', off)
        const v = this.config.get(key)
        return v === undefined ? 0n : this.store(encoder.encode(v))
      },
      var_get: (off: bigint) => {
        const key = this.#text('var_get', off)
        const v = this.vars.get(key)
        return v === undefined ? 0n : this.store(v)
      },
      var_set: (koff: bigint, voff: bigint) => {
        const key = this.#text('var_set', koff)
        const keyBytes = this.#textBytes
        const old = this.vars.get(key)
        const oldSize = old === undefined ? 0 : keyBytes + old.byteLength + VAR_ENTRY_COST
        if (voff === 0n) {
          if (old !== undefined) {
            this.vars.delete(key)
            this.#varBytes -= oldSize
          }
          return
        }
        const value = this.#block('var_set', voff)
        const size = keyBytes + value.byteLength + VAR_ENTRY_COST
        if (this.#varBytes - oldSize + size > this.limits.varBytes) {
          throw new LimitExceeded(
            'vars',
            `variables would hold ${this.#varBytes - oldSize + size} bytes, more than the limit of ${this.limits.varBytes}`,
          )
        }
        this.vars.set(key, value)
        this.#varBytes += size - oldSize
      },
      http_request: (reqOff: bigint, bodyOff: bigint) => {
        const text = this.#text('http_request', reqOff)
        const request = parseHttpRequest(text)
        const body = bodyOff === 0n ? undefined : this.#block('http_request', bodyOff)
        const response = this.services.http(request, body)
        this.#httpStatus = response.status
        return response.body.byteLength === 0 ? 0n : this.store(response.body)
      },
      http_status_code: () => this.#httpStatus,
      log_trace: (off: bigint) => this.services.log('trace', this.#text('log_trace', off)),
      log_debug: (off: bigint) => this.services.log('debug', this.#text('log_debug', off)),
      log_info: (off: bigint) => this.services.log('info', this.#text('log_info', off)),
      log_warn: (off: bigint) => this.services.log('warn', this.#text('log_warn', off)),
      log_error: (off: bigint) => this.services.log('error', this.#text('log_error', off)),
      get_log_level: () => 0,
    }
    const out: Record<string, (...args: never[]) => unknown> = {}
    for (const n of names) if (Object.hasOwn(all, n)) out[n] = all[n]!
    return out
  }
}

function fault(what: string, message: string): GuestFault {
  const e = new GuestFault(message)
  e.syscall = `extism:host/env.${what}`
  return e
}

/** Extism's request JSON: `{ url, method?, headers? }`, checked field by field. @throws PluginAbort */
export function parseHttpRequest(text: string): HttpRequestSpec {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    throw new PluginAbort('plugin', 'http_request: the request is not JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new PluginAbort('plugin', 'http_request: the request must be a JSON object')
  const o = v as Record<string, unknown>
  if (typeof o.url !== 'string' || o.url.length > 8192)
    throw new PluginAbort('plugin', 'http_request: "url" must be a string (at most 8 KiB)')
  const method = o.method === undefined ? 'GET' : o.method
  if (typeof method !== 'string' || !/^[A-Z]{1,16}$/.test(method.toUpperCase()))
    throw new PluginAbort('plugin', 'http_request: "method" must be an HTTP method name')
  const headers: Record<string, string> = {}
  if (o.header !== undefined || o.headers !== undefined) {
    const h = o.headers ?? o.header
    if (typeof h !== 'object' || h === null || Array.isArray(h))
      throw new PluginAbort('plugin', 'http_request: "headers" must be an object of strings')
    const entries = Object.entries(h as Record<string, unknown>)
    if (entries.length > 64) throw new PluginAbort('plugin', 'http_request: at most 64 headers')
    for (const [k, val] of entries) {
      if (typeof val !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/.test(k) || /[\r\n\0]/.test(val) || val.length > 8192) {
        throw new PluginAbort('plugin', `http_request: header ${JSON.stringify(k.slice(0, 64))} is not a valid header`)
      }
      headers[k] = val
    }
  }
  return { url: o.url, method: method.toUpperCase(), headers }
}
