/**
 * @module Runs one guest to completion on the current thread: builds the WASI host from a
 * resolved policy, instantiates, sets the fuel budget, runs `_start`, and classifies how it
 * ended. The worker entry and the in-process mode both call this; neither duplicates it.
 */
import { Errno, LimitExceeded, WasiError, WasiHost, type ClockSource, type Filesystem, type StdinSource } from '../wasi-host/index.js'
import { createNodeClocks } from '../wasi-host/node/index.js'
import { openMounts, type OverlayReport } from './mounts.js'
import { FUEL_EXPORT as FUEL_GLOBAL } from './instrument/index.js'
import { coarsenClocks, seededRandomFill, virtualClocks } from './guest-clocks.js'
import type { ResolvedPolicy } from './policy.js'
import { openHostStdin } from './stdio.js'
import type { BridgeChannel } from './worker/bridge.js'
import { classifyTrap, type TrapInfo } from './trap.js'

export type LimitKind = 'timeout' | 'fuel' | 'stdout' | 'stderr' | 'memory' | 'aborted'

export interface RunStats {
  wallMs: number
  /** Fuel consumed, when the run was metered. */
  fuelUsed?: number
  /** Linear memory at the end of the run (it never shrinks), in bytes. */
  peakMemory: number
  /** Calls per WASI function (only those made). */
  syscalls: Record<string, number>
  bytesRead: number
  bytesWritten: number
}

export interface ExecutionOutcome {
  exitCode: number
  /** Caveats about this run: its confinement (a host-directory fallback strategy), held file writes that failed once the guest could no longer learn of it. */
  warnings?: string[]
  /** What each overlay mount changed (and whether it was saved or applied). */
  overlays?: OverlayReport[]
  trap?: TrapInfo
  limit?: LimitKind
  stats: RunStats
}

/** Total time an in-process run may spend asleep in `poll_oneoff` before sleeps fail with NOTSUP. */
export const IN_PROCESS_SLEEP_BUDGET_NS = 1_000_000_000n

function withSleepBudget(clocks: ClockSource, budgetNs: bigint): ClockSource {
  let left = budgetNs
  return {
    ...clocks,
    sleep: (ns) => {
      if (ns > left) throw new WasiError(Errno.NOTSUP, 'in-process runs may not sleep longer; use worker isolation with a timeout')
      left -= ns
      clocks.sleep(ns)
    },
  }
}

/** Exit code reported when the guest trapped (as a process killed by SIGABRT). */
export const TRAP_EXIT_CODE = 134
/** Exit code reported when a limit stopped the guest (as GNU timeout does). */
export const LIMIT_EXIT_CODE = 124

export interface Sinks {
  stdout: (chunk: Uint8Array) => void
  stderr: (chunk: Uint8Array) => void
}

/** One guest to run: what a worker receives, and what an in-process run passes directly. */
export interface Guest {
  module: WebAssembly.Module
  /** The WASI functions it imports (already checked against what the host and the policy allow). */
  functions: readonly string[]
  policy: ResolvedPolicy
  argv0: string
  /** The channel to the run's async host services (sockets, async host functions), when it has any. */
  bridge?: BridgeChannel
}

