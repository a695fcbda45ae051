/**
 * @module The guest side of sockets served elsewhere: a `SocketBackend` whose every call is one
 * blocking request over a synchronous channel (the bridge, `runtime/worker/bridge.ts`) to the
 * `net` service that owns the real sockets (`wasi-host/node/net-service.ts` in Node). Platform-
 * neutral: it knows the channel only by its shape (`SyncChannel`).
 *
 * The wire format is `NET_PROTOCOL` below; errors travel in-band as `{ e: errno }`, so a thrown
 * channel error is never a guest-visible answer: it is a host fault (or the run ending).
 * It must never: trust a count or length from the service beyond what was asked, or hold guest
 * data past the call.
 */
import { concatBytes } from '../abi/bytes.js'
import { Errno } from '../abi/constants.js'
import { LimitExceeded, WasiError } from '../errors.js'
import type {
  ConnectionSocket,
  ListenerSocket,
  RecvOptions,
  SocketBackend,
  SocketGrant,
  SocketInterest,
  SocketReadiness,
} from './sockets.js'

/** What this backend needs of a channel: `BridgeClient` has this shape. */
export interface SyncChannel {
  /**
   * With `view`, the reply's bytes may be a view of the channel's own buffer, valid only until
   * the next `call`, `post`, `flush` or `settle`.
   */
  call(
    service: string,
    method: string,
    args?: unknown,
    bytes?: Uint8Array,
    view?: boolean,
  ): { value: unknown; bytes: Uint8Array | undefined }
  /** The largest `bytes` payload one request can carry. */
  readonly maxBytes: number
  /**
   * Queues a request that runs before the next `call`, in order, without waiting for it;
   * `outcome` learns its value or failure with the next reply. Without it, sends block.
   */
  post?(service: string, method: string, args?: unknown, bytes?: Uint8Array, outcome?: (value: unknown, error: unknown) => void): void
  /** Hands queued requests over without waiting. */
  flush?(): void
  /** Waits until every queued request has run. */
  settle?(): void
}

/**
 * The `net` service's methods and the shapes they exchange (`args` → `value`; raw data in `bytes`):
 *  - `open {}` → `{ sockets: OpenedSocket[] }` (waits until every grant is listening / connected)
 *  - `accept { id, nb }` → `{ id }` (a new connection) | `{ e }`
 *  - `redial { id }` → `{ id }` (a new connection to connection `id`'s granted address) | `{ e }`
 *  - `recv { id, max, peek, all, nb }` → bytes (none: EOF) | `{ e }`
 *  - `send { id, nb }` + bytes → `{ n }` | `{ e }`
 *  - `write { id }` + bytes → nothing | `{ e }`: a posted (write-behind) send of all the bytes
 *  - `shutdown { id, how }` → `{}` | `{ e }`;  `close { id }` → `{}`
 *  - `poll { q: [id, write 0|1][], t: ms | -1, pf: bytes }` → `{ r: [ready 0|1, nbytes, hangup 0|1, errno, prefetched?][] }`
 *    + the prefetched bytes of readable connections, in order (taken from the service's queue;
 *    the guest side keeps them for the next `recv`)
 *  - `stats {}` → `NetStats`
 */
export const NET_SERVICE = 'net'

export interface OpenedSocket {
  id: number
  role: 'listener' | 'connection'
  name?: string
  /** The bound (listener) or peer (connection) address, e.g. `127.0.0.1:40123` or `unix:/run/x.sock`. */
  address: string
}

export interface NetStats {
  /** Connections accepted from listeners (refused ones not included). */
  connections: number
  /** Connections closed at once (or redials refused, `EMFILE`) because `maxConnections` (or the backlog) was full. */
  refused: number
  /** New connections to a connect grant's address (`sock_accept` on its descriptor). */
  dialed: number
  /** Bytes received from peers and sent to them, as the network saw them. */
  bytesIn: number
  bytesOut: number
}

export interface RemoteSocketsOptions {
  /** Bytes the guest may receive / send in the run; past them the run stops (`LimitExceeded`). */
  maxBytesIn?: number
  maxBytesOut?: number
}

/** Room in a request beside the raw bytes (the args object, the header). */
const ARGS_ROOM = 256

type Reply = { value: unknown; bytes: Uint8Array | undefined }

function errnoOf(v: unknown): number | undefined {
  return typeof v === 'object' && v !== null && typeof (v as { e?: unknown }).e === 'number' ? (v as { e: number }).e : undefined
}

export class RemoteSockets implements SocketBackend {
  readonly #channel: SyncChannel
  readonly #maxIn: number
  readonly #maxOut: number
  /** Bytes the guest received and sent through this backend. */
  bytesIn = 0
  bytesOut = 0
  readonly #chunk: number

  constructor(channel: SyncChannel, options: RemoteSocketsOptions = {}) {
    this.#channel = channel
    this.#maxIn = options.maxBytesIn ?? Infinity
    this.#maxOut = options.maxBytesOut ?? Infinity
    this.#chunk = Math.max(1, channel.maxBytes - ARGS_ROOM)
  }

