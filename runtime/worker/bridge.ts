/**
 * @module The synchronous bridge: a guest thread's blocking call to asynchronous host services
 * (sockets, async host functions, browser storage). The guest side writes one request into a
 * SharedArrayBuffer and blocks on `Atomics.wait`; the serving side (the embedder's thread, or a
 * helper thread for in-process runs) wakes through `Atomics.waitAsync`, runs the handler, writes
 * one reply back and notifies. One request at a time per channel; every request and reply is
 * bounded by the channel's capacity. Platform-neutral: no `node:` import (the browser reuses it).
 * It must never let a handler's failure or a closed server leave the caller blocked or a reply
 * larger than the buffer.
 */

/** Transferable description of one channel (structured-clones across threads). */
export interface BridgeChannel {
  readonly sab: SharedArrayBuffer
  /** Bytes available to one request or one reply (JSON header and raw bytes together). */
  readonly capacity: number
}

/** One request: a service name, a method, JSON-able args, and optional raw bytes. */
export interface BridgeRequest {
  service: string
  method: string
  args: unknown
  bytes: Uint8Array | undefined
}

/** What a service method returns (or resolves to). `bytes` travels raw, not through JSON. */
export interface BridgeReply {
  value?: unknown
  bytes?: Uint8Array
}

/** A service: method name -> handler, sync or async. */
export interface BridgeService {
  // Handlers validate their own arguments: they come from the guest's thread.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [method: string]: ((args: any, bytes: Uint8Array | undefined) => BridgeReply | void | Promise<BridgeReply | void>) | undefined
}

/** Cleanup when the run ends, however it ends: close sockets, cancel timers. */
export interface BridgeServiceLifecycle {
  dispose?(): void | Promise<void>
}

export type ServedService = BridgeService & BridgeServiceLifecycle

/** Thrown by a handler to deliver an errno (and a host-side message) to the caller. */
export class BridgeFault extends Error {
  constructor(message: string, readonly errno?: number) {
    super(message)
    this.name = 'BridgeFault'
  }
}

/** The caller's view of a failed handler: its name, message and errno, if it gave one. */
export class BridgeCallError extends Error {
  constructor(message: string, readonly errno?: number, readonly remoteName = 'Error') {
    super(message)
    this.name = 'BridgeCallError'
  }
}

/** The serving side closed (the run is ending): no reply will come. */
export class BridgeClosedError extends Error {
  constructor() {
    super('the bridge was closed')
    this.name = 'BridgeClosedError'
  }
}

export const DEFAULT_BRIDGE_CAPACITY = 1 << 20
const MAX_BRIDGE_CAPACITY = 64 << 20

// Header: four Int32 slots, then the data region.
const STATE = 0
const AUX = 1
const JSON_LEN = 2
const BYTES_LEN = 3
const HEADER_BYTES = 16

const IDLE = 0
const REQUEST = 1
const REPLY = 2
const CLOSED = 3

/** AUX values: whether a helper thread has built its services. */
export const HELPER_STARTING = 0
export const HELPER_READY = 1
export const HELPER_FAILED = 2

/** `Atomics.waitAsync` (ES2024; in Node 20 and evergreen browsers), typed here since the project's lib is ES2022. */
export const waitAsync = (Atomics as unknown as {
  waitAsync(view: Int32Array, index: number, value: number, timeout?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> }
}).waitAsync

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Creates a channel whose requests and replies may each carry up to `capacity` bytes. */
export function createBridge(options: { capacity?: number } = {}): BridgeChannel {
  const capacity = options.capacity ?? DEFAULT_BRIDGE_CAPACITY
  if (!Number.isInteger(capacity) || capacity < 256 || capacity > MAX_BRIDGE_CAPACITY) {
    throw new RangeError(`bridge capacity must be an integer from 256 to ${MAX_BRIDGE_CAPACITY} bytes`)
  }
  return { sab: new SharedArrayBuffer(HEADER_BYTES + capacity), capacity }
}

