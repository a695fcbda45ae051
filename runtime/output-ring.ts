/**
 * @module The guest's inherited stdout and stderr in a worker run: one shared ring that the
 * worker appends records to (stream, length, bytes) and the embedder's thread drains to fds 1
 * and 2 with asynchronous writes. One ring keeps the two streams in the order the guest wrote
 * them; the drain turns many small writes into few large ones; bytes in the ring survive the
 * worker being terminated (the embedder drains after the kill), so nothing written is lost. The
 * embedder's thread never blocks on a slow reader (its timers must still fire); a full ring
 * blocks the guest instead (back-pressure). A reader that went away (EPIPE) is reported to the
 * guest at its next write.
 */
import { fstatSync, writev as writevAsync } from 'node:fs'
import { Errno } from '../wasi-host/abi/constants.js'
import { WasiError } from '../wasi-host/errors.js'
import type { Sink } from './output.js'
import { waitAsync } from './worker/bridge.js'

// Header (Int32 slots), then the data ring.
const WRITE = 0 // bytes appended, ever (wraps at 2^32)
const READ = 1 // bytes drained, ever
const READER_WAITING = 2
const WRITER_WAITING = 3
const BROKEN_STDOUT = 4
const BROKEN_STDERR = 5
const HEADER = 32
const RECORD = 4
const STDERR_BIT = 0x8000_0000
/** Views per writev (Linux's IOV_MAX). */
const MAX_IOVECS = 1024

/** The ring's size: a power of two, so positions wrap with the 32-bit counters. */
export const OUTPUT_RING_BYTES = 1 << 18

export function createOutputRing(bytes = OUTPUT_RING_BYTES): SharedArrayBuffer {
  if (bytes < 64 || (bytes & (bytes - 1)) !== 0) throw new RangeError('the output ring is a power of two of at least 64 bytes')
  return new SharedArrayBuffer(HEADER + bytes)
}

/** Empties a ring for reuse by the next run (no writer or reader may be attached). */
export function resetOutputRing(ring: SharedArrayBuffer): void {
  new Int32Array(ring, 0, HEADER / 4).fill(0)
}

const used = (h: Int32Array) => (Atomics.load(h, WRITE) - Atomics.load(h, READ)) >>> 0

/** The worker's side: a sink per stream, appending to the ring (blocking while it is full). */
export function ringSink(ring: SharedArrayBuffer, stream: 'stdout' | 'stderr'): Sink {
  const h = new Int32Array(ring, 0, HEADER / 4)
  const data = new Uint8Array(ring, HEADER)
  const size = data.byteLength
  const mask = size - 1
  const broken = stream === 'stdout' ? BROKEN_STDOUT : BROKEN_STDERR
  const tag = stream === 'stdout' ? 0 : STDERR_BIT
  const put = (at: number, bytes: Uint8Array) => {
    const start = at & mask
    const first = Math.min(bytes.byteLength, size - start)
    data.set(first === bytes.byteLength ? bytes : bytes.subarray(0, first), start)
    if (first < bytes.byteLength) data.set(bytes.subarray(first), 0)
  }
  const header = new Uint8Array(RECORD)
  const headerView = new DataView(header.buffer)
  return (chunk) => {
    // The reader went away (`| head`): the guest sees EPIPE, as a process would.
    if (Atomics.load(h, broken) !== 0) throw new WasiError(Errno.PIPE, 'host output closed')
    let from = 0
    do {
      const room = size - used(h)
      if (room <= RECORD) {
        Atomics.store(h, WRITER_WAITING, 1)
        if (size - used(h) <= RECORD) Atomics.wait(h, READ, Atomics.load(h, READ), 100)
        continue
      }
      const n = Math.min(chunk.byteLength - from, room - RECORD)
      const at = Atomics.load(h, WRITE)
      headerView.setUint32(0, (tag | n) >>> 0)
      put(at, header)
      put((at + RECORD) >>> 0, chunk.subarray(from, from + n))
      Atomics.store(h, WRITE, (at + RECORD + n) | 0)
      from += n
      if (Atomics.load(h, READER_WAITING) !== 0) {
        Atomics.store(h, READER_WAITING, 0)
        Atomics.notify(h, WRITE)
      }
    } while (from < chunk.byteLength)
  }
}

