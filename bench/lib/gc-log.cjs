// Preloaded into a process (node --require) by bench/service-tail.mjs: every thread of it
// (the main thread and each worker) appends one line per garbage collection to its own file in
// $CAPLET_GC_LOG: start on CLOCK_MONOTONIC in ms (the C loader's clock), pause in ms, kind, thread.
const { PerformanceObserver, performance } = require('node:perf_hooks')
const { isMainThread, threadId } = require('node:worker_threads')
const { openSync, writeSync } = require('node:fs')
const dir = process.env.CAPLET_GC_LOG
if (dir) {
  const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now()
  const fd = openSync(`${dir}/${process.pid}-${threadId}.txt`, 'a')
  const thread = isMainThread ? 'main' : `worker${threadId}`
  const KIND = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weak' }
  new PerformanceObserver((list) => {
    let s = ''
    for (const e of list.getEntries())
      s += `${(e.startTime + offset).toFixed(3)} ${e.duration.toFixed(3)} ${KIND[e.detail?.kind] ?? e.detail?.kind} ${thread}\n`
    writeSync(fd, s)
  }).observe({ entryTypes: ['gc'] })
}
