/**
 * @module A pool of guest Web Workers. Starting a module worker costs tens of milliseconds, more
 * than a small guest's run, so a worker whose run ended normally is kept and reused (every run
 * still gets a fresh host, mounts and instance; guests never see JavaScript state). A worker that
 * was terminated (timeout, abort) or that failed is discarded, never reused. At most `max` run at
 * once; further runs wait their turn (their time limit starts when they are dispatched).
 *
 * A worker is also retired after `MAX_RUNS_PER_WORKER` runs: each run's linear memory reserves
 * gigabytes of address space (a 1 GiB memory plus V8's guard regions) that is given back only when
 * the garbage collector frees the dead instance, and Chromium refuses a new instance once a
 * renderer's reservations run out ("Cannot allocate Wasm memory"), which a long-lived worker
 * running hundreds of guests reached. A fresh worker gives it all back at once.
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

  constructor(readonly url: URL, readonly max: number, readonly keepIdle: number) {}

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
    if (runs >= MAX_RUNS_PER_WORKER) { this.discard(w); return }
    this.#runs.set(w, runs)
    const next = this.#queue.shift()
    if (next !== undefined) { next(w); return }
    this.#busy--
    if (this.#idle.length < this.keepIdle) this.#idle.push(w)
    else w.terminate()
  }

  /** The run was stopped or the worker failed: terminate it; its slot goes to the next run. */
  discard(w: Worker): void {
    w.terminate()
    const next = this.#queue.shift()
    if (next !== undefined) { next(this.#spawn()); return }
    this.#busy--
  }

  /** Terminates the idle workers (running ones finish or are stopped by their own limits). */
  close(): void {
    for (const w of this.#idle.splice(0)) w.terminate()
  }
}
