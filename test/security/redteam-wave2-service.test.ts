/**
 * Red team, wave 2, `caplet serve`: file names that are distinct JSON strings but the same name
 * on disk (lone UTF-16 surrogates all become U+FFFD), module ids spelled as paths or in the
 * wrong case, and request headers past Node's limit. Each is refused with a JSON error naming
 * nothing of the host, and the server keeps serving. Finished results are bounded in bytes.
 */
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cacheCompiles } from '../../service/compile-source.js'
import { resolveConfig } from '../../service/config.js'
import { applyLimits } from '../../service/limits.js'
import { LocalBackend } from '../../service/local-backend.js'
import { MemoryModuleStore } from '../../service/modules.js'
import type { RunningServer } from '../../service/server.js'
import { call, GUEST, serve, silent, type Json } from '../support/service.js'

const ID = createHash('sha256').update(GUEST).digest('hex')
const SECRET = 'wave2-token-0123456789abcdef'
const A = { authorization: `Bearer ${SECRET}` }
let s: RunningServer

beforeAll(async () => {
  s = await serve({
    tokens: [{ name: 'a', token: SECRET, concurrency: 16, ratePerSecond: 10_000 }],
    maxBodyBytes: 256 * 1024,
    maxFiles: 16,
    requestTimeout: '2s',
  })
  expect((await call(s.url, 'PUT', '/v1/modules', GUEST, A)).body.id).toBe(ID)
})
afterAll(async () => {
  await s?.close(5000)
})

const run = (body: unknown) => call(s.url, 'POST', '/v1/runs', body, A)
function refused(r: { status: number; body: Json }, status: number) {
  expect(r.status).toBe(status)
  expect(JSON.stringify(r.body)).not.toMatch(/\n\s+at |\/work\/|node_modules|\/tmp\/|EEXIST|ENOTDIR/)
}
const stillServing = async () => {
  const r = await run({ module: ID, args: ['g', 'echo', 'alive'] })
  expect(r.body.result.stdout).toContain('arg:alive')
}

describe('service: file names that collide on disk', () => {
  it('refuses lone surrogates in file names (two of them would be the same U+FFFD name on disk)', async () => {
    refused(await run({ module: ID, files: { '\ud800': 'one', '\udc00': 'two' } }), 400)
    refused(await run({ module: ID, files: { '\ud800': 'file', '\udbff/x': 'under it' } }), 400)
    refused(await run({ module: ID, files: { 'ok/\udfff.txt': 'x' } }), 400)
    // A proper surrogate pair is a real character and is fine.
    const r = await run({ module: ID, args: ['g', 'cat', '/input/\u{1F600}.txt'], files: { '\u{1F600}.txt': 'smile' } })
    expect(r.status).toBe(200)
    expect(r.body.result.stdout).toContain('smile')
    await stillServing()
  })
})

describe('service: forged module ids', () => {
  it('path-like, wrong-case, short and long ids are refused or unknown, never a host lookup', async () => {
    for (const id of [`../../${ID.slice(6)}`, `${ID.slice(0, 63)}/`, '%2e%2e%2f'.repeat(8), `${ID}00`, ID.slice(0, 63)]) {
      const r = await run({ module: id })
      expect([400, 404, 422]).toContain(r.status)
      refused(r, r.status)
    }
    const upper = await run({ module: ID.toUpperCase() })
    expect([400, 404, 422]).toContain(upper.status)
    refused(upper, upper.status)
    await stillServing()
  })
})

describe('service: oversized request headers', () => {
  it('a 64 KiB header is refused by the HTTP layer and the server keeps serving', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL('/v1/runs', s.url)
      const req = request(u, { method: 'POST', headers: { ...A, 'x-pad': 'p'.repeat(64 * 1024) } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end('{}')
    })
    expect(status).toBe(431)
    await stillServing()
  })
})

describe('service: finished results are bounded in bytes, not only in count', () => {
  it('past the budget the oldest results are dropped (failed: result-evicted); the newest is kept', async () => {
    const config = resolveConfig({})
    const store = new MemoryModuleStore(config.maxModuleBytes, config.maxStoredModuleBytes)
    const { id } = await store.put(GUEST)
    // A budget of 1 MiB; each run prints 256 KiB (the flood stops at its stdout limit).
    const backend = new LocalBackend(store, config, silent, 1 << 20)
    const limits = { ...applyLimits({ stdout: '256KiB' }, config.limits) }
    const job = (n: number) => ({
      id: `run-${n}`,
      owner: 'a',
      moduleId: id,
      args: ['g', 'flood'],
      env: {},
      stdin: '',
      output: false,
      limits,
      submittedAt: Date.now(),
    })
    try {
      for (let i = 0; i < 8; i++) {
        const view = await backend.start(job(i))
        expect(view.result?.stdout.length).toBeGreaterThan(200_000)
      }
      const views = await Promise.all(Array.from({ length: 8 }, (_, i) => backend.get(`run-${i}`, 'a')))
      const kept = views.filter((v) => v?.result !== undefined).length
      expect(kept).toBeGreaterThanOrEqual(3)
      expect(kept).toBeLessThanOrEqual(4)
      expect(views[0]).toMatchObject({ status: 'failed', error: { code: 'result-evicted' } })
      expect(views[7]?.result).toBeDefined()
    } finally {
      await backend.close(1000)
    }
  }, 15_000)
})

describe('service: compiles are bounded server-wide', () => {
  it('twelve distinct sources at once run at most maxConcurrent compiles; a failing one frees its slot', async () => {
    let running = 0
    let peak = 0
    const compile = cacheCompiles(
      async (source) => {
        running++
        peak = Math.max(peak, running)
        await new Promise((r) => setTimeout(r, 20))
        running--
        if (source.files['fail.c'] !== undefined) throw new Error('compile error')
        return new Uint8Array([0, 97, 115, 109])
      },
      undefined,
      3,
    )
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => compile({ language: 'c', files: { [i % 4 === 0 ? 'fail.c' : 'main.c']: `int x${i};` } })),
    )
    expect(peak).toBe(3)
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(3)
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(9)
    expect(running).toBe(0)
  })
})
