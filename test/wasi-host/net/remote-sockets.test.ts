/**
 * The guest side of bridged sockets (`RemoteSockets`) against a scripted synchronous channel:
 * what it sends on the wire, bytes a poll brought ahead of recv (consumed once, peeked without
 * consuming, dropped on close), in-band errnos, byte limits, and distrust of the other side.
 */
import { describe, expect, it } from 'vitest'
import { Errno } from '../../../wasi-host/abi/constants.js'
import { LimitExceeded, WasiError } from '../../../wasi-host/errors.js'
import { RemoteSockets, type SyncChannel } from '../../../wasi-host/net/remote-sockets.js'
import type { ConnectionSocket, ListenerSocket } from '../../../wasi-host/net/sockets.js'

type Handler = (args: Record<string, unknown>, bytes: Uint8Array | undefined) => { value?: unknown; bytes?: Uint8Array }

function channel(handlers: Record<string, Handler>, maxBytes = 4096) {
  const log: string[] = []
  const ch: SyncChannel = {
    maxBytes,
    call(service, method, args, bytes) {
      log.push(`${service}.${method}`)
      const h = handlers[method]
      if (!h) throw new Error(`unexpected ${method}`)
      const r = h(args as Record<string, unknown>, bytes)
      return { value: r.value, bytes: r.bytes }
    },
  }
  return { ch, log }
}

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const opts = { peek: false, waitAll: false, nonblock: false }

function opened(handlers: Record<string, Handler>, options = {}) {
  const { ch, log } = channel({
    open: () => ({
      value: {
        sockets: [
          { id: 1, role: 'listener', address: '127.0.0.1:9' },
          { id: 2, role: 'connection', name: 'db', address: '10.0.0.5:5432' },
        ],
      },
    }),
    ...handlers,
  })
  const net = new RemoteSockets(ch, options)
  const { grants } = net.open()
  return { net, log, listener: grants[0]!.socket as ListenerSocket, conn: grants[1]!.socket as ConnectionSocket, grants }
}

describe('RemoteSockets', () => {
  it('opens the grants in order, with their roles and names', () => {
    const { grants } = opened({})
    expect(grants.map((g) => [g.socket.role, g.name])).toEqual([
      ['listener', undefined],
      ['connection', 'db'],
    ])
  })

  it('serves recv from what a poll brought ahead: once, peeked without consuming', () => {
    const { net, conn, log } = opened({
      poll: () => ({ value: { r: [[1, 5, 0, 0, 5]] }, bytes: enc('hello') }),
      recv: () => ({ bytes: enc('-more') }),
    })
    const [ready] = net.poll([{ socket: conn, write: false }], undefined)
    expect(ready).toEqual({ ready: true, nbytes: 5, hangup: false, errno: 0 })
    expect(dec(conn.recv(3, { ...opts, peek: true }))).toBe('hel')
    expect(dec(conn.recv(3, opts))).toBe('hel')
    expect(dec(conn.recv(10, opts))).toBe('lo')
    expect(log.filter((m) => m === 'net.recv')).toEqual([])
    expect(dec(conn.recv(10, opts))).toBe('-more')
    expect(net.bytesIn).toBe(10)
  })

  it('does not wait in poll while bytes are already here, and drops them on close', () => {
    const seen: unknown[] = []
    const { net, conn } = opened({
      poll: (a) => {
        seen.push(a.t)
        return { value: { r: [[1, 4, 0, 0, 4]] }, bytes: enc('abcd') }
      },
      close: () => ({}),
    })
    net.poll([{ socket: conn, write: false }], undefined)
    net.poll([{ socket: conn, write: false }], 5_000_000_000n)
    expect(seen).toEqual([-1, 0])
    conn.close()
    expect(() => conn.recv(4, opts)).toThrow(WasiError)
  })

  it('never takes more than asked, whatever the service says', () => {
    const { net, conn } = opened({
      recv: () => ({ bytes: new Uint8Array(100) }),
      send: () => ({ value: { n: 1_000_000 } }),
      poll: () => ({ value: { r: [[1, -1, 0, 0, 999]] }, bytes: enc('xy') }),
    })
    expect(conn.recv(10, opts).byteLength).toBe(10)
    expect(conn.send(enc('abc'), false)).toBe(3)
    const [r] = net.poll([{ socket: conn, write: false }], 0n)
    expect(r!.nbytes).toBeLessThanOrEqual(0x7fffffff)
    expect(conn.recv(100, opts).byteLength).toBe(2)
  })

  it('turns in-band errnos into WasiErrors and chunks sends to the channel', () => {
    const sizes: number[] = []
    const { listener, conn } = opened({
      accept: () => ({ value: { e: Errno.AGAIN } }),
      send: (_a, b) => {
        sizes.push(b!.byteLength)
        return { value: { n: b!.byteLength } }
      },
      shutdown: () => ({ value: { e: Errno.NOTCONN } }),
    })
    expect(() => listener.accept(true)).toThrow(expect.objectContaining({ errno: Errno.AGAIN }))
    expect(() => conn.shutdown(3)).toThrow(expect.objectContaining({ errno: Errno.NOTCONN }))
    expect(conn.send(new Uint8Array(10_000), false)).toBe(10_000)
    expect(Math.max(...sizes)).toBeLessThan(4096)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(10_000)
  })

  it('stops the run past its byte limits', () => {
    const { conn } = opened(
      { recv: (a) => ({ bytes: new Uint8Array(a.max as number) }), send: (_a, b) => ({ value: { n: b!.byteLength } }) },
      { maxBytesIn: 100, maxBytesOut: 50 },
    )
    expect(conn.recv(1000, opts).byteLength).toBe(100)
    expect(() => conn.recv(1, opts)).toThrow(LimitExceeded)
    expect(conn.send(new Uint8Array(50), false)).toBe(50)
    expect(() => conn.send(new Uint8Array(1), false)).toThrow(LimitExceeded)
  })

  it('closing never throws, even when the channel is gone', () => {
    const { conn, listener } = opened({
      close: () => {
        throw new Error('bridge closed')
      },
    })
    expect(() => conn.close()).not.toThrow()
    expect(() => listener.close()).not.toThrow()
  })
})
