/**
 * The on-disk module analysis cache (runtime/module-cache.ts) and the default tier for big
 * modules: a miss computes and stores, a hit reuses, an entry forged or corrupted on disk is
 * never applied (recomputed and replaced), a full cache stays within its bound, and an unusable
 * cache directory only costs the recomputation.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { tierHints } from '../../runtime/instrument/index.js'
import { cachedTierHints, moduleCacheStats, useModuleCache } from '../../runtime/module-cache.js'
import { BASELINE_CODE_BYTES, defaultTier, keepCompiledModules, loadModule } from '../../runtime/module.js'
import { CAPLET_VERSION } from '../../runtime/version.js'
import { main } from '../../runtime/cli.js'
import { buildModule, op } from './instrument/wasm.js'

const LOOP = [op.loop, 0x40, op.end]
/** `_start` calls 1 once (a spine function with a loop: hinted) and 2 twice (not hinted). */
const looping = (salt = 0) =>
  buildModule({
    memory: [0x00, 1],
    funcs: [
      { body: [0x10, 1, 0x10, 2, 0x10, 2, ...LOOP], export: '_start' },
      { body: [...LOOP, op.i32_const, salt, op.drop] },
      { body: LOOP },
    ],
  })

let dir: string
const entries = () => readdirSync(dir).filter((n) => n.endsWith('.entry'))
const stats = () => ({ ...moduleCacheStats })
const delta = (before: typeof moduleCacheStats) => ({
  hits: moduleCacheStats.hits - before.hits,
  misses: moduleCacheStats.misses - before.misses,
  rejected: moduleCacheStats.rejected - before.rejected,
})
/** What a forger with write access to the cache directory writes: a well-formed entry. */
function forge(file: string, payload: Uint8Array): void {
  const digest = createHash('sha256').update(payload).digest('hex')
  writeFileSync(file, Buffer.concat([Buffer.from(`caplet-bytes-v1\n${digest}\n`, 'latin1'), payload]))
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'caplet-module-cache-'))
  useModuleCache({ dir, minModuleBytes: 0 })
})
afterEach(() => {
  useModuleCache(false)
  rmSync(dir, { recursive: true, force: true })
})

