/**
 * The store of finished results kept outside the V8 heap (service/result-store.ts): exact round
 * trips (multi-byte UTF-8, entries larger than a chunk), the byte and count bounds (oldest first
 * out, the newest always kept, memory held stays near the budget under a flood of mixed sizes),
 * expiry, and through the API: a result dropped for bytes reads as `failed`/`result-evicted`.
 */
import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createApp } from '../../service/app.js'
import { resolveConfig } from '../../service/config.js'
import { applyLimits } from '../../service/limits.js'
import { LocalBackend } from '../../service/local-backend.js'
import { ServiceMetrics } from '../../service/metrics.js'
import { MemoryModuleStore } from '../../service/modules.js'
import { ResultStore, type StoredResult } from '../../service/result-store.js'
import { GUEST, silent } from '../support/service.js'

const FAR = Number.MAX_SAFE_INTEGER

describe('ResultStore', () => {
  it('gives back exactly what was put: owner and JSON, multi-byte UTF-8, an entry larger than a chunk', () => {
    const s = new ResultStore(100, 64 * 2 ** 20)
    const big = JSON.stringify({ out: 'é€😀x'.repeat(400_000) }) // ~4 MB of UTF-8, above one chunk
    s.put('a', 'tøken', '{"ü":"😀"}', FAR)
    s.put('b', 'b', big, FAR)
    s.put('c', '', '', FAR)
    expect(s.get('a')).toEqual({ owner: 'tøken', json: '{"ü":"😀"}', expiresAt: FAR })
    expect(s.get('b')?.json).toBe(big)
    expect(s.get('c')).toEqual({ owner: '', json: '', expiresAt: FAR })
    expect(s.get('d')).toBeUndefined()
    expect(s.bytes).toBe(Buffer.byteLength('tøken{"ü":"😀"}') + 1 + Buffer.byteLength(big))
  })

  it('past the byte budget drops the oldest first, through onEvict, and never the newest', () => {
    const evicted: [string, StoredResult][] = []
    const s = new ResultStore(1000, 10_000, (id, e) => evicted.push([id, e]))
    const json = (i: number) => JSON.stringify({ i, pad: 'p'.repeat(990) })
    for (let i = 0; i < 30; i++) s.put(`r${i}`, 'o', json(i), FAR)
    expect(s.bytes).toBeLessThanOrEqual(10_000)
    expect(s.size).toBeGreaterThanOrEqual(9)
    expect(evicted.map(([id]) => id)).toEqual(Array.from({ length: 30 - s.size }, (_, i) => `r${i}`))
    expect(evicted[0]![1]).toEqual({ owner: 'o', json: json(0), expiresAt: FAR })
    for (let i = 0; i < 30 - s.size; i++) expect(s.get(`r${i}`)).toBeUndefined()
    for (let i = 30 - s.size; i < 30; i++) expect(s.get(`r${i}`)?.json).toBe(json(i))
    // One entry above the whole budget is kept (its caller is waiting for it); the next drops it.
    const huge = 'h'.repeat(50_000)
    s.put('huge', 'o', huge, FAR)
    expect(s.size).toBe(1)
    expect(s.get('huge')?.json).toBe(huge)
    s.put('after', 'o', '{}', FAR)
    expect(s.get('huge')).toBeUndefined()
    expect(s.get('after')?.json).toBe('{}')
  })

  it('past the count bound drops the oldest silently (not an eviction for bytes)', () => {
    const evicted: string[] = []
    const s = new ResultStore(5, 2 ** 30, (id) => evicted.push(id))
    for (let i = 0; i < 12; i++) s.put(`r${i}`, 'o', `{"i":${i}}`, FAR)
    expect(s.size).toBe(5)
    expect(evicted).toEqual([])
    expect(s.get('r6')).toBeUndefined()
    expect(s.get('r7')?.json).toBe('{"i":7}')
    expect(s.get('r11')?.json).toBe('{"i":11}')
  })

  it('an expired entry reads as gone, and expire() frees its chunks', () => {
    const s = new ResultStore(10_000, 2 ** 30)
    const pad = 'x'.repeat(100_000)
    for (let i = 0; i < 40; i++) s.put(`old${i}`, 'o', pad, 1000)
    s.put('new', 'o', '{}', 5000)
    expect(s.get('old0', 999)?.json).toBe(pad)
    expect(s.get('old0', 1001)).toBeUndefined()
    expect(s.get('new', 1001)?.json).toBe('{}')
    expect(s.heldBytes).toBeGreaterThanOrEqual(4_000_000)
    s.expire(1001)
    expect(s.size).toBe(1)
    expect(s.heldBytes).toBeLessThanOrEqual(2 ** 20)
    expect(s.get('new', 1001)?.json).toBe('{}')
  })

  it('a replaced id reads as its newest entry; the old one is not evicted under its id', () => {
    const evicted: string[] = []
    const s = new ResultStore(100, 3000, (id) => evicted.push(id))
    s.put('a', 'o', 'first'.padEnd(1000), FAR)
    s.put('a', 'o', 'second', FAR)
    expect(s.get('a')?.json).toBe('second')
    s.put('b', 'o', 'b'.repeat(2500), FAR)
    expect(evicted).toEqual([])
    expect(s.get('a')?.json).toBe('second')
  })

  it('a flood of mixed sizes holds memory near the budget, and the index matches what is kept', () => {
    const budget = 4 * 2 ** 20
    const s = new ResultStore(50_000, budget)
    let seed = 7
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    let last = ''
    for (let i = 0; i < 20_000; i++) {
      last = 'z'.repeat(Math.floor(rnd() < 0.01 ? rnd() * 3 * 2 ** 20 : rnd() * 2000))
      s.put(`r${i}`, 'o', last, FAR)
      expect(s.bytes).toBeLessThanOrEqual(Math.max(budget, Buffer.byteLength(last) + 1))
    }
    // Live entries, plus at most the unused tail of the oldest chunk and the current one.
    expect(s.heldBytes).toBeLessThanOrEqual(budget + 2 * 3 * 2 ** 20)
    let found = 0
    for (let i = 0; i < 20_000; i++) if (s.get(`r${i}`) !== undefined) found++
    expect(found).toBe(s.size)
    expect(s.get('r19999')?.json).toBe(last)
  })
})

