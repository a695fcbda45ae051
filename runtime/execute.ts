/**
 * @module Runs one guest to completion on the current thread: builds the WASI host from a
 * resolved policy, instantiates, sets the fuel budget, runs `_start`, and classifies how it
 * ended. The worker entry and the in-process mode both call this; neither duplicates it.
 */
import { Errno } from '../wasi-host/abi/constants.js'
import { LimitExceeded, WasiError } from '../wasi-host/errors.js'
import { WasiHost, type StdinSource } from '../wasi-host/host.js'
import type { ClockSource, HeldOutput } from '../wasi-host/host-state.js'
import type { Filesystem } from '../wasi-host/fs/filesystem.js'
import { createNodeClocks } from '../wasi-host/node/clocks.js'
import type { OpenedMounts, OverlayReport } from './mounts.js'
import { FUEL_EXPORT as FUEL_GLOBAL, REUSED_MEMORY_IMPORT } from './instrument/fuel-export.js'
import { keepGuestMemory, takeGuestMemory } from './guest-memories.js'
import { coarsenClocks, seededRandomFill, virtualClocks } from './guest-clocks.js'
import type { ResolvedPolicy } from './policy.js'
import { bridgedHostCaller, scriptRunner, type HostCaller, type ScriptGuest, type ScriptRun } from './script-guest.js'
import { openHostStdin } from './stdio.js'
import { BridgeClient, type BridgeChannel } from './worker/bridge.js'
import { RemoteSockets, type NetStats } from '../wasi-host/net/remote-sockets.js'
import type { SocketGrant } from '../wasi-host/net/sockets.js'
import { listenEnv, type ListeningSocket } from './socket-grants.js'
import { classifyTrap, LIMIT_EXIT_CODE, TRAP_EXIT_CODE, type TrapInfo } from './trap.js'
import { stubFunctions, type ImportStub, type UnknownImportCalled } from './link/stubs.js'
import { describeDenials, type Denial } from './denials.js'
import { openTrace, type TraceSummaryRow } from './trace-output.js'

export type LimitKind = 'timeout' | 'fuel' | 'stdout' | 'stderr' | 'memory' | 'aborted' | 'network'

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
  /** Runs with sockets: connections accepted and refused, bytes in and out over the network. */
  sockets?: NetStats
}