describe('module analysis cache', () => {
  it('misses, stores one entry, then hits with the same hints', () => {
    const code = looping()
    const fresh = tierHints(code, 'auto')!
    expect([...fresh.hints]).toEqual([expect.any(Number), expect.any(Number), 0])
    const s0 = stats()
    expect(cachedTierHints(code, 'm1', 'auto')).toEqual(fresh)
    expect(delta(s0)).toEqual({ hits: 0, misses: 1, rejected: 0 })
    expect(entries()).toHaveLength(1)
    const s1 = stats()
    const again = cachedTierHints(code, 'm1', 'auto')!
    expect(delta(s1)).toEqual({ hits: 1, misses: 0, rejected: 0 })
    expect([...again.hints]).toEqual([...fresh.hints])
    expect(again.codeSectionAt).toBe(fresh.codeSectionAt)
    // Another identity or tier is another entry.
    cachedTierHints(code, 'm1', 'optimized')
    cachedTierHints(code, 'm2', 'auto')
    expect(entries()).toHaveLength(3)
  })

  it('keys entries by caplet version too', () => {
    cachedTierHints(looping(), 'm1', 'auto')
    const key = createHash('sha256').update(`caplet-tier-hints\0${CAPLET_VERSION}\0m1\0auto`).digest('hex')
    expect(entries()).toEqual([`${key}.entry`])
  })

  it('never applies a forged entry that does not fit the module: recomputes and replaces it', () => {
    const code = looping()
    const fresh = tierHints(code, 'auto')!
    cachedTierHints(code, 'm1', 'auto')
    const file = join(dir, entries()[0]!)
    const header = (at: number, hints: number[]) => {
      const b = new Uint8Array(5 + hints.length)
      b[0] = 1
      new DataView(b.buffer).setUint32(1, at, true)
      b.set(hints, 5)
      return b
    }
    const forgeries = [
      header(fresh.codeSectionAt - 3, [...fresh.hints]), // would splice the section into another
      header(fresh.codeSectionAt, [...fresh.hints, 0]), // one hint too many
      header(fresh.codeSectionAt, [0xff, 0xff, 0xff]), // hint values tierHints never writes
      new Uint8Array([7, 1, 2, 3]), // not an entry at all
    ]
    for (const payload of forgeries) {
      forge(file, payload)
      const s = stats()
      const got = cachedTierHints(code, 'm1', 'auto')!
      expect(delta(s)).toEqual({ hits: 0, misses: 1, rejected: 1 })
      expect([...got.hints]).toEqual([...fresh.hints])
      expect(got.codeSectionAt).toBe(fresh.codeSectionAt)
      // Replaced by a good entry: the next lookup hits.
      const s2 = stats()
      cachedTierHints(code, 'm1', 'auto')
      expect(delta(s2).hits).toBe(1)
    }
    // A module compiled from a forged entry's bytes would differ; through the loader the
    // result still runs as the module it is.
    forge(file, forgeries[0]!)
    expect(() => loadModule(code, { tier: 'auto' })).not.toThrow()
  })

  it('drops a corrupted entry (digest mismatch) and recomputes', () => {
    const code = looping()
    cachedTierHints(code, 'm1', 'auto')
    const file = join(dir, entries()[0]!)
    const bytes = readFileSync(file)
    bytes[bytes.length - 1]! ^= 0xff
    writeFileSync(file, bytes)
    const s = stats()
    expect(cachedTierHints(code, 'm1', 'auto')).toEqual(tierHints(code, 'auto'))
    expect(delta(s)).toEqual({ hits: 0, misses: 1, rejected: 0 })
    const s2 = stats()
    cachedTierHints(code, 'm1', 'auto')
    expect(delta(s2).hits).toBe(1)
  })

  it('stays within its size bound when full, evicting the least recently used', () => {
    const one = statSync((cachedTierHints(looping(0), 'a', 'auto'), join(dir, entries()[0]!))).size
    useModuleCache({ dir, minModuleBytes: 0, maxBytes: one * 2 + 1 })
    for (let i = 1; i <= 6; i++) expect(cachedTierHints(looping(i), `m${i}`, 'auto')).toEqual(tierHints(looping(i), 'auto'))
    const total = entries().reduce((s, n) => s + statSync(join(dir, n)).size, 0)
    expect(total).toBeLessThanOrEqual(one * 2 + 1)
    expect(entries().length).toBeGreaterThanOrEqual(1)
    // The newest survives.
    const s = stats()
    cachedTierHints(looping(6), 'm6', 'auto')
    expect(delta(s).hits).toBe(1)
  })

  it('works without a usable directory (a file in its place): computes, stores nothing', () => {
    const file = join(dir, 'not-a-dir')
    writeFileSync(file, 'x')
    useModuleCache({ dir: file, minModuleBytes: 0 })
    expect(cachedTierHints(looping(), 'm1', 'auto')).toEqual(tierHints(looping(), 'auto'))
    expect(readFileSync(file, 'utf8')).toBe('x')
  })

  it('is not used for small modules by default, nor when turned off', () => {
    useModuleCache({ dir })
    cachedTierHints(looping(), 'm1', 'auto')
    useModuleCache(false)
    cachedTierHints(looping(), 'm1', 'auto')
    expect(entries()).toHaveLength(0)
  })

  it('the CLI keeps its cache in CAPLET_CACHE_DIR, and --no-cache / CAPLET_NO_CACHE keep it out', async () => {
    const module = join(dir, 'big.wasm')
    writeFileSync(module, withPadding(looping(), 300 * 1024)) // above the minimum size cached
    const cacheDir = join(dir, 'cache')
    const io = (env: Record<string, string>) => ({ out: () => {}, err: () => {}, env: { CAPLET_CACHE_DIR: cacheDir, ...env } })
    expect(await main(['run', '--in-process', '--no-cache', '--tier', 'auto', module], io({}))).toBe(0)
    expect(await main(['run', '--in-process', '--tier', 'auto', module], io({ CAPLET_NO_CACHE: '1' }))).toBe(0)
    expect(() => readdirSync(cacheDir)).toThrow()
    // Another module: this process already compiled the first one (its in-memory cache).
    const other = join(dir, 'big2.wasm')
    writeFileSync(other, withPadding(looping(9), 300 * 1024))
    expect(await main(['run', '--in-process', '--tier', 'auto', other], io({}))).toBe(0)
    expect(readdirSync(cacheDir).filter((n) => n.endsWith('.entry'))).toHaveLength(1)
  })
})

