/**
 * @module Typed errors at the public API, for what the caller did wrong (bad policy, bad module).
 * A non-zero exit or a trap is a result, not an error. Messages start with `[caplet]`.
 */

export type SandboxErrorCode = 'POLICY' | 'MODULE'

export class SandboxError extends Error {
  /** The message without its `[caplet]` prefix (what the CLI prints after `caplet: `). */
  readonly reason: string

  constructor(readonly code: SandboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[caplet] ${message}`, options)
    this.name = 'SandboxError'
    this.reason = message
  }
}

/** The run's configuration cannot be honoured; `problems` lists every one, naming the field. */
export class PolicyError extends SandboxError {
  constructor(readonly problems: string[], options?: { cause?: unknown }) {
    super('POLICY', problems.join('; '), options)
    this.name = 'PolicyError'
  }
}

/** The module cannot run here: unreadable, invalid, or importing what the host does not provide. */
export class ModuleError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODULE', message, options)
    this.name = 'ModuleError'
  }
}