  /**
   * Calls the service; an in-band errno becomes a `WasiError`. With `view`, the reply's bytes
   * are valid until the next use of the channel (see `#keepAhead`).
   */
  call(method: string, args?: unknown, bytes?: Uint8Array, view = false): Reply {
    this.#keepAhead()
    const r = this.#channel.call(NET_SERVICE, method, args, bytes, view)
    const e = errnoOf(r.value)
    if (e !== undefined) throw new WasiError(e as Errno, `${method}: ${e}`)
    return r
  }

  /**
   * Tells the service the guest closed `id`. Never throws: at the end of a run the channel may
   * already be closed, and the service releases every socket when it is disposed anyway.
   */
  release(id: number): void {
    this.#ahead.delete(id)
    this.#failed.delete(id)
    this.#keepAhead()
    try {
      // Posted: it runs after the sends queued before it, and nothing waits for it.
      if (this.#channel.post) this.#channel.post(NET_SERVICE, 'close', { id }, undefined, ignore)
      else this.#channel.call(NET_SERVICE, 'close', { id })
    } catch {
      /* the service is gone, and its sockets with it */
    }
  }

  /** Hands queued sends to the service without waiting (the guest is about to sleep). */
  flush(): void {
    this.#keepAhead()
    try {
      this.#channel.flush?.()
    } catch {
      /* a closed channel: the next call reports it */
    }
  }

  /** Waits until every queued send has reached the service (the end of a run). Never throws. */
  settle(): void {
    this.#keepAhead()
    try {
      this.#channel.settle?.()
    } catch {
      /* the service is gone, and its sockets with it */
    }
  }

  /** Errnos of write-behind sends that failed, by connection: the next call on it reports one. */
  readonly #failed = new Map<number, number>()

  #takeFailure(id: number, recv: boolean): void {
    const e = this.#failed.get(id)
    // A broken pipe is about sending; a reset ends both directions. Once reported, every later
    // send is a broken pipe (as POSIX has it), and a receive asks the service.
    if (e === undefined || (recv && e !== Errno.CONNRESET)) return
    this.#failed.set(id, Errno.PIPE)
    throw new WasiError(e as Errno, `send: ${e}`)
  }

  /** Asks the service for the granted sockets (blocks until they are listening / connected). */
  open(): { grants: SocketGrant[]; opened: OpenedSocket[] } {
    const { value } = this.call('open', {})
    const opened = (value as { sockets: OpenedSocket[] }).sockets
    const grants = opened.map((o) => ({
      socket: o.role === 'listener' ? this.#listener(o.id) : this.#connection(o.id, true),
      ...(o.name !== undefined ? { name: o.name } : {}),
    }))
    return { grants, opened }
  }

  stats(): NetStats {
    return this.call('stats', {}).value as NetStats
  }

