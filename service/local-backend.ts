/**
 * @module Runs on this process's worker pool: at most `maxConcurrent` at once, at most
 * `maxQueued` waiting (then 429), results kept `resultTtlMs` (at most a bounded number, and
 * bounded in bytes: past the budget the oldest finished results are dropped). A finished run is
 * kept as its JSON text: one string per run rather than a dozen objects, which a full GC of
 * the server's heap would otherwise mark one by one while every slot waits (bench: p99 at 50%).
 */
import type { ServiceConfig } from './config.js'
import { ApiError } from './errors.js'
import { executeRun, ProgramCache, type RunResultJson } from './execute-run.js'
import type { ModuleStore } from './modules.js'
import type { RunJob } from './request.js'
import { failedView, viewOf, type RunBackend, type RunTiming, type RunView } from './runs.js'
import type { Logger } from 'pino'

const MAX_RECORDS = 100_000
/** Characters of output (stdout, stderr, files) kept in finished results at once. */
export const MAX_KEPT_RESULT_CHARS = 256 * 2 ** 20

/** The characters a result holds in memory (its outputs; the rest is small and bounded). */
function resultChars(r: RunResultJson | undefined): number {
  if (r === undefined) return 0
  let n = r.stdout.length + r.stderr.length + (r.stdoutBase64?.length ?? 0) + (r.stderrBase64?.length ?? 0)
  for (const [k, v] of Object.entries(r.files ?? {})) n += k.length + (typeof v === 'string' ? v.length : v.base64.length)
  return n
}

/** A run this server knows: its view while it runs, its view's JSON once it has ended. */
interface LocalRecord {
  view?: RunView
  json?: string
  owner: string
  expiresAt: number
}

const viewIn = (r: LocalRecord): RunView => r.view ?? (JSON.parse(r.json!) as RunView)

export class LocalBackend implements RunBackend {
  readonly mode = 'local'
  readonly #records = new Map<string, LocalRecord>()
  readonly #waiting: (() => void)[] = []
  readonly #programs = new ProgramCache()
  #running = 0
  #reserved = 0
  #closing = false
  #idle: (() => void) | undefined
  /** Characters held by finished results, by run id (insertion order: oldest first). */
  readonly #kept = new Map<string, number>()
  #keptChars = 0
  readonly #sweep: ReturnType<typeof setInterval>

  constructor(
    readonly modules: ModuleStore,
    readonly config: ServiceConfig,
    readonly log: Logger,
    readonly maxKeptChars = MAX_KEPT_RESULT_CHARS,
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
    const record: LocalRecord = { view: viewOf(job, 'queued'), owner: job.owner, expiresAt: Infinity }
    this.#records.set(job.id, record)
    this.#reserved++
    await new Promise<void>((go) => {
      this.#reserved--
      if (this.#running < this.config.maxConcurrent) go()
      else this.#waiting.push(go)
    })
    this.#running++
    if (timing) timing.started = performance.now()
    record.view = { ...record.view!, status: 'running' }
    let view: RunView
    try {
      const result = await executeRun(job, () => this.modules.get(job.moduleId), this.#programs)
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
      record.expiresAt = Date.now() + this.config.resultTtlMs
      this.#waiting.shift()?.()
      if (this.#running === 0 && this.#waiting.length === 0) this.#idle?.()
    }
    record.json = JSON.stringify(view)
    record.view = undefined
    const chars = resultChars(view.result)
    if (chars > 0) {
      this.#kept.set(job.id, chars)
      this.#keptChars += chars
      this.#evictResults(job.id)
    }
    if (this.#records.size > MAX_RECORDS) this.#expire(true)
    return view
  }

  async get(id: string, owner: string): Promise<RunView | undefined> {
    const r = this.#records.get(id)
    if (!r || r.owner !== owner || r.expiresAt < Date.now()) return undefined
    return viewIn(r)
  }

  depth() {
    return { queued: this.#waiting.length + this.#reserved, running: this.#running, capacity: this.config.maxConcurrent }
  }

  async health() {
    return { ok: !this.#closing, detail: this.#closing ? 'shutting down' : 'local pool' }
  }

  /**
   * Drops the oldest finished results (not `keep`, the one just made: its caller is waiting for
   * it) while they hold more than the budget; their runs read as failed with `result-evicted`.
   */
  #evictResults(keep: string): void {
    for (const id of [...this.#kept.keys()]) {
      if (this.#keptChars <= this.maxKeptChars) break
      if (id === keep) continue
      this.#forget(id)
      const r = this.#records.get(id)
      if (r?.json !== undefined) {
        const { result: _dropped, ...view } = viewIn(r)
        r.json = JSON.stringify({
          ...view,
          status: 'failed',
          error: { code: 'result-evicted', message: 'the result was dropped to bound the memory results take; fetch results sooner' },
        } satisfies RunView)
      }
    }
  }

  #forget(id: string): void {
    const chars = this.#kept.get(id)
    if (chars === undefined) return
    this.#kept.delete(id)
    this.#keptChars -= chars
  }

  #expire(force = false): void {
    const now = Date.now()
    for (const [id, r] of this.#records) {
      if (r.expiresAt < now || (force && r.expiresAt !== Infinity && this.#records.size > MAX_RECORDS * 0.9)) {
        this.#records.delete(id)
        this.#forget(id)
      }
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
