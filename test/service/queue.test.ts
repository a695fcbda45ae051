/**
 * The scale-out path with real components: a `redis-server` of our own on a free loopback port,
 * three `caplet worker` processes, and `caplet serve --queue` in this process. Many concurrent
 * runs all complete once with their own output; a worker SIGKILLed mid-run has its runs finished
 * elsewhere; a run stopped by its own limit is not retried; SIGTERM drains; Redis restarted (and
 * so emptied) mid-load leaves no run unanswered.
 */
import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningServer } from '../../service/server.js'
import {
  call,
  GUEST,
  GUEST_B64,
  serve,
  startRedis,
  startWorker,
  type RedisInstance,
  type WorkerProcess,
  type Json,
} from '../support/service.js'

const ID = createHash('sha256').update(GUEST).digest('hex')
/**
 * Runs in the load test: the issue's 1,000. 1.3-1.7 s here at load 10-12 on 2 cores (3.8 s before
 * the pool kept the workers' 4 threads between runs); `CAPLET_QUEUE_RUNS` sets another count.
 */
const MANY = Number(process.env.CAPLET_QUEUE_RUNS ?? 1000)
/** Worker lock: a SIGKILLed worker's runs are retried after about this; long enough that a busy machine does not stall a live worker. */
const LOCK = ['--concurrency', '4', '--lock-duration', '5000']

let redis: RedisInstance
let server: RunningServer
const workers: WorkerProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
  workers.push(...(await Promise.all([0, 1, 2].map(() => startWorker(redis.url, LOCK)))))
  // Generous time: on a machine this loaded a run's first instantiation in a fresh thread can take seconds.
  server = await serve({ maxQueued: 5000, limits: { max: { timeout: '30s' }, defaults: { timeout: '20s' } } }, { queue: redis.url })
  expect((await call(server.url, 'PUT', '/v1/modules', GUEST)).body.id).toBe(ID)
}, 60_000)

afterAll(async () => {
  await server?.close(5000)
  await Promise.all(workers.map((w) => w.stop('SIGKILL')))
  await redis?.stop()
})

const run = (body: Record<string, unknown>) => call(server.url, 'POST', '/v1/runs', { module: ID, ...body })
const startedIn = (w: WorkerProcess, id?: string) =>
  w
    .log()
    .split('\n')
    .filter((l) => l.includes('"run started"') && (id === undefined || l.includes(id)))
const finishedLines = () =>
  workers.flatMap((w) =>
    w
      .log()
      .split('\n')
      .filter((l) => l.includes('"run finished"')),
  )