/** `code` with a custom section of `n` bytes appended (changes the size, not the behaviour). */
function withPadding(code: Uint8Array, n: number): Uint8Array {
  const name = [3, 0x70, 0x61, 0x64] // "pad"
  const size = name.length + n
  const leb: number[] = []
  let v = size
  do {
    let b = v & 0x7f
    v >>>= 7
    if (v) b |= 0x80
    leb.push(b)
  } while (v)
  const out = new Uint8Array(code.length + 1 + leb.length + size)
  out.set(code)
  out.set([0, ...leb, ...name], code.length)
  return out
}

describe('a one-shot process (the CLI)', () => {
  it('keeps no compiled module, still finds a hinted tier on disk, and compiles a changed file as what it now is', () => {
    const file = join(dir, 'm.wasm')
    writeFileSync(file, looping(3))
    const kept = loadModule(file, { tier: 'baseline' })
    expect(loadModule(file, { tier: 'baseline' })).toBe(kept) // the default: kept for the next load
    keepCompiledModules(false)
    try {
      const first = loadModule(file, { tier: 'baseline' })
      expect(first).not.toBe(kept)
      expect(loadModule(file, { tier: 'baseline' })).not.toBe(first)
      // A hinted tier is still keyed by the module's digest: the second load hits the disk cache.
      const s = stats()
      loadModule(file, { tier: 'auto' })
      loadModule(file, { tier: 'auto' })
      expect(delta(s)).toEqual({ hits: 1, misses: 1, rejected: 0 })
      // Another module at the same path: nothing stale is served, on either tier.
      writeFileSync(file, buildModule({ memory: [0x00, 1], funcs: [{ body: LOOP, export: 'other' }] }))
      for (const tier of ['baseline', 'auto'] as const) {
        expect(WebAssembly.Module.exports(loadModule(file, { tier })).map((e) => e.name)).toContain('other')
      }
    } finally {
      keepCompiledModules(true)
    }
  })
})

describe('default tier', () => {
  it('is baseline for a module with more than 2 MiB of code, auto below', () => {
    expect(defaultTier(looping())).toBe('auto')
    expect(defaultTier(bigCode(BASELINE_CODE_BYTES + 1024))).toBe('baseline')
    expect(defaultTier(bigCode(64 * 1024))).toBe('auto')
    // The big module itself is valid and loads on that tier.
    expect(() => loadModule(bigCode(BASELINE_CODE_BYTES + 1024))).not.toThrow()
  })
})

/** A command whose `_start` body is `n` nops (a code section of about `n` bytes). */
function bigCode(n: number): Uint8Array {
  const leb = (v: number) => {
    const o: number[] = []
    do {
      let b = v & 0x7f
      v >>>= 7
      if (v) b |= 0x80
      o.push(b)
    } while (v)
    return o
  }
  const body = n + 2 // locals count 0, nops, end
  const code = [...leb(1), ...leb(body)]
  const codeSize = code.length + body
  const head = [
    0,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    1,
    4,
    1,
    0x60,
    0,
    0,
    3,
    2,
    1,
    0,
    5,
    3,
    1,
    0,
    1,
    7,
    19,
    2,
    6,
    ...Array.from('_start', (c) => c.charCodeAt(0)),
    0,
    0,
    6,
    ...Array.from('memory', (c) => c.charCodeAt(0)),
    2,
    0,
    10,
    ...leb(codeSize),
    ...code,
    0,
  ]
  const out = new Uint8Array(head.length + n + 1).fill(op.nop)
  out.set(head)
  out[out.length - 1] = op.end
  return out
}

describe('caplet version', () => {
  it('is the package version (part of every cache key)', () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
    expect(CAPLET_VERSION).toBe(pkg.version)
  })
})