/** Writes one message (JSON header + raw bytes); false when it does not fit. */
function writeMessage(channel: BridgeChannel, header: Int32Array, json: Uint8Array, bytes: Uint8Array | undefined): boolean {
  const n = bytes?.byteLength ?? 0
  if (json.byteLength + n > channel.capacity) return false
  const data = new Uint8Array(channel.sab, HEADER_BYTES, channel.capacity)
  data.set(json, 0)
  if (bytes) data.set(bytes, json.byteLength)
  header[JSON_LEN] = json.byteLength
  header[BYTES_LEN] = bytes ? n : -1
  return true
}

/** Reads one message back, copying out of shared memory (decoders refuse shared views). */
function readMessage(channel: BridgeChannel, header: Int32Array): { json: unknown; bytes: Uint8Array | undefined } {
  const jsonLen = header[JSON_LEN]!
  const bytesLen = header[BYTES_LEN]!
  if (jsonLen < 0 || jsonLen > channel.capacity || bytesLen > channel.capacity - jsonLen) {
    throw new BridgeCallError('malformed bridge message')
  }
  const data = new Uint8Array(channel.sab, HEADER_BYTES, channel.capacity)
  const json = JSON.parse(decoder.decode(data.slice(0, jsonLen))) as unknown
  const bytes = bytesLen < 0 ? undefined : data.slice(jsonLen, jsonLen + bytesLen)
  return { json, bytes }
}

/** The guest side: blocking calls. Use it only on a thread that may block (a worker). */
export class BridgeClient {
  readonly #channel: BridgeChannel
  readonly #header: Int32Array
  /** The largest `bytes` payload that fits beside a small args object. */
  readonly maxBytes: number

  constructor(channel: BridgeChannel) {
    this.#channel = channel
    this.#header = new Int32Array(channel.sab, 0, 4)
    this.maxBytes = channel.capacity - 256
  }

