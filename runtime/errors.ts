/**
 * @module Typed errors at the public API, for what the caller did wrong (bad policy, bad module).
 * A non-zero exit or a trap is a result, not an error. Messages start with `[caplet]`.
 */
import type { Diagnostic } from '../toolchain/diagnostics.js'

export type SandboxErrorCode = 'POLICY' | 'MODULE' | 'COMPILE' | 'TOOLCHAIN' | 'NETWORK' | 'PLUGIN'

export class SandboxError extends Error {
  /** The message without its `[caplet]` prefix (what the CLI prints after `caplet: `). */
  readonly reason: string

  constructor(
    readonly code: SandboxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[caplet] ${message}`, options)
    this.name = 'SandboxError'
    this.reason = message
  }
}

/** The run's configuration cannot be honoured; `problems` lists every one, naming the field. */
export class PolicyError extends SandboxError {
  constructor(
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
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
  constructor(
    readonly imports: readonly string[],
    message: string,
  ) {
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
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[] = [],
    options?: { cause?: unknown; limit?: CompileLimit },
  ) {
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

/** How one plugin call failed (see `PluginCallError`). */
export type PluginFailure =
  /** The plugin trapped (`trap` says how), as a run's `trap`. */
  | 'trap'
  /** A limit stopped the call (`limit`: `fuel`, `timeout`, `stdout`, `vars`, ...). */
  | 'limit'
  /** The plugin reported an error: a non-zero status, Extism's `error_set`, or `proc_exit` with a non-zero code. */
  | 'plugin'
  /** A host function the embedder granted threw (its message, and `cause` in-process). */
  | 'host'

/**
 * One plugin call failed. The plugin itself survives: with `state: 'fresh'` it is reset for the
 * next call; with `state: 'keep'` a trap or a limit leaves it unusable (`PluginUnusableError`).
 */
export class PluginCallError extends SandboxError {
  constructor(
    message: string,
    readonly failure: PluginFailure,
    readonly details: {
      trap?: import('./trap.js').TrapInfo
      limit?: string
      /** The export's status (Extism ABI, or an i32 result), or the `proc_exit` code. */
      status?: number
      /** What the plugin wrote to stderr during the call (at most 4 KiB). */
      stderr?: string
      /** The host function that failed (`module.field`). */
      hostFunction?: string
    } = {},
    options?: { cause?: unknown },
  ) {
    super('PLUGIN', message, options)
    this.name = 'PluginCallError'
  }

  get trap() {
    return this.details.trap
  }
  get limit() {
    return this.details.limit
  }
  get status() {
    return this.details.status
  }
}

/** The plugin cannot be called any more: it was closed, or a `keep`-state plugin failed. */
export class PluginUnusableError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PLUGIN', message, options)
    this.name = 'PluginUnusableError'
  }
}
