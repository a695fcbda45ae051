/**
 * @module Where one run executes: on the caller's thread (`runInProcess`), or on a pooled worker
 * that can be stopped at any instruction (`runInWorker`). Both take a compiled module and a
 * policy already resolved for this run, and deliver the guest's output as the policy says.
 */
import { CallbackFaults } from './callback-faults.js'
import {
  executeGuest,
  type OpenedSockets,
  LIMIT_EXIT_CODE,
  TRAP_EXIT_CODE,
  type ExecutionOutcome,
  type Guest,
  type LimitKind,
  type RunStats,
} from './execute.js'
import type { OverlayReport } from './mounts.js'
import { capturedBytes, discardSink, fdSink, limitedSink, type Sink } from './output.js'
import { OutputCollector } from './output-collector.js'
import { OutputHold } from './output-hold.js'
import type { OutputOption, PreparedPolicy } from './policy.js'
import type { TrapInfo } from './trap.js'
import type { Denial } from './denials.js'
import { recoverTrace, sharedTraceMemory, type TraceSummaryRow } from './trace-output.js'
import { defaultPool, type CaptureBuffers, type RunningJob } from './worker/pool.js'
import { OutputRingReader } from './output-ring.js'
import { BridgeServer, createBridge, type ServedService } from './worker/bridge.js'
import { PROTOCOL_VERSION, type StreamMode, type WorkerJob } from './worker/protocol.js'
import type { HostCaller } from './script-guest.js'

export interface RunResult {
  /** The guest's exit code; 134 after a trap, 124 when a limit stopped it. */
  exitCode: number
  /** What the guest wrote, when captured (the default); empty otherwise. */
  stdout: Uint8Array
  stderr: Uint8Array
  trap?: TrapInfo
  /** The limit that stopped the guest. */
  limit?: LimitKind
  /** What each overlay mount changed (and whether it was saved or applied). */
  overlays?: OverlayReport[]
  /** Caveats about this run: its confinement (a host-directory fallback strategy), held file writes that failed once the guest could no longer learn of it. */
  warnings?: string[]
  /** Calls the policy refused (capped at 64), each with the flag that would grant it. */
  denials?: Denial[]
  /** How many calls the policy refused in all (present with `denials`). */
  denialCount?: number
  /** With `trace: { summary: true }`: calls, errors and microseconds per function. */
  traceSummary?: TraceSummaryRow[]
  stats: RunStats
}

/** A loaded command, as a prepared program holds it: everything of a `Guest` but the run's policy. */
export type Command = Omit<Guest, 'policy'>

const EMPTY = new Uint8Array(0)

/** The sink for one stream of an in-process run, with its byte limit; `capture` also returns its collector. */
function streamSink(
  opt: OutputOption,
  limit: number | undefined,
  stream: 'stdout' | 'stderr',
  hold: OutputHold | undefined,
  faults: CallbackFaults,
): { sink: Sink; capture: OutputCollector | undefined } {
  let capture: OutputCollector | undefined
  let base: Sink
  if (typeof opt === 'function') base = (chunk) => faults.deliver(`the ${stream} callback`, opt, chunk)
  else if (opt === 'inherit') base = fdSink(stream === 'stdout' ? 1 : 2)
  else if (opt === 'discard') base = discardSink
  else base = (capture = new OutputCollector()).sink
  // The limit is checked as the guest writes, before the bytes are held.
  return { sink: limitedSink(hold !== undefined && base !== discardSink ? hold.sink(base) : base, limit, stream), capture }
}

/**
 * Whether an in-process run holds its output back (`output-hold.ts`): not for a caller's
 * function (it sees each write), nor for a terminal (a person reads it as it comes).
 */
function holdsOutput(run: PreparedPolicy): boolean {
  const holdable = (opt: OutputOption, tty: boolean) => opt === 'capture' || opt === 'discard' || (opt === 'inherit' && !tty)
  return holdable(run.stdout, run.policy.ttys.stdout) && holdable(run.stderr, run.policy.ttys.stderr)
}

