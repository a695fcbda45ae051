/**
 * @module Where a run's trace goes: each host call as a line (text or JSON) to a file, to
 * caplet's stderr, or to the caller's function; or only counted, for a summary at the end
 * (`--trace=summary`). Built only when the policy asks for a trace: an untraced run never wraps
 * its imports (see `wasi-host/trace/tracer.ts`).
 */
import {
  formatTraceJson,
  formatTraceText,
  TRACE_SUMMARY_SLOTS,
  traceImports,
  TraceSummary,
  type TraceEvent,
} from '../wasi-host/trace/tracer.js'
import type { WasiHost } from '../wasi-host/host.js'
import type { ResolvedPolicy } from './policy.js'
import { writeAllSync } from './stdio.js'
import { recoverTraceTail, TraceFileBuffer, traceBufferMemory } from './trace-buffer.js'

export interface TraceSummaryRow {
  call: string
  calls: number
  errors: number
  /** Total microseconds spent in the call. */
  us: number
}

export interface ActiveTrace {
  /** Wraps the WASI functions of an import object. */
  wrap(host: WasiHost, wasi: Record<string, (...args: never[]) => number>): Record<string, (...args: never[]) => number>
  /** Ends the trace: closes its file; returns the summary rows in summary mode. */
  finish(): TraceSummaryRow[] | undefined
}

/**
 * The trace of one run, or undefined when the policy asks for none. `lineSink` receives lines
 * when the caller gave a function (in a worker, one that posts them to the caller's thread).
 * A trace file is written through a buffer (`trace-buffer.ts`), written out before a call that
 * may wait (reading a stream, `poll_oneoff`, sockets, `proc_exit`) and at the end. `shared`, when
 * a worker runs the guest, holds that buffer or the summary's counts, for the thread that may
 * terminate the worker (`sharedTraceMemory`).
 * @throws Error when the trace file cannot be opened (reported as the run's failure)
 */
export function openTrace(
  policy: ResolvedPolicy,
  lineSink: ((line: string) => void) | undefined,
  shared?: SharedArrayBuffer,
): ActiveTrace | undefined {
  const t = policy.trace
  if (t === undefined) return undefined
  if (t.summary) {
    // A worker's counts are in memory the embedder reads if it has to terminate the worker.
    const summary = new TraceSummary(shared !== undefined ? new Float64Array(shared) : undefined)
    return {
      wrap: (host, wasi) => traceImports(host, wasi, (e) => summary.add(e)),
      finish: () => summary.rows(),
    }
  }
  const format = t.format === 'json' ? formatTraceJson : formatTraceText
  if (t.file !== undefined && !(t.callback && lineSink !== undefined)) {
    const buffer = new TraceFileBuffer(t.file, shared ?? traceBufferMemory(false))
    return {
      wrap: (host, wasi) =>
        flushingBeforeWaits(
          host,
          buffer,
          traceImports(host, wasi, (e: TraceEvent) => buffer.line(format(e))),
        ),
      finish: () => {
        buffer.close()
        return undefined
      },
    }
  }
  const enc = new TextEncoder()
  // NOTE: lines to caplet's stderr stay unbuffered, in order with what the guest writes there.
  const write = t.callback && lineSink !== undefined ? lineSink : (line: string) => writeAllSync(2, enc.encode(`caplet trace: ${line}\n`))
  return {
    wrap: (host, wasi) => traceImports(host, wasi, (e: TraceEvent) => write(format(e))),
    finish: () => undefined,
  }
}

/**
 * The memory a worker's trace shares with the thread that runs it, or undefined when its trace
 * has nothing to lose: a file's buffer, or a summary's counts.
 */
export function sharedTraceMemory(t: ResolvedPolicy['trace']): SharedArrayBuffer | undefined {
  if (t === undefined) return undefined
  if (t.summary) return new SharedArrayBuffer(TRACE_SUMMARY_SLOTS * 8)
  return t.file !== undefined && !t.callback ? (traceBufferMemory(true) as SharedArrayBuffer) : undefined
}

/**
 * After the worker that traced into `shared` was terminated: writes out the tail of its trace
 * file, or returns its summary's rows.
 */
export function recoverTrace(t: ResolvedPolicy['trace'], shared: SharedArrayBuffer): TraceSummaryRow[] | undefined {
  if (t?.summary) return new TraceSummary(new Float64Array(shared)).rows()
  if (t?.file !== undefined) recoverTraceTail(shared, t.file)
  return undefined
}

/** Calls that may wait (for input, a peer, time, or the end): the trace so far is written out first. */
const WAITS = new Set(['poll_oneoff', 'proc_exit', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown'])
/** Reads that wait when their descriptor is not a file (stdin, a pipe, a socket). */
const READS = new Set(['fd_read', 'fd_pread'])

function flushingBeforeWaits(
  host: WasiHost,
  buffer: TraceFileBuffer,
  traced: Record<string, (...args: never[]) => number>,
): Record<string, (...args: never[]) => number> {
  const out = { ...traced }
  for (const [name, fn] of Object.entries(traced)) {
    const call = fn as (...a: unknown[]) => number
    if (WAITS.has(name))
      out[name] = ((...a: unknown[]) => {
        buffer.flush()
        return call(...a)
      }) as (...args: never[]) => number
    else if (READS.has(name))
      out[name] = ((...a: unknown[]) => {
        if (host.fds.get(a[0] as number)?.kind !== 'file') buffer.flush()
        return call(...a)
      }) as (...args: never[]) => number
  }
  return out
}
