/**
 * @module Runs on this process's worker pool: at most `maxConcurrent` at once, at most
 * `maxQueued` waiting (then 429), results kept `resultTtlMs` (and at most a bounded number).
 */
import type { ServiceConfig } from './config.js'
import { ApiError } from './errors.js'
import { executeRun, ProgramCache } from './execute-run.js'
import type { ModuleStore } from './modules.js'
import type { RunJob } from './request.js'
import { failedView, viewOf, type RunBackend, type RunRecord, type RunTiming, type RunView } from './runs.js'
import type { Logger } from 'pino'

const MAX_RECORDS = 100_000

export class LocalBackend implements RunBackend {
  readonly mode = 'local'
  readonly #records = new Map<string, RunRecord>()
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
  ) {
    this.#sweep = setInterval(() => this.#expire(), 10_000).unref()
  }

  admit(n: number): void {
    if (this.#closing) throw new ApiError(503, 'unavailable', 'the server is shutting down', undefined, 5)
    if (this.#waiting.length + this.#reserved + n > this.config.maxQueued) {
      throw new ApiError(429, 'queue-full', `the run queue is full (${this.config.maxQueued} waiting); retry later`, undefined, 1)
    }
  }

  async start(job: RunJob, timing?: RunTiming): Promise<RunView> {
    const record: RunRecord = { view: viewOf(job, 'queued'), owner: job.owner, expiresAt: Infinity }
    this.#records.set(job.id, record)
    this.#reserved++
    await new Promise<void>((go) => {
      this.#reserved--
      if (this.#running < this.config.maxConcurrent) go()
      else this.#waiting.push(go)
    })
    this.#running++
    if (timing) timing.started = performance.now()
    record.view = { ...record.view, status: 'running' }
    try {
      const result = await executeRun(job, () => this.modules.get(job.moduleId), this.#programs)
      record.view = { ...record.view, status: 'done', result }
    } catch (e) {
      if (e instanceof ApiError) record.view = failedView(job, e.code, e.message)
      else {
        this.log.error({ run: job.id, err: (e as Error)?.message }, 'run failed in the host')
        record.view = failedView(job, 'internal', 'the service failed to run this job')
      }
    } finally {
      if (timing) timing.ended = performance.now()
      this.#running--
      record.expiresAt = Date.now() + this.config.resultTtlMs
      this.#waiting.shift()?.()
      if (this.#running === 0 && this.#waiting.length === 0) this.#idle?.()
    }
    if (this.#records.size > MAX_RECORDS) this.#expire(true)
    return record.view
  }

  async get(id: string, owner: string): Promise<RunView | undefined> {
    const r = this.#records.get(id)
    if (!r || r.owner !== owner || r.expiresAt < Date.now()) return undefined
    return r.view
  }

  depth() {
    return { queued: this.#waiting.length + this.#reserved, running: this.#running, capacity: this.config.maxConcurrent }
  }

  async health() {
    return { ok: !this.#closing, detail: this.#closing ? 'shutting down' : 'local pool' }
  }

  #expire(force = false): void {
    const now = Date.now()
    for (const [id, r] of this.#records) {
      if (r.expiresAt < now) this.#records.delete(id)
      else if (force && r.expiresAt !== Infinity && this.#records.size > MAX_RECORDS * 0.9) this.#records.delete(id)
    }
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
