/**
 * @module The host's internal error model (LESSONS.md, "Error model").
 * `WasiError` carries a guest-visible errno; `GuestFault` and `HostInvariantError` become traps;
 * `ProcExit` unwinds `proc_exit` and is deliberately not an `Error`, so no generic
 * `catch (e) { if (e instanceof Error) … }` can swallow it.
 */
import { type Errno, errnoName } from './abi/constants.js'

/** Thrown by syscall implementations, the resolver and backends; becomes the returned errno. */
export class WasiError extends Error {
  /** @param detail host-only explanation for traces; never shown to the guest. */
  constructor(readonly errno: Errno, readonly detail?: string) {
    super(detail ? `${errnoName(errno)}: ${detail}` : errnoName(errno))
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
  constructor(readonly limit: string, readonly detail: string) {}
}