const until = async (what: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('caplet serve --queue with 3 workers', () => {
  it('healthz reports the queue mode and Redis', async () => {
    const h = await call(server.url, 'GET', '/healthz')
    expect(h.body).toMatchObject({ ok: true, mode: 'queue', detail: 'redis ready' })
  })

  it(`${MANY} runs queued at once (batches of 100 in parallel) all complete once, each with its own output`, async () => {
    const before = finishedLines().length
    const batches = Math.ceil(MANY / 100)
    const sent = await Promise.all(
      Array.from({ length: batches }, (_, b) =>
        call(server.url, 'POST', '/v1/runs/batch', {
          runs: Array.from({ length: Math.min(100, MANY - b * 100) }, (_, i) => ({ module: ID, args: ['g', 'echo', `n${b * 100 + i}`] })),
        }),
      ),
    )
    const views = sent.flatMap((r) => {
      expect(r.status).toBe(200)
      return r.body.runs as Json[]
    })
    expect(views).toHaveLength(MANY)
    const ids = new Set<string>()
    views.forEach((v, i) => {
      expect(v).toMatchObject({ status: 'done', result: { exitCode: 0, stdout: `arg:n${i}\nenv:(unset)\nstdin:` } })
      ids.add(v.id)
    })
    expect(ids.size).toBe(MANY)
    // Each ran exactly once across the workers, and more than one worker took part.
    await until(() => finishedLines().length - before >= MANY)
    const lines = finishedLines().slice(before)
    expect(lines).toHaveLength(MANY)
    expect(new Set(lines.map((l) => JSON.parse(l).run))).toEqual(ids)
    const perWorker = workers.map(
      (w) =>
        w
          .log()
          .split('\n')
          .filter((l) => l.includes('"run finished"')).length,
    )
    expect(perWorker.filter((n) => n > 0).length).toBeGreaterThan(1)
  }, 180_000)

  it('50 runs posted concurrently, one request each, all answered', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => run({ args: ['g', 'echo', `c${i}`] })))
    replies.forEach((r, i) => {
      expect(r.status).toBe(200)
      expect(r.body.result.stdout).toContain(`arg:c${i}\n`)
    })
  }, 120_000)

  it('wait: false and GET /v1/runs/:id through Redis', async () => {
    const r = await run({ args: ['g', 'echo', 'later'], wait: false })
    expect(r.status).toBe(202)
    let view: Json
    for (let i = 0; i < 500; i++) {
      view = (await call(server.url, 'GET', `/v1/runs/${r.body.id}`)).body
      if (view.status === 'done') break
      await new Promise((res) => setTimeout(res, 20))
    }
    expect(view.result.stdout).toContain('arg:later')
  })

  it('a full queue answers 429 with Retry-After; the runs it took are finished, not dropped, on close', async () => {
    // A queue no worker takes from: its runs wait until the server shuts down.
    const q = await serve({ maxQueued: 2 }, { queue: redis.url, queueName: 'caplet-full' })
    try {
      const body = { module: GUEST_B64, args: ['g', 'echo', 'x'], wait: false }
      const taken = await Promise.all([0, 1].map(() => call(q.url, 'POST', '/v1/runs', body)))
      expect(taken.map((r) => r.status)).toEqual([202, 202])
      const full = await call(q.url, 'POST', '/v1/runs', body)
      expect(full.status).toBe(429)
      expect(full.body).toMatchObject({ error: 'queue-full', message: expect.any(String) })
      expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0)
      const batch = await call(q.url, 'POST', '/v1/runs/batch', { runs: [{ module: GUEST_B64 }] })
      expect(batch.status).toBe(429)
      await q.close(200)
      // Closing answered them failed (kept in Redis for GET), none left without an answer.
      const r = new Redis(redis.url)
      try {
        const kept = await Promise.all(taken.map((t) => r.get(`caplet-full:result:${t.body.id}`)))
        expect(kept.map((k) => JSON.parse(k ?? '{}').view)).toMatchObject([
          { status: 'failed', error: { code: 'unavailable' } },
          { status: 'failed', error: { code: 'unavailable' } },
        ])
      } finally {
        r.disconnect()
      }
    } finally {
      await q.close(200)
    }
  })

  it('a run stopped by its own limit is a result, not a retry', async () => {
    const r = await run({ args: ['g', 'loop'], limits: { timeout: '300ms' } })
    expect(r.body.result).toMatchObject({ exitCode: 124, limit: 'timeout' })
    expect(r.body.retried).toBeUndefined()
    // Through the queue, the server's timing has the whole trip to a worker and back as `backend`.
    expect(r.headers.get('server-timing')).toMatch(/^parse;dur=[\d.]+, admit;dur=[\d.]+, backend;dur=[\d.]+, guest;dur=[\d.]+, json/)
    await until(() => finishedLines().some((l) => l.includes(r.body.id)))
    expect(finishedLines().filter((l) => l.includes(r.body.id))).toHaveLength(1)
  })

  it('a worker SIGKILLed mid-run: its runs complete on the others, one result each', async () => {
    const victim = workers[0]!
    const seen = startedIn(victim).length
    const pending = Array.from({ length: 12 }, (_, i) => run({ args: ['g', 'sleep', '1500', String(i)] }))
    await until(() => startedIn(victim).length > seen)
    const victimRuns = new Set(
      startedIn(victim)
        .slice(seen)
        .map((l) => JSON.parse(l).run),
    )
    expect(await victim.stop('SIGKILL')).toBe('SIGKILL')
    const replies = await Promise.all(pending)
    for (const r of replies) {
      expect(r.status).toBe(200)
      expect(r.body.status).toBe('done')
      expect(r.body.result.stdout).toBe('slept\n')
    }
    const moved = replies.filter((r) => victimRuns.has(r.body.id))
    expect(moved.length).toBeGreaterThan(0)
    for (const r of moved) {
      expect(r.body.retried).toBeGreaterThanOrEqual(1)
      // Finished once, by a live worker (its log may reach us after the reply).
      await until(() => finishedLines().some((l) => l.includes(r.body.id)))
      expect(finishedLines().filter((l) => l.includes(r.body.id))).toHaveLength(1)
    }
    workers[0] = await startWorker(redis.url, LOCK)
  }, 90_000)

  it('SIGTERM drains: the worker finishes its runs, then exits 0', async () => {
    const w = workers[1]!
    const seen = startedIn(w).length
    const pending = Array.from({ length: 12 }, () => run({ args: ['g', 'sleep', '1000'] }))
    await until(() => startedIn(w).length > seen)
    const mine = startedIn(w)
      .slice(seen)
      .map((l) => JSON.parse(l).run as string)
    const code = await w.stop('SIGTERM')
    expect(code).toBe(0)
    // What it had started, it finished itself before exiting.
    for (const id of mine) expect(w.log()).toContain(`"run":"${id}","module"`)
    const replies = await Promise.all(pending)
    for (const r of replies) {
      expect(r.body.status).toBe('done')
      expect(r.body.retried).toBeUndefined()
    }
    workers[1] = await startWorker(redis.url, LOCK)
  }, 90_000)

  it('Redis restarted mid-load: every run is answered, done (maybe retried) or failed, none dropped', async () => {
    const seen = workers.reduce((n, w) => n + startedIn(w).length, 0)
    // One batch, so the 60 are queued at once even on a loaded machine; 12 run at a time.
    const batch = call(server.url, 'POST', '/v1/runs/batch', {
      runs: Array.from({ length: 60 }, (_, i) => ({ module: ID, args: ['g', 'sleep', '1000', String(i)] })),
    })
    // Kill it once runs are flowing *and* at least 20 wait in Redis: those are lost with it.
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 1 })
    let waiting: string[] = []
    try {
      const end = Date.now() + 30_000
      while (Date.now() < end) {
        waiting = await probe.lrange('bull:caplet:wait', 0, -1)
        if (waiting.length >= 20 && workers.reduce((n, w) => n + startedIn(w).length, 0) > seen) break
        await new Promise((r) => setTimeout(r, 10))
      }
    } finally {
      probe.disconnect()
    }
    expect(waiting.length).toBeGreaterThanOrEqual(20)
    await redis.kill()
    await new Promise((r) => setTimeout(r, 500))
    await redis.restart()
    const reply = await batch
    expect(reply.status).toBe(200)
    const replies = (reply.body.runs as Json[]).map((body) => ({ body }))
    expect(replies).toHaveLength(60)
    let retried = 0
    let failed = 0
    for (const r of replies) {
      if (r.body.status === 'done') {
        expect(r.body.result.stdout).toBe('slept\n')
        if (r.body.retried) retried++
      } else {
        expect(r.body.status).toBe('failed')
        expect(r.body.error.code).toMatch(/^(lost|worker-failed|queue-unavailable)$/)
        failed++
      }
    }
    // At most 12 of the waiting runs can have been taken by a worker before the kill; the others were lost and answered so.
    const lost = replies.filter((r) => waiting.includes(r.body.id) && (r.body.retried || r.body.status === 'failed'))
    expect(lost.length).toBeGreaterThanOrEqual(waiting.length - 12)
    expect(retried + failed).toBeGreaterThanOrEqual(lost.length)
    // And the service goes on: the module is back (from the server's copy) and new runs work.
    const after = await run({ args: ['g', 'echo', 'again'] })
    expect(after.body.result.stdout).toContain('arg:again')
  }, 120_000)
})
