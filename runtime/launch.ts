/**
 * @module Where one run executes: on a pooled worker that can be stopped at any instruction
 * (`runInWorker`, here), or on the caller's thread (`runInProcess`, in-process.ts, loaded only
 * by a run that needs it). Both take a compiled module and a policy already resolved for this
 * run, and deliver the guest's output as the policy says.
 */
import { CallbackFaults } from './callback-faults.js'
import type { ExecutionOutcome, Guest, LimitKind, RunStats } from './execute.js'
import { LIMIT_EXIT_CODE, TRAP_EXIT_CODE } from './trap.js'
import type { OverlayReport } from './mounts.js'
import { capturedBytes } from './output.js'
import type { OutputOption, PreparedPolicy } from './policy.js'
import type { TrapInfo } from './trap.js'
import type { Denial } from './denials.js'
import { recoverTrace, sharedTraceMemory, type TraceSummaryRow } from './trace-output.js'
import { defaultPool, type CaptureBuffers, type RunningJob } from './worker/pool.js'
import { OutputRingReader } from './output-ring.js'
import { BridgeServer, createBridge, type ServedService } from './worker/bridge.js'
import { PROTOCOL_VERSION, type StreamMode, type WorkerJob } from './worker/protocol.js'

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
  /**
   * A pooled run's hand-offs between threads, in ms: from posting the run to its worker taking it,
   * and from the worker posting the result to this thread reading it (waits for a thread to be
   * scheduled or to finish a garbage collection, as `caplet serve`'s Server-Timing shows them).
   */
  handoff?: { toWorkerMs: number; fromWorkerMs: number }
}

/** A loaded command, as a prepared program holds it: everything of a `Guest` but the run's policy. */
export type Command = Omit<Guest, 'policy'>

const EMPTY = new Uint8Array(0)

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
    let posted: number | undefined
    let handoff: RunResult['handoff']
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
          ...(handoff !== undefined ? { handoff } : {}),
          stdout: out,
          stderr: err,
        })
      })
    }
    const blankStats = (): RunStats => ({ wallMs: performance.now() - started, peakMemory: 0, syscalls: {}, bytesRead: 0, bytesWritten: 0 })
    const onAbort = () => {
      if (settled) return
      // A summary traced so far goes with the reason (an object), so a Ctrl-C still prints it.
      void settle(false).then(() => {
        const reason: unknown = signal!.reason
        if (
          recovered !== undefined &&
          typeof reason === 'object' &&
          reason !== null &&
          (reason as { traceSummary?: unknown }).traceSummary === undefined
        ) {
          Object.assign(reason, { traceSummary: recovered })
        }
        reject(reason)
      })
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
          } else if (m.type === 'done') {
            // Each thread's time origin plus its clock: one timeline across threads (to a few µs).
            if (posted !== undefined) {
              const [taken, done] = m.at
              handoff = {
                toWorkerMs: Math.max(0, taken - posted),
                fromWorkerMs: Math.max(0, performance.timeOrigin + performance.now() - done),
              }
            }
            finish(m.outcome, true)
          } else
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
        posted = performance.timeOrigin + started
        if (policy.limits.timeoutMs !== undefined) {
          timer = setTimeout(
            () => finish({ exitCode: LIMIT_EXIT_CODE, limit: 'timeout', stats: blankStats() }, false),
            policy.limits.timeoutMs,
          )
        }
      })
  })
}
