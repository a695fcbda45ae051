/**
 * @module Typed errors at the public API, for what the caller did wrong (bad policy, bad module).
 * A non-zero exit or a trap is a result, not an error. Messages start with `[caplet]`.
 */
import type { Diagnostic } from '../toolchain/diagnostics.js'

export type SandboxErrorCode = 'POLICY' | 'MODULE' | 'COMPILE' | 'TOOLCHAIN' | 'NETWORK'

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

/**
 * The submitted source did not compile (or the compiler was stopped by a limit). `diagnostics`
 * holds the compiler's messages with guest-relative file names; the message is their summary.
 */
export class CompileError extends SandboxError {
  /** Set when a limit stopped the compiler rather than an error in the source. */
  readonly limit: CompileLimit | undefined
  constructor(message: string, readonly diagnostics: Diagnostic[] = [], options?: { cause?: unknown; limit?: CompileLimit }) {
    super('COMPILE', message, options)
    this.name = 'CompileError'
    this.limit = options?.limit
  }
}

export type CompileLimit = 'timeout' | 'output' | 'memory' | 'aborted'

/**
 * The toolchain cannot compile here: a compiler is not installed, or the jail it must run in
 * (bubblewrap) is missing and the caller did not say `trustSource`. The message names what to
 * install.
 */
export class ToolchainError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TOOLCHAIN', message, options)
    this.name = 'ToolchainError'
  }
}

/** A granted socket could not be opened before the run (address in use, connection refused). */
export class NetworkError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NETWORK', message, options)
    this.name = 'NetworkError'
  }
}
