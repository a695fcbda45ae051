/**
 * @module Runs an in-process JavaScript compiler (wabt, asc, the TypeScript checker) on untrusted
 * source in a worker thread with a wall-time limit and a JS heap cap, so a compile-time bomb is
 * killed with one clear line (`CompileError` with `limit`). The job is plain data; the worker
 * (`compiler-worker-entry.ts`, bundled as dist/compiler-worker.js) never reads the disk for a
 * submitted file. Its console output is drained, never shown.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { CompileError, ToolchainError } from '../runtime/errors.js'
import type { CompilerJob, CompilerReply } from './compiler-worker-entry.js'

export type { CompilerJob, CompilerReply }

/** The default JS heap of a compiler worker (wasm memory, e.g. binaryen's, is bounded by wasm32). */
export const COMPILER_HEAP_MB = 1024

export interface WorkerLimits {
  timeoutMs: number
  /** JS heap cap in MiB (default COMPILER_HEAP_MB). */
  heapMb?: number
  signal?: AbortSignal | undefined
  /** Names the compiler in a crash message ("the TypeScript checker"). */
  what: string
}

function workerScript(): URL {
  for (const candidate of [new URL('./compiler-worker.js', import.meta.url), new URL('../dist/compiler-worker.js', import.meta.url)]) {
    if (existsSync(fileURLToPath(candidate))) return candidate
  }
  throw new ToolchainError("caplet's compiler worker bundle (dist/compiler-worker.js) is missing; run `npm run build`")
}

/**
 * Runs one job; resolves with the handler's reply. Rejects with CompileError at the time limit
 * (`timeout`), the heap cap (`memory`), an abort (`aborted`), or when the worker dies.
 */
export function runCompilerJob<R extends CompilerReply>(job: CompilerJob, limits: WorkerLimits): Promise<R> {
  const heapMb = limits.heapMb ?? COMPILER_HEAP_MB
  const script = workerScript()
  return new Promise<R>((resolve, reject) => {
    const worker = new Worker(script, {
      workerData: job,
      stdout: true,
      stderr: true,
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, heapMb >> 4)) },
    })
    worker.stdout.resume()
    worker.stderr.resume()
    let settled = false
    const finish = (f: () => void) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      limits.signal?.removeEventListener('abort', onAbort)
      void worker.terminate()
      f()
    }
    const timer = setTimeout(
      () =>
        finish(() => reject(new CompileError(`compilation stopped: it took longer than ${limits.timeoutMs} ms`, [], { limit: 'timeout' }))),
      limits.timeoutMs,
    )
    const onAbort = () => finish(() => reject(new CompileError('compilation aborted', [], { limit: 'aborted' })))
    if (limits.signal?.aborted) onAbort()
    else limits.signal?.addEventListener('abort', onAbort, { once: true })
    worker.on('message', (reply: R | { crashed: string }) =>
      finish(() => {
        if (!('crashed' in reply)) resolve(reply)
        // V8's own size caps (a type-level string doubling, an array past 2^32) are the memory limit too.
        else if (/^(Invalid string length|Invalid array length|Array buffer allocation failed)/.test(reply.crashed)) {
          reject(
            new CompileError(`compilation stopped: ${limits.what} ran out of memory (${reply.crashed.split('\n')[0]})`, [], {
              limit: 'memory',
            }),
          )
        } else reject(new CompileError(`${limits.what} failed: ${reply.crashed.split('\n')[0]}`))
      }),
    )
    worker.on('error', (e) =>
      finish(() => {
        const oom = (e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' || /heap|out of memory/i.test(e.message)
        reject(
          oom
            ? new CompileError(`compilation stopped: ${limits.what} ran out of memory (${heapMb} MiB heap)`, [], { limit: 'memory' })
            : new CompileError(`${limits.what} crashed`),
        )
      }),
    )
    worker.on('exit', () => finish(() => reject(new CompileError(`${limits.what} crashed`))))
  })
}