describe('LocalBackend keeps results in a ResultStore', () => {
  it('GET of a run whose result was dropped for bytes answers failed/result-evicted; other tokens see nothing', async () => {
    const config = resolveConfig({})
    const store = new MemoryModuleStore(config.maxModuleBytes, config.maxStoredModuleBytes)
    const { id: moduleId } = await store.put(GUEST)
    const backend = new LocalBackend(store, config, silent, 4096)
    const app = createApp({ config, backend, metrics: new ServiceMetrics(backend), log: silent })
    const limits = applyLimits({}, config.limits)
    const ids = Array.from({ length: 12 }, () => randomUUID())
    const job = (id: string) => ({
      id,
      owner: 'anonymous',
      moduleId,
      args: ['g', 'echo', 'x'.repeat(600)],
      env: {},
      stdin: '',
      output: false,
      limits,
      submittedAt: Date.now(),
    })
    try {
      for (const id of ids) expect((await backend.start(job(id))).status).toBe('done')
      const get = (id: string) => app.request(`/v1/runs/${id}`)
      const first = await get(ids[0]!)
      expect(first.status).toBe(200)
      expect(await first.json()).toEqual({
        id: ids[0],
        status: 'failed',
        module: moduleId,
        limits,
        error: { code: 'result-evicted', message: 'the result was dropped to bound the memory results take; fetch results sooner' },
      })
      const last = await get(ids[11]!)
      expect(last.status).toBe(200)
      expect(await last.json()).toMatchObject({ id: ids[11], status: 'done', result: { exitCode: 0 } })
      expect(await backend.get(ids[0]!, 'someone-else')).toBeUndefined()
      expect(await backend.get(ids[11]!, 'someone-else')).toBeUndefined()
      expect((await get(randomUUID())).status).toBe(404)
    } finally {
      await backend.close(1000)
    }
  }, 15_000)
})
