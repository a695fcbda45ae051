/**
 * @module The sock_* calls, and the socket side of `fd_read`/`fd_write`. The dispatcher has
 * already checked that the descriptor is a socket holding the rights `SYSCALL_RIGHTS` names;
 * what is left is the role check (listener or connection), the flags, and the work.
 *
 * SECURITY: an accepted connection gets `listener.rightsInheriting & CONNECTION_RIGHTS` and no
 * inheriting rights, never more. Every pointer is checked before the first side effect: a
 * fault after `accept` would leak a connection, so `sock_accept` checks its output first.
 * Data moves in chunks of at most `CHUNK` bytes, so no guest length makes the host allocate
 * more than that per call.
 */
import { Errno, Fdflags, Filetype, Riflags, Sdflags } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import type { SocketDescriptor } from '../fd-table.js'
import type { HostState } from '../host-state.js'
import type { ConnectionSocket } from '../net/sockets.js'
import { CONNECTION_RIGHTS } from '../rights.js'
import { checkedIovecSnapshot, checkIovecs, iovecTotal } from './iovecs.js'

/** Fuel for dialing a connect grant's address again (as for moving 64 KiB): a loop of redials costs. */
const REDIAL_WORK = 64 * 1024

/** The most one backend call moves; larger reads and writes loop. */
export const CHUNK = 1 << 20
/** An iovec this large is sent as a view of guest memory; smaller ones are gathered (up to `GATHER`). */
const DIRECT_SEND = 16 * 1024
const GATHER = 64 * 1024

function connectionOf(d: SocketDescriptor): ConnectionSocket {
  // A listener carries data neither way: POSIX says ENOTCONN for recv/send on one.
  if (d.socket.role !== 'connection') throw new WasiError(Errno.NOTCONN, 'not a connection')
  return d.socket
}

/** Copies `src` into the iovecs (a snapshot: `checkedIovecSnapshot`) from byte `skip` of their concatenation on. */
function scatter(h: HostState, vecs: Uint32Array, iovsLen: number, skip: number, src: Uint8Array): void {
  const bytes = h.memory.bytes
  let at = 0
  let pos = 0
  for (let i = 0; i < iovsLen && at < src.byteLength; i++) {
    const p = vecs[i * 2]!
    const l = vecs[i * 2 + 1]!
    if (pos + l <= skip) {
      pos += l
      continue
    }
    const from = skip > pos ? skip - pos : 0
    const n = Math.min(l - from, src.byteLength - at)
    bytes.set(src.subarray(at, at + n), p + from)
    at += n
    pos += l
  }
}

/**
 * Receives into the iovecs (a checked snapshot). Without `waitAll` one backend call
 * (what is there, at least one byte, or EOF); with it, until full, EOF or an error after some
 * bytes (then the short count, and the error at the next call, as POSIX does).
 */
function receive(h: HostState, d: SocketDescriptor, vecs: Uint32Array, riflags: number): number {
  const s = connectionOf(d)
  const iovsLen = vecs.length / 2
  const total = iovecTotal(vecs)
  if (total === 0) return 0
  const peek = (riflags & Riflags.RECV_PEEK) !== 0
  const waitAll = (riflags & Riflags.RECV_WAITALL) !== 0 && !peek
  const nonblock = (d.fdflags & Fdflags.NONBLOCK) !== 0
  let got = 0
  do {
    let chunk: Uint8Array
    try {
      chunk = s.recv(Math.min(total - got, CHUNK), { peek, waitAll, nonblock })
    } catch (e) {
      if (got > 0 && e instanceof WasiError) break
      throw e
    }
    if (chunk.byteLength === 0) break
    scatter(h, vecs, iovsLen, got, chunk)
    got += chunk.byteLength
  } while (waitAll && got < total)
  if (got >= 64) h.chargeWork(got)
  return got
}

/**
 * Sends the iovecs (already checked, `total` bytes) in order; a short count only when
 * non-blocking. A large iovec goes as a view of guest memory (the backend copies what it
 * keeps); runs of small ones (a header beside a body) are gathered into one piece first, so a
 * writev costs no copy of its body and few backend calls.
 */
