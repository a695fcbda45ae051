/**
 * Red team against the fresh-state reset: a hostile plugin makes the host write into a granule
 * the write-tracking bitmap never hears of, so the bytes would survive into the next customer's
 * call. `fd_read` read each iovec only after filling the buffers before it: a first buffer laid
 * over the second iovec rewrote where the rest of the read landed (fixed in the host: reads
 * scatter into the iovecs as checked). Then a JS plugin
 * stashing each input in getters, WeakMaps, the symbol registry, prototypes and generators, and
 * stores reached through a tail call or followed by a trap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileScript } from '../../runtime/index.js'
import { plugin, scriptPlugin, type Plugin } from '../../runtime/plugin/index.js'
import { runWat } from '../../toolchain/wat-worker.js'

const CHAIN = `(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 3)
  ;; iovec 0 at 16 names iovec 1 (at 24) as its buffer; iovec 1 names 4 harmless bytes at 100.
  ;; The input's first 8 bytes replace iovec 1 before the host reads it.
  (func (export "read_chain") (result i32)
    (i32.store (i32.const 16) (i32.const 24))
    (i32.store (i32.const 20) (i32.const 8))
    (i32.store (i32.const 24) (i32.const 100))
    (i32.store (i32.const 28) (i32.const 4))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 2) (i32.const 32)))
    (i32.const 0))
  ;; random_get writes 16 bytes at 50000 (the engine does not know its pointer: it must mark all).
  (func (export "random") (result i32) (drop (call $random_get (i32.const 50000) (i32.const 16))) (i32.const 0))
  (func (export "peek") (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (i64.load (i32.const 50000)))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (i64.load (i32.const 50008)))
    (call $output_set (local.get $o) (i64.const 16))
    (i32.const 0)))`

/** Stores the bitmap must see although they are reached oddly: a tail call through a table, a trap right after. */
const TRICKS = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 3)
  (type $sink (func (param i32 i64) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $spill)
  ;; An i64 at 4 bytes before a granule's end, through a static offset: half of it in the next granule.
  (func $spill (param $a i32) (param $v i64) (result i32)
    (i64.store offset=0x7ff0 (local.get $a) (local.get $v))
    (i32.const 0))
  (func (export "tail") (result i32)
    (return_call_indirect (type $sink) (i32.const 0x300c) (i64.const 0x2121544552434553) (i32.const 0)))
  ;; A secret stored, then a store whose address plus offset passes 4 GiB: it traps.
  (func (export "trap") (result i32)
    (i64.store (i32.const 30000) (i64.const 0x2121544552434553))
    (i64.store offset=0xfffffff0 (i32.const 0x20) (i64.const 1))
    (i32.const 0))
  (func $peek (param $at i32) (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (i64.load (local.get $at)))
    (call $output_set (local.get $o) (i64.const 8))
    (i32.const 0))
  ;; 0x300c + 0x7ff0 = 45052 = 11 x 4 KiB - 4.
  (func (export "peek_spill") (result i32) (call $peek (i32.const 45052)))
  (func (export "peek_trap") (result i32) (call $peek (i32.const 30000))))`

let tricks: Uint8Array
let chain: Uint8Array
const opened: Plugin[] = []
beforeAll(async () => {
  const r = await runWat({ kind: 'wat', entry: 'chain.wat', text: CHAIN, debug: false })
  if (!r.ok) throw new Error(r.message)
  chain = r.module
  const t = await runWat({ kind: 'wat', entry: 'tricks.wat', text: TRICKS, debug: false })
  if (!t.ok) throw new Error(t.message)
  tricks = t.module
})
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()))
})

const text = (b: Uint8Array) => new TextDecoder().decode(b)

describe.each(['in-process', 'worker'] as const)('a read that rewrites its own iovecs (%s)', (isolation) => {
  it('the rewritten iovec is never followed (keep and fresh); random_get: fresh loses its bytes, keep keeps them', async () => {
    const fresh = await plugin(chain, { isolation, state: 'fresh' })
    const keep = await plugin(chain, { isolation, state: 'keep' })
    opened.push(fresh, keep)
    // New iovec 1: 16 bytes at 50000 (granule 12 of 4 KiB), which the module never stores to.
    const input = new Uint8Array([0x50, 0xc3, 0, 0, 16, 0, 0, 0, ...new TextEncoder().encode('SECRET-SECRET-16')])
    for (const p of [fresh, keep]) await p.call('read_chain', input)
    // The host reads into the iovecs it checked (test/security/read-iovecs.test.ts), so the forged
    // one is never followed, even with keep, and the engine's marks cover what the host wrote.
    expect(text(await keep.call('peek'))).toBe('\0'.repeat(16))
    expect(text(await fresh.call('peek'))).toBe('\0'.repeat(16))
    for (const p of [fresh, keep]) await p.call('random')
    expect(await keep.call('peek')).not.toEqual(new Uint8Array(16))
    expect(await fresh.call('peek')).toEqual(new Uint8Array(16))
  })
})

describe.each(['in-process', 'worker'] as const)('stores reached oddly (%s)', (isolation) => {
  it('fresh: a tail-called spill across a granule and a store before a trap are gone; keep: they stay', async () => {
    const fresh = await plugin(tricks, { isolation, state: 'fresh' })
    const keep = await plugin(tricks, { isolation, state: 'keep' })
    opened.push(fresh, keep)
    for (const p of [fresh, keep]) await p.call('tail')
    expect(text(await keep.call('peek_spill'))).toBe('SECRET!!')
    expect(text(await fresh.call('peek_spill'))).toBe('\0'.repeat(8))
    await expect(fresh.call('trap')).rejects.toThrow()
    expect(text(await fresh.call('peek_trap'))).toBe('\0'.repeat(8))
  })
})

/** An exported-function JS plugin hiding each call's input wherever a later call could look. */
const STASH = `
const atLoad = {}
const weak = new WeakMap()
let captured = null
Object.defineProperty(globalThis, 'spy', { configurable: true, get() { return captured }, set(v) { captured = v } })
const registry = new FinalizationRegistry((held) => { (globalThis as any).finalized = held })
async function* gen(input: string) { (globalThis as any).genSaw = input; yield 1; (globalThis as any).genResumed = input }
export function stash(input: string): string {
  const seen = {
    spy: (globalThis as any).spy ?? null,
    weak: weak.get(atLoad) ?? null,
    symbol: (Symbol.for('caplet.secret') as any).description === 'caplet.secret' ? ((globalThis as any)[Symbol.for('caplet.secret')] ?? null) : 'changed',
    proto: ({} as any).leak ?? null,
    prepare: typeof (Error as any).prepareStackTrace === 'function' ? 'installed' : null,
    finalized: (globalThis as any).finalized ?? null,
    gen: (globalThis as any).genSaw ?? null,
    resumed: (globalThis as any).genResumed ?? null,
  }
  ;(globalThis as any).spy = input
  weak.set(atLoad, input)
  ;(globalThis as any)[Symbol.for('caplet.secret')] = input
  ;(Object.prototype as any).leak = input
  ;(Error as any).prepareStackTrace = () => input
  registry.register({}, input)
  const g = gen(input)
  ;(globalThis as any).pending = g
  void g.next()
  return JSON.stringify(seen)
}
export function proxied(input: string): unknown {
  return new Proxy({}, { get: (_t, k) => (k === 'toString' || k === Symbol.toPrimitive ? () => input : input) })
}
`

describe.each(['in-process', 'worker'] as const)('a JS plugin hiding its input (%s)', (isolation) => {
  it('fresh: no call sees what an earlier one stashed in getters, WeakMaps, symbols, prototypes, registries or generators', async () => {
    const compiled = await compileScript({ files: { 'stash.ts': STASH }, entry: 'stash.ts' })
    if (compiled.program === undefined) throw new Error(JSON.stringify(compiled))
    const p = await scriptPlugin(compiled.program, { isolation, limits: { fuel: 1e9 } })
    opened.push(p)
    const clean = { spy: null, weak: null, symbol: null, proto: null, prepare: null, finalized: null, gen: null, resumed: null }
    for (let i = 0; i < 3; i++) {
      expect(JSON.parse(text(await p.call('stash', `secret-${i}`)))).toEqual(clean)
      expect(JSON.parse(text(p.callSync('stash', `sync-secret-${i}`)))).toEqual(clean)
    }
    // A Proxy as output: whatever it turns into, the next call starts clean.
    await p.call('proxied', 'proxy-secret').catch((e: unknown) => e)
    expect(JSON.parse(text(await p.call('stash', 'after')))).toEqual(clean)
  }, 60_000)
})

it('keep: the same probe sees what the previous call stashed (it can fail)', async () => {
  const compiled = await compileScript({ files: { 'stash.ts': STASH }, entry: 'stash.ts' })
  const p = await scriptPlugin(compiled.program!, { isolation: 'in-process', state: 'keep', limits: { fuel: 1e9 } })
  opened.push(p)
  await p.call('stash', 'secret-0')
  const seen = JSON.parse(text(await p.call('stash', 'secret-1'))) as Record<string, unknown>
  expect(seen).toMatchObject({
    spy: 'secret-0',
    weak: 'secret-0',
    symbol: 'secret-0',
    proto: 'secret-0',
    prepare: 'installed',
    gen: 'secret-0',
  })
}, 60_000)
