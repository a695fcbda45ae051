/**
 * @module A pool of guest Web Workers: a worker whose run ended normally is reused (each run still
 * gets a fresh host, mounts and instance); one terminated (timeout, abort) or failed is discarded.
 * At most `max` run at once; a queued run's time limit starts when it is dispatched. A worker is
 * retired after `MAX_RUNS_PER_WORKER` runs, since Chromium frees each run's reserved wasm address
 * space only at GC and refuses new instances once it runs out (docs/internals.md, "Browser
 * worker pool").
 */

/** Runs a worker serves before it is replaced. */
export const MAX_RUNS_PER_WORKER = 16

export interface PooledWorker {
  readonly worker: Worker
}

export class BrowserWorkerPool {
  readonly #idle: Worker[] = []
  readonly #runs = new WeakMap<Worker, number>()
  readonly #queue: ((w: Worker) => void)[] = []
  #busy = 0

  constructor(
    readonly url: URL,
    readonly max: number,
    readonly keepIdle: number,
  ) {}

  #spawn(): Worker {
    return new Worker(this.url, { type: 'module', name: 'caplet-guest' })
  }

  /** A worker for one run, when one is free. */
  acquire(): Promise<Worker> {
    if (this.#busy < this.max) {
      this.#busy++
      return Promise.resolve(this.#idle.pop() ?? this.#spawn())
    }
    return new Promise((resolve) => this.#queue.push(resolve))
  }

  /** The run ended normally: keep the worker for the next run. */
  release(w: Worker): void {
    w.onmessage = null
    w.onerror = null
    w.onmessageerror = null
    const runs = (this.#runs.get(w) ?? 0) + 1
    if (runs >= MAX_RUNS_PER_WORKER) {
      this.discard(w)
      return
    }
    this.#runs.set(w, runs)
    const next = this.#queue.shift()
    if (next !== undefined) {
      next(w)
      return
    }
    this.#busy--
    if (this.#idle.length < this.keepIdle) this.#idle.push(w)
    else w.terminate()
  }

  /** The run was stopped or the worker failed: terminate it; its slot goes to the next run. */
  discard(w: Worker): void {
    w.terminate()
    const next = this.#queue.shift()
    if (next !== undefined) {
      next(this.#spawn())
      return
    }
    this.#busy--
  }

  /** Terminates the idle workers (running ones finish or are stopped by their own limits). */
  close(): void {
    for (const w of this.#idle.splice(0)) w.terminate()
  }
}
