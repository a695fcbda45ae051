/**
 * @module The `net` bridge service: a run's granted sockets on `node:net`, on the thread that does
 * the run's async work, answering `net/remote-sockets.ts` (wire format there).
 *
 * SECURITY: opens exactly the listeners and connections of its config (literal addresses, no DNS),
 * names sockets only by ids it handed out, and bounds everything: backlog, `maxConnections`,
 * `bufferBytes` per socket each way, `idleTimeoutMs`. `dispose()` destroys every socket however
 * the run ended. A peer's failure is an errno (reset, broken pipe), never a throw at the guest.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { Errno } from '../abi/constants.js'
import type { NetStats, OpenedSocket } from '../net/remote-sockets.js'
import { hostErrno } from './host-errno.js'

/** One grant, already parsed and checked by the policy (literal addresses only). */
export type NetGrantSpec =
  | { kind: 'listen'; host: string; port: number; name?: string }
  | { kind: 'listen'; path: string; name?: string }
  | { kind: 'connect'; host: string; port: number; name?: string }
  | { kind: 'connect'; path: string; name?: string }

export interface NetServiceConfig {
  grants: NetGrantSpec[]
  /** Connections from listeners open at once, pending and lingering (closed, still sending) ones included (default 64). */
  maxConnections?: number
  /** Connections a listener holds that the guest has not accepted yet (default: min(128, maxConnections)). */
  backlog?: number
  /** Bytes buffered per connection in each direction before back-pressure (default 256 KiB). */
  bufferBytes?: number
  /** A connection with no traffic for this long is closed (`TIMEDOUT`); default none. */
  idleTimeoutMs?: number
}

type Reply = { value?: unknown; bytes?: Uint8Array | readonly Uint8Array[] }

const DEFAULT_MAX_CONNECTIONS = 64
const DEFAULT_BUFFER = 256 * 1024
/** How long a connection the guest closed may take to hand its last bytes to a slow peer. */
const LINGER_MS = 10_000
/** What the kernel may queue before Node accepts (Node accepts at once; caplet then applies `backlog`). */
const KERNEL_BACKLOG = 511
/** The most `poll` hands the guest ahead of its `recv`, per connection. */
const PREFETCH = 256 * 1024

/** Something a request can wait on: woken by any change of its state. */
class Waitable {
  #waiters: (() => void)[] = []
  wait(cb: () => void): void {
    this.#waiters.push(cb)
  }
  unwait(cb: () => void): void {
    const i = this.#waiters.indexOf(cb)
    if (i >= 0) this.#waiters.splice(i, 1)
  }
  notify(): void {
    const w = this.#waiters
    if (w.length === 0) return
    this.#waiters = []
    for (const cb of w) cb()
  }
}

class Connection extends Waitable {
  readonly chunks: Buffer[] = []
  /** Bytes in `chunks`, and the offset into the first one. */
  buffered = 0
  head = 0
  eof = false
  errno = 0
  readShut = false
  writeShut = false
  paused = false
  /** Counted against `maxConnections` (accepted from a listener or redialed, not closed by the guest). */
  counted = false
  /** A connect grant's connection: the one address `redial` may dial again. */
  grant: Extract<NetGrantSpec, { kind: 'connect' }> | undefined
  constructor(
    readonly id: number,
    readonly socket: Socket,
  ) {
    super()
  }
}

class Listener extends Waitable {
  readonly pending: Connection[] = []
  closed = false
  constructor(
    readonly id: number,
    readonly server: Server,
  ) {
    super()
  }
}

function errnoOfNodeError(e: unknown): number {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  if (code === 'EPIPE') return Errno.PIPE
  if (code === 'ECONNRESET') return Errno.CONNRESET
  // A peer's failure is an errno the guest can handle; one Node names in no table is still a dead connection.
  return hostErrno(code) ?? Errno.CONNABORTED
}

function formatAddress(a: AddressInfo | string | null): string {
  if (a === null) return ''
  if (typeof a === 'string') return `unix:${a}`
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}

/** Resolves after the I/O callbacks of the event loop's current turn (`setImmediate`). */
function afterIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** A reply with nothing in it (shared: the bridge only reads replies). */
const EMPTY_REPLY: Reply = Object.freeze({})

function fail(errno: number): Reply {
  return { value: { e: errno } }
}

