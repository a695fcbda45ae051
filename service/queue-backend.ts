/**
 * @module Runs on a BullMQ queue in Redis (`caplet serve --queue redis://…`); `caplet worker`
 * processes take them. Modules travel by id (stored in Redis), results come back through Redis
 * with a TTL (`<name>:result:<id>`), announced by BullMQ's queue events. A run is never dropped
 * silently: runs this server waits for are checked while they wait, and one whose job vanished
 * (Redis restarted without persistence) is submitted again (`retried`) or, when that is not
 * possible, reported `failed`. A worker that dies mid-run leaves its job stalled; BullMQ gives
 * it to another worker. Each run resolves once.
 */
import { Queue, QueueEvents } from 'bullmq'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { ServiceConfig } from './config.js'
import { ApiError } from './errors.js'
import { RedisModuleStore } from './modules.js'
import type { RunJob } from './request.js'
import { failedView, type RunBackend, type RunRecord, type RunView } from './runs.js'

export const DEFAULT_QUEUE_NAME = 'caplet'
/** Times a run is submitted again after Redis lost it. */
const MAX_RESUBMITS = 2
/** Times adding a run to the queue may fail (Redis unreachable) before the run is answered failed. */
const MAX_ADD_FAILURES = 5

export const resultKey = (name: string, id: string) => `${name}:result:${id}`
const jobKey = (name: string, id: string) => `bull:${name}:${id}`

/** An ioredis client for `redis://HOST:PORT[/DB]` that waits through reconnects (BullMQ needs that). */
export function redisClient(url: string, log?: Logger): Redis {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ApiError(400, 'invalid-request', `--queue ${url}: not a redis:// URL`)
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    throw new ApiError(400, 'invalid-request', `--queue ${url}: expected redis://HOST:PORT`)
  const r = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (n) => Math.min(50 * n, 1000) })
  r.on('error', (e) => log?.debug({ err: e.message }, 'redis connection error'))
  return r
}

const queueConnections = new WeakMap<Queue, Redis[]>()

interface Pending {
  job: RunJob
  resolve: (v: RunView) => void
  /** In the queue (as far as this server knows); false while being added or waiting to be added again. */
  added: boolean
  adding: boolean
  lastCheck: number
  resubmits: number
  addFailures: number
}

export class QueueBackend implements RunBackend {
  readonly mode = 'queue'
  readonly #pending = new Map<string, Pending>()
  #closing = false
  #reconciling = false
  /** Modules known to be in Redis since the last (re)connection: a Redis that restarted may have lost the others. */
  readonly #confirmed = new Set<string>()
  readonly #timer: ReturnType<typeof setInterval>

  private constructor(
    readonly redis: Redis,
    readonly queue: Queue,
    readonly events: QueueEvents,
    readonly modules: RedisModuleStore,
    readonly config: ServiceConfig,
    readonly log: Logger,
    readonly name: string,
  ) {
    events.on('completed', ({ jobId }) => {
      void this.#collect(jobId).catch((e) => this.#quiet(e))
    })
    // A job that failed after its worker stored the result (Redis restarted under it) still has a result.
    events.on('failed', ({ jobId, failedReason }) => {
      void this.#failed(jobId, String(failedReason)).catch((e) => this.#quiet(e))
    })
    // Redis came back: check every run at once rather than at the next sweep.
    redis.on('close', () => this.#confirmed.clear())
    redis.on('ready', () => {
      this.#confirmed.clear()
      for (const p of this.#pending.values()) p.lastCheck = 0
      void this.#reconcile()
    })
    this.#timer = setInterval(() => {
      void this.#reconcile()
    }, 1000)
    this.#timer.unref()
  }