/**
 * Runs on this thread, synchronously. `run.policy.isolation` must be `in-process`. A run with
 * sockets gets them already open (`socket-runs.ts`: served by a helper thread).
 */
export function runInProcess(command: Command, run: PreparedPolicy, sockets?: OpenedSockets, callHost?: HostCaller): RunResult {
  const limits = run.policy.limits
  const hold = holdsOutput(run) ? new OutputHold() : undefined
  const faults = new CallbackFaults()
  const out = streamSink(run.stdout, limits.stdoutBytes, 'stdout', hold, faults)
  const err = streamSink(run.stderr, limits.stderrBytes, 'stderr', hold, faults)
  const traceSink = run.traceSink
  const guest: Guest = {
    module: command.module,
    functions: command.functions,
    stubs: command.stubs,
    codeShift: command.codeShift,
    memory: command.memory,
    policy: run.policy,
    argv0: command.argv0,
    script: command.script,
  }
  const outcome = executeGuest(
    guest,
    {
      stdout: out.sink,
      stderr: err.sink,
      ...(hold !== undefined ? { held: hold } : {}),
      ...(traceSink ? { trace: (line: string) => faults.deliver('the trace callback', traceSink, line) } : {}),
    },
    run.fs,
    sockets,
    callHost,
  )
  const warnings = faults.warnings()
  if (warnings.length > 0) outcome.warnings = [...(outcome.warnings ?? []), ...warnings]
  return Object.assign(outcome, { stdout: out.capture?.bytes() ?? EMPTY, stderr: err.capture?.bytes() ?? EMPTY })
}

function streamMode(opt: OutputOption, limit: number | undefined, buffer: (capacity: number) => SharedArrayBuffer): StreamMode {
  if (opt === 'capture') return { kind: 'capture', buffer: buffer(limit ?? 0) }
  if (typeof opt === 'function') return { kind: 'callback' }
  return { kind: opt }
}

/**
 * Runs on a pooled worker; the time limit and the signal stop it at any instruction. `services`
 * (sockets, async host functions) are served to the guest over the synchronous bridge from this
 * thread, and disposed when the run settles, however it ends.
 */