  poll(interests: readonly SocketInterest[], timeoutNs: bigint | undefined): SocketReadiness[] {
    const q = interests.map((i) => [idOf(i.socket), i.write ? 1 : 0])
    // Bytes already here make their socket readable: look at the others, but do not wait.
    const local = interests.map((i) => (!i.write ? (this.#ahead.get(idOf(i.socket))?.byteLength ?? 0) : 0))
    const anyLocal = local.some((n) => n > 0)
    // Milliseconds, rounded up: a wait never ends before the guest's deadline.
    const t = anyLocal ? 0 : timeoutNs === undefined ? -1 : Number((timeoutNs + 999_999n) / 1_000_000n)
    const { value, bytes } = this.call('poll', { q, t, pf: this.#chunk }, undefined, true)
    const r = (value as { r: number[][] }).r
    let at = 0
    return interests.map((_, i) => {
      const a = r[i]
      if (a === undefined) return { ready: local[i]! > 0, nbytes: local[i]!, hangup: false, errno: 0 }
      const pre = Math.min((a[4] ?? 0) >>> 0, (bytes?.byteLength ?? 0) - at)
      if (pre > 0) {
        // SECURITY: only what the reply carries, appended to what was already here.
        const id = q[i]![0]!
        const had = this.#ahead.get(id)
        const got = bytes!.subarray(at, at + pre)
        at += pre
        this.#ahead.set(id, had === undefined ? got : concatBytes([had, got]))
        if (had === undefined) this.#aheadShared = true
      }
      const here = local[i]! + pre
      return {
        ready: a[0] === 1 || here > 0,
        nbytes: Math.max(here, Math.min((a[1] ?? 0) >>> 0, 0x7fffffff)),
        hangup: a[2] === 1,
        errno: (a[3] ?? 0) >>> 0,
      }
    })
  }

  /** Bytes `poll` brought for connection `id` ahead of its `recv`, by connection. */
  readonly #ahead = new Map<number, Uint8Array>()
  /** Some of `#ahead` are views of the channel's buffer (the usual case: `recv` takes them at once). */
  #aheadShared = false

  /** Copies what is left of `#ahead` out of the channel's buffer before the channel is used again. */
  #keepAhead(): void {
    if (!this.#aheadShared) return
    this.#aheadShared = false
    for (const [id, a] of this.#ahead) this.#ahead.set(id, a.slice())
  }

  /** Takes up to `max` bytes brought ahead for `id` (leaves them with `peek`). */
  #takeAhead(id: number, max: number, peek: boolean): Uint8Array | undefined {
    const a = this.#ahead.get(id)
    if (a === undefined) return undefined
    const out = a.subarray(0, max)
    if (!peek) {
      if (out.byteLength === a.byteLength) this.#ahead.delete(id)
      else this.#ahead.set(id, a.subarray(out.byteLength))
    }
    return out
  }

  #listener(id: number): ListenerSocket {
    let closed = false
    const sockets = this
    const l: ListenerSocket & { [ID]: number } = {
      role: 'listener',
      [ID]: id,
      accept(nonblock) {
        if (closed) throw new WasiError(Errno.BADF, 'closed')
        const { value } = sockets.call('accept', { id, nb: nonblock })
        return sockets.#connection((value as { id: number }).id)
      },
      close() {
        if (closed) return
        closed = true
        sockets.release(id)
      },
    }
    return l
  }

  /** A connection; `redials`: a connect grant's, which can dial its address again. */
  #connection(id: number, redials = false): ConnectionSocket {
    let closed = false
    const sockets = this
    const c: ConnectionSocket & { [ID]: number } = {
      role: 'connection',
      [ID]: id,
      ...(redials
        ? {
            redial(): ConnectionSocket {
              if (closed) throw new WasiError(Errno.BADF, 'closed')
              const { value } = sockets.call('redial', { id })
              return sockets.#connection((value as { id: number }).id)
            },
          }
        : {}),
      recv(max: number, o: RecvOptions): Uint8Array {
        if (closed) throw new WasiError(Errno.BADF, 'closed')
        const left = sockets.#maxIn - sockets.bytesIn
        if (left <= 0) throw new LimitExceeded('network', 'the guest received more than its limit of bytes in')
        const want = Math.min(max, sockets.#chunk, left)
        const ahead = sockets.#takeAhead(id, want, o.peek)
        if (ahead !== undefined) {
          if (!o.peek) sockets.bytesIn += ahead.byteLength
          return ahead
        }
        sockets.#takeFailure(id, true)
        // A view of the channel's buffer: `receive` copies it into guest memory before its next call.
        const { bytes } = sockets.call('recv', { id, max: want, peek: o.peek, all: o.waitAll, nb: o.nonblock }, undefined, true)
        if (bytes === undefined) return EMPTY
        // SECURITY: never more than asked, whatever the other side sent.
        const got = bytes.byteLength > want ? bytes.subarray(0, want) : bytes
        if (!o.peek) sockets.bytesIn += got.byteLength
        return got
      },
      send(data: Uint8Array, nonblock: boolean): number {
        if (closed) throw new WasiError(Errno.BADF, 'closed')
        if (sockets.bytesOut + data.byteLength > sockets.#maxOut) {
          throw new LimitExceeded('network', 'the guest sent more than its limit of bytes out')
        }
        sockets.#takeFailure(id, false)
        const post = sockets.#channel.post
        if (!nonblock && post !== undefined) {
          // Write-behind: the bytes are queued (copied) and the call returns; the service sends
          // them in order and holds the guest at its next call while the peer is behind by more
          // than the per-socket cap. A failure is reported by the next call on this socket.
          const failed = (value: unknown, error: unknown) => {
            const e = errnoOf(value) ?? (error === undefined ? undefined : Errno.PIPE)
            if (e !== undefined && !sockets.#failed.has(id)) sockets.#failed.set(id, e)
          }
          sockets.#keepAhead()
          for (let at = 0; at < data.byteLength; at += sockets.#chunk) {
            post.call(sockets.#channel, NET_SERVICE, 'write', { id }, data.subarray(at, at + sockets.#chunk), failed)
          }
          sockets.bytesOut += data.byteLength
          return data.byteLength
        }
        let sent = 0
        while (sent < data.byteLength) {
          const piece = data.subarray(sent, sent + sockets.#chunk)
          let n: number
          try {
            n = (sockets.call('send', { id, nb: nonblock }, piece).value as { n: number }).n >>> 0
          } catch (e) {
            if (sent > 0 && e instanceof WasiError) break
            throw e
          }
          n = Math.min(n, piece.byteLength)
          sent += n
          sockets.bytesOut += n
          if (n < piece.byteLength) break
        }
        return sent
      },
      shutdown(how: number): void {
        if (closed) throw new WasiError(Errno.BADF, 'closed')
        sockets.#takeFailure(id, false)
        sockets.call('shutdown', { id, how })
        if ((how & 1) !== 0) sockets.#ahead.delete(id)
      },
      close() {
        if (closed) return
        closed = true
        sockets.release(id)
      },
    }
    return c
  }
}

const EMPTY = new Uint8Array(0)
const ignore = (): void => {}

/** Symbol-keyed: the service's id for a handle this backend made; no guest can reach it. */
const ID = Symbol('net.id')

function idOf(s: SocketInterest['socket']): number {
  const id = (s as { [ID]?: number })[ID]
  if (id === undefined) throw new TypeError('a socket from another backend')
  return id
}
