/**
 * @module The synchronous bridge: a guest thread's blocking call to asynchronous host services
 * (sockets, async host functions, browser storage). The guest side writes one request into a
 * SharedArrayBuffer and blocks on `Atomics.wait`; the serving side (the embedder's thread, or a
 * helper thread for in-process runs) wakes through `Atomics.waitAsync`, runs the handler, writes
 * one reply back and notifies. Requests the caller need not wait for (`post`) are batched and go
 * with the next message; the server answers them in order. Every message is bounded by the
 * channel's capacity. Platform-neutral: no `node:` import (the browser reuses it). Wire format
 * and states: docs/internals.md, "The synchronous bridge".
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

/**
 * What a service method returns (or resolves to). `bytes` travels raw, not through JSON; pieces
 * (views of the service's own buffers) are copied into the channel back to back, with no join.
 */
export interface BridgeReply {
  value?: unknown
  bytes?: Uint8Array | readonly Uint8Array[]
}

/**
 * A service: method name -> handler, sync or async. A handler's `bytes` are its own copy (never
 * a view of the shared buffer): it may keep them past its return. Unless it is marked with
 * `borrowsBytes(handler)`: then, in a batch the guest waits on (it cannot touch the buffer until
 * the reply), it gets a view of the shared buffer, one copy fewer, and must be done with the
 * bytes when it returns or resolves.
 */
export interface BridgeService {
  // Handlers validate their own arguments: they come from the guest's thread.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [method: string]: ((args: any, bytes: Uint8Array | undefined) => BridgeReply | void | Promise<BridgeReply | void>) | undefined
}

/** Global (`Symbol.for`): a service outside this module (wasi-host/node) marks handlers without importing it. */
export const BORROWS = Symbol.for('caplet.bridge.borrowsBytes')

/** Marks `handler` as done with its `bytes` when it settles (see `BridgeService`); returns it. */
export function borrowsBytes<F extends (...a: never[]) => unknown>(handler: F): F {
  ;(handler as F & { [BORROWS]?: boolean })[BORROWS] = true
  return handler
}

/** Cleanup when the run ends, however it ends: close sockets, cancel timers. */
export interface BridgeServiceLifecycle {
  dispose?(): void | Promise<void>
}

export type ServedService = BridgeService & BridgeServiceLifecycle

/** Thrown by a handler to deliver an errno (and a host-side message) to the caller. */
export class BridgeFault extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message)
    this.name = 'BridgeFault'
  }
}

/** The caller's view of a failed handler: its name, message and errno, if it gave one. */
export class BridgeCallError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
    readonly remoteName = 'Error',
  ) {
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

/** The guest side owns the buffer (and may be filling it with posted requests). */
const IDLE = 0
/** A batch whose last entry wants a reply: the server answers it with REPLY. */
const REQUEST = 1
const REPLY = 2
const CLOSED = 3
/** A batch of posted requests only: the server copies it out, sets SERVING, and answers nothing. */
const POSTED = 4
/** The server is working through a posted batch it copied out; the buffer is the guest's again. */
const SERVING = 5

/** AUX values: whether a helper thread has built its services. */
export const HELPER_STARTING = 0
export const HELPER_READY = 1
export const HELPER_FAILED = 2

/** `Atomics.waitAsync` (ES2024; in Node 20 and evergreen browsers), typed here since the project's lib is ES2022. */
export const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      view: Int32Array,
      index: number,
      value: number,
      timeout?: number,
    ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> }
  }
).waitAsync

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

/**
 * Writes one message: raw bytes first (from offset 0, where posted requests' bytes already sit),
 * then the JSON header after them. `bytes` undefined with `bytesLen` > 0: the bytes are in place.
 */
