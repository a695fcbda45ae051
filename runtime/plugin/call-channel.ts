/**
 * @module The call channel between the embedder and a plugin's worker: one call at a time through
 * a SharedArrayBuffer (the worker blocks in `Atomics.wait`, the embedder wakes by
 * `Atomics.waitAsync`), cheaper per call than two structured-clone messages. A request or an
 * outcome that does not fit (a large input or output, any failure) travels on a MessagePort read
 * synchronously (`receiveMessageOnPort`). Never trusts a length read back: each is checked
 * against the buffer before use. Not the bridge (`worker/bridge.ts`): its caller blocks and its
 * server awaits; here the embedder calls without blocking and the worker serves blocked.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { waitAsync } from '../worker/bridge.js'
import type { CallOutcome, CallRequest } from './engine.js'

// Int32 slots of the header, then the data region.
const STATE = 0
const NAME_LEN = 1
const INPUT_LEN = 2
const OUTPUT_LEN = 3
const FUEL_LO = 4
const FUEL_HI = 5
const MAX_OUTPUT = 6
const FLAGS = 7
const HEADER_BYTES = 32

export const IDLE = 0
const CALL = 1
const DONE = 2
/** The worker is gone (killed, closed): no outcome will come. */
export const GONE = 3

const F_PORT = 1
const F_FUEL = 2
const F_MAX_OUTPUT = 4

/** Default room for a request's name and input, or a successful call's output. */
export const CALL_CHANNEL_BYTES = 256 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function createCallBuffer(bytes = CALL_CHANNEL_BYTES): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + bytes)
}

/** The embedder's side. */
export class CallSender {
  readonly #h: Int32Array
  readonly #data: Uint8Array
  readonly #port: MessagePort

  constructor(sab: SharedArrayBuffer, port: MessagePort) {
    this.#h = new Int32Array(sab, 0, HEADER_BYTES / 4)
    this.#data = new Uint8Array(sab, HEADER_BYTES)
    this.#port = port
  }

  /** Sends one request (the worker must be idle) and resolves with its outcome, or `undefined` when the worker went away. */
  async call(req: CallRequest): Promise<CallOutcome | undefined> {
    const h = this.#h
    const name = encoder.encode(req.name)
    let flags = 0
    if (name.byteLength + req.input.byteLength <= this.#data.byteLength) {
      this.#data.set(name, 0)
      this.#data.set(req.input, name.byteLength)
      h[NAME_LEN] = name.byteLength
      h[INPUT_LEN] = req.input.byteLength
      if (req.fuel !== undefined) {
        flags |= F_FUEL
        h[FUEL_LO] = req.fuel % 0x1_0000_0000
        h[FUEL_HI] = Math.floor(req.fuel / 0x1_0000_0000)
      }
      if (req.maxOutput !== undefined) {
        flags |= F_MAX_OUTPUT
        h[MAX_OUTPUT] = Math.min(req.maxOutput, 0x7fffffff)
      }
    } else {
      flags = F_PORT
      this.#port.postMessage(req, [req.input.buffer as ArrayBuffer])
    }
    h[FLAGS] = flags
    if (Atomics.compareExchange(h, STATE, IDLE, CALL) !== IDLE) return undefined
    Atomics.notify(h, STATE)
    let state: number
    while ((state = Atomics.load(h, STATE)) === CALL) {
      const w = waitAsync(h, STATE, CALL)
      if (w.async) await w.value
    }
    if (state !== DONE) return undefined
    let outcome: CallOutcome | undefined
    if ((h[FLAGS]! & F_PORT) !== 0) {
      outcome = receiveMessageOnPort(this.#port)?.message as CallOutcome | undefined
    } else {
      const n = h[OUTPUT_LEN]!
      outcome = n >= 0 && n <= this.#data.byteLength ? { ok: true, output: this.#data.slice(0, n) } : undefined
    }
    if (Atomics.compareExchange(h, STATE, DONE, IDLE) !== DONE) return undefined
    return outcome
  }

  /** Marks the worker gone and wakes a waiting `call`. */
  gone(): void {
    Atomics.store(this.#h, STATE, GONE)
    Atomics.notify(this.#h, STATE)
  }
}

/** The worker's side: blocks for each request, answers it, then runs `after` (the deferred reset). */
export function serveCalls(sab: SharedArrayBuffer, port: MessagePort, run: (req: CallRequest) => CallOutcome, after: () => void): never {
  const h = new Int32Array(sab, 0, HEADER_BYTES / 4)
  const data = new Uint8Array(sab, HEADER_BYTES)
  for (;;) {
    let state: number
    while ((state = Atomics.load(h, STATE)) !== CALL) {
      if (state === GONE) throw new Error('the plugin worker was released')
      Atomics.wait(h, STATE, state)
    }
    const flags = h[FLAGS]!
    let req: CallRequest | undefined
    if ((flags & F_PORT) !== 0) req = receiveMessageOnPort(port)?.message as CallRequest | undefined
    else {
      const nameLen = h[NAME_LEN]!
      const inputLen = h[INPUT_LEN]!
      if (nameLen >= 0 && inputLen >= 0 && nameLen + inputLen <= data.byteLength) {
        req = { name: decoder.decode(data.slice(0, nameLen)), input: data.slice(nameLen, nameLen + inputLen) }
        if ((flags & F_FUEL) !== 0) req.fuel = (h[FUEL_HI]! >>> 0) * 0x1_0000_0000 + (h[FUEL_LO]! >>> 0)
        if ((flags & F_MAX_OUTPUT) !== 0) req.maxOutput = h[MAX_OUTPUT]!
      }
    }
    const outcome: CallOutcome = req === undefined ? { ok: false, failure: 'usage', message: 'malformed call request' } : run(req)
    if (outcome.ok && outcome.output.byteLength <= data.byteLength) {
      data.set(outcome.output, 0)
      h[OUTPUT_LEN] = outcome.output.byteLength
      h[FLAGS] = 0
    } else {
      // The cause (an Error object of this thread) does not travel; its message does.
      if (!outcome.ok) delete outcome.cause
      port.postMessage(outcome, outcome.ok ? [outcome.output.buffer as ArrayBuffer] : undefined)
      h[FLAGS] = F_PORT
    }
    if (Atomics.compareExchange(h, STATE, CALL, DONE) === CALL) Atomics.notify(h, STATE)
    after()
  }
}
