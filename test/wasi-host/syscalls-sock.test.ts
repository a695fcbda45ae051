/**
 * The sock_* calls and the socket side of fd_* and poll_oneoff, called directly on a host whose
 * sockets come from a scripted in-memory backend: roles, rights (an accepted connection never
 * gets more than its listener's inheriting rights), flags, chunking, and pointer checks.
 */
import { describe, expect, it } from 'vitest'
import { Filetype, Rights as R } from '../../wasi-host/abi/constants.js'
import { CONNECTION_RIGHTS, LISTENER_RIGHTS } from '../../wasi-host/rights.js'
import { CHUNK } from '../../wasi-host/syscalls/sock.js'
import { expectErrno, expectTrap, harness, NEG_PTR, STDOUT } from './harness.js'
import { ScriptedConnection, ScriptedListener, ScriptedSockets } from './net/scripted-sockets.js'

const LISTENER = 5
const CONN = 6
const NONBLOCK = 4

function setup(pages = 1) {
  const net = new ScriptedSockets()
  const listener = new ScriptedListener()
  const conn = new ScriptedConnection()
  const h = harness({
    net,
    sockets: [{ socket: listener }, { socket: conn, name: 'db' }],
    memoryPages: pages,
    maximumPages: Math.max(16, pages),
  })
  const accept = (flags = 0) => {
    const p = h.alloc(4, 4)
    const rc = h.wasi.sock_accept(LISTENER, flags, p)
    return { rc, fd: h.u32(p) }
  }
  const recv = (fd: number, lens: number[], flags = 0) => {
    const bufs = lens.map((l) => h.alloc(l, 1))
    const iovs = h.iovecs(bufs.map((b, i) => [b, lens[i]!] as const))
    const n = h.alloc(4, 4)
    const ro = h.alloc(2, 2)
    h.setU16(ro, 0xffff)
    const rc = h.wasi.sock_recv(fd, iovs, lens.length, flags, n, ro)
    const got = h.u32(n)
    const all = new Uint8Array(lens.reduce((a, b) => a + b, 0))
    let at = 0
    bufs.forEach((b, i) => {
      all.set(h.read(b, lens[i]!), at)
      at += lens[i]!
    })
    return { rc, n: got, roflags: h.u16(ro), text: new TextDecoder().decode(all.subarray(0, got)) }
  }
  const send = (fd: number, parts: string[], flags = 0) => {
    const iovs = h.iovecs(
      parts.map((s) => {
        const b = h.str(s)
        return [b.ptr, b.len] as const
      }),
    )
    const n = h.alloc(4, 4)
    const rc = h.wasi.sock_send(fd, iovs, parts.length, flags, n)
    return { rc, n: h.u32(n) }
  }
  return { h, net, listener, conn, accept, recv, send }
}

describe('granted sockets as descriptors', () => {
  it('come after the preopens, in order, as SOCKET_STREAM with exact rights', () => {
    const { h } = setup()
    const l = h.fdstat(LISTENER)
    expect(l.filetype).toBe(Filetype.SOCKET_STREAM)
    expect(l.base).toBe(BigInt(LISTENER_RIGHTS))
    expect(l.inheriting).toBe(BigInt(CONNECTION_RIGHTS))
    const c = h.fdstat(CONN)
    expect(c.filetype).toBe(Filetype.SOCKET_STREAM)
    expect(c.base).toBe(BigInt(CONNECTION_RIGHTS))
    expect(c.inheriting).toBe(0n)
    expect(h.fdStat(CONN).stat.filetype).toBe(Filetype.SOCKET_STREAM)
    expectErrno(h.wasi.fd_prestat_get(LISTENER, h.alloc(8, 4)), 'BADF')
    expectErrno(h.wasi.fd_seek(CONN, 0n, 0, h.alloc(8, 8)), 'SPIPE')
    expectErrno(h.wasi.fd_tell(CONN, h.alloc(8, 8)), 'SPIPE')
    expectErrno(h.wasi.path_open(CONN, 0, h.str('x').ptr, 1, 0, 0n, 0n, 0, h.alloc(4, 4)), 'NOTDIR')
  })

  it('fd_close releases the host socket, once', () => {
    const { h, conn, listener } = setup()
    expectErrno(h.wasi.fd_close(CONN), 'SUCCESS')
    expect(conn.closed).toBe(true)
    expectErrno(h.wasi.fd_close(CONN), 'BADF')
    expectErrno(h.wasi.sock_recv(CONN, 0, 0, 0, h.alloc(4, 4), h.alloc(2, 2)), 'BADF')
    h.host.close()
    expect(listener.closed).toBe(true)
  })
})