  static async connect(url: string, config: ServiceConfig, log: Logger, name = DEFAULT_QUEUE_NAME): Promise<QueueBackend> {
    const redis = redisClient(url, log)
    // BullMQ leaves connections it was given open; these are ours to close.
    const connections = [redisClient(url, log), redisClient(url, log)]
    const queue = new Queue(name, { connection: connections[0]! })
    const events = new QueueEvents(name, { connection: connections[1]! })
    queueConnections.set(queue, connections)
    queue.on('error', (e) => log.debug({ err: e.message }, 'queue error'))
    events.on('error', (e) => log.debug({ err: e.message }, 'queue events error'))
    await Promise.all([redis.ping(), queue.waitUntilReady(), events.waitUntilReady()])
    return new QueueBackend(
      redis,
      queue,
      events,
      new RedisModuleStore(redis, name, config.maxModuleBytes, config.moduleTtlMs),
      config,
      log,
      name,
    )
  }

  admit(n: number): void {
    if (this.#closing) throw new ApiError(503, 'unavailable', 'the server is shutting down', undefined, 5)
    if (this.#pending.size + n > this.config.maxQueued) {
      throw new ApiError(
        429,
        'queue-full',
        `the run queue is full (${this.config.maxQueued} runs waiting on this server); retry later`,
        undefined,
        1,
      )
    }
  }

  start(job: RunJob): Promise<RunView> {
    return new Promise<RunView>((resolve) => {
      const p: Pending = { job, resolve, added: false, adding: false, lastCheck: Date.now(), resubmits: 0, addFailures: 0 }
      this.#pending.set(job.id, p)
      void this.#add(p)
    })
  }

  #quiet(e: unknown): void {
    this.log.debug({ err: (e as Error)?.message }, 'queue bookkeeping failed')
  }