/** The embedder's side: drains the ring to fds 1 and 2 until `close()` (which drains what is left). */
export class OutputRingReader {
  readonly #h: Int32Array
  readonly #data: Uint8Array
  readonly #fds: { stdout: number; stderr: number }
  /** Whether fds 1 and 2 are one file (a terminal, `2>&1`): then both streams go out in one write, in order. */
  readonly #oneFile: boolean
  #closed = false
  readonly #done: Promise<void>

  constructor(ring: SharedArrayBuffer, fds = { stdout: 1, stderr: 2 }) {
    this.#h = new Int32Array(ring, 0, HEADER / 4)
    this.#data = new Uint8Array(ring, HEADER)
    this.#fds = fds
    this.#oneFile = sameFile(fds.stdout, fds.stderr)
    this.#done = this.#loop()
  }

  /** Writes out everything the guest appended, then stops. Resolves once it is written. */
  async close(): Promise<void> {
    this.#closed = true
    Atomics.notify(this.#h, WRITE)
    await this.#done
  }

  async #loop(): Promise<void> {
    const h = this.#h
    for (;;) {
      if (used(h) > 0) {
        await this.#drainOnce()
        continue
      }
      if (this.#closed) return
      Atomics.store(h, READER_WAITING, 1)
      const seen = Atomics.load(h, WRITE)
      if (used(h) > 0) continue
      const wait = waitAsync(h, WRITE, seen, 50)
      if (wait.async) await wait.value
    }
  }

  /**
   * Writes the records now in the ring: each run of one stream (or all of them, when both are one
   * file) in one `writev` straight from the ring, without copying; the ring space is given back
   * only after the write.
   */
  async #drainOnce(): Promise<void> {
    const h = this.#h
    const data = this.#data
    const size = data.byteLength
    const mask = size - 1
    const end = Atomics.load(h, WRITE)
    let at = Atomics.load(h, READ)
    const word = (pos: number) => {
      let w = 0
      for (let i = 0; i < RECORD; i++) w = w * 256 + data[(pos + i) & mask]!
      return w
    }
    while ((end - at) >>> 0 > 0) {
      const stream = (word(at) & STDERR_BIT) !== 0 ? 'stderr' : 'stdout'
      const views: Uint8Array[] = []
      let next = at
      while ((end - next) >>> 0 > 0 && views.length < MAX_IOVECS - 1) {
        const w = word(next)
        if (!this.#oneFile && ((w & STDERR_BIT) !== 0 ? 'stderr' : 'stdout') !== stream) break
        const n = w & ~STDERR_BIT
        const start = (next + RECORD) & mask
        const first = Math.min(n, size - start)
        if (first > 0) views.push(data.subarray(start, start + first))
        if (first < n) views.push(data.subarray(0, n - first))
        next = (next + RECORD + n) >>> 0
      }
      await this.#write(stream, views)
      at = next
      Atomics.store(h, READ, at | 0)
      if (Atomics.load(h, WRITER_WAITING) !== 0) {
        Atomics.store(h, WRITER_WAITING, 0)
        Atomics.notify(h, READ)
      }
    }
  }

  async #write(stream: 'stdout' | 'stderr', views: Uint8Array[]): Promise<void> {
    const broken = stream === 'stdout' ? BROKEN_STDOUT : BROKEN_STDERR
    if (Atomics.load(this.#h, broken) !== 0) return
    let rest = views
    while (rest.length > 0) {
      let n: number
      try {
        n = await new Promise<number>((resolve, reject) =>
          writevAsync(this.#fds[stream], rest, null, (err, written) => (err ? reject(err) : resolve(written))),
        )
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'EAGAIN') {
          await new Promise((r) => setTimeout(r, 1))
          continue
        }
        // EPIPE and any other failure: this stream's reader is gone; the guest learns of it.
        Atomics.store(this.#h, broken, 1)
        if (this.#oneFile) Atomics.store(this.#h, broken === BROKEN_STDOUT ? BROKEN_STDERR : BROKEN_STDOUT, 1)
        return
      }
      // A short write: skip what went out, keep the rest.
      while (rest.length > 0 && n >= rest[0]!.byteLength) {
        n -= rest[0]!.byteLength
        rest = rest.slice(1)
      }
      if (n > 0) rest = [rest[0]!.subarray(n), ...rest.slice(1)]
    }
  }
}

function sameFile(a: number, b: number): boolean {
  try {
    const x = fstatSync(a, { bigint: true })
    const y = fstatSync(b, { bigint: true })
    return x.dev === y.dev && x.ino === y.ino
  } catch {
    return false
  }
}
