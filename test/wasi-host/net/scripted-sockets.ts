/**
 * @module A synchronous in-memory socket backend for direct-call tests of the sock_* calls: the
 * test queues connections and inbound bytes, and reads what the guest sent. A call that would
 * block with nothing to wait for throws (a test bug, surfacing as a host fault), so a test
 * always arranges what the guest will find.
 */
import { Errno } from '../../../wasi-host/abi/constants.js'
import { WasiError } from '../../../wasi-host/errors.js'
import type {
  ConnectionSocket,
  ListenerSocket,
  RecvOptions,
  SocketBackend,
  SocketInterest,
  SocketReadiness,
} from '../../../wasi-host/net/sockets.js'

export class ScriptedConnection implements ConnectionSocket {
  readonly role = 'connection'
  inbound: number[] = []
  readonly sent: number[] = []
  eof = false
  error = 0
  readShut = false
  writeShut = false
  closed = false
  /** Bytes `send` takes per call before it would block (nonblocking: AGAIN). */
  room = Infinity
  /** The `max` of every recv call, to see chunking. */
  readonly asked: number[] = []

  feed(s: string | Uint8Array): this {
    for (const b of typeof s === 'string' ? new TextEncoder().encode(s) : s) this.inbound.push(b)
    return this
  }

  recv(max: number, o: RecvOptions): Uint8Array {
    if (this.closed) throw new WasiError(Errno.BADF)
    this.asked.push(max)
    if (this.readShut) return new Uint8Array(0)
    if (this.inbound.length === 0) {
      if (this.error) throw new WasiError(this.error as Errno)
      if (this.eof) return new Uint8Array(0)
      if (o.nonblock) throw new WasiError(Errno.AGAIN)
      throw new Error('scripted socket: recv would block forever')
    }
    const n = Math.min(max, this.inbound.length)
    const out = Uint8Array.from(this.inbound.slice(0, n))
    if (!o.peek) this.inbound.splice(0, n)
    return out
  }

  send(data: Uint8Array, nonblock: boolean): number {
    if (this.closed) throw new WasiError(Errno.BADF)
    if (this.writeShut) throw new WasiError(Errno.PIPE)
    if (this.error) throw new WasiError(this.error as Errno)
    const n = Math.min(data.byteLength, this.room)
    if (n === 0) {
      if (nonblock) throw new WasiError(Errno.AGAIN)
      throw new Error('scripted socket: send would block forever')
    }
    for (const b of data.subarray(0, n)) this.sent.push(b)
    this.room -= n
    return n
  }

  shutdown(how: number): void {
    if (how & 1) this.readShut = true
    if (how & 2) this.writeShut = true
  }

  close(): void {
    this.closed = true
  }

  text(): string {
    return new TextDecoder().decode(Uint8Array.from(this.sent))
  }
}

export class ScriptedListener implements ListenerSocket {
  readonly role = 'listener'
  readonly pending: ScriptedConnection[] = []
  closed = false

  accept(nonblock: boolean): ConnectionSocket {
    if (this.closed) throw new WasiError(Errno.BADF)
    const c = this.pending.shift()
    if (c !== undefined) return c
    if (nonblock) throw new WasiError(Errno.AGAIN)
    throw new Error('scripted listener: accept would block forever')
  }

  close(): void {
    this.closed = true
  }
}

export class ScriptedSockets implements SocketBackend {
  readonly polls: { interests: number; timeoutNs: bigint | undefined }[] = []

  poll(interests: readonly SocketInterest[], timeoutNs: bigint | undefined): SocketReadiness[] {
    this.polls.push({ interests: interests.length, timeoutNs })
    return interests.map(({ socket, write }) => {
      if (socket.role === 'listener') {
        const l = socket as ScriptedListener
        return { ready: !write && l.pending.length > 0, nbytes: write ? 0 : l.pending.length, hangup: false, errno: 0 }
      }
      const c = socket as ScriptedConnection
      const ended = c.eof || c.error !== 0
      if (write) return { ready: c.room > 0 || ended, nbytes: Number.isFinite(c.room) ? c.room : 65536, hangup: ended, errno: 0 }
      return { ready: c.inbound.length > 0 || ended, nbytes: c.inbound.length, hangup: ended, errno: 0 }
    })
  }
}
