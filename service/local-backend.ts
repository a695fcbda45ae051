/**
 * @module Runs on this process's worker pool: at most `maxConcurrent` at once, at most
 * `maxQueued` waiting (then 429). Finished runs are kept `resultTtlMs` as their view's JSON in a
 * `ResultStore`, outside the V8 heap (bounded in count and in bytes: past the byte budget the
 * oldest finished results are dropped and read as failed with `result-evicted`), so that the
 * server's GC does not mark and copy every result it keeps while every slot waits (bench: p99
 * at 50% of peak).
 */
import type { ServiceConfig } from './config.js'
import { ApiError } from './errors.js'
import { executeRun, ProgramCache } from './execute-run.js'
import type { ModuleStore } from './modules.js'
import type { RunJob } from './request.js'
import { ResultStore, type StoredResult } from './result-store.js'
import { failedView, viewOf, type RunBackend, type RunTiming, type RunView } from './runs.js'
import type { Logger } from 'pino'

const MAX_RECORDS = 100_000
/** Bytes of finished results (their JSON: output included) kept at once. */
export const MAX_KEPT_RESULT_BYTES = 256 * 2 ** 20

export class LocalBackend implements RunBackend {
  readonly mode = 'local'
  /** Runs queued or running, with their owners. */
  readonly #active = new Map<string, { view: RunView; owner: string }>()
  readonly #results: ResultStore
  /** Runs whose results were dropped for bytes: their view without the result, as JSON (rare). */
  readonly #evicted = new Map<string, StoredResult>()
  readonly #waiting: (() => void)[] = []
  readonly #programs = new ProgramCache()
  #running = 0
  #reserved = 0
  #closing = false
  #idle: (() => void) | undefined
  readonly #sweep: ReturnType<typeof setInterval>

  constructor(
    readonly modules: ModuleStore,
    readonly config: ServiceConfig,
    readonly log: Logger,
    readonly maxKeptBytes = MAX_KEPT_RESULT_BYTES,
  ) {
    this.#results = new ResultStore(MAX_RECORDS, maxKeptBytes, (id, entry) => this.#evict(id, entry))
    this.#sweep = setInterval(() => this.#expire(), 10_000).unref()
  }

  admit(n: number): void {
    if (this.#closing) throw new ApiError(503, 'unavailable', 'the server is shutting down', undefined, 5)
    if (this.#waiting.length + this.#reserved + n > this.config.maxQueued) {
      throw new ApiError(429, 'queue-full', `the run queue is full (${this.config.maxQueued} waiting); retry later`, undefined, 1)
    }
  }

  async start(job: RunJob, timing?: RunTiming): Promise<RunView> {
    const record = { view: viewOf(job, 'queued'), owner: job.owner }
    this.#active.set(job.id, record)
    this.#reserved++
    await new Promise<void>((go) => {
      this.#reserved--
      if (this.#running < this.config.maxConcurrent) go()
      else this.#waiting.push(go)
    })
    this.#running++
    if (timing) timing.started = performance.now()
    record.view = { ...record.view, status: 'running' }
    let view: RunView
    try {
      const result = await executeRun(job, () => this.modules.get(job.moduleId), this.#programs, timing)
      view = { ...record.view, status: 'done', result }
    } catch (e) {
      if (e instanceof ApiError) view = failedView(job, e.code, e.message)
      else {
        this.log.error({ run: job.id, err: (e as Error)?.message }, 'run failed in the host')
        view = failedView(job, 'internal', 'the service failed to run this job')
      }
    } finally {
      if (timing) timing.ended = performance.now()
      this.#running--
      this.#waiting.shift()?.()
      if (this.#running === 0 && this.#waiting.length === 0) this.#idle?.()
    }
    this.#active.delete(job.id)
    this.#evicted.delete(job.id)
    this.#results.put(job.id, job.owner, JSON.stringify(view), Date.now() + this.config.resultTtlMs)
    return view
  }

  async get(id: string, owner: string): Promise<RunView | undefined> {
    const active = this.#active.get(id)
    if (active) return active.owner === owner ? active.view : undefined
    const now = Date.now()
    const r = this.#results.get(id, now) ?? this.#evicted.get(id)
    if (!r || r.owner !== owner || r.expiresAt < now) return undefined
    return JSON.parse(r.json) as RunView
  }

  depth() {
    return { queued: this.#waiting.length + this.#reserved, running: this.#running, capacity: this.config.maxConcurrent }
  }

  async health() {
    return { ok: !this.#closing, detail: this.#closing ? 'shutting down' : 'local pool' }
  }

  /** A result dropped for bytes: its run reads as failed with `result-evicted` until it expires. */
  #evict(id: string, entry: StoredResult): void {
    const { result: _dropped, ...view } = JSON.parse(entry.json) as RunView
    const json = JSON.stringify({
      ...view,
      status: 'failed',
      error: { code: 'result-evicted', message: 'the result was dropped to bound the memory results take; fetch results sooner' },
    } satisfies RunView)
    this.#evicted.set(id, { owner: entry.owner, json, expiresAt: entry.expiresAt })
    if (this.#evicted.size > MAX_RECORDS) this.#evicted.delete(this.#evicted.keys().next().value!)
  }

  #expire(): void {
    const now = Date.now()
    this.#results.expire(now)
    for (const [id, r] of this.#evicted) if (r.expiresAt < now) this.#evicted.delete(id)
  }

  async close(graceMs = 30_000): Promise<void> {
    this.#closing = true
    clearInterval(this.#sweep)
    if (this.#running > 0 || this.#waiting.length > 0) {
      await Promise.race([
        new Promise<void>((r) => {
          this.#idle = r
        }),
        new Promise((r) => setTimeout(r, graceMs).unref()),
      ])
    }
  }
}
