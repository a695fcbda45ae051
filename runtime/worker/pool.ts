/**
 * @module A pool of sandbox workers. Starting a worker thread costs ~45 ms here, far more than
 * running a small guest, so workers that finished a run normally are kept (unreferenced, so
 * they never hold the process open) and reused: every run still gets a fresh WASI host, fresh
 * descriptors and a fresh instance; guests never see JavaScript state. A worker that was
 * terminated (timeout, abort) or that failed is discarded, never reused ("poisoned" workers
 * are not recovered).
 */
import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { DEFAULT_CAPTURE_BYTES } from '../policy.js'
import { createOutputRing, resetOutputRing } from '../output-ring.js'
import { spawnSandboxWorker, takeEarlyWorker } from './spawn.js'
import { CAPTURE_HEADER, type WorkerJob, type WorkerMessage } from './protocol.js'

export interface JobHandlers {
  message: (m: WorkerMessage) => void
  /** The worker died without answering (crash, out of memory). */
  failed: (reason: string) => void
}

export interface RunningJob {
  /** Stops the job at once; its worker is discarded. Resolves once its thread has stopped. */
  terminate(): Promise<void>
  /** Returns the worker to the pool after a normal completion. */
  release(): void
}

/**
 * Capture buffers for one job. Each worker keeps its own pair and reuses them across runs, so a
 * run does not allocate (and the kernel does not zero) megabytes of shared memory it may never
 * write; a run whose limit is larger gets buffers of its own.
 */
export interface CaptureBuffers {
  get(stream: 'stdout' | 'stderr', capacity: number): SharedArrayBuffer
  /** The worker's output ring for inherited streams, emptied for this job. */
  ring(): SharedArrayBuffer
}

interface Slot {
  worker: Worker
  handlers: JobHandlers | undefined
  buffers: Partial<Record<'stdout' | 'stderr', SharedArrayBuffer>>
  ring: SharedArrayBuffer | undefined
}

export class WorkerPool {
  readonly #idle: Slot[] = []
  readonly #queue: (() => void)[] = []
  #busy = 0
  /** Workers kept ready (idle or busy) by `reserve`; 0 for a one-shot process. */
  #reserved = 0
  #closed = false

  constructor(
    public maxWorkers = Math.max(4, availableParallelism() * 2),
    public maxIdle = Math.max(2, availableParallelism()),
    /** Capacity of each worker's reusable capture buffers. */
    readonly captureBytes = DEFAULT_CAPTURE_BYTES,
  ) {}

  /** Runs the job `build` makes on a worker as soon as one is free. */
  submit(build: (buffers: CaptureBuffers) => WorkerJob, handlers: JobHandlers): Promise<RunningJob> {
    return new Promise((resolve) => {
      const start = () => {
        this.#busy++
        // The worker idle the longest, not the one that just finished: a worker often collects
        // its garbage (the run's wasm memory) right after posting its result, and a run given to
        // it would wait out that pause while another worker sits idle.
        const slot = this.#idle.shift() ?? this.#spawn()
        slot.handlers = handlers
        slot.worker.ref()
        slot.worker.postMessage(
          build({
            get: (stream, capacity) => {
              const size = CAPTURE_HEADER + capacity
              if (capacity > this.captureBytes) return new SharedArrayBuffer(size)
              const buffer = (slot.buffers[stream] ??= new SharedArrayBuffer(CAPTURE_HEADER + this.captureBytes))
              new Int32Array(buffer, 0, 1)[0] = 0
              return buffer
            },
            ring: () => {
              const ring = (slot.ring ??= createOutputRing())
              resetOutputRing(ring)
              return ring
            },
          }),
        )
        let done: Promise<void> | undefined
        const finish = (reuse: boolean): Promise<void> => {
          if (done !== undefined) return done
          done = Promise.resolve()
          slot.handlers = undefined
          this.#busy--
          if (reuse && this.#idle.length < this.maxIdle) {
            slot.worker.unref()
            this.#idle.push(slot)
          } else done = slot.worker.terminate().then(() => {})
          this.#queue.shift()?.()
          if (!reuse) this.#refill()
          return done
        }
        resolve({
          terminate: () => finish(false),
          release: () => {
            void finish(true)
          },
        })
      }
      if (this.#busy < this.maxWorkers) start()
      else this.#queue.push(start)
    })
  }

  /**
   * Starts a worker now, so that it boots on another core while the caller reads, checks and
   * compiles the module (a CLI run's start-up); the next run takes it. No-op when one is idle.
   */
  warm(): void {
    if (this.#idle.length > 0 || this.#busy >= this.maxWorkers) return
    const slot = this.#spawn()
    slot.worker.unref()
    this.#idle.push(slot)
  }

  /**
   * For a long-running embedder (`caplet serve`, `caplet worker`) that runs up to `n` at once:
   * `n` may run without waiting for each other, `n` stay idle between runs (none is ended and
   * started again), and a worker discarded after a kill or a crash is replaced at once, in the
   * background, rather than by the next run inside its own time.
   */
  reserve(n: number): void {
    this.#closed = false
    this.#reserved = Math.max(this.#reserved, n)
    this.maxWorkers = Math.max(this.maxWorkers, n)
    this.maxIdle = Math.max(this.maxIdle, n)
    this.#refill()
  }

  /** Workers `reserve` keeps ready: 0 until a long-running embedder reserves some. */
  get reserved(): number {
    return this.#reserved
  }

  /** Workers alive now: idle and busy (what `reserve` keeps up). */
  get size(): number {
    return this.#idle.length + this.#busy
  }

  #refill(): void {
    while (!this.#closed && this.#idle.length + this.#busy < this.#reserved && this.#queue.length === 0) {
      const slot = this.#spawn()
      slot.worker.unref()
      this.#idle.push(slot)
    }
  }

  #spawn(): Slot {
    const worker = takeEarlyWorker() ?? spawnSandboxWorker()
    const slot: Slot = { worker, handlers: undefined, buffers: {}, ring: undefined }
    worker.on('message', (m: WorkerMessage) => slot.handlers?.message(m))
    worker.on('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code
      slot.handlers?.failed(
        code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'the host ran out of memory serving the guest' : `worker failed: ${e.message}`,
      )
      this.#forget(slot)
    })
    worker.on('exit', (code) => {
      slot.handlers?.failed(`worker exited unexpectedly (code ${code})`)
      this.#forget(slot)
    })
    return slot
  }

  #forget(slot: Slot): void {
    const i = this.#idle.indexOf(slot)
    if (i >= 0) this.#idle.splice(i, 1)
    this.#refill()
  }

  /** Terminates idle workers (running jobs finish first) and stops replacing workers until `reserve` again. */
  async close(): Promise<void> {
    this.#closed = true
    const idle = this.#idle.splice(0)
    await Promise.all(idle.map((s) => s.worker.terminate()))
  }
}

/** The process-wide pool `run()` uses. */
export const defaultPool = new WorkerPool()
