/**
 * @module `caplet worker --queue redis://…`: takes runs from the BullMQ queue and runs them in
 * this machine's worker pool. The result is written to Redis (with its TTL) before the job is
 * completed, so a server never sees a completion without a result. A run that ends by its own
 * limits is a result, never a retry; only a worker that dies (its lock expires: BullMQ's stalled
 * jobs) gets its run retried elsewhere. SIGTERM drains: no new runs, the running ones finish.
 */
import { Worker, type Job } from 'bullmq'
import { pino, type Logger } from 'pino'
import type { ServiceConfig } from './config.js'
import { DEFAULT_CONFIG } from './config.js'
import { ApiError } from './errors.js'
import { executeRun, ProgramCache } from './execute-run.js'
import { RedisModuleStore } from './modules.js'
import { DEFAULT_QUEUE_NAME, redisClient, resultKey } from './queue-backend.js'
import type { RunJob } from './request.js'
import type { RunRecord, RunView } from './runs.js'
import { failedView } from './runs.js'
import { WARM_WORKERS, warmPool } from './warm.js'

export interface WorkerOptions {
  queue: string
  concurrency?: number
  queueName?: string
  config?: ServiceConfig
  /** How long a run's lock lasts without renewal: a dead worker's runs are retried after about this. */
  lockDurationMs?: number
  log?: Logger
}

export interface RunningWorker {
  /** Stops taking runs and waits for the running ones. */
  close(): Promise<void>
}

export async function startQueueWorker(o: WorkerOptions): Promise<RunningWorker> {
  const name = o.queueName ?? DEFAULT_QUEUE_NAME
  const config = o.config ?? DEFAULT_CONFIG
  const log = o.log ?? pino({ name: 'caplet-worker' })
  const redis = redisClient(o.queue, log)
  const modules = new RedisModuleStore(redis, name, config.maxModuleBytes, config.moduleTtlMs)
  const programs = new ProgramCache()
  const lockDuration = o.lockDurationMs ?? 30_000
  const concurrency = o.concurrency ?? WARM_WORKERS
  await warmPool(concurrency)

  const processor = async (job: Job<RunJob>) => {
    const data = job.data
    const retried = Math.max(0, job.attemptsStarted - 1)
    log.info({ run: data.id, retried }, 'run started')
    let view: RunView
    try {
      const result = await executeRun(data, () => modules.get(data.moduleId), programs)
      view = { id: data.id, status: 'done', module: data.moduleId, limits: data.limits, result, ...(retried ? { retried } : {}) }
    } catch (e) {
      if (!(e instanceof ApiError)) throw e
      view = failedView(data, e.code, e.message, retried)
    }
    const record: RunRecord = { view, owner: data.owner, expiresAt: 0 }
    await redis.set(resultKey(name, data.id), JSON.stringify(record), 'PX', config.resultTtlMs)
    log.info(
      { run: data.id, module: data.moduleId, status: view.status, exitCode: view.result?.exitCode, limit: view.result?.limit, retried },
      'run finished',
    )
    return 'stored'
  }

  const connection = redisClient(o.queue, log)
  const worker = new Worker<RunJob>(name, processor, {
    connection,
    concurrency,
    lockDuration,
    stalledInterval: Math.max(500, Math.floor(lockDuration / 2)),
    maxStalledCount: 2,
  })
  worker.on('error', (e) => log.debug({ err: e.message }, 'worker error'))
  worker.on('failed', (job, e) => log.warn({ run: job?.id, err: e.message }, 'run failed'))
  await worker.waitUntilReady()
  log.info({ queue: name, concurrency }, 'caplet worker ready')
  let closing: Promise<void> | undefined
  return {
    close() {
      return (closing ??= (async () => {
        await worker.close()
        connection.disconnect()
        redis.disconnect()
      })())
    },
  }
}
