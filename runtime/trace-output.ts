/**
 * @module Where a run's trace goes: each host call as a line (text or JSON) to a file, to
 * caplet's stderr, or to the caller's function; or only counted, for a summary at the end
 * (`--trace=summary`). Built only when the policy asks for a trace: an untraced run never wraps
 * its imports (see `wasi-host/trace/tracer.ts`).
 */
import { closeSync, openSync } from 'node:fs'
import { formatTraceJson, formatTraceText, traceImports, TraceSummary, type TraceEvent, type WasiHost } from '../wasi-host/index.js'
import type { ResolvedPolicy } from './policy.js'
import { writeAllSync } from './stdio.js'

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
 * @throws Error when the trace file cannot be opened (reported as the run's failure)
 */
export function openTrace(policy: ResolvedPolicy, lineSink: ((line: string) => void) | undefined): ActiveTrace | undefined {
  const t = policy.trace
  if (t === undefined) return undefined
  if (t.summary) {
    const summary = new TraceSummary()
    return {
      wrap: (host, wasi) => traceImports(host, wasi, (e) => summary.add(e)),
      finish: () => summary.rows(),
    }
  }
  const format = t.format === 'json' ? formatTraceJson : formatTraceText
  let fd: number | undefined
  let write: (line: string) => void
  const enc = new TextEncoder()
  if (t.callback && lineSink !== undefined) write = lineSink
  else if (t.file !== undefined) {
    const file = openSync(t.file, 'a')
    fd = file
    write = (line) => writeAllSync(file, enc.encode(`${line}\n`))
  } else write = (line) => writeAllSync(2, enc.encode(`caplet trace: ${line}\n`))
  return {
    wrap: (host, wasi) => traceImports(host, wasi, (e: TraceEvent) => write(format(e))),
    finish: () => {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
      return undefined
    },
  }
}
