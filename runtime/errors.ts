/**
 * @module Typed errors at the public API, for what the caller did wrong (bad policy, bad module).
 * A non-zero exit or a trap is a result, not an error. Messages start with `[caplet]`.
 */

export type SandboxErrorCode = 'POLICY' | 'MODULE' | 'PLUGIN'

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

  get trap() { return this.details.trap }
  get limit() { return this.details.limit }
  get status() { return this.details.status }
}

/** The plugin cannot be called any more: it was closed, or a `keep`-state plugin failed. */
export class PluginUnusableError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PLUGIN', message, options)
    this.name = 'PluginUnusableError'
  }
}
