/**
 * Red team, wave 3: run ownership with `caplet serve --queue` (BullMQ on a real Redis, one
 * `caplet worker`). Owners travel through Redis as JSON (the job's data, the result record);
 * two tokens named "a\ud800" and "a\ufffd" (built by hand: the config refuses the first) and
 * two named with NFC and NFD spellings of one name stay four owners: each token reads its own
 * queued and finished runs, and gets 404 for every other token's. The server keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveConfig, sha256Hex, type TokenPolicy } from '../../service/config.js'
import { startServer, type RunningServer } from '../../service/server.js'
import { call, GUEST, silent, startRedis, startWorker, type RedisInstance, type WorkerProcess } from '../support/service.js'

const NAMES = ['a\ud800', 'a\ufffd', '\u00e9', 'e\u0301']
const secret = (i: number) => `wave3-queue-owner-${i}-0123456789abcdef`
const bearer = (i: number) => ({ authorization: `Bearer ${secret(i)}` })
const token = (name: string, i: number): TokenPolicy => ({
  name,
  sha256: sha256Hex(secret(i)),
  concurrency: 64,
  ratePerSecond: 10_000,
  burst: 10_000,
})

let redis: RedisInstance
let worker: WorkerProcess
let s: RunningServer
let moduleId = ''
/** For each token: a finished run and one left queued/running (a sleep). */
const done: string[] = []
const pending: string[] = []

beforeAll(async () => {
  redis = await startRedis()
  worker = await startWorker(redis.url, ['--concurrency', '1', '--lock-duration', '5000'])
  const base = resolveConfig({ limits: { max: { timeout: '30s' }, defaults: { timeout: '20s' } } })
  s = await startServer({ config: { ...base, tokens: NAMES.map(token) }, port: 0, log: silent, queue: redis.url })
  moduleId = (await call(s.url, 'PUT', '/v1/modules', GUEST, bearer(0))).body.id
  for (let i = 0; i < NAMES.length; i++) {
    const r = await call(s.url, 'POST', '/v1/runs', { module: moduleId, args: ['g', 'echo', `owner-${i}`] }, bearer(i))
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    done.push(r.body.id)
  }
  for (let i = 0; i < NAMES.length; i++) {
    const r = await call(s.url, 'POST', '/v1/runs', { module: moduleId, args: ['g', 'sleep', '300'], wait: false }, bearer(i))
    expect(r.status).toBe(202)
    pending.push(r.body.id)
  }
}, 90_000)

afterAll(async () => {
  await s?.close(5000)
  await worker?.stop('SIGKILL')
  await redis?.stop()
})

describe('queue backend: owners stay exact through Redis', () => {
  it('each token reads its own finished run and gets 404 for the three others', async () => {
    for (let me = 0; me < NAMES.length; me++)
      for (let other = 0; other < NAMES.length; other++) {
        const r = await call(s.url, 'GET', `/v1/runs/${done[other]}`, undefined, bearer(me))
        if (me === other) {
          expect(r.status).toBe(200)
          expect(r.body.result.stdout).toContain(`arg:owner-${me}`)
        } else {
          expect(r.status, `token ${me} reading run of ${other}`).toBe(404)
          expect(JSON.stringify(r.body)).not.toMatch(/owner-|"status"|"result"/)
        }
      }
  })

  it('queued or running runs too, and after they finish; the server still serves every token', async () => {
    for (let me = 0; me < NAMES.length; me++)
      for (let other = 0; other < NAMES.length; other++) {
        const r = await call(s.url, 'GET', `/v1/runs/${pending[other]}`, undefined, bearer(me))
        if (me === other) expect(r.status).toBe(200)
        else expect(r.status, `token ${me} reading pending run of ${other}`).toBe(404)
      }
    for (let me = 0; me < NAMES.length; me++) {
      let status = ''
      for (let k = 0; k < 400 && status !== 'done'; k++) {
        const r = await call(s.url, 'GET', `/v1/runs/${pending[me]}`, undefined, bearer(me))
        status = r.body.status
        if (status !== 'done') await new Promise((res) => setTimeout(res, 25))
      }
      expect(status).toBe('done')
      for (let other = 0; other < NAMES.length; other++)
        if (other !== me) expect((await call(s.url, 'GET', `/v1/runs/${pending[me]}`, undefined, bearer(other))).status).toBe(404)
    }
    const alive = await call(s.url, 'POST', '/v1/runs', { module: moduleId, args: ['g', 'echo', 'alive'] }, bearer(1))
    expect(alive.body.result.stdout).toContain('arg:alive')
  })
})
