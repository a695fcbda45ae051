/**
 * @module The host's internal error model (docs/security.md, "How they are kept").
 * `WasiError` carries a guest-visible errno; `GuestFault` and `HostInvariantError` become traps;
 * `ProcExit` unwinds `proc_exit` and is deliberately not an `Error`, so no generic
 * `catch (e) { if (e instanceof Error) … }` can swallow it.
 */
import { type Errno, errnoName } from './abi/constants.js'
import type { DenialKind } from './rights.js'

/**
 * Turns V8's stack capture off until `restoreStacks(token)`, for errors that only carry an errno
 * back to the guest: a stack costs several microseconds to capture (more than most syscalls),
 * and nobody reads it. Returns the limit to restore, or undefined when there is nothing to do
 * (another engine, or an embedder that made `Error.stackTraceLimit` read-only). Synchronous use
 * only, restored in a `finally`: no other code runs in between.
 */
export function muteStacks(): number | undefined {
  if (!stacksMutable) return undefined
  const limit = V8Error.stackTraceLimit
  if (typeof limit !== 'number' || limit === 0) return undefined
  try {
    V8Error.stackTraceLimit = 0
  } catch {
    stacksMutable = false // frozen by the embedder (strict mode throws): leave it alone from now on
    return undefined
  }
  return limit
}

let stacksMutable = true
/** `Error` with V8's `stackTraceLimit`, which other engines may not have (no Node types here). */
const V8Error: ErrorConstructor & { stackTraceLimit?: number } = Error

export function restoreStacks(limit: number | undefined): void {
  if (limit !== undefined) V8Error.stackTraceLimit = limit
}

/**
 * Thrown by syscall implementations, the resolver and backends; becomes the returned errno.
 *
 * NOTE: it carries no stack trace (`muteStacks`): it is an answer on its way back to the guest,
 * thrown on common paths (a missing file, a lookup taking its general path), not a failure.
 * `detail` says where it came from.
 */
export class WasiError extends Error {
  readonly errno: Errno
  /** Host-only explanation for traces; never shown to the guest. */
  readonly detail: string | undefined
  /** Set when the policy refused the call (`rights.ts`, `denial()`): reported in the run's denials. */
  readonly denial: DenialKind | undefined

  constructor(errno: Errno, detail?: string, denial?: DenialKind) {
    const limit = muteStacks()
    try {
      super(detail ? `${errnoName(errno)}: ${detail}` : errnoName(errno))
    } finally {
      restoreStacks(limit)
    }
    this.errno = errno
    this.detail = detail
    this.denial = denial
    this.name = 'WasiError'
  }
}

/** Raised when a guest pointer or length is out of bounds, misaligned or wraps: the call traps. */
export class GuestFault extends Error {
  syscall?: string
  constructor(message: string) {
    super(message)
    this.name = 'GuestFault'
  }
}

/** An unexpected failure inside the host: a bug. It traps rather than inventing an errno. */
export class HostInvariantError extends Error {
  syscall?: string
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HostInvariantError'
  }
}

/** Unwinds the guest's stack on `proc_exit`. Not an `Error` on purpose. */
export class ProcExit {
  constructor(readonly code: number) {}
}

/** Thrown through the guest when a limit of the policy (output, descriptors…) is exceeded. */
export class LimitExceeded {
  constructor(
    readonly limit: string,
    readonly detail: string,
  ) {}
}