describe('sock_accept', () => {
  it('gives a connection the listener inheriting rights, never more', () => {
    const { h, listener, accept } = setup()
    listener.pending.push(new ScriptedConnection())
    const a = accept()
    expectErrno(a.rc, 'SUCCESS')
    expect(a.fd).toBe(7)
    expect(h.fdstat(a.fd).base).toBe(BigInt(CONNECTION_RIGHTS))
    expect(h.fdstat(a.fd).inheriting).toBe(0n)
    // Narrow the listener's inheriting rights: the next connection is read-only.
    h.restrict(LISTENER, 0, R.FD_WRITE)
    listener.pending.push(new ScriptedConnection())
    const b = accept()
    expect(h.fdstat(b.fd).base).toBe(BigInt(CONNECTION_RIGHTS & ~R.FD_WRITE))
    expectErrno(h.wasi.sock_send(b.fd, h.iovecs([[h.str('x').ptr, 1]]), 1, 0, h.alloc(4, 4)), 'BADF')
    // And rights never grow back.
    expectErrno(h.wasi.fd_fdstat_set_rights(b.fd, BigInt(CONNECTION_RIGHTS), 0n), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_fdstat_set_rights(a.fd, BigInt(CONNECTION_RIGHTS | R.SOCK_ACCEPT), 0n), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_fdstat_set_rights(a.fd, BigInt(CONNECTION_RIGHTS), BigInt(R.FD_READ)), 'NOTCAPABLE')
  })

  it('is AGAIN when non-blocking with nothing pending; the flag passes to the new descriptor', () => {
    const { h, listener, accept } = setup()
    expectErrno(h.wasi.fd_fdstat_set_flags(LISTENER, NONBLOCK), 'SUCCESS')
    expectErrno(accept().rc, 'AGAIN')
    listener.pending.push(new ScriptedConnection())
    const a = accept(NONBLOCK)
    expectErrno(a.rc, 'SUCCESS')
    expect(h.fdstat(a.fd).flags).toBe(NONBLOCK)
    expectErrno(accept(1).rc, 'INVAL')
  })

  it('is refused on a connection, a file, a directory and stdio', () => {
    const { h } = setup()
    const p = h.alloc(4, 4)
    expectErrno(h.wasi.sock_accept(CONN, 0, p), 'NOTCAPABLE')
    for (const fd of [0, 1, 2, 3, 4, h.openOk('a.txt')]) expectErrno(h.wasi.sock_accept(fd, 0, p), 'NOTSOCK')
  })

  it('traps on a bad output pointer before taking a connection', () => {
    const { h, listener } = setup()
    listener.pending.push(new ScriptedConnection())
    expectTrap(() => h.wasi.sock_accept(LISTENER, 0, NEG_PTR), 'sock_accept')
    expectTrap(() => setup().h.wasi.sock_accept(LISTENER, 0, 2))
    expect(listener.pending.length).toBe(1)
  })

  it('is MFILE when no descriptor is free, and the connection stays queued', () => {
    const net = new ScriptedSockets()
    const listener = new ScriptedListener()
    listener.pending.push(new ScriptedConnection())
    const h = harness({ net, sockets: [{ socket: listener }], limits: { maxFds: 6 } })
    expectErrno(h.wasi.fd_fdstat_set_flags(5, 0), 'SUCCESS')
    expectErrno(h.wasi.sock_accept(5, 0, h.alloc(4, 4)), 'MFILE')
    expect(listener.pending.length).toBe(1)
  })
})