  async #failed(id: string, reason: string): Promise<void> {
    const p = this.#pending.get(id)
    if (!p || (await this.#collect(id))) return
    this.#finish(p, failedView(p.job, 'worker-failed', `the run failed in a worker: ${reason.slice(0, 300)}`, p.resubmits || undefined))
  }

  async #add(p: Pending): Promise<void> {
    if (p.adding || this.#pending.get(p.job.id) !== p) return
    p.adding = true
    try {
      if (!this.#confirmed.has(p.job.moduleId)) {
        if (!(await this.modules.restore(p.job.moduleId))) {
          this.#finish(p, failedView(p.job, 'lost', "the queue lost this run's module", p.resubmits || undefined))
          return
        }
        this.#confirmed.add(p.job.moduleId)
      }
      await this.queue.add('run', p.job, {
        jobId: p.job.id,
        attempts: 1,
        removeOnComplete: true,
        removeOnFail: { age: Math.ceil(this.config.resultTtlMs / 1000) },
      })
      p.added = true
    } catch (e) {
      // Redis went away while the run was being added: the sweep adds it again once Redis is back.
      p.addFailures++
      this.log.warn({ run: p.job.id, err: (e as Error).message, failures: p.addFailures }, 'could not queue a run')
      if (p.addFailures >= MAX_ADD_FAILURES || this.#closing)
        this.#finish(p, failedView(p.job, 'queue-unavailable', 'the run could not be queued', p.resubmits || undefined))
    } finally {
      p.adding = false
      p.lastCheck = Date.now()
    }
  }

  #finish(p: Pending, view: RunView): void {
    if (this.#pending.get(p.job.id) !== p) return
    this.#pending.delete(p.job.id)
    if (view.status === 'failed') {
      // Kept so GET /v1/runs/:id answers it too (NX: a worker's result, if one came, wins).
      const record: RunRecord = { view, owner: p.job.owner, expiresAt: 0 }
      void this.redis.set(resultKey(this.name, p.job.id), JSON.stringify(record), 'PX', this.config.resultTtlMs, 'NX').catch(() => {})
    }
    p.resolve(view)
  }

  /** Reads a finished run's result; true when there was one. */
  async #collect(id: string): Promise<boolean> {
    const p = this.#pending.get(id)
    if (!p) return false
    const text = await this.redis.get(resultKey(this.name, id))
    if (text === null) return false
    const record = JSON.parse(text) as RunRecord
    const view = p.resubmits > 0 ? { ...record.view, retried: (record.view.retried ?? 0) + p.resubmits } : record.view
    this.#finish(p, view)
    return true
  }

  /**
   * Finds runs whose job is gone without a result, and submits them again or fails them; adds
   * again runs whose adding failed; finishes runs whose job failed while no event reached us.
   * The job is looked at before the result: a worker stores the result before it completes
   * (and so removes) the job, so "no job, then no result" means the run was lost.
   */
  async #reconcile(): Promise<void> {
    if (this.#reconciling || this.redis.status !== 'ready') return
    this.#reconciling = true
    try {
      const now = Date.now()
      for (const p of this.#pending.values()) if (!p.added && !p.adding && now - p.lastCheck > 1000) void this.#add(p)
      const due = [...this.#pending.values()].filter((p) => p.added && now - p.lastCheck > 2000).slice(0, 500)
      if (due.length === 0) return
      const pipe = this.redis.pipeline()
      for (const p of due)
        pipe
          .hmget(jobKey(this.name, p.job.id), 'finishedOn', 'failedReason')
          .exists(jobKey(this.name, p.job.id))
          .exists(resultKey(this.name, p.job.id))
      const replies = (await pipe.exec()) ?? []
      for (let i = 0; i < due.length; i++) {
        const p = due[i]!
        p.lastCheck = Date.now()
        const job = (replies[3 * i]?.[1] ?? [null, null]) as [string | null, string | null]
        const hasJob = replies[3 * i + 1]?.[1] === 1
        const hasResult = replies[3 * i + 2]?.[1] === 1
        if (this.#pending.get(p.job.id) !== p || !p.added) continue
        if (hasResult) {
          await this.#collect(p.job.id)
          continue
        }
        if (hasJob) {
          if (job[0] !== null && job[1] !== null) await this.#failed(p.job.id, job[1])
          continue
        }
        if (p.resubmits >= MAX_RESUBMITS) {
          this.#finish(p, failedView(p.job, 'lost', 'the queue lost this run more than once', p.resubmits))
          continue
        }
        p.resubmits++
        p.added = false
        this.log.warn({ run: p.job.id, resubmits: p.resubmits }, 'run lost by the queue; submitting it again')
        // The module may be gone with the rest of Redis: #add puts it back, or fails the run.
        this.#confirmed.delete(p.job.moduleId)
        void this.#add(p)
      }
    } catch (e) {
      this.#quiet(e)
    } finally {
      this.#reconciling = false
    }
  }

  async get(id: string, owner: string): Promise<RunView | undefined> {
    const p = this.#pending.get(id)
    if (p) return p.job.owner === owner ? { id, status: 'queued', module: p.job.moduleId, limits: p.job.limits } : undefined
    const text = await this.redis.get(resultKey(this.name, id))
    if (text !== null) {
      const r = JSON.parse(text) as RunRecord
      return r.owner === owner ? r.view : undefined
    }
    // Submitted by another server: its job says who owns it.
    const job = await this.queue.getJob(id)
    if (!job || (job.data as RunJob).owner !== owner) return undefined
    const state = await job.getState()
    return {
      id,
      status: state === 'active' ? 'running' : 'queued',
      module: (job.data as RunJob).moduleId,
      limits: (job.data as RunJob).limits,
    }
  }

  depth() {
    return { queued: this.#pending.size, running: 0, capacity: 0 }
  }

  async health() {
    const ok = this.redis.status === 'ready' && !this.#closing
    return { ok, detail: this.#closing ? 'shutting down' : `redis ${this.redis.status}` }
  }

  async close(graceMs = 30_000): Promise<void> {
    this.#closing = true
    const deadline = Date.now() + graceMs
    while (this.#pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    clearInterval(this.#timer)
    for (const p of [...this.#pending.values()])
      this.#finish(p, failedView(p.job, 'unavailable', 'the server shut down before the run finished'))
    // Their failed views were sent on this connection: a reply to a later command means they are stored.
    await Promise.race([this.redis.ping().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())])
    await Promise.allSettled([this.events.close(), this.queue.close()])
    for (const c of queueConnections.get(this.queue) ?? []) c.disconnect()
    this.redis.disconnect()
  }
}