export class NetService {
  readonly #config: Required<Omit<NetServiceConfig, 'idleTimeoutMs'>> & { idleTimeoutMs: number | undefined }
  readonly #objects = new Map<number, Connection | Listener>()
  readonly #servers: Server[] = []
  readonly #sockets = new Set<Socket>()
  #nextId = 1
  #live = 0
  #disposed = false
  #started: Promise<OpenedSocket[]> | undefined
  readonly #stats: NetStats = { connections: 0, refused: 0, dialed: 0, bytesIn: 0, bytesOut: 0 }
  /** Every pending wait's wake-up, so `dispose` can end them. */
  readonly #timers = new Set<ReturnType<typeof setTimeout>>()

  constructor(config: NetServiceConfig) {
    const maxConnections = config.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    this.#config = {
      grants: config.grants,
      maxConnections,
      backlog: config.backlog ?? Math.min(128, maxConnections),
      bufferBytes: config.bufferBytes ?? DEFAULT_BUFFER,
      idleTimeoutMs: config.idleTimeoutMs,
    }
  }

  /** Opens every grant (listens, connects); resolves with them in order. @throws Error naming the grant that failed */
  start(): Promise<OpenedSocket[]> {
    return (this.#started ??= this.#open())
  }

  /** What crossed the network so far. */
  counters(): NetStats {
    return { ...this.#stats }
  }

  async #open(): Promise<OpenedSocket[]> {
    const out: OpenedSocket[] = []
    for (const g of this.#config.grants) {
      const where = 'path' in g ? `unix:${g.path}` : g.host.includes(':') ? `[${g.host}]:${g.port}` : `${g.host}:${g.port}`
      try {
        if (g.kind === 'listen') out.push(await this.#listen(g, where))
        else out.push(await this.#connect(g))
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        throw new Error(`${g.kind} ${where}: ${code ?? (e as Error).message}`, { cause: e })
      }
    }
    return out
  }

  #listen(g: Extract<NetGrantSpec, { kind: 'listen' }>, _where: string): Promise<OpenedSocket> {
    return new Promise((resolve, reject) => {
      if (this.#disposed) {
        reject(new Error('closed'))
        return
      }
      const server = createServer({ allowHalfOpen: true, noDelay: true })
      this.#servers.push(server)
      const l = new Listener(this.#nextId++, server)
      server.on('connection', (s) => this.#incoming(l, s))
      server.once('error', reject)
      const done = () => {
        server.off('error', reject)
        // A listener's later errors (EMFILE on accept) must not crash the host.
        server.on('error', () => {})
        this.#objects.set(l.id, l)
        resolve({ id: l.id, role: 'listener', ...(g.name !== undefined ? { name: g.name } : {}), address: formatAddress(server.address()) })
      }
      // The kernel queue is not the bound (`backlog` is, above it): a short one only makes clients retry SYNs.
      if ('path' in g) server.listen({ path: g.path, backlog: KERNEL_BACKLOG }, done)
      else server.listen({ host: g.host, port: g.port, backlog: KERNEL_BACKLOG, ipv6Only: g.host.includes(':') }, done)
    })
  }

  async #connect(g: Extract<NetGrantSpec, { kind: 'connect' }>): Promise<OpenedSocket> {
    const c = await this.#dial(g)
    const s = c.socket
    const address =
      'path' in g
        ? `unix:${g.path}`
        : s.remoteFamily === 'IPv6'
          ? `[${s.remoteAddress}]:${s.remotePort}`
          : `${s.remoteAddress}:${s.remotePort}`
    return { id: c.id, role: 'connection', ...(g.name !== undefined ? { name: g.name } : {}), address }
  }

  /** Connects to the grant's address (its literal address: nothing else is ever dialed). */
  #dial(g: Extract<NetGrantSpec, { kind: 'connect' }>): Promise<Connection> {
    return new Promise((resolve, reject) => {
      if (this.#disposed) {
        reject(new Error('closed'))
        return
      }
      const s =
        'path' in g
          ? createConnection({ path: g.path, allowHalfOpen: true })
          : createConnection({ host: g.host, port: g.port, allowHalfOpen: true, noDelay: true })
      this.#sockets.add(s)
      const failed = (e?: Error) => {
        this.#sockets.delete(s)
        s.destroy()
        reject(e ?? new Error('closed'))
      }
      // Destroyed by `dispose` before it connected: no error event comes, only the close.
      const closed = () => failed()
      s.once('error', failed)
      s.once('close', closed)
      s.once('connect', () => {
        s.off('error', failed)
        s.off('close', closed)
        const c = this.#adopt(s)
        c.grant = g
        resolve(c)
      })
    })
  }

  #incoming(l: Listener, s: Socket): void {
    this.#sockets.add(s)
    s.on('close', () => this.#sockets.delete(s))
    s.on('error', () => {})
    if (this.#disposed || l.closed || this.#live >= this.#config.maxConnections || l.pending.length >= this.#config.backlog) {
      // Refused: closed at once, with a FIN (nothing was read, nothing is owed).
      this.#stats.refused++
      s.destroy()
      return
    }
    this.#stats.connections++
    const c = this.#adopt(s)
    c.counted = true
    this.#live++
    l.pending.push(c)
    l.notify()
  }

  /** Watches a connected socket: its bytes are queued (bounded), its end and errors recorded. */
  #adopt(s: Socket): Connection {
    const c = new Connection(this.#nextId++, s)
    this.#objects.set(c.id, c)
    this.#sockets.add(s)
    const cap = this.#config.bufferBytes
    s.on('data', (b: Buffer) => {
      this.#stats.bytesIn += b.byteLength
      if (c.readShut) return // SHUT_RD: what arrives now is discarded
      c.chunks.push(b)
      c.buffered += b.byteLength
      if (c.buffered >= cap && !c.paused) {
        c.paused = true
        s.pause()
      }
      c.notify()
    })
    s.on('end', () => {
      c.eof = true
      c.notify()
    })
    s.on('error', (e) => {
      if (c.errno === 0) c.errno = errnoOfNodeError(e)
      c.notify()
    })
    s.on('drain', () => c.notify())
    s.on('close', () => {
      this.#sockets.delete(s)
      // Closed with neither an end nor an error seen (destroyed here): the stream is over.
      if (c.errno === 0 && !c.eof) c.eof = true
      c.notify()
    })
    if (this.#config.idleTimeoutMs !== undefined) {
      s.setTimeout(this.#config.idleTimeoutMs, () => {
        if (c.errno === 0) c.errno = Errno.TIMEDOUT
        s.destroy()
        c.notify()
      })
    }
    return c
  }

  /** Resolves when `objs` change or `ms` passes (-1: no limit); never rejects. */
  #waitAny(objs: Waitable[], ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const wake = () => {
        for (const o of objs) o.unwait(wake)
        if (timer !== undefined) {
          clearTimeout(timer)
          this.#timers.delete(timer)
        }
        resolve()
      }
      for (const o of objs) o.wait(wake)
      if (ms >= 0) {
        timer = setTimeout(wake, ms)
        this.#timers.add(timer)
      }
      if (this.#disposed) wake()
    })
  }

  #connection(id: unknown): Connection | undefined {
    const o = typeof id === 'number' ? this.#objects.get(id) : undefined
    return o instanceof Connection ? o : undefined
  }

  /**
   * Up to `max` queued bytes, as views of the chunks Node emitted (no copy: Node never reuses
   * one; the bridge copies them into its buffer back to back). Consumed unless `peek`.
   */
  #take(c: Connection, max: number, peek: boolean): Uint8Array[] {
    const n = Math.min(max, c.buffered)
    const out: Uint8Array[] = []
    let at = 0
    let i = 0
    let head = c.head
    while (at < n) {
      const b = c.chunks[i]!
      const k = Math.min(b.byteLength - head, n - at)
      out.push(b.subarray(head, head + k))
      at += k
      head += k
      if (head === b.byteLength) {
        i++
        head = 0
      }
    }
    if (!peek) this.#consumed(c, i, head, n)
    return out
  }

  #consumed(c: Connection, chunks: number, head: number, n: number): void {
    if (chunks > 0) c.chunks.splice(0, chunks)
    c.head = head
    c.buffered -= n
    if (c.paused && c.buffered < this.#config.bufferBytes) {
      c.paused = false
      c.socket.resume()
    }
  }

  // ---- the bridge methods (see NET_PROTOCOL in remote-sockets.ts) ---------------------------

  async open(): Promise<Reply> {
    return { value: { sockets: await this.start() } }
  }

  stats(): Reply {
    return { value: this.counters() }
  }

  /**
   * A new connection to the address connection `id` was granted for (`sock_accept` on a connect
   * grant): counted against `maxConnections` like an accepted one (`MFILE` when they are all in
   * use). The guest names only its descriptor, never an address.
   */
  async redial(args: { id?: unknown }): Promise<Reply> {
    const c = this.#connection(args?.id)
    if (c === undefined || this.#disposed) return fail(Errno.BADF)
    const g = c.grant
    if (g === undefined) return fail(Errno.INVAL)
    if (this.#live >= this.#config.maxConnections) {
      this.#stats.refused++
      return fail(Errno.MFILE)
    }
    // The slot is taken before the dial: dials in flight count too.
    this.#live++
    let fresh: Connection
    try {
      fresh = await this.#dial(g)
    } catch (e) {
      this.#live--
      return fail(this.#disposed ? Errno.BADF : errnoOfNodeError(e))
    }
    if (this.#disposed) {
      this.#live--
      fresh.socket.destroy()
      return fail(Errno.BADF)
    }
    fresh.counted = true
    this.#stats.dialed++
    return { value: { id: fresh.id } }
  }

  async accept(args: { id?: unknown; nb?: unknown }): Promise<Reply> {
    const o = typeof args?.id === 'number' ? this.#objects.get(args.id) : undefined
    if (!(o instanceof Listener)) return fail(Errno.BADF)
    for (;;) {
      if (this.#disposed || o.closed) return fail(Errno.BADF)
      const c = o.pending.shift()
      if (c !== undefined) return { value: { id: c.id } }
      if (args.nb === true) return fail(Errno.AGAIN)
      await this.#waitAny([o], -1)
    }
  }

  async recv(args: { id?: unknown; max?: unknown; peek?: unknown; all?: unknown; nb?: unknown }): Promise<Reply> {
    const c = this.#connection(args?.id)
    if (c === undefined) return fail(Errno.BADF)
    const max = typeof args.max === 'number' && args.max > 0 ? Math.min(args.max, 0x7fffffff) : 0
    if (max === 0) return {}
    // A WAITALL never asks to hold more than the buffer cap: the socket would pause first.
    const need = args.all === true ? Math.min(max, this.#config.bufferBytes) : 1
    for (;;) {
      if (this.#disposed) return fail(Errno.BADF)
      if (c.readShut) return {}
      const ended = c.eof || c.errno !== 0
      if (c.buffered >= need || (c.buffered > 0 && ended)) return { bytes: this.#take(c, max, args.peek === true) }
      if (c.errno !== 0) return fail(c.errno)
      if (c.eof) return {}
      if (args.nb === true) return fail(Errno.AGAIN)
      await this.#waitAny([c], -1)
    }
  }

  async send(args: { id?: unknown; nb?: unknown }, bytes: Uint8Array | undefined): Promise<Reply> {
    const c = this.#connection(args?.id)
    if (c === undefined) return fail(Errno.BADF)
    const n = bytes?.byteLength ?? 0
    const s = c.socket
    const cap = this.#config.bufferBytes
    if (c.errno !== 0) return fail(c.errno === Errno.TIMEDOUT ? Errno.PIPE : c.errno)
    if (c.writeShut || s.destroyed || !s.writable) return fail(Errno.PIPE)
    if (n === 0) return { value: { n: 0 } }
    if (args.nb === true && s.writableLength >= cap) return fail(Errno.AGAIN)
    // Not copied again: the bridge hands every request's bytes as a fresh copy, never a view
    // of its shared buffer, so the socket may keep them until they are written.
    s.write(Buffer.from(bytes!.buffer, bytes!.byteOffset, n))
    this.#stats.bytesOut += n
    // Back-pressure: a peer that does not read makes the guest wait here, not the host buffer.
    while (args.nb !== true && s.writableLength >= cap && c.errno === 0 && !s.destroyed && !this.#disposed) {
      await this.#waitAny([c], -1)
    }
    return { value: { n } }
  }

  /**
   * A posted send (write-behind): all of `bytes`, resolving once Node handed them to the kernel
   * (or the socket failed), so `bytes` may be a view the caller reuses afterwards (the bridge's
   * shared buffer: `borrowsBytes`). Nothing back unless it failed. A peer that does not read
   * holds the guest at its next call; nothing is buffered here beyond the kernel's own.
   */
  write(args: { id?: unknown }, bytes: Uint8Array | undefined): Reply | Promise<Reply> {
    const c = this.#connection(args?.id)
    if (c === undefined) return fail(Errno.BADF)
    const s = c.socket
    if (c.errno !== 0) return fail(c.errno === Errno.TIMEDOUT ? Errno.PIPE : c.errno)
    if (c.writeShut || s.destroyed || !s.writable) return fail(Errno.PIPE)
    const n = bytes?.byteLength ?? 0
    if (n === 0) return {}
    this.#stats.bytesOut += n
    const queued = s.writableLength
    let written: (() => void) | undefined
    let done = false
    s.write(Buffer.from(bytes!.buffer, bytes!.byteOffset, n), () => {
      done = true
      written?.()
    })
    // Nothing was queued before and nothing is now: the kernel took every byte during the call
    // (a write Node finished at once drops its length before returning), so Node holds no
    // reference to `bytes`: done, without a promise (the usual case on a reading peer).
    if (done || (queued === 0 && s.writableLength === 0)) return EMPTY_REPLY
    return new Promise<Reply>((resolve) => {
      written = () => resolve(EMPTY_REPLY)
    })
  }

  shutdown(args: { id?: unknown; how?: unknown }): Reply {
    const c = this.#connection(args?.id)
    if (c === undefined) return fail(Errno.BADF)
    const how = typeof args.how === 'number' ? args.how : 0
    if (c.socket.destroyed && c.errno !== 0) return fail(Errno.NOTCONN)
    if ((how & 1) !== 0 && !c.readShut) {
      c.readShut = true
      c.chunks.length = 0
      c.buffered = 0
      c.head = 0
      // Keep reading (and discarding), so the peer is never stuck on a full window.
      if (c.paused) {
        c.paused = false
        c.socket.resume()
      }
      c.notify()
    }
    if ((how & 2) !== 0 && !c.writeShut) {
      c.writeShut = true
      c.socket.end()
    }
    return {}
  }

  close(args: { id?: unknown }): Reply {
    const o = typeof args?.id === 'number' ? this.#objects.get(args.id) : undefined
    if (o === undefined) return {}
    this.#objects.delete(o.id)
    if (o instanceof Listener) {
      o.closed = true
      o.server.close()
      for (const c of o.pending.splice(0)) this.#release(c)
      o.notify()
    } else this.#release(o)
    return {}
  }

  /** The guest let go of `c`: what it sent still goes out (then the socket closes), unless the peer never takes it. */
  #release(c: Connection): void {
    this.#objects.delete(c.id)
    const uncount = () => {
      if (c.counted) {
        c.counted = false
        this.#live--
      }
    }
    const s = c.socket
    c.readShut = true
    c.chunks.length = 0
    c.buffered = 0
    c.notify()
    if (s.destroyed) return uncount()
    if (c.paused) s.resume()
    if (s.writableLength === 0 || c.errno !== 0) {
      s.destroy()
      return uncount()
    }
    // Lingering, it still holds a host socket: it keeps its place under maxConnections until closed.
    s.once('close', uncount)
    s.end()
    s.once('finish', () => s.destroy())
    const t = setTimeout(() => s.destroy(), LINGER_MS)
    t.unref()
    s.once('close', () => clearTimeout(t))
  }

  /**
   * Readiness of each `[id, write]` in `q`, waiting up to `t` ms (-1: no limit) for one. With
   * `pf` > 0, the bytes of readable connections (up to `PREFETCH` each, `pf` in all) come along,
   * taken from their queues, as entry [4] (their length) and the reply's bytes: the guest's next
   * `recv` then needs no request of its own (one round trip per request instead of two).
   */
  poll(args: { q?: unknown; t?: unknown; pf?: unknown }): Reply | Promise<Reply> {
    const q = Array.isArray(args?.q) ? (args.q as unknown[]) : []
    const t = typeof args?.t === 'number' ? args.t : 0
    const budget = typeof args?.pf === 'number' && args.pf > 0 ? Math.min(args.pf, 64 << 20) : 0
    const deadline = t >= 0 ? performance.now() + t : Infinity
    // Synchronous when something is ready already (no promise on the busy path).
    const now = this.#pollNow(q, budget, deadline)
    return Array.isArray(now) ? this.#pollWait(q, budget, deadline, now) : now
  }

  async #pollWait(q: unknown[], budget: number, deadline: number, objs: Waitable[]): Promise<Reply> {
    for (;;) {
      const left = deadline - performance.now()
      await this.#waitAny(objs, deadline === Infinity ? -1 : Math.ceil(Math.max(left, 0)))
      // The first connection's data woke us; the others that the same turn of the event loop
      // reads (Node runs each socket's callback, then microtasks, one by one) come along too:
      // one reply for all of them, so fewer round trips (and thread wake-ups) per request.
      await afterIo()
      const now = this.#pollNow(q, budget, deadline)
      if (!Array.isArray(now)) return now
      objs = now
    }
  }

  /** The poll's reply if something is ready (or the time is up), else what to wait on. */
  #pollNow(q: unknown[], budget: number, deadline: number): Reply | Waitable[] {
    const objs: Waitable[] = []
    let any = false
    const r: number[][] = q.map((e) => {
      const [id, w] = Array.isArray(e) ? (e as [unknown, unknown]) : [undefined, undefined]
      const o = typeof id === 'number' ? this.#objects.get(id) : undefined
      if (o === undefined) {
        any = true
        return [0, 0, 0, Errno.BADF]
      }
      objs.push(o)
      const a = this.#readiness(o, w === 1)
      if (a[0] === 1) any = true
      return a
    })
    if (!(any || deadline - performance.now() <= 0 || this.#disposed)) return objs
    if (budget === 0 || this.#disposed) return { value: { r } }
    const taken: Uint8Array[] = []
    let total = 0
    const seen = new Set<Connection>()
    q.forEach((e, i) => {
      const [id, w] = Array.isArray(e) ? (e as [unknown, unknown]) : [undefined, undefined]
      const c = this.#connection(id)
      if (c === undefined || w === 1 || c.readShut || c.buffered === 0 || budget === 0 || seen.has(c)) return
      seen.add(c)
      const n = Math.min(PREFETCH, budget, c.buffered)
      taken.push(...this.#take(c, n, false))
      budget -= n
      total += n
      r[i]![4] = n
    })
    return total === 0 ? { value: { r } } : { value: { r }, bytes: taken }
  }

  #readiness(o: Connection | Listener, write: boolean): [number, number, number, number] {
    if (o instanceof Listener) return !write && o.pending.length > 0 ? [1, o.pending.length, 0, 0] : [0, 0, 0, 0]
    const ended = o.eof || o.errno !== 0 || o.socket.destroyed
    if (!write) {
      if (o.buffered > 0) return [1, o.buffered, ended ? 1 : 0, 0]
      return ended || o.readShut ? [1, 0, 1, 0] : [0, 0, 0, 0]
    }
    if (o.errno !== 0 || o.writeShut || o.socket.destroyed) return [1, 0, 1, 0]
    const room = this.#config.bufferBytes - o.socket.writableLength
    return room > 0 ? [1, room, 0, 0] : [0, 0, 0, 0]
  }

  /** Ends every wait and destroys every socket and server. Idempotent. */
  dispose(): Promise<void> {
    if (this.#disposed) return Promise.resolve()
    this.#disposed = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    for (const o of this.#objects.values()) o.notify()
    this.#objects.clear()
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
    const closing = this.#servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve())))
    return Promise.all(closing).then(() => undefined)
  }
}

/** A bridge service: method name → handler (the wire methods only), and `dispose`. */
export type NetBridgeService = Record<
  (typeof NET_METHODS)[number],
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (args: any, bytes: Uint8Array | undefined) => Reply | Promise<Reply>
> & {
  dispose(): Promise<void>
}

const NET_METHODS = ['open', 'accept', 'redial', 'recv', 'send', 'write', 'shutdown', 'close', 'poll', 'stats'] as const

/** `service` as a bridge service exposing exactly the wire methods (nothing else is callable). */
export function asBridgeService(service: NetService): NetBridgeService {
  const out = Object.create(null) as Record<string, unknown>
  for (const m of NET_METHODS)
    out[m] = (args: never, bytes: Uint8Array | undefined) =>
      (service[m] as (a: never, b?: Uint8Array) => Reply | Promise<Reply>)(args, bytes)
  // `write` is done with its bytes when it resolves: it may write straight from the bridge's
  // buffer (`borrowsBytes` in runtime/worker/bridge.ts, which this layer does not import).
  ;(out.write as Record<symbol, boolean>)[Symbol.for('caplet.bridge.borrowsBytes')] = true
  out.dispose = () => service.dispose()
  return out as NetBridgeService
}

/** For the bridge helper's registry (`runtime/worker/bridge-services.ts`): builds the service inside the helper. */
export function create(config: unknown): NetBridgeService {
  const service = new NetService(config as NetServiceConfig)
  // Listen and connect at once: connections queue (bounded) before the guest asks for them.
  service.start().catch(() => {
    /* reported to the guest side by `open` */
  })
  return asBridgeService(service)
}