function writeMessage(
  channel: BridgeChannel,
  header: Int32Array,
  json: Uint8Array,
  bytes: Uint8Array | readonly Uint8Array[] | undefined,
  bytesLen = byteLength(bytes),
): boolean {
  if (json.byteLength + bytesLen > channel.capacity) return false
  const data = new Uint8Array(channel.sab, HEADER_BYTES, channel.capacity)
  if (bytes instanceof Uint8Array) data.set(bytes, 0)
  else if (bytes) {
    let at = 0
    for (const b of bytes) {
      data.set(b, at)
      at += b.byteLength
    }
  }
  data.set(json, bytesLen)
  header[JSON_LEN] = json.byteLength
  header[BYTES_LEN] = bytesLen
  return true
}

function byteLength(bytes: Uint8Array | readonly Uint8Array[] | undefined): number {
  if (bytes === undefined) return 0
  if (bytes instanceof Uint8Array) return bytes.byteLength
  let n = 0
  for (const b of bytes) n += b.byteLength
  return n
}

/**
 * Reads one message back, copying out of shared memory (decoders refuse shared views); with
 * `view`, the raw bytes stay where they are (the caller uses them before the buffer is reused).
 */
function readMessage(channel: BridgeChannel, header: Int32Array, view = false): { json: unknown; bytes: Uint8Array } {
  const jsonLen = header[JSON_LEN]!
  const bytesLen = header[BYTES_LEN]!
  if (jsonLen < 0 || bytesLen < 0 || jsonLen > channel.capacity || bytesLen > channel.capacity - jsonLen) {
    throw new BridgeCallError('malformed bridge message')
  }
  const data = new Uint8Array(channel.sab, HEADER_BYTES, channel.capacity)
  const json = JSON.parse(decoder.decode(data.slice(bytesLen, bytesLen + jsonLen))) as unknown
  // One copy of every entry's bytes; entries get views of it (never of the shared buffer).
  const bytes = view ? data.subarray(0, bytesLen) : data.slice(0, bytesLen)
  return { json, bytes }
}

/** How a posted request's outcome comes back (with the next reply): its value, or its failure. */
export type PostedOutcome = (value: unknown, error: BridgeCallError | undefined) => void

/** A failure or value of posted requests, as the server reports it: `[seq, value]` or `[seq, null, error]`. */
type PostedResult = [number, unknown] | [number, null, { name: string; message: string; errno?: number }]

/** Room kept for the batch's JSON framing beside its entries. */
const FRAME_ROOM = 32

/** The guest side: blocking calls. Use it only on a thread that may block (a worker). */
export class BridgeClient {
  readonly #channel: BridgeChannel
  readonly #header: Int32Array
  readonly #data: Uint8Array
  /** The largest `bytes` payload that fits beside a small args object. */
  readonly maxBytes: number
  /** Posted entries not yet handed over (their bytes already at the start of the buffer). */
  #entries: string[] = []
  #entriesLen = 0
  #bytesAt = 0
  #seq = 0
  /** Outcome callbacks of posted requests, by sequence number, until the server reports them. */
  readonly #outcomes = new Map<number, PostedOutcome>()
  /** Posted requests handed over since the last reply: `settle` has something to wait for. */
  #inFlight = false
  /** Failures of posted requests nobody asked about: thrown by the next `call` or `settle`. */
  #unclaimed: BridgeCallError | undefined

  constructor(channel: BridgeChannel) {
    this.#channel = channel
    this.#header = new Int32Array(channel.sab, 0, 4)
    this.#data = new Uint8Array(channel.sab, HEADER_BYTES, channel.capacity)
    this.maxBytes = channel.capacity - 256
  }

