/**
 * @module Runs on the caller's thread (`runInProcess`), and runs with host sockets
 * (socket-runs.ts): what needs the WASI host on this thread. Loaded by the public API
 * (sandbox.ts) and, in the CLI, only by a run that needs it (program.ts), so a worker run's
 * main thread never loads the host.
 */
import { CallbackFaults } from './callback-faults.js'
import { executeGuest, provideMounts, type Guest, type OpenedSockets } from './execute.js'
import * as mounts from './mounts.js'
import type { Command, RunResult } from './launch.js'
import { discardSink, fdSink, limitedSink, type Sink } from './output.js'
import { OutputCollector } from './output-collector.js'
import { OutputHold } from './output-hold.js'
import type { OutputOption, PreparedPolicy } from './policy.js'
import type { HostCaller } from './script-guest.js'

export { runInProcessWithSockets, runInWorkerWithSockets, runSyncWithSockets } from './socket-runs.js'

provideMounts(mounts)

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