export interface ExecutionOutcome {
  exitCode: number
  /** Caveats about this run: its confinement (a host-directory fallback strategy), held file writes that failed once the guest could no longer learn of it. */
  warnings?: string[]
  /** What each overlay mount changed (and whether it was saved or applied). */
  overlays?: OverlayReport[]
  trap?: TrapInfo
  limit?: LimitKind
  /** Calls the policy refused (capped at 64), each with the flag that would grant it; see `denialCount`. */
  denials?: Denial[]
  /** How many calls the policy refused in all (present with `denials`). */
  denialCount?: number
  /** With `trace: { summary: true }`: calls, errors and microseconds per function. */
  traceSummary?: TraceSummaryRow[]
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

export { LIMIT_EXIT_CODE, TRAP_EXIT_CODE }

export interface Sinks {
  stdout: (chunk: Uint8Array) => void
  stderr: (chunk: Uint8Array) => void
  /** Trace lines, when the caller traces into a function. */
  trace?: (line: string) => void
  /** A trace file's buffer, shared with the thread that may terminate this one (`trace-buffer.ts`). */
  traceBuffer?: SharedArrayBuffer
  /** What `stdout`/`stderr` hold back, for the host to flush before every other call (`output-hold.ts`). */
  held?: HeldOutput
}

/** One guest to run: what a worker receives, and what an in-process run passes directly. */
export interface Guest {
  module: WebAssembly.Module
  /** The WASI functions it imports (already checked against what the host and the policy allow). */
  functions: readonly string[]
  /** Imports linked to stubs (unknown imports trapping or returning zeros, denied syscalls returning ENOSYS). */
  stubs?: readonly ImportStub[]
  /** Bytes to subtract from engine code offsets to get offsets in the caller's module (see `codeShift`). */
  codeShift?: number | undefined
  /** Its memory is the import `caplet.memory` with these limits: this thread supplies one (`guest-memories.ts`). */
  memory?: { minPages: number; maxPages: number } | undefined
  policy: ResolvedPolicy
  argv0: string
  /** A JavaScript/TypeScript program: `module` is then the JavaScript engine it runs in (`script-run.ts`, loaded by `runScript` and the worker). */
  script?: ScriptGuest | undefined
  /** The channel to the run's async host services (sockets, async host functions), when it has any. */
  bridge?: BridgeChannel
}

/** A run's sockets, opened over its bridge: the backend, and the grants in policy order. */
export interface OpenedSockets {
  backend: RemoteSockets
  grants: SocketGrant[]
  addresses: ListeningSocket[]
}

/**
 * Asks the run's `net` service for the granted sockets (blocking until they listen / connect).
 * `firstFd` is the descriptor the first one will get (after stdio and the mounts).
 * @throws BridgeCallError when a grant could not be opened (its message names it)
 */
export function openSockets(channel: BridgeChannel, policy: ResolvedPolicy, firstFd: number): OpenedSockets {
  const l = policy.limits
  const backend = new RemoteSockets(new BridgeClient(channel), {
    ...(l.bytesIn !== undefined ? { maxBytesIn: l.bytesIn } : {}),
    ...(l.bytesOut !== undefined ? { maxBytesOut: l.bytesOut } : {}),
  })
  const { grants, opened } = backend.open()
  const addresses = opened.map((o, i): ListeningSocket => ({
    role: o.role,
    address: o.address,
    fd: firstFd + i,
    ...(o.name !== undefined ? { name: o.name } : {}),
  }))
  return { backend, grants, addresses }
}

type MountBackends = typeof import('./mounts.js')
let mountBackends: MountBackends | undefined
/**
 * Gives `executeGuest` the mount backends (mounts.ts: host directories, overlays, in-memory
 * layers, quotas), which a run without mounts never loads: a runner provides them (in-process.ts
 * at load) or loads them (`loadMounts`, a worker) before a run with mounts.
 */
export function provideMounts(m: MountBackends): void {
  mountBackends = m
}
export async function loadMounts(): Promise<void> {
  mountBackends ??= await import('./mounts.js')
}
const NO_MOUNTS: OpenedMounts = Object.freeze({
  preopens: Object.freeze([]),
  warnings: Object.freeze([]),
  finish: () => [],
  close: () => {},
})

function openMounts(policy: ResolvedPolicy, extraFs: readonly (Filesystem | undefined)[], now?: () => bigint): OpenedMounts {
  if (policy.mounts.length === 0) return NO_MOUNTS
  if (mountBackends === undefined) throw new Error('the mount backends are not loaded (provideMounts or loadMounts first)')
  return mountBackends.openMounts(policy, extraFs, now)
}

/**
 * Runs the guest. Extra `preopens` (in-process `fs` mounts) are appended after the policy's.
 * A run with sockets takes them already open (`sockets`, in-process) or opens them over
 * `guest.bridge` (in a worker).
 */
export function executeGuest(
  guest: Guest,
  sinks: Sinks,
  extraFs: readonly (Filesystem | undefined)[] = [],
  sockets?: OpenedSockets,
  callHost?: HostCaller,
): ExecutionOutcome {
  const { module, policy } = guest
  const closers: (() => void)[] = []
  const started = performance.now()
  try {
    const baseClocks = policy.deterministic
      ? virtualClocks(policy.clocks.resolutionNs)
      : coarsenClocks(createNodeClocks(), policy.clocks.resolutionNs, policy.clocks.cputime)
    // In-process, a sleeping guest blocks the caller's own thread, and fuel does not count
    // sleep: bound the total a run may sleep there (a worker run is bounded by its timeout).
    const clocks =
      policy.isolation === 'in-process' && !policy.deterministic ? withSleepBudget(baseClocks, IN_PROCESS_SLEEP_BUDGET_NS) : baseClocks
    const mounts = openMounts(policy, extraFs, policy.deterministic ? clocks.realtime : undefined)
    closers.push(mounts.close)
    let stdin: StdinSource
    if (policy.stdin === 'inherit' || !(policy.stdin instanceof Uint8Array)) {
      const s = openHostStdin(policy.stdin === 'inherit' ? undefined : policy.stdin.file)
      closers.push(s.close)
      stdin = s.read
    } else stdin = policy.stdin
    let meter: WebAssembly.Global | undefined
    const firstSocketFd = 3 + mounts.preopens.length
    if (sockets === undefined && policy.sockets.length > 0) {
      if (guest.bridge === undefined) throw new Error('a run with sockets needs a bridge to its net service')
      sockets = openSockets(guest.bridge, policy, firstSocketFd)
    }
    const env =
      sockets !== undefined && policy.listenEnv
        ? {
            ...policy.env,
            ...listenEnv(
              firstSocketFd,
              sockets.grants.map((g) => g.name),
            ),
          }
        : policy.env
    const host = new WasiHost({
      args: policy.args ?? [guest.argv0],
      env,
      preopens: mounts.preopens,
      ...(sockets !== undefined ? { sockets: sockets.grants, net: sockets.backend } : {}),
      stdin,
      stdout: sinks.stdout,
      stderr: sinks.stderr,
      ...(sinks.held !== undefined ? { heldOutput: sinks.held } : {}),
      ttys: policy.ttys,
      clocks,
      ...(policy.deterministic ? { randomFill: seededRandomFill(policy.seed) } : {}),
      limits: { maxFds: policy.limits.maxFds },
      // Host calls are charged one unit per 64 bytes moved, like bulk operations in the guest;
      // the guest reloads its counter from the global after every call.
      ...(policy.limits.fuel !== undefined
        ? {
            chargeWork: (bytes: number) => {
              if (meter) meter.value = (meter.value as bigint) - BigInt(bytes >>> 6)
            },
          }
        : {}),
      functions: guest.functions,
    })
    let exitCode = 0
    let trap: TrapInfo | undefined
    let limit: LimitKind | undefined
    let instance: WebAssembly.Instance | undefined
    let fuel: WebAssembly.Global | undefined
    // A trap stub's exception, kept in case the guest catches it (exception handling): it still ends the run.
    let stubTrap: UnknownImportCalled | undefined
    // A null-prototype object: a module may name an import module "__proto__".
    const imports: Record<string, Record<string, unknown>> = Object.assign(
      Object.create(null) as Record<string, Record<string, unknown>>,
      host.imports,
    )
    if (guest.memory !== undefined) {
      const memory = takeGuestMemory(guest.memory)
      imports[REUSED_MEMORY_IMPORT.module] = { [REUSED_MEMORY_IMPORT.name]: memory }
      closers.push(() => {
        // The kept memory keeps this run's instance for the young-generation GC, and the instance
        // its imports: they let go of the host first (WasiHost.detach).
        host.detach()
        keepGuestMemory(memory, guest.memory!)
      })
    }
    if (guest.stubs !== undefined && guest.stubs.length > 0) {
      const onCall = (s: ImportStub) => {
        if (s.action === 'enosys')
          host.denials.record({ call: s.name, kind: 'denied-import', errno: 'NOSYS', detail: 'denied by the policy' })
      }
      for (const [m, fns] of Object.entries(
        stubFunctions(guest.stubs, onCall, (e) => {
          stubTrap ??= e
        }),
      )) {
        imports[m] = { ...imports[m], ...fns }
      }
    }
    // NOTE: only a traced run wraps its imports; an untraced one calls the dispatcher directly.
    const trace = openTrace(policy, sinks.trace, sinks.traceBuffer)
    if (trace !== undefined) {
      closers.push(() => {
        trace.finish()
      })
      imports.wasi_snapshot_preview1 = trace.wrap(host, imports.wasi_snapshot_preview1 as Record<string, (...args: never[]) => number>)
    }
    let script: ScriptRun | undefined
    try {
      if (guest.script !== undefined) {
        const hostCaller =
          callHost ?? (guest.script.host === true && guest.bridge !== undefined ? bridgedHostCaller(guest.bridge) : undefined)
        script = scriptRunner()(
          guest.script,
          module,
          host,
          imports.wasi_snapshot_preview1 as Record<string, (...args: never[]) => number>,
          policy.limits.memoryPages * 65536,
          hostCaller,
        )
        instance = script.instance
      } else instance = new WebAssembly.Instance(module, imports as WebAssembly.Imports)
      if (policy.limits.fuel !== undefined) {
        fuel = instance.exports[FUEL_GLOBAL] as WebAssembly.Global
        fuel.value = BigInt(policy.limits.fuel)
        meter = fuel
      }
      exitCode = script !== undefined ? script.execute() : host.start(instance)
      if (stubTrap !== undefined) throw stubTrap
    } catch (e) {
      if (stubTrap !== undefined && !(e instanceof LimitExceeded)) e = stubTrap
      if (e instanceof LimitExceeded) {
        limit = e.limit as LimitKind
        exitCode = LIMIT_EXIT_CODE
      } else if (fuel !== undefined && (fuel.value as bigint) < 0n) {
        limit = 'fuel'
        exitCode = LIMIT_EXIT_CODE
      } else {
        // Anything else thrown while the guest ran (e.g. the engine refusing a host result for
        // an import declared with another signature) still ends in a result, never a throw.
        trap = classifyTrap(e, host.recentSyscalls(), guest.codeShift) ?? {
          kind: 'host-fault',
          message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
          recentSyscalls: host.recentSyscalls(),
        }
        exitCode = TRAP_EXIT_CODE
      }
    } finally {
      host.close()
    }
    const memory = instance?.exports.memory
    const peakMemory = memory instanceof WebAssembly.Memory ? memory.buffer.byteLength : 0
    // SECURITY: a script's engine instance is reused only after a run that ended normally.
    script?.release(trap === undefined && limit === undefined)
    const stats: RunStats = {
      wallMs: performance.now() - started,
      peakMemory,
      syscalls: host.stats.made(),
      bytesRead: host.stats.bytesRead,
      bytesWritten: host.stats.bytesWritten,
    }
    if (sockets !== undefined) {
      // Write-behind sends and closes the guest left queued reach the service before the counts.
      sockets.backend.settle()
      try {
        stats.sockets = sockets.backend.stats()
      } catch {
        /* the service is gone (the run is ending): the embedder has its own count */
      }
    }
    if (fuel !== undefined) {
      const left = fuel.value as bigint
      stats.fuelUsed = policy.limits.fuel! - Number(left > 0n ? left : 0n)
    }
    const overlays = mounts.finish()
    // host.close() above wrote out held file writes, before mounts close and before the result.
    const warnings = [...mounts.warnings, ...host.writeFailures()]
    // A guest that ends as if all went well after its writes were refused left files cut short.
    if (exitCode === 0 && trap === undefined && limit === undefined && host.denials.quota > 0) {
      const n = host.denials.quota
      warnings.push(
        `the guest exited 0, but ${n} of its writes ${n === 1 ? 'was' : 'were'} refused by a quota (EDQUOT: --disk, --max-files, --tmp SIZE): files it wrote may be incomplete`,
      )
    }
    // Built field by field, in the order results have always listed them (`--json` prints it).
    const outcome = { exitCode } as ExecutionOutcome
    if (trap) outcome.trap = trap
    if (limit) outcome.limit = limit
    if (overlays.length > 0) outcome.overlays = overlays
    if (warnings.length > 0) outcome.warnings = warnings
    const summary = trace?.finish()
    if (summary !== undefined) outcome.traceSummary = summary
    if (host.denials.count > 0) {
      outcome.denials = describeDenials(host.denials.events, policy)
      outcome.denialCount = host.denials.count
    }
    outcome.stats = stats
    return outcome
  } finally {
    for (const close of closers.reverse()) close()
  }
}
