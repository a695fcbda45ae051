/**
 * Red team, wave 3: `caplet serve`'s store of finished results (service/result-store.ts) against
 * a simple model (a FIFO of entries and a Map, with the same count and byte bounds and TTL).
 * Random puts (replacing ids, owners with lone surrogates, multi-byte and chunk-sized JSON),
 * reads at random times, expiries and evictions: the store gives the model's answers, never an
 * entry after it expired or was dropped, reports exactly the model's evictions, and its byte
 * count is never negative nor above the budget (unless the one newest entry is larger).
 */
import { describe, expect, it } from 'vitest'
import { ResultStore, type StoredResult } from '../../service/result-store.js'
import { rng } from '../support/rng.js'

interface ModelEntry {
  id: string
  owner: string
  json: string
  expiresAt: number
  bytes: number
  /** Still the entry its id names (a later put of the id replaces it). */
  indexed: boolean
}

/** The store's documented behaviour, written the plain way. */
class Model {
  readonly queue: ModelEntry[] = []
  readonly index = new Map<string, ModelEntry>()
  bytes = 0
  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
    readonly onEvict: (id: string, e: StoredResult) => void,
  ) {}

  #dropHead(): ModelEntry {
    const e = this.queue.shift()!
    this.bytes -= e.bytes
    if (e.indexed) this.index.delete(e.id)
    return e
  }

  put(id: string, owner: string, json: string, expiresAt: number): void {
    const old = this.index.get(id)
    if (old) old.indexed = false
    this.index.delete(id)
    if (this.queue.length >= this.maxEntries) this.#dropHead()
    const e: ModelEntry = { id, owner, json, expiresAt, bytes: Buffer.byteLength(owner) + Buffer.byteLength(json), indexed: true }
    this.queue.push(e)
    this.index.set(id, e)
    this.bytes += e.bytes
    while (this.bytes > this.maxBytes && this.queue.length > 1) {
      const d = this.#dropHead()
      if (d.indexed) this.onEvict(d.id, { owner: d.owner, json: d.json, expiresAt: d.expiresAt })
    }
  }

  get(id: string, now: number): StoredResult | undefined {
    const e = this.index.get(id)
    if (!e || e.expiresAt < now) return undefined
    return { owner: e.owner, json: e.json, expiresAt: e.expiresAt }
  }

  expire(now: number): void {
    while (this.queue.length > 0 && this.queue[0]!.expiresAt < now) this.#dropHead()
  }
}

const OWNERS = ['a', 'a\ud800', 'a\ufffd', '\u00e9', 'e\u0301', '', 'judge', '\u{1F600}']

function json(r: ReturnType<typeof rng>): string {
  const k = r.int(100)
  if (k < 2) return JSON.stringify({ big: 'é€😀'.repeat(100_000 + r.int(200_000)) }) // 0.9-2.7 MB: past a chunk
  if (k < 10) return ''
  if (k < 20) return JSON.stringify({ s: '\ud800\udc00\ud800' }) // escapes the lone surrogate: well-formed
  return JSON.stringify({ i: r.int(1e6), pad: 'x€'.repeat(r.int(3000)) })
}

describe.each([
  { seed: 1, maxEntries: 8, maxBytes: 64 * 1024 },
  { seed: 2, maxEntries: 200, maxBytes: 32 * 1024 },
  { seed: 3, maxEntries: 50, maxBytes: 3 * 2 ** 20 },
  { seed: 4, maxEntries: 1, maxBytes: 1024 },
])('ResultStore against a model (seed $seed, $maxEntries entries, $maxBytes bytes)', ({ seed, maxEntries, maxBytes }) => {
  it('500 random puts, reads, expiries and evictions give the same answers', () => {
    const r = rng(seed)
    const storeEvicted: string[] = []
    const modelEvicted: string[] = []
    const evictedEntries = new Map<string, StoredResult>()
    const store = new ResultStore(maxEntries, maxBytes, (id, e) => {
      storeEvicted.push(id)
      evictedEntries.set(id, e)
    })
    const model = new Model(maxEntries, maxBytes, (id) => modelEvicted.push(id))
    const ids = Array.from({ length: 40 }, (_, i) => `run-${i}`)
    let now = 1_000
    const gone = new Map<string, number>() // id -> time it became unreadable for good (expired)
    let reads = 0
    let largest = 0
    let hits = 0
    for (let op = 0; op < 500; op++) {
      const k = r.int(100)
      if (k < 45) {
        const id = r.pick(ids)
        const expiresAt = now + r.pick([-5, 0, 1, 10, 50, 200, 1e6])
        const owner = r.pick(OWNERS)
        const j = json(r)
        largest = Math.max(largest, Buffer.byteLength(j))
        store.put(id, owner, j, expiresAt)
        model.put(id, owner, j, expiresAt)
        gone.delete(id)
      } else if (k < 85) {
        const id = r.pick(ids)
        const at = now + r.pick([0, 0, 1, -1, 20, 100])
        const got = store.get(id, at)
        reads++
        if (got) hits++
        expect(got, `get ${id} at ${at}`).toEqual(model.get(id, at))
        if (got) {
          // Never past its expiry, and the owner is the very string it was put with.
          expect(got.expiresAt).toBeGreaterThanOrEqual(at)
          expect(OWNERS).toContain(got.owner)
        }
      } else if (k < 93) {
        now += r.pick([1, 5, 30, 120])
        store.expire(now)
        model.expire(now)
      } else {
        now += r.pick([1, 10, 100])
      }
      // The bounds hold after every operation.
      expect(store.size).toBe(model.queue.length)
      expect(store.size).toBeLessThanOrEqual(maxEntries)
      expect(store.bytes).toBe(model.bytes)
      expect(store.bytes).toBeGreaterThanOrEqual(0)
      if (store.size > 1) expect(store.bytes).toBeLessThanOrEqual(maxBytes)
      expect(storeEvicted).toEqual(modelEvicted)
      // An evicted id reads as gone (unless put again since).
      for (const id of storeEvicted.slice(-3)) if (!model.index.has(id)) expect(store.get(id, now)).toBeUndefined()
      for (const [id, t] of gone) expect(store.get(id, t + 1)).toBeUndefined()
    }
    // Every id: the model's answer at the end, and nothing readable after its expiry.
    for (const id of ids) {
      expect(store.get(id, now)).toEqual(model.get(id, now))
      const e = store.get(id, now)
      if (e) expect(store.get(id, e.expiresAt + 1)).toBeUndefined()
    }
    store.expire(Number.MAX_SAFE_INTEGER)
    expect(store.size).toBe(0)
    expect(store.bytes).toBe(0)
    // At most the last chunk stays, for the next entries (one 1 MiB chunk, or a big entry's own).
    expect(store.heldBytes).toBeLessThanOrEqual(Math.max(2 ** 20, largest))
    for (const id of ids) expect(store.get(id, 0)).toBeUndefined()
    // The store still works after being emptied.
    store.put('after', 'a\ud800', '{"ok":true}', Number.MAX_SAFE_INTEGER)
    expect(store.get('after')).toEqual({ owner: 'a\ud800', json: '{"ok":true}', expiresAt: Number.MAX_SAFE_INTEGER })
    // The walk exercised what it claims: reads that hit and missed, and (for the small budgets) evictions.
    expect(hits).toBeGreaterThan(0)
    expect(reads - hits).toBeGreaterThan(0)
    if (maxBytes < 2 ** 20 && maxEntries > 1) expect(storeEvicted.length).toBeGreaterThan(0)
    for (const [id, e] of evictedEntries) expect(OWNERS, id).toContain(e.owner)
  })
})