describe('sock_recv', () => {
  it('scatters into several buffers; roflags is never DATA_TRUNCATED for a stream', () => {
    const { conn, recv } = setup()
    conn.feed('hello world')
    const r = recv(CONN, [4, 3, 100])
    expectErrno(r.rc, 'SUCCESS')
    expect(r.n).toBe(11)
    expect(r.text).toBe('hello world')
    expect(r.roflags).toBe(0)
  })

  it('PEEK leaves the bytes queued; WAITALL loops until the buffers are full', () => {
    const { conn, recv } = setup()
    conn.feed('abcdef')
    expect(recv(CONN, [3], 1).text).toBe('abc')
    expect(conn.inbound.length).toBe(6)
    expect(recv(CONN, [6], 2).text).toBe('abcdef')
    conn.feed('xy')
    conn.eof = true
    const r = recv(CONN, [10], 2)
    expect(r.text).toBe('xy')
    expect(recv(CONN, [10]).n).toBe(0)
  })

  it('moves at most CHUNK bytes per backend call', () => {
    const { h, conn } = setup(40)
    conn.feed(new Uint8Array(CHUNK + 10).fill(7))
    const buf = h.alloc(CHUNK + 10, 1)
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.sock_recv(CONN, h.iovecs([[buf, CHUNK + 10]]), 1, 2, n, h.alloc(2, 2)), 'SUCCESS')
    expect(h.u32(n)).toBe(CHUNK + 10)
    expect(conn.asked).toEqual([CHUNK, 10])
  })

  it('is AGAIN non-blocking, reports the peer reset once the data is read, and is 0 after SHUT_RD', () => {
    const { h, conn, recv } = setup()
    expectErrno(h.wasi.fd_fdstat_set_flags(CONN, NONBLOCK), 'SUCCESS')
    expectErrno(recv(CONN, [4]).rc, 'AGAIN')
    conn.feed('z')
    conn.error = 15
    expect(recv(CONN, [4]).text).toBe('z')
    expectErrno(recv(CONN, [4]).rc, 'CONNRESET')
    expectErrno(h.wasi.sock_shutdown(CONN, 1), 'SUCCESS')
    expect(recv(CONN, [4]).n).toBe(0)
  })

  it('refuses unknown flags and a listener; traps on bad pointers before reading', () => {
    const { h, conn, recv } = setup()
    conn.feed('data')
    expectErrno(recv(CONN, [4], 4).rc, 'INVAL')
    expectErrno(recv(LISTENER, [4]).rc, 'BADF')
    const iovs = h.iovecs([[h.alloc(4), 4]])
    expectTrap(() => h.wasi.sock_recv(CONN, iovs, 1, 0, NEG_PTR, h.alloc(2, 2)), 'sock_recv')
    expectTrap(() => h.wasi.sock_recv(CONN, iovs, 1, 0, h.alloc(4, 4), 1), 'sock_recv')
    expectTrap(() => h.wasi.sock_recv(CONN, h.iovecs([[h.size - 2, 4]]), 1, 0, h.alloc(4, 4), h.alloc(2, 2)), 'sock_recv')
    expectTrap(() => h.wasi.sock_recv(CONN, NEG_PTR, 1, 0, h.alloc(4, 4), h.alloc(2, 2)), 'sock_recv')
    expect(conn.inbound.length).toBe(4)
  })
})

describe('sock_send', () => {
  it('gathers several buffers into the stream, in order', () => {
    const { conn, send } = setup()
    const r = send(CONN, ['GET / ', 'HTTP/1.1\r\n', '\r\n'])
    expectErrno(r.rc, 'SUCCESS')
    expect(r.n).toBe(18)
    expect(conn.text()).toBe('GET / HTTP/1.1\r\n\r\n')
  })

  it('sends large buffers as they are and gathers the small ones between them, in order', () => {
    const { h, conn, send } = setup(4)
    const parts = ['h'.repeat(10), 'A'.repeat(40_000), 'b'.repeat(5), 'c'.repeat(7), 'D'.repeat(20_000)]
    const calls: number[] = []
    const real = conn.send.bind(conn)
    conn.send = (data, nonblock) => {
      calls.push(data.byteLength)
      return real(data, nonblock)
    }
    const r = send(CONN, parts)
    expect(r.n).toBe(40_022 + 20_000)
    expect(conn.text()).toBe(parts.join(''))
    expect(calls).toEqual([10, 40_000, 12, 20_000])
    // Non-blocking, the peer taking part of the large one: the count stops there, exactly.
    expectErrno(h.wasi.fd_fdstat_set_flags(CONN, NONBLOCK), 'SUCCESS')
    conn.sent.length = 0
    conn.room = 110
    expect(send(CONN, parts).n).toBe(110)
    expect(conn.text()).toBe(parts.join('').slice(0, 110))
  })

  it('sends a short count non-blocking, then AGAIN; PIPE after SHUT_WR', () => {
    const { h, conn, send } = setup()
    expectErrno(h.wasi.fd_fdstat_set_flags(CONN, NONBLOCK), 'SUCCESS')
    conn.room = 5
    expect(send(CONN, ['abc', 'defgh']).n).toBe(5)
    expect(conn.text()).toBe('abcde')
    expectErrno(send(CONN, ['x']).rc, 'AGAIN')
    conn.room = Infinity
    expectErrno(h.wasi.sock_shutdown(CONN, 2), 'SUCCESS')
    expectErrno(send(CONN, ['x']).rc, 'PIPE')
  })

  it('refuses send flags, a listener, and traps on a bad count pointer', () => {
    const { h, conn, send } = setup()
    expectErrno(send(CONN, ['x'], 1).rc, 'INVAL')
    expectErrno(send(LISTENER, ['x']).rc, 'BADF')
    expectTrap(() => h.wasi.sock_send(CONN, h.iovecs([[h.str('x').ptr, 1]]), 1, 0, NEG_PTR), 'sock_send')
    expect(conn.sent.length).toBe(0)
  })
})

