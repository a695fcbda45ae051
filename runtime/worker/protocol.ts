/**
 * @module The typed, versioned messages between the sandbox and its worker.
 */
import type { ResolvedPolicy } from '../policy.js'
import type { ExecutionOutcome } from '../execute.js'

export const PROTOCOL_VERSION = 1

/** How a worker delivers one output stream. */
export type StreamMode =
  | { kind: 'inherit' }
  | { kind: 'discard' }
  /** Appended to a shared buffer: Int32 length at 0, bytes from 8; survives termination. */
  | { kind: 'capture'; buffer: SharedArrayBuffer }
  /** Posted as `chunk` messages. */
  | { kind: 'callback' }

/** One run, posted to a pooled worker. */
export interface WorkerJob {
  v: typeof PROTOCOL_VERSION
  type: 'run'
  module: WebAssembly.Module
  policy: ResolvedPolicy
  argv0: string
  stdout: StreamMode
  stderr: StreamMode
}

export type WorkerMessage =
  | { v: typeof PROTOCOL_VERSION; type: 'chunk'; stream: 'stdout' | 'stderr'; bytes: Uint8Array }
  | { v: typeof PROTOCOL_VERSION; type: 'done'; outcome: ExecutionOutcome }
  | { v: typeof PROTOCOL_VERSION; type: 'failed'; message: string }

export const CAPTURE_HEADER = 8