export function runInWorker(command: Command, run: PreparedPolicy, services?: Record<string, ServedService>): Promise<RunResult> {
  const { policy, signal } = run
  const bridge = services ? createBridge() : undefined
  const server = bridge ? new BridgeServer(bridge, services!) : undefined
  let stdout: StreamMode = { kind: 'discard' }
  let stderr: StreamMode = { kind: 'discard' }
  // Inherited streams share one ring, drained on this thread (`output-ring.ts`).
  let ring: OutputRingReader | undefined
  // A trace file's buffer or a summary's counts: what a terminated worker leaves is finished from here.
  const traceBuffer = sharedTraceMemory(policy.trace)
  let recovered: TraceSummaryRow[] | undefined
  const build = (buffers: CaptureBuffers): WorkerJob => {
    const inherit = (opt: OutputOption, mode: StreamMode): StreamMode => {
      if (opt !== 'inherit') return mode
      const buffer = buffers.ring()
      ring ??= new OutputRingReader(buffer)
      return { kind: 'ring', buffer }
    }
    stdout = inherit(
      run.stdout,
      streamMode(run.stdout, policy.limits.stdoutBytes, (n) => buffers.get('stdout', n)),
    )
    stderr = inherit(
      run.stderr,
      streamMode(run.stderr, policy.limits.stderrBytes, (n) => buffers.get('stderr', n)),
    )
    const job: WorkerJob = {
      v: PROTOCOL_VERSION,
      type: 'run',
      module: command.module,
      functions: command.functions,
      stubs: command.stubs,
      codeShift: command.codeShift,
      memory: command.memory,
      policy,
      argv0: command.argv0,
      stdout,
      stderr,
    }
    if (bridge) job.bridge = bridge
    if (command.script) job.script = command.script
    if (traceBuffer) job.traceBuffer = traceBuffer
    return job
  }
  // A callback of the embedder's that throws must not escape the message handler (callback-faults.ts).
  const faults = new CallbackFaults()
  return new Promise<RunResult>((resolve, reject) => {
    let settled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let running: RunningJob | undefined
    let started = performance.now()
    const bytes = (mode: StreamMode) => (mode.kind === 'capture' ? capturedBytes(mode.buffer) : EMPTY)
    /** Ends the run; resolves once the guest's inherited output is written out. */
    const settle = (reuse: boolean): Promise<void> => {
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      // Closing the bridge disposes the run's services (host sockets), whatever ended the run.
      void server?.close().catch(() => {})
      // NOTE: terminating stops the guest mid-instruction, before its host can write out the
      // file writes it still holds (wasi-host/write-behind.ts): those few bytes are lost, as the
      // README says; every other ending flushes them in executeGuest. Output in the ring is not
      // lost: it is drained after the kill, and so is the tail of a trace file.
      const stopped = reuse ? undefined : running?.terminate()
      const traced =
        stopped !== undefined && traceBuffer !== undefined
          ? stopped.then(() => {
              recovered = recoverTrace(policy.trace, traceBuffer)
            })
          : Promise.resolve()
      const drained = Promise.all([ring?.close(), traced]).then(() => {})
      // A reused worker goes back to the pool only once its ring is empty.
      if (reuse) void drained.then(() => running?.release())
      return drained
    }
    const finish = (outcome: ExecutionOutcome, reuse: boolean) => {
      if (settled) return
      // Copy the output out before the worker (and its reusable buffers) goes back to the pool.
      const out = bytes(stdout)
      const err = bytes(stderr)
      void settle(reuse).then(() => {
        const warnings = faults.warnings()
        resolve({
          ...outcome,
          ...(warnings.length > 0 ? { warnings: [...(outcome.warnings ?? []), ...warnings] } : {}),
          ...(outcome.traceSummary === undefined && recovered !== undefined ? { traceSummary: recovered } : {}),
          stdout: out,
          stderr: err,
        })
      })
    }
    const blankStats = (): RunStats => ({ wallMs: performance.now() - started, peakMemory: 0, syscalls: {}, bytesRead: 0, bytesWritten: 0 })
    const onAbort = () => {
      if (settled) return
      void settle(false).then(() => reject(signal!.reason))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    void server?.serve()
    void defaultPool
      .submit(build, {
        message: (m) => {
          if (m.type === 'trace') faults.deliver('the trace callback', run.traceSink, m.line)
          else if (m.type === 'chunk') {
            const cb = m.stream === 'stdout' ? run.stdout : run.stderr
            if (typeof cb === 'function') faults.deliver(`the ${m.stream} callback`, cb, m.bytes)
          } else if (m.type === 'done') finish(m.outcome, true)
          else
            finish(
              { exitCode: TRAP_EXIT_CODE, trap: { kind: 'host-fault', message: m.message, recentSyscalls: [] }, stats: blankStats() },
              false,
            )
        },
        failed: (reason) =>
          finish(
            { exitCode: TRAP_EXIT_CODE, trap: { kind: 'host-fault', message: reason, recentSyscalls: [] }, stats: blankStats() },
            false,
          ),
      })
      .then((job) => {
        running = job
        if (settled) {
          void job.terminate().then(() => traceBuffer && recoverTrace(policy.trace, traceBuffer))
          return
        }
        // The time limit counts from dispatch, not from the wait for a free worker.
        started = performance.now()
        if (policy.limits.timeoutMs !== undefined) {
          timer = setTimeout(
            () => finish({ exitCode: LIMIT_EXIT_CODE, limit: 'timeout', stats: blankStats() }, false),
            policy.limits.timeoutMs,
          )
        }
      })
  })
}
