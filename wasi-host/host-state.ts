/**
 * @module What every syscall implementation sees: the state of one WasiHost instance.
 * Everything here is per instance (no module-level mutable state).
 */
import type { GuestMemory } from './abi/guest-memory.js'
import type { FdTable } from './fd-table.js'
import type { ResolverLimits } from './fs/path-resolver.js'
import type { SocketBackend } from './net/sockets.js'
import type { WriteBehind } from './write-behind.js'
import type { DenialLog } from './denials.js'

/** Clocks as the guest sees them; all values in nanoseconds. */
export interface ClockSource {
  realtime(): bigint
  monotonic(): bigint
  processCputime(): bigint
  threadCputime(): bigint
  /** Resolution of each clock in ns, as `clock_res_get` reports it. */
  resolution: { realtime: bigint; monotonic: bigint; processCputime: bigint; threadCputime: bigint }
  /** Blocks the calling thread for `ns` without spinning. @throws WasiError NOTSUP where blocking is impossible */
  sleep(ns: bigint): void
}

/**
 * Standard-stream bytes the embedder holds back (e.g. `runtime/output-hold.ts`). The dispatcher
 * calls `flush()` before every call but a write to a stream and at the end of the run, so what
 * the guest wrote is out before anything else it does can be observed.
 */
export interface HeldOutput {
  /** Whether any bytes are held (all the dispatcher checks on the hot path). */
  readonly pending: boolean
  flush(): void
}

export interface HostLimits extends ResolverLimits {
  /** Open descriptors, stdio and preopens included (`MFILE`). */
  maxFds: number
  /** Buffers in one iovec array (`INVAL` beyond; Linux IOV_MAX is 1024). */
  maxIovecs: number
  /** Subscriptions in one `poll_oneoff` (`INVAL` beyond). */
  maxPollSubscriptions: number
}

export const DEFAULT_HOST_LIMITS: Omit<HostLimits, keyof ResolverLimits> = Object.freeze({
  maxFds: 1024,
  maxIovecs: 1024,
  maxPollSubscriptions: 4096,
})

export interface HostStats {
  /** Calls per syscall name. */
  syscalls: Record<string, number>
  bytesRead: number
  bytesWritten: number
}

export interface HostState {
  readonly memory: GuestMemory
  readonly fds: FdTable
  readonly args: readonly Uint8Array[]
  readonly env: readonly Uint8Array[]
  readonly clocks: ClockSource
  readonly randomFill: (dst: Uint8Array) => void
  readonly limits: HostLimits
  readonly stats: HostStats
  /**
   * Charges host work to the guest's budget: one unit per 64 bytes a call moves (writes, reads,
   * random bytes), so a fuel limit bounds work done in host calls too. A no-op unless metered.
   */
  readonly chargeWork: (bytes: number) => void
  /** Small file writes held back; flushed by the dispatcher before every other call. */
  readonly writeBehind: WriteBehind
  /** Held standard-stream bytes, if the embedder holds any (flushed before every other call). */
  readonly heldOutput: HeldOutput | undefined
  /** Every call the policy refused; a call that reports part of its work records a refusal it swallowed here. */
  readonly denials: DenialLog
  /** The backend of the granted sockets, if any (`poll_oneoff` waits on it). */
  readonly net: SocketBackend | undefined
}