  /**
   * Sends one request and blocks until the reply. Requests posted before it go first, in the
   * same round trip, and the server answers them in order. With `view`, the reply's bytes are a
   * view of the shared buffer, not a copy: valid only until this client's next `call`, `post`,
   * `flush` or `settle` (one copy fewer for a caller that uses them at once).
   * @throws BridgeCallError when the handler failed (with its errno, if any), the request does
   *   not fit, or a posted request without an outcome callback failed; BridgeClosedError when
   *   the serving side closed.
   */
  call(
    service: string,
    method: string,
    args?: unknown,
    bytes?: Uint8Array,
    view = false,
  ): { value: unknown; bytes: Uint8Array | undefined } {
    const entry = JSON.stringify([service, method, args ?? null, bytes ? bytes.byteLength : -1, -1])
    const n = bytes?.byteLength ?? 0
    if (!this.#fits(entry, n)) {
      this.#handOver(true)
      if (!this.#fits(entry, n)) {
        throw new BridgeCallError(`payload too large: ${entry.length + n} bytes, the bridge carries ${this.#channel.capacity}`)
      }
    }
    this.#append(entry, bytes)
    const reply = this.#handOver(true, view)!
    const body = reply.json as { v?: unknown; e?: { name?: unknown; message?: unknown; errno?: unknown } } | null
    const last = reply.last
    if (body && typeof body === 'object' && body.e) {
      const { name, message, errno } = body.e
      this.#unclaimed = undefined
      throw new BridgeCallError(String(message), typeof errno === 'number' ? errno : undefined, String(name))
    }
    this.#throwUnclaimed()
    return { value: body?.v, bytes: last }
  }

  /**
   * Queues a request whose answer the caller does not wait for; it travels with the next
   * `call`, `flush` or `settle` (or at once when the batch is full) and runs before them, in
   * order. `outcome`, if given, learns its value (when it has one) or failure when the next
   * reply arrives;
   * without it, a failure is thrown by the next `call` or `settle`.
   * @throws BridgeCallError when the request alone does not fit; BridgeClosedError when closed.
   */
  post(service: string, method: string, args?: unknown, bytes?: Uint8Array, outcome?: PostedOutcome): void {
    const seq = this.#seq++
    const entry = JSON.stringify([service, method, args ?? null, bytes ? bytes.byteLength : -1, seq, outcome ? 1 : 0])
    const n = bytes?.byteLength ?? 0
    if (!this.#fits(entry, n)) {
      // A full batch goes over as a round trip: its failures come back now, and a service that
      // waits (back-pressure) holds the guest here rather than growing a queue.
      this.#handOver(true)
      if (!this.#fits(entry, n)) {
        throw new BridgeCallError(`payload too large: ${entry.length + n} bytes, the bridge carries ${this.#channel.capacity}`)
      }
    }
    if (outcome) this.#outcomes.set(seq, outcome)
    this.#append(entry, bytes)
  }

  /** Hands the posted requests to the server without waiting for them (it serves them meanwhile). */
  flush(): void {
    if (this.#entries.length > 0) this.#handOver(false)
  }

  /**
   * Waits until every posted request has run; reports their outcomes.
   * @throws BridgeCallError when a posted request without an outcome callback failed.
   */
  settle(): void {
    if (this.#entries.length > 0 || this.#inFlight) this.#handOver(true)
    this.#throwUnclaimed()
  }

  #throwUnclaimed(): void {
    const e = this.#unclaimed
    if (e !== undefined) {
      this.#unclaimed = undefined
      throw e
    }
  }

  #fits(entry: string, n: number): boolean {
    // UTF-16 length bounds the UTF-8 length only for ASCII; args are small, 3x covers the rest.
    return this.#bytesAt + n + (this.#entriesLen + entry.length + 1) * 3 + FRAME_ROOM <= this.#channel.capacity
  }

