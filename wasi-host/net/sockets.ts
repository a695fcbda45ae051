/**
 * @module The socket backend interface (platform-neutral, like `Filesystem`): the handles a
 * granted socket descriptor holds. A listener accepts; a connection receives, sends and shuts
 * down. Every method is synchronous: it returns data or throws `WasiError(errno)`; a backend
 * that does its I/O elsewhere (Node's event loop, a Web Worker) blocks the calling thread until
 * the answer arrives (`remote-sockets.ts`).
 *
 * A backend must never: open a socket the embedder did not grant (preview1 has no `connect` or
 * `bind`, and caplet adds none), resolve a name (no DNS), tell the guest a host detail beyond
 * an errno, or buffer without bound on the guest's behalf.
 */

/** What `poll` asks about one socket. */
export interface SocketInterest {
  readonly socket: SocketHandle
  readonly write: boolean
}

/** The answer for one interest: ready or not, bytes available, and whether the peer hung up. */
export interface SocketReadiness {
  ready: boolean
  /** Bytes readable (read interest) or writable without blocking (write interest); 0 if unknown. */
  nbytes: number
  /** The connection ended (EOF, reset, closed): a read returns 0 or an error at once. */
  hangup: boolean
  /** An errno to report for this interest (e.g. the socket was closed under it); 0 otherwise. */
  errno: number
}

/**
 * A network stack as the host sees it: the sockets it granted, and a way to wait on several of
 * them at once. One per host; every handle it hands out belongs to it.
 */
export interface SocketBackend {
  /**
   * Waits until at least one interest is ready or `timeoutNs` passes (`undefined`: no limit;
   * `0n`: do not wait), and returns one readiness per interest, in order.
   */
  poll(interests: readonly SocketInterest[], timeoutNs: bigint | undefined): SocketReadiness[]
  /** Hands on what the backend holds back (write-behind sends) before the guest sleeps. */
  flush?(): void
}

export interface ListenerSocket {
  readonly role: 'listener'
  /**
   * Takes the next pending connection. Blocks until one arrives unless `nonblock`.
   * @throws WasiError AGAIN (nonblock, none pending), BADF (closed)
   */
  accept(nonblock: boolean): ConnectionSocket
  /** Releases the host socket. Idempotent. */
  close(): void
}

export interface RecvOptions {
  /** Leave the bytes queued (`RECV_PEEK`). */
  peek: boolean
  /** Wait until `max` bytes, EOF or an error (`RECV_WAITALL`). */
  waitAll: boolean
  nonblock: boolean
}

export interface ConnectionSocket {
  readonly role: 'connection'
  /**
   * Receives up to `max` bytes; an empty result means the peer finished sending (EOF).
   * Blocks until something arrives unless `nonblock`. The bytes may be a view of the backend's
   * own buffer: copy them out before the next call on this backend.
   * @throws WasiError AGAIN (nonblock, nothing queued), CONNRESET, TIMEDOUT (idle), NOTCONN
   */
  recv(max: number, options: RecvOptions): Uint8Array
  /**
   * Sends `data` (the backend copies what it keeps). Returns the bytes taken: all of them,
   * unless `nonblock` and the send buffer is full (then at least 1, or AGAIN).
   * @throws WasiError AGAIN, PIPE (shut down for writing, or the peer is gone), CONNRESET
   */
  send(data: Uint8Array, nonblock: boolean): number
  /** `SHUT_RD`, `SHUT_WR` or both (`Sdflags` bits). @throws WasiError NOTCONN */
  shutdown(how: number): void
  close(): void
  /**
   * Present on a granted connection (a connect grant) only: a new connection to the same
   * address, and never another (the guest names no address). Blocks until connected.
   * @throws WasiError CONNREFUSED (or another connect errno), MFILE (connections limit), BADF
   */
  redial?(): ConnectionSocket
}

export type SocketHandle = ListenerSocket | ConnectionSocket

/** A socket the embedder grants: it becomes a descriptor after the preopened directories. */
export interface SocketGrant {
  readonly socket: SocketHandle
  /** For `LISTEN_FDNAMES` and traces only; the guest identifies sockets by descriptor. */
  readonly name?: string
}
