/**
 * @module Runs as the API shows them, and the interface both execution backends implement: the
 * local worker pool (`local-backend.ts`) and the BullMQ queue (`queue-backend.ts`). A run's view
 * carries its owner; a client sees only its own runs.
 */
import type { AppliedLimits } from './limits.js'
import type { ModuleStore } from './modules.js'
import type { RunJob } from './request.js'
import type { RunResultJson } from './execute-run.js'

export type RunStatus = 'queued' | 'running' | 'done' | 'failed'

export interface RunView {
  id: string
  status: RunStatus
  module: string
  /** The limits that applied (bytes, milliseconds, counts). */
  limits: AppliedLimits
  result?: RunResultJson
  /** Why the run has no result (`failed`): the service could not run it. */
  error?: { code: string; message: string }
  /** How many times the run was started again after its worker or the queue was lost. */
  retried?: number
}

/** A run as kept until its result expires. */
export interface RunRecord {
  view: RunView
  owner: string
  expiresAt: number
}

/** When a run left this server's queue and when it ended (`performance.now()`), for `Server-Timing`. */
export interface RunTiming {
  started?: number
  ended?: number
  /** The run's hand-offs to and from its pool worker (RunResult.handoff), when it ran on this server. */
  handoff?: { toWorkerMs: number; fromWorkerMs: number }
}

export interface BackendDepth {
  queued: number
  running: number
  capacity: number
}

export interface RunBackend {
  readonly mode: 'local' | 'queue'
  readonly modules: ModuleStore
  /** @throws ApiError 429 when `n` more runs would overfill the queue */
  admit(n: number): void
  /** Starts a run (admitted before); resolves with its final view, never rejects. Fills `timing` when it can. */
  start(job: RunJob, timing?: RunTiming): Promise<RunView>
  /** The run's view, if it exists and belongs to `owner`. */
  get(id: string, owner: string): Promise<RunView | undefined>
  depth(): BackendDepth
  health(): Promise<{ ok: boolean; detail: string }>
  /** Stops taking runs and lets the ones in flight finish (bounded by `graceMs`). */
  close(graceMs?: number): Promise<void>
}

export const viewOf = (job: RunJob, status: RunStatus): RunView => ({ id: job.id, status, module: job.moduleId, limits: job.limits })

/** Failure views never carry a stack or a host detail. */
export function failedView(job: RunJob, code: string, message: string, retried?: number): RunView {
  return { ...viewOf(job, 'failed'), error: { code, message }, ...(retried ? { retried } : {}) }
}
