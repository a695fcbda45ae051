/**
 * @module The typed, versioned messages between the sandbox and its worker.
 */
import type { ExecutionOutcome, Guest } from '../execute.js'

export const PROTOCOL_VERSION = 2

/** How a worker delivers one output stream. */
export type StreamMode =
  | { kind: 'inherit' }
  | { kind: 'discard' }
  /** Appended to a shared buffer: Int32 length at 0, bytes from 8; survives termination. */
  | { kind: 'capture'; buffer: SharedArrayBuffer }
  /** Posted as `chunk` messages. */
  | { kind: 'callback' }
  /** Inherited: appended to a ring shared by both streams, which the embedder drains to fds 1 and 2 (`output-ring.ts`). */
  | { kind: 'ring'; buffer: SharedArrayBuffer }

/** One run, posted to a pooled worker: the guest (module, its imports, policy, argv0) and its streams. */
export interface WorkerJob extends Guest {
  v: typeof PROTOCOL_VERSION
  type: 'run'
  stdout: StreamMode
  stderr: StreamMode
  /** A trace file's buffer, written out by the embedder if the worker is terminated (`trace-buffer.ts`). */
  traceBuffer?: SharedArrayBuffer
}

export type WorkerMessage =
  | { v: typeof PROTOCOL_VERSION; type: 'chunk'; stream: 'stdout' | 'stderr'; bytes: Uint8Array }
  /** `at`: when this thread took the job and when it posted this, as `performance.timeOrigin + performance.now()` (ms). */
  | { v: typeof PROTOCOL_VERSION; type: 'done'; outcome: ExecutionOutcome; at: [taken: number, done: number] }
  /** One trace line, for a caller that traces into a function. */
  | { v: typeof PROTOCOL_VERSION; type: 'trace'; line: string }
  | { v: typeof PROTOCOL_VERSION; type: 'failed'; message: string }

export const CAPTURE_HEADER = 8