/** Runs the guest. Extra `preopens` (in-process `fs` mounts) are appended after the policy's. */
export function executeGuest(guest: Guest, sinks: Sinks, extraFs: readonly (Filesystem | undefined)[] = []): ExecutionOutcome {
  const { module, policy } = guest
  const closers: (() => void)[] = []
  const started = performance.now()
  try {
    const baseClocks = policy.deterministic
      ? virtualClocks(policy.clocks.resolutionNs)
      : coarsenClocks(createNodeClocks(), policy.clocks.resolutionNs, policy.clocks.cputime)
    // In-process, a sleeping guest blocks the caller's own thread, and fuel does not count
    // sleep: bound the total a run may sleep there (a worker run is bounded by its timeout).
    const clocks = policy.isolation === 'in-process' && !policy.deterministic
      ? withSleepBudget(baseClocks, IN_PROCESS_SLEEP_BUDGET_NS)
      : baseClocks
    const mounts = openMounts(policy, extraFs, policy.deterministic ? clocks.realtime : undefined)
    closers.push(mounts.close)
    let stdin: StdinSource
    if (policy.stdin === 'inherit' || !(policy.stdin instanceof Uint8Array)) {
      const s = openHostStdin(policy.stdin === 'inherit' ? undefined : policy.stdin.file)
      closers.push(s.close)
      stdin = s.read
    } else stdin = policy.stdin
    let meter: WebAssembly.Global | undefined
    const host = new WasiHost({
      args: policy.args ?? [guest.argv0],
      env: policy.env,
      preopens: mounts.preopens,
      stdin,
      stdout: sinks.stdout,
      stderr: sinks.stderr,
      ttys: policy.ttys,
      clocks,
      ...(policy.deterministic ? { randomFill: seededRandomFill(policy.seed) } : {}),
      limits: { maxFds: policy.limits.maxFds },
      // Host calls are charged one unit per 64 bytes moved, like bulk operations in the guest;
      // the guest reloads its counter from the global after every call.
      ...(policy.limits.fuel !== undefined ? { chargeWork: (bytes: number) => { if (meter) meter.value = (meter.value as bigint) - BigInt(bytes >>> 6) } } : {}),
      functions: guest.functions,
    })
    let exitCode = 0
    let trap: TrapInfo | undefined
    let limit: LimitKind | undefined
    let instance: WebAssembly.Instance | undefined
    let fuel: WebAssembly.Global | undefined
    try {
      instance = new WebAssembly.Instance(module, host.imports as unknown as WebAssembly.Imports)
      if (policy.limits.fuel !== undefined) {
        fuel = instance.exports[FUEL_GLOBAL] as WebAssembly.Global
        fuel.value = BigInt(policy.limits.fuel)
        meter = fuel
      }
      exitCode = host.start(instance)
    } catch (e) {
      if (e instanceof LimitExceeded) {
        limit = e.limit as LimitKind
        exitCode = LIMIT_EXIT_CODE
      } else if (fuel !== undefined && (fuel.value as bigint) < 0n) {
        limit = 'fuel'
        exitCode = LIMIT_EXIT_CODE
      } else {
        // Anything else thrown while the guest ran (e.g. the engine refusing a host result for
        // an import declared with another signature) still ends in a result, never a throw.
        trap = classifyTrap(e, host.recentSyscalls()) ?? {
          kind: 'host-fault', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e), recentSyscalls: host.recentSyscalls(),
        }
        exitCode = TRAP_EXIT_CODE
      }
    } finally {
      host.close()
    }
    const memory = instance?.exports.memory
    const stats: RunStats = {
      wallMs: performance.now() - started,
      peakMemory: memory instanceof WebAssembly.Memory ? memory.buffer.byteLength : 0,
      syscalls: host.stats.made(),
      bytesRead: host.stats.bytesRead,
      bytesWritten: host.stats.bytesWritten,
    }
    if (fuel !== undefined) {
      const left = fuel.value as bigint
      stats.fuelUsed = policy.limits.fuel! - Number(left > 0n ? left : 0n)
    }
    const overlays = mounts.finish()
    // host.close() above wrote out held file writes, before mounts close and before the result.
    const warnings = [...mounts.warnings, ...host.writeFailures()]
    // Built field by field, in the order results have always listed them (`--json` prints it).
    const outcome = { exitCode } as ExecutionOutcome
    if (trap) outcome.trap = trap
    if (limit) outcome.limit = limit
    if (overlays.length > 0) outcome.overlays = overlays
    if (warnings.length > 0) outcome.warnings = warnings
    outcome.stats = stats
    return outcome
  } finally {
    for (const close of closers.reverse()) close()
  }
}