function transmit(h: HostState, d: SocketDescriptor, iovs: number, iovsLen: number, total: number): number {
  const s = connectionOf(d)
  if (total === 0) return 0
  const nonblock = (d.fdflags & Fdflags.NONBLOCK) !== 0
  const dv = h.memory.dataView
  const bytes = h.memory.bytes
  let staging: Uint8Array | undefined
  let sent = 0
  // The cursor: iovec `i`, `within` bytes into it.
  let i = 0
  let within = 0
  while (sent < total) {
    const p = dv.getUint32(iovs + i * 8, true)
    const l = dv.getUint32(iovs + i * 8 + 4, true)
    if (within === l) {
      i++
      within = 0
      continue
    }
    let piece: Uint8Array
    if (l - within >= DIRECT_SEND || iovsLen === 1) {
      piece = bytes.subarray(p + within, p + within + Math.min(l - within, CHUNK))
    } else {
      staging ??= new Uint8Array(Math.min(total, GATHER))
      let filled = 0
      let ii = i
      let w = within
      while (filled < staging.byteLength && ii < iovsLen) {
        const pp = dv.getUint32(iovs + ii * 8, true)
        const ll = dv.getUint32(iovs + ii * 8 + 4, true)
        // A large iovec after small ones goes by itself (as a view), not through the copy.
        if (filled > 0 && ll - w >= DIRECT_SEND) break
        const n = Math.min(ll - w, staging.byteLength - filled)
        staging.set(bytes.subarray(pp + w, pp + w + n), filled)
        filled += n
        w += n
        if (w === ll) {
          ii++
          w = 0
        }
      }
      piece = staging.subarray(0, filled)
    }
    let n: number
    try {
      n = s.send(piece, nonblock)
    } catch (e) {
      if (sent > 0 && e instanceof WasiError) break
      throw e
    }
    sent += n
    // Advance the cursor by what was taken.
    let left = n
    while (left > 0 && i < iovsLen) {
      const ll = dv.getUint32(iovs + i * 8 + 4, true)
      const k = Math.min(ll - within, left)
      within += k
      left -= k
      if (within === ll) {
        i++
        within = 0
      }
    }
    if (n < piece.byteLength) break
  }
  if (sent >= 64) h.chargeWork(sent)
  return sent
}

/** `fd_read` on a socket: `sock_recv` without flags. */
export function readSocket(h: HostState, d: SocketDescriptor, iovs: number, iovsLen: number): number {
  return receive(h, d, checkedIovecSnapshot(h, iovs, iovsLen), 0)
}

/** `fd_write` on a socket: `sock_send` without flags. */
export function writeSocket(h: HostState, d: SocketDescriptor, iovs: number, iovsLen: number): number {
  return transmit(h, d, iovs, iovsLen, checkIovecs(h, iovs, iovsLen))
}

export function sock_accept(h: HostState, d: SocketDescriptor, flags: number, fdPtr: number): number {
  h.memory.check(fdPtr, 4, 4)
  if ((flags & ~Fdflags.NONBLOCK) !== 0) throw new WasiError(Errno.INVAL, 'sock_accept takes only NONBLOCK')
  const s = d.socket
  // A connect grant's descriptor "accepts" a new connection to its one address (it holds
  // SOCK_ACCEPT, which the dispatcher checked); any other connection is not listening.
  if (s.role !== 'listener' && s.redial === undefined) throw new WasiError(Errno.INVAL, 'not a listening socket')
  // Room first: a connection accepted with no number to give it would be lost.
  h.fds.assertRoom()
  if (s.role !== 'listener') h.chargeWork(REDIAL_WORK)
  const conn = s.role === 'listener' ? s.accept((d.fdflags & Fdflags.NONBLOCK) !== 0) : s.redial!()
  // SECURITY: never more than the listener lets its connections have.
  const rights = d.rightsInheriting & CONNECTION_RIGHTS
  let fd: number
  try {
    fd = h.fds.insert({
      kind: 'socket',
      socket: conn,
      filetype: Filetype.SOCKET_STREAM,
      fdflags: flags,
      rightsAtOpen: rights,
      rightsBase: rights,
      rightsInheriting: 0,
    })
  } catch (e) {
    conn.close()
    throw e
  }
  h.memory.setU32(fdPtr, fd)
  return Errno.SUCCESS
}

export function sock_recv(
  h: HostState,
  d: SocketDescriptor,
  iovs: number,
  iovsLen: number,
  riflags: number,
  nPtr: number,
  roflagsPtr: number,
): number {
  const vecs = checkedIovecSnapshot(h, iovs, iovsLen)
  const m = h.memory
  m.check(nPtr, 4, 4)
  m.check(roflagsPtr, 2, 2)
  if ((riflags & ~(Riflags.RECV_PEEK | Riflags.RECV_WAITALL)) !== 0) throw new WasiError(Errno.INVAL, 'unknown riflags')
  const n = receive(h, d, vecs, riflags)
  m.setU32(nPtr, n)
  // roflags: a stream socket never sets RECV_DATA_TRUNCATED (what does not fit stays queued).
  m.setU16(roflagsPtr, 0)
  return Errno.SUCCESS
}

export function sock_send(h: HostState, d: SocketDescriptor, iovs: number, iovsLen: number, siflags: number, nPtr: number): number {
  const total = checkIovecs(h, iovs, iovsLen)
  h.memory.check(nPtr, 4, 4)
  // preview1 defines no send flags.
  if (siflags !== 0) throw new WasiError(Errno.INVAL, 'unknown siflags')
  const n = transmit(h, d, iovs, iovsLen, total)
  h.memory.setU32(nPtr, n)
  return Errno.SUCCESS
}

export function sock_shutdown(_h: HostState, d: SocketDescriptor, how: number): number {
  if (how === 0 || (how & ~(Sdflags.RD | Sdflags.WR)) !== 0) throw new WasiError(Errno.INVAL, 'bad sdflags')
  connectionOf(d).shutdown(how)
  return Errno.SUCCESS
}