  /**
   * Sends one request and blocks until the reply.
   * @throws BridgeCallError when the handler failed (with its errno, if any) or the request does
   *   not fit; BridgeClosedError when the serving side closed.
   */
  call(service: string, method: string, args?: unknown, bytes?: Uint8Array): { value: unknown; bytes: Uint8Array | undefined } {
    const h = this.#header
    if (Atomics.load(h, STATE) === CLOSED) throw new BridgeClosedError()
    const json = encoder.encode(JSON.stringify([service, method, args ?? null]))
    if (!writeMessage(this.#channel, h, json, bytes)) {
      throw new BridgeCallError(`payload too large: ${json.byteLength + (bytes?.byteLength ?? 0)} bytes, the bridge carries ${this.#channel.capacity}`)
    }
    // A server closing between our check and this store must not be overwritten.
    if (Atomics.compareExchange(h, STATE, IDLE, REQUEST) !== IDLE) throw new BridgeClosedError()
    Atomics.notify(h, STATE)
    let state: number
    while ((state = Atomics.load(h, STATE)) === REQUEST) Atomics.wait(h, STATE, REQUEST)
    if (state !== REPLY) throw new BridgeClosedError()
    let reply: { json: unknown; bytes: Uint8Array | undefined }
    try {
      reply = readMessage(this.#channel, h)
    } finally {
      if (Atomics.compareExchange(h, STATE, REPLY, IDLE) === REPLY) Atomics.notify(h, STATE)
    }
    const body = reply.json as { v?: unknown; e?: { name?: unknown; message?: unknown; errno?: unknown } } | null
    if (body && typeof body === 'object' && body.e) {
      const { name, message, errno } = body.e
      throw new BridgeCallError(String(message), typeof errno === 'number' ? errno : undefined, String(name))
    }
    return { value: body?.v, bytes: reply.bytes }
  }
}

/** The serving side: answers one request at a time until closed. */
export class BridgeServer {
  readonly #channel: BridgeChannel
  readonly #header: Int32Array
  readonly #services: Record<string, ServedService>
  #closed = false
  #serving: Promise<void> | undefined
  #closing: Promise<void> | undefined

  constructor(channel: BridgeChannel, services: Record<string, ServedService>) {
    this.#channel = channel
    this.#header = new Int32Array(channel.sab, 0, 4)
    this.#services = services
  }

  /** Starts answering; the promise settles when the server is closed. */
  serve(): Promise<void> {
    return (this.#serving ??= this.#loop())
  }

  async #loop(): Promise<void> {
    const h = this.#header
    while (!this.#closed) {
      const state = Atomics.load(h, STATE)
      if (state === CLOSED) return
      if (state === REQUEST) {
        await this.#answer()
        continue
      }
      const wait = waitAsync(h, STATE, state)
      if (wait.async) await wait.value
    }
  }

  async #answer(): Promise<void> {
    let reply: BridgeReply | void = undefined
    let error: { name: string; message: string; errno?: number } | undefined
    try {
      const { json, bytes } = readMessage(this.#channel, this.#header)
      if (!Array.isArray(json) || json.length !== 3 || typeof json[0] !== 'string' || typeof json[1] !== 'string') {
        throw new BridgeFault('malformed bridge request')
      }
      const [service, method, args] = json as [string, string, unknown]
      const target = Object.hasOwn(this.#services, service) ? this.#services[service] : undefined
      const handler = target && method !== 'dispose' && Object.hasOwn(target, method) ? target[method] : undefined
      if (typeof handler !== 'function') throw new BridgeFault(`no such bridge method: ${service}.${method}`)
      reply = await handler.call(target, args, bytes)
    } catch (e) {
      error = e instanceof Error
        ? { name: e.name, message: e.message, ...(e instanceof BridgeFault && e.errno !== undefined ? { errno: e.errno } : {}) }
        : { name: 'Error', message: String(e) }
    }
    if (this.#closed) return
    const h = this.#header
    let json: Uint8Array
    let bytes: Uint8Array | undefined
    try {
      json = encoder.encode(JSON.stringify(error ? { e: error } : { v: reply ? reply.value : undefined }))
      bytes = error ? undefined : reply ? reply.bytes : undefined
    } catch (e) {
      json = encoder.encode(JSON.stringify({ e: { name: 'BridgeFault', message: `reply not serialisable: ${e instanceof Error ? e.message : String(e)}` } }))
      bytes = undefined
    }
    if (!writeMessage(this.#channel, h, json, bytes)) {
      writeMessage(this.#channel, h, encoder.encode(JSON.stringify({ e: { name: 'BridgeFault', message: `reply too large for the bridge (${this.#channel.capacity} bytes)` } })), undefined)
    }
    if (Atomics.compareExchange(h, STATE, REQUEST, REPLY) === REQUEST) Atomics.notify(h, STATE)
  }

  /** Stops answering, wakes a blocked caller with `BridgeClosedError`, and disposes every service. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      this.#closed = true
      Atomics.store(this.#header, STATE, CLOSED)
      Atomics.notify(this.#header, STATE)
      const errors: unknown[] = []
      for (const service of Object.values(this.#services)) {
        try {
          await service.dispose?.()
        } catch (e) {
          errors.push(e)
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, 'a bridge service failed to dispose')
    })())
  }
}

/** The helper thread's start-up state (`HELPER_*`), on the channel's AUX slot. */
export function helperState(channel: BridgeChannel): Int32Array {
  return new Int32Array(channel.sab, AUX * 4, 1)
}

/** A helper thread reports that its services are built, or why they could not be. */
export function reportHelperStart(channel: BridgeChannel, failure?: string): void {
  const header = new Int32Array(channel.sab, 0, 4)
  if (failure !== undefined) writeMessage(channel, header, encoder.encode(JSON.stringify(failure.slice(0, 4096))), undefined)
  Atomics.store(header, AUX, failure === undefined ? HELPER_READY : HELPER_FAILED)
  Atomics.notify(header, AUX)
}

/** Why a helper thread could not start (after it reported `HELPER_FAILED`). */
export function helperFailure(channel: BridgeChannel): string {
  const header = new Int32Array(channel.sab, 0, 4)
  try {
    return String(readMessage(channel, header).json)
  } catch {
    return 'unknown failure'
  }
}
