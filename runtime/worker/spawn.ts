/**
 * @module Starting a sandbox worker thread, and the one the CLI's entry starts before the rest of
 * caplet is loaded, so that it boots on another core meanwhile; the pool adopts it for the first
 * run. A worker that failed before being adopted is dropped, never handed out.
 */
import { Worker } from 'node:worker_threads'
import { builtScript } from './built-script.js'

export function spawnSandboxWorker(): Worker {
  return new Worker(builtScript('worker.js'), {
    // A guest's call stack lives on this thread's stack: a bounded one makes deep recursion trap cleanly.
    resourceLimits: { stackSizeMb: 8, maxOldGenerationSizeMb: 256 },
    stdout: false,
    stderr: false,
  })
}

let early: { worker: Worker; failed: boolean } | undefined

/** Starts a worker now (unreferenced: it never holds the process open) for `takeEarlyWorker`. */
export function startEarlyWorker(): void {
  if (early !== undefined) return
  const e = { worker: spawnSandboxWorker(), failed: false }
  const fail = () => {
    e.failed = true
  }
  e.worker.on('error', fail).on('exit', fail)
  e.worker.unref()
  early = e
}

/** The worker `startEarlyWorker` started, if it is still alive; each is taken once. */
export function takeEarlyWorker(): Worker | undefined {
  const e = early
  early = undefined
  if (e === undefined) return undefined
  e.worker.removeAllListeners('error').removeAllListeners('exit')
  if (e.failed) return undefined
  return e.worker
}
