/**
 * @module Typed errors at the public API, for what the caller did wrong (bad policy, bad module).
 * A non-zero exit or a trap is a result, not an error. Messages start with `[caplet]`.
 */

export type SandboxErrorCode = 'POLICY' | 'MODULE'

export class SandboxError extends Error {
  constructor(readonly code: SandboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[caplet] ${message}`, options)
    this.name = 'SandboxError'
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

/** The module imports functions caplet does not provide; `imports` lists every one (`module.name`). */
export class UnknownImportsError extends ModuleError {
  constructor(readonly imports: readonly string[], message: string) {
    super(message)
    this.name = 'UnknownImportsError'
  }
}
