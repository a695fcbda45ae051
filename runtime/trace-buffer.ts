/**
 * @module A trace file's write buffer: lines are gathered (64 KiB) and written in one call, not
 * one `writeSync` each. The buffer can be shared: a worker writes into it and the thread that
 * terminates the worker (timeout, abort, crash) writes out what is left (`recoverTraceTail`),
 * so the tail of a trace is never lost (Node closes a terminated worker's descriptors: the file
 * is opened again there).
 */
import { closeSync, fstatSync, openSync } from 'node:fs'
import { writeAllSync } from './stdio.js'

/** Bytes of trace gathered before one write. */
export const TRACE_BUFFER_BYTES = 64 * 1024
// Header: Int32 [1 while the file is open, pending bytes, 1 while a write is under way]; Float64
// at 16: [the file's size when opened, bytes written since]. Lines from byte 32.
const HEADER = 32
const OPEN = 0,
  PENDING = 1,
  WRITING = 2

/** The memory of a trace buffer: shared when a worker writes it, plain on the caller's thread. */
export function traceBufferMemory(shared: boolean): ArrayBuffer | SharedArrayBuffer {
  return shared ? new SharedArrayBuffer(HEADER + TRACE_BUFFER_BYTES) : new ArrayBuffer(HEADER + TRACE_BUFFER_BYTES)
}

export class TraceFileBuffer {
  readonly #head: Int32Array
  readonly #sizes: Float64Array
  readonly #data: Uint8Array
  readonly #fd: number
  readonly #enc = new TextEncoder()
  #pending = 0

  /** Opens `file` for appending. @throws Error when it cannot be opened */
  constructor(file: string, memory: ArrayBuffer | SharedArrayBuffer) {
    this.#head = new Int32Array(memory, 0, 3)
    this.#sizes = new Float64Array(memory, 16, 2)
    this.#data = new Uint8Array(memory, HEADER)
    this.#fd = openSync(file, 'a')
    this.#sizes[0] = fstatSync(this.#fd).size
    this.#sizes[1] = 0
    this.#head[PENDING] = 0
    this.#head[WRITING] = 0
    this.#head[OPEN] = 1
  }

  /** Adds one line (a newline is appended); writes the buffer out first when the line does not fit. */
  line(text: string): void {
    const at = this.#pending
    const r = this.#enc.encodeInto(text, this.#data.subarray(at))
    if (r.read === text.length && at + r.written < this.#data.length) {
      this.#data[at + r.written] = 10
      this.#head[PENDING] = this.#pending = at + r.written + 1
      return
    }
    this.flush()
    const bytes = this.#enc.encode(`${text}\n`)
    if (bytes.length <= this.#data.length) {
      this.#data.set(bytes)
      this.#head[PENDING] = this.#pending = bytes.length
    } else {
      writeAllSync(this.#fd, bytes)
      this.#sizes[1] = this.#sizes[1]! + bytes.length
    }
  }

  /** Writes out what is gathered (before a call that may wait, and at the end). */
  flush(): void {
    if (this.#pending === 0) return
    const n = this.#pending
    // NOTE: the order lets recoverTraceTail tell how much of the chunk reached the file.
    this.#head[WRITING] = 1
    writeAllSync(this.#fd, this.#data.subarray(0, n))
    this.#head[PENDING] = this.#pending = 0
    this.#sizes[1] = this.#sizes[1]! + n
    this.#head[WRITING] = 0
  }

  /** Flushes and closes the file. */
  close(): void {
    if (this.#head[OPEN] === 0) return
    try {
      this.flush()
    } finally {
      this.#head[OPEN] = 0
      closeSync(this.#fd)
    }
  }
}

/**
 * After the worker that wrote the buffer to `file` was terminated (it runs no more): appends the
 * lines it had not written. A write cut off by the termination is completed from where the file
 * ends (a regular file); on a pipe or device its whole chunk is written again.
 */
export function recoverTraceTail(memory: SharedArrayBuffer, file: string): void {
  const head = new Int32Array(memory, 0, 3)
  if (head[OPEN] === 0) return
  head[OPEN] = 0
  let fd: number | undefined
  try {
    fd = openSync(file, 'a')
    const sizes = new Float64Array(memory, 16, 2)
    let from = 0
    if (head[WRITING] === 1) {
      const st = fstatSync(fd)
      if (st.isFile()) from = Math.max(0, st.size - sizes[0]! - sizes[1]!)
    }
    const pending = head[PENDING]!
    if (from < pending) writeAllSync(fd, new Uint8Array(memory, HEADER + from, pending - from))
  } catch {
    /* the file is gone or cannot take more: the run's result stands */
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