  #append(entry: string, bytes: Uint8Array | undefined): void {
    // The buffer is ours while the server is idle or serving an earlier batch it copied out.
    this.#awaitOwnership()
    if (bytes) {
      this.#data.set(bytes, this.#bytesAt)
      this.#bytesAt += bytes.byteLength
    }
    this.#entries.push(entry)
    this.#entriesLen += entry.length + 1
  }

  /** Blocks while the server still has to copy out an earlier batch. */
  #awaitOwnership(): void {
    const h = this.#header
    let state: number
    while ((state = Atomics.load(h, STATE)) === POSTED) Atomics.wait(h, STATE, POSTED)
    if (state === CLOSED) throw new BridgeClosedError()
  }

  /**
   * Sends the pending batch: as a REQUEST (wait for the reply) or POSTED (return at once).
   * An empty REQUEST is answered with the outcomes of posted requests only.
   */
  #handOver(wait: boolean, view = false): { json: unknown; last: Uint8Array | undefined } | undefined {
    const h = this.#header
    this.#awaitOwnership()
    const json = encoder.encode(`{"r":${wait ? 1 : 0},"q":[${this.#entries.join(',')}]}`)
    if (!writeMessage(this.#channel, h, json, undefined, this.#bytesAt)) {
      throw new BridgeCallError(`batch too large for the bridge (${this.#channel.capacity} bytes)`)
    }
    this.#entries = []
    this.#entriesLen = 0
    this.#bytesAt = 0
    const to = wait ? REQUEST : POSTED
    // The server may move SERVING to IDLE meanwhile; a CLOSED server must not be overwritten.
    for (;;) {
      const state = Atomics.load(h, STATE)
      if (state !== IDLE && state !== SERVING) throw new BridgeClosedError()
      if (Atomics.compareExchange(h, STATE, state, to) === state) break
    }
    Atomics.notify(h, STATE)
    if (!wait) {
      this.#inFlight = true
      return undefined
    }
    let state: number
    while ((state = Atomics.load(h, STATE)) === REQUEST) Atomics.wait(h, STATE, REQUEST)
    if (state !== REPLY) throw new BridgeClosedError()
    let reply: { json: unknown; bytes: Uint8Array }
    try {
      reply = readMessage(this.#channel, h, view)
    } finally {
      // No notify: nobody needs this transition, and the server waiting on REPLY wakes with
      // the next request's notify (a notify here would cost the serving thread a wake-up per
      // round trip).
      Atomics.compareExchange(h, STATE, REPLY, IDLE)
    }
    this.#inFlight = false
    const body = reply.json as { p?: unknown; n?: unknown } | null
    if (body && typeof body === 'object' && Array.isArray(body.p)) this.#report(body.p as PostedResult[])
    const n = body && typeof body === 'object' && typeof body.n === 'number' ? body.n : -1
    return { json: reply.json, last: n < 0 ? undefined : reply.bytes.subarray(0, n) }
  }

  #report(results: PostedResult[]): void {
    for (const r of results) {
      if (!Array.isArray(r) || typeof r[0] !== 'number') continue
      const cb = this.#outcomes.get(r[0])
      this.#outcomes.delete(r[0])
      const e = r.length > 2 ? (r[2] as { name?: unknown; message?: unknown; errno?: unknown } | null) : null
      const error = e
        ? new BridgeCallError(String(e.message), typeof e.errno === 'number' ? e.errno : undefined, String(e.name))
        : undefined
      if (cb) cb(error ? undefined : r[1], error)
      else if (error) this.#unclaimed ??= error
    }
    // Entries that ran without a report (succeeded, no callback asked for a value) are done too.
    if (this.#entries.length === 0) this.#outcomes.clear()
  }
}

/** A failure as the wire carries it. */
type WireError = { name: string; message: string; errno?: number }

/** One handler's outcome and how many of the batch's bytes its entry took. */
type RunResult = { reply?: BridgeReply | void; error?: WireError; used: number }

function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
}

function wireError(e: unknown): WireError {
  return e instanceof Error
    ? { name: e.name, message: e.message, ...(e instanceof BridgeFault && e.errno !== undefined ? { errno: e.errno } : {}) }
    : { name: 'Error', message: String(e) }
}

/** How long the serving side waits, spinning, for the guest's next request after a reply. */
const SPIN_MS = 0.05

/** The longest the serving side answers requests without giving its event loop a turn. */
const TURN_MS = 2

