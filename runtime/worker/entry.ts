/**
 * @module The worker's entry: receives a compiled module and a resolved policy, runs the guest
 * on this thread (so the sandbox can terminate it at any instruction), and reports the outcome.
 * A pooled worker serves one job after another; each gets a fresh host and instance.
 */
import { parentPort } from 'node:worker_threads'
import { executeGuest, loadMounts } from '../execute.js'
import { captureSink, discardSink, fdSink, limitedSink, type Sink } from '../output.js'
import { ringSink } from '../output-ring.js'
import { PROTOCOL_VERSION, type StreamMode, type WorkerJob, type WorkerMessage } from './protocol.js'

const post = (m: WorkerMessage) => parentPort!.postMessage(m)

function sinkFor(mode: StreamMode, stream: 'stdout' | 'stderr', fd: number): Sink {
  switch (mode.kind) {
    case 'inherit':
      return fdSink(fd)
    case 'discard':
      return discardSink
    case 'capture':
      return captureSink(mode.buffer)
    case 'ring':
      return ringSink(mode.buffer, stream)
    case 'callback':
      return (chunk) => post({ v: PROTOCOL_VERSION, type: 'chunk', stream, bytes: chunk.slice() })
  }
}

/**
 * The JavaScript engine's driver (QuickJS, a third of this bundle), loaded by the first script job
 * only: a .wasm run never parses it. execute.ts finds it registered.
 */
let scriptDriver: Promise<unknown> | undefined
/** The mount backends, likewise loaded by the first job with mounts (execute.ts). */
let mountsReady = false

/** When this thread took the job it is running (`at` of its `done`). */
let taken = 0
const now = () => performance.timeOrigin + performance.now()

function serve(input: WorkerJob): void {
  taken = now()
  if (input?.v !== PROTOCOL_VERSION || input.type !== 'run') {
    post({ v: PROTOCOL_VERSION, type: 'failed', message: `worker protocol mismatch: got ${String(input?.v)}` })
    return
  }
  if (input.script !== undefined && scriptDriver === undefined) {
    scriptDriver = import('../script-run.js')
    scriptDriver.then(
      () => serve(input),
      (e: unknown) => post({ v: PROTOCOL_VERSION, type: 'failed', message: `cannot load the JavaScript engine: ${String(e)}` }),
    )
    return
  }
  if (input.policy.mounts.length > 0 && !mountsReady) {
    loadMounts().then(
      () => {
        mountsReady = true
        run(input)
      },
      (e: unknown) => post({ v: PROTOCOL_VERSION, type: 'failed', message: `cannot load the mount backends: ${String(e)}` }),
    )
    return
  }
  run(input)
}

function run(input: WorkerJob): void {
  try {
    const limits = input.policy.limits
    const outcome = executeGuest(input, {
      stdout: limitedSink(sinkFor(input.stdout, 'stdout', 1), limits.stdoutBytes, 'stdout'),
      stderr: limitedSink(sinkFor(input.stderr, 'stderr', 2), limits.stderrBytes, 'stderr'),
      ...(input.policy.trace?.callback ? { trace: (line: string) => post({ v: PROTOCOL_VERSION, type: 'trace', line }) } : {}),
      ...(input.traceBuffer !== undefined ? { traceBuffer: input.traceBuffer } : {}),
    })
    post({ v: PROTOCOL_VERSION, type: 'done', outcome, at: [taken, now()] })
  } catch (e) {
    post({ v: PROTOCOL_VERSION, type: 'failed', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) })
  }
}

parentPort!.on('message', serve)
