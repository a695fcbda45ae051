/**
 * @module Output sinks with byte limits: captured into a shared buffer (read back even after the
 * worker was terminated: nothing written is lost), written to a host fd, or discarded.
 * A write past the limit keeps what fits and stops the guest with `LimitExceeded`.
 */
import { LimitExceeded } from '../wasi-host/errors.js'
import { discardWriter } from '../wasi-host/fd-table.js'
import { writeAllSync } from './stdio.js'
import { CAPTURE_HEADER } from './worker/protocol.js'

export type Sink = (chunk: Uint8Array) => void

/** The bytes written so far into a capture buffer. */
export function capturedBytes(buffer: SharedArrayBuffer): Uint8Array {
  const len = Atomics.load(new Int32Array(buffer, 0, 1), 0)
  return new Uint8Array(buffer, CAPTURE_HEADER, len).slice()
}

/** Wraps a sink with a byte limit for `stream`. */
export function limitedSink(write: Sink, limit: number | undefined, stream: 'stdout' | 'stderr'): Sink {
  if (limit === undefined) return write
  let used = 0
  return (chunk) => {
    const room = limit - used
    if (chunk.byteLength > room) {
      if (room > 0) write(chunk.subarray(0, room))
      used = limit
      throw new LimitExceeded(stream, `${stream} exceeded ${limit} bytes`)
    }
    used += chunk.byteLength
    write(chunk)
  }
}

export function captureSink(buffer: SharedArrayBuffer): Sink {
  const header = new Int32Array(buffer, 0, 1)
  const bytes = new Uint8Array(buffer, CAPTURE_HEADER)
  return (chunk) => {
    const at = header[0]!
    const n = Math.min(chunk.byteLength, bytes.byteLength - at)
    bytes.set(n === chunk.byteLength ? chunk : chunk.subarray(0, n), at)
    Atomics.store(header, 0, at + n)
  }
}

export const fdSink =
  (fd: number): Sink =>
  (chunk) =>
    writeAllSync(fd, chunk)
/** The host's own discarding writer, which `fd_write` recognises and skips. */
export const discardSink: Sink = discardWriter