/** Resolves in a later turn of the event loop (after pending I/O), not in a microtask. */
function nextTurn(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate
  return new Promise((resolve) => (immediate ? immediate(resolve) : setTimeout(resolve, 0)))
}

/** Servers answering on this thread: the spin is for a thread that serves one guest only. */
let serving = 0

/** The serving side: answers requests in order until closed. */
export class BridgeServer {
  readonly #channel: BridgeChannel
  readonly #header: Int32Array
  readonly #services: Record<string, ServedService>
  #closed = false
  #serving: Promise<void> | undefined
  #closing: Promise<void> | undefined
  /** Outcomes of posted requests to report with the next reply. */
  #posted: PostedResult[] = []
  /** Replies after which `#awaitNext` does not spin (it missed lately): doubles per miss. */
  #spinSkip = 0
  #spinBackoff = 0

  /**
   * Right after a reply the guest usually sends its next request within microseconds (it only
   * computes in between): waiting for it here, briefly, costs less than sleeping in the event
   * loop and being woken through `waitAsync` (two thread switches, which on a VM cost tens of
   * microseconds). Adaptive: after a miss (the guest took longer, e.g. it blocks elsewhere or
   * the machine is busy), the next 1, 2, 4 … 64 replies do not spin. Only while this thread
   * serves one guest: with several, the time is theirs.
   */
  #awaitNext(): void {
    // Several guests served by this thread: a spin for one would keep the others waiting.
    if (serving > 1) return
    if (this.#spinSkip > 0) {
      this.#spinSkip--
      return
    }
    const h = this.#header
    const end = performance.now() + SPIN_MS
    for (let i = 1; ; i++) {
      const state = Atomics.load(h, STATE)
      if (state !== REPLY && state !== IDLE) {
        this.#spinBackoff = 0
        return
      }
      if ((i & 63) === 0 && performance.now() > end) break
    }
    this.#spinBackoff = Math.min(this.#spinBackoff * 2 + 1, 64)
    this.#spinSkip = this.#spinBackoff
  }

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
    serving++
    try {
      await this.#answerAll()
    } finally {
      serving--
    }
  }

  async #answerAll(): Promise<void> {
    const h = this.#header
    let since = performance.now()
    while (!this.#closed) {
      const state = Atomics.load(h, STATE)
      if (state === CLOSED) return
      if (state === REQUEST || state === POSTED) {
        await this.#answer(state === REQUEST)
        // Requests answered back to back never leave the microtask queue: the event loop (the
        // sockets, timers such as the run's timeout) gets a turn at least every TURN_MS.
        if (performance.now() - since > TURN_MS) {
          await nextTurn()
          since = performance.now()
        } else if (state === REQUEST) this.#awaitNext()
        continue
      }
      const wait = waitAsync(h, STATE, state)
      if (wait.async) {
        await wait.value
        since = performance.now()
      }
    }
  }

  /**
   * Runs one handler; its reply, or its failure as the wire carries it. Synchronous when the
   * handler is (no promise, no microtask turn per entry on the hot path).
   */
  #run(entry: unknown, bytes: Uint8Array, at: number, shared: boolean): RunResult | Promise<RunResult> {
    let used = 0
    try {
      if (
        !Array.isArray(entry) ||
        entry.length < 5 ||
        typeof entry[0] !== 'string' ||
        typeof entry[1] !== 'string' ||
        typeof entry[3] !== 'number'
      ) {
        throw new BridgeFault('malformed bridge request')
      }
      const [service, method, args, len] = entry as [string, string, unknown, number]
      if (len > bytes.byteLength - at) throw new BridgeFault('malformed bridge request')
      used = len < 0 ? 0 : len
      const target = Object.hasOwn(this.#services, service) ? this.#services[service] : undefined
      const handler = target && method !== 'dispose' && Object.hasOwn(target, method) ? target[method] : undefined
      if (typeof handler !== 'function') throw new BridgeFault(`no such bridge method: ${service}.${method}`)
      // A view of the shared buffer only for a handler that lets go of it when it settles.
      const own =
        len < 0
          ? undefined
          : shared && (handler as { [BORROWS]?: boolean })[BORROWS] !== true
            ? bytes.slice(at, at + len)
            : bytes.subarray(at, at + len)
      const reply = handler.call(target, args, own)
      if (isThenable(reply)) {
        const u = used
        return Promise.resolve(reply).then(
          (r: BridgeReply | void): RunResult => ({ reply: r, used: u }),
          (e: unknown): RunResult => ({ error: wireError(e), used: u }),
        )
      }
      return { reply, used }
    } catch (e) {
      return { error: wireError(e), used }
    }
  }

  async #answer(wantsReply: boolean): Promise<void> {
    const h = this.#header
    let batch: unknown[] = []
    let bytes: Uint8Array = new Uint8Array(0)
    let failure: { name: string; message: string } | undefined
    try {
      // A batch the guest waits on leaves the buffer alone until the reply: its bytes are read
      // in place (each handler gets a copy of its own unless it borrows them).
      const m = readMessage(this.#channel, h, wantsReply)
      const json = m.json as { r?: unknown; q?: unknown } | null
      if (!json || typeof json !== 'object' || !Array.isArray(json.q)) throw new BridgeFault('malformed bridge request')
      batch = json.q
      bytes = m.bytes
    } catch (e) {
      failure = { name: 'BridgeFault', message: e instanceof Error ? e.message : String(e) }
    }
    // Copied out: the guest may fill the buffer again while the batch runs.
    if (!wantsReply && Atomics.compareExchange(h, STATE, POSTED, SERVING) === POSTED) Atomics.notify(h, STATE)
    let last: { reply?: BridgeReply | void; error?: { name: string; message: string; errno?: number } } | undefined
    let at = 0
    for (let i = 0; i < batch.length && failure === undefined; i++) {
      const entry = batch[i]
      const isCall = wantsReply && i === batch.length - 1 && Array.isArray(entry) && entry[4] === -1
      const run = this.#run(entry, bytes, at, wantsReply)
      const r = isThenable(run) ? await run : run
      at += r.used
      if (this.#closed) return
      if (isCall) last = r
      else {
        const seq = Array.isArray(entry) && typeof entry[4] === 'number' ? entry[4] : -1
        if (r.error) this.#posted.push([seq, null, r.error])
        else if (Array.isArray(entry) && entry[5] === 1 && r.reply && r.reply.value !== undefined) this.#posted.push([seq, r.reply.value])
      }
    }
    if (this.#closed) return
    if (!wantsReply) {
      if (Atomics.compareExchange(h, STATE, SERVING, IDLE) === SERVING) Atomics.notify(h, STATE)
      return
    }
    const p = this.#posted
    this.#posted = []
    let json: Uint8Array
    let out: Uint8Array | readonly Uint8Array[] | undefined
    const error = failure ?? last?.error
    try {
      const reply = last?.reply
      out = error ? undefined : reply ? reply.bytes : undefined
      json = encoder.encode(
        JSON.stringify({
          ...(error ? { e: error } : { v: reply ? reply.value : undefined }),
          ...(p.length > 0 ? { p } : {}),
          n: out ? byteLength(out) : -1,
        }),
      )
    } catch (e) {
      json = encoder.encode(
        JSON.stringify({
          e: { name: 'BridgeFault', message: `reply not serialisable: ${e instanceof Error ? e.message : String(e)}` },
          p,
          n: -1,
        }),
      )
      out = undefined
    }
    if (!writeMessage(this.#channel, h, json, out)) {
      writeMessage(
        this.#channel,
        h,
        encoder.encode(
          JSON.stringify({
            e: { name: 'BridgeFault', message: `reply too large for the bridge (${this.#channel.capacity} bytes)` },
            p,
            n: -1,
          }),
        ),
        undefined,
      )
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
