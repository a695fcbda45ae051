/**
 * @module Tracing in the page (swapped in for `runtime/trace-output.ts` by the browser build):
 * lines go to the caller's function, or a summary is counted; a trace file needs a host file
 * system and is refused.
 */
import { formatTraceJson, formatTraceText, traceImports, TraceSummary } from '../../../wasi-host/index.js'
import type { ResolvedPolicy } from '../../policy.js'
import type { ActiveTrace } from '../../trace-output.js'

export type { ActiveTrace, TraceSummaryRow } from '../../trace-output.js'

export function openTrace(policy: ResolvedPolicy, lineSink: ((line: string) => void) | undefined): ActiveTrace | undefined {
  const t = policy.trace
  if (t === undefined) return undefined
  if (t.summary) {
    const summary = new TraceSummary()
    return { wrap: (host, wasi) => traceImports(host, wasi, (e) => summary.add(e)), finish: () => summary.rows() }
  }
  if (lineSink === undefined) throw new Error('[caplet] a trace file needs a host file system; pass a trace function in the browser')
  const format = t.format === 'json' ? formatTraceJson : formatTraceText
  return { wrap: (host, wasi) => traceImports(host, wasi, (e) => lineSink(format(e))), finish: () => undefined }
}