describe('fd_read and fd_write on a socket', () => {
  it('read and write the stream like recv and send', () => {
    const { h, conn } = setup()
    conn.feed('ping')
    const r = h.readFd(CONN, 16)
    expectErrno(r.errno, 'SUCCESS')
    expect(r.text).toBe('ping')
    expectErrno(h.writeFd(CONN, 'pong').errno, 'SUCCESS')
    expect(conn.text()).toBe('pong')
    expectErrno(h.readFd(LISTENER).errno, 'BADF')
    expectErrno(h.writeFd(LISTENER, 'x').errno, 'BADF')
  })
})

describe('sock_shutdown', () => {
  it('takes RD, WR or both; anything else is INVAL; only on sockets', () => {
    const { h, conn } = setup()
    for (const how of [0, 4, 7]) expectErrno(h.wasi.sock_shutdown(CONN, how), 'INVAL')
    expectErrno(h.wasi.sock_shutdown(CONN, 3), 'SUCCESS')
    expect(conn.readShut && conn.writeShut).toBe(true)
    expectErrno(h.wasi.sock_shutdown(LISTENER, 3), 'NOTCAPABLE')
    expectErrno(h.wasi.sock_shutdown(STDOUT, 3), 'NOTSOCK')
  })
})

describe('poll_oneoff over sockets', () => {
  const SUB = 48
  const EV = 32
  function poll(h: ReturnType<typeof setup>['h'], subs: ({ fd: number; write?: boolean } | { clockNs: bigint })[]) {
    const inPtr = h.alloc(SUB * subs.length, 8)
    const out = h.alloc(EV * subs.length, 8)
    const nev = h.alloc(4, 4)
    const dv = new DataView(h.mem.buffer)
    subs.forEach((s, i) => {
      const p = inPtr + i * SUB
      dv.setBigUint64(p, BigInt(i + 1), true)
      if ('fd' in s) {
        dv.setUint8(p + 8, s.write ? 2 : 1)
        dv.setUint32(p + 16, s.fd, true)
      } else {
        dv.setUint8(p + 8, 0)
        dv.setUint32(p + 16, 1, true)
        dv.setBigUint64(p + 24, s.clockNs, true)
      }
    })
    const rc = h.wasi.poll_oneoff(inPtr, out, subs.length, nev)
    const events = Array.from({ length: h.u32(nev) }, (_, i) => {
      const e = out + i * EV
      return { userdata: Number(h.u64(e)), error: h.u16(e + 8), type: h.u8(e + 10), nbytes: Number(h.u64(e + 16)), flags: h.u16(e + 24) }
    })
    return { rc, events }
  }

  it('reports readable sockets with their byte counts, and a listener with a pending connection', () => {
    const { h, conn, listener, net } = setup()
    conn.feed('12345')
    listener.pending.push(new ScriptedConnection())
    const r = poll(h, [{ fd: LISTENER }, { fd: CONN }, { fd: CONN, write: true }, { clockNs: 5_000_000_000n }])
    expectErrno(r.rc, 'SUCCESS')
    expect(r.events.map((e) => [e.userdata, e.nbytes])).toEqual([
      [1, 1],
      [2, 5],
      [3, 65536],
    ])
    // Sockets ready: the backend was asked not to wait... only for the clock's time.
    expect(net.polls.at(-1)!.timeoutNs! > 4_000_000_000n).toBe(true)
  })

  it('marks a connection whose peer hung up, and waits no longer than the earliest clock', () => {
    const { h, conn, net } = setup()
    conn.eof = true
    const r = poll(h, [{ fd: CONN }])
    expect(r.events).toEqual([{ userdata: 1, error: 0, type: 1, nbytes: 0, flags: 1 }])
    expect(net.polls.at(-1)!.timeoutNs).toBeUndefined()
    // A file is always ready: the sockets are only looked at, not waited on.
    const { h: h2, net: net2 } = setup()
    const file = h2.openOk('a.txt')
    const r2 = poll(h2, [{ fd: CONN }, { fd: file }])
    expect(r2.events.map((e) => e.userdata)).toEqual([2])
    expect(net2.polls.at(-1)!.timeoutNs).toBe(0n)
  })

  it('returns the clock when no socket became ready', () => {
    const { h } = setup()
    const r = poll(h, [{ fd: CONN }, { clockNs: 1000n }])
    expect(r.events.map((e) => [e.userdata, e.type])).toEqual([[2, 0]])
  })
})
