/**
 * Fresh state against a plugin that writes everywhere it can: every store width and type, at a
 * memarg offset, across a granule boundary, at the last bytes of memory, memory.fill/copy, SIMD,
 * atomics, a mutable global, a grown memory. A fresh call's reset copies back only the granules
 * the plugin's writes marked, so each call hashes all of its memory before writing: every fresh
 * call must see the bytes of the first (and a `keep` plugin must not, or the probe proves nothing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { plugin, type Plugin } from '../../runtime/plugin/index.js'
import { runWat } from '../../toolchain/wat-worker.js'

const WAT = `(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 3)
  (data (i32.const 1000) "initial data, sixteen+ bytes")
  (global $g (mut i32) (i32.const 7))
  (table 2 funcref)
  (elem (i32.const 0) $poke)
  (type $pokeT (func (param i32 i32)))
  (func $poke (param $a i32) (param $v i32) (i32.store8 offset=3 (local.get $a) (local.get $v)))
  (func $hash (result i64) (local $i i32) (local $h i64)
    (local.set $h (i64.extend_i32_u (global.get $g)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.mul (memory.size) (i32.const 65536))))
      (local.set $h (i64.mul (i64.xor (local.get $h) (i64.load (local.get $i))) (i64.const 0x100000001b3)))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br $l)))
    (i64.xor (local.get $h) (i64.extend_i32_u (memory.size))))
  (func $byte (param $k i64) (result i32) (call $input_load_u8 (local.get $k)))
  ;; Input: 6-byte commands (kind, address u32 LE, value). Output: the memory's hash before any write.
  (func (export "scribble") (result i32)
    (local $k i64) (local $n i64) (local $kind i32) (local $a i32) (local $v i32) (local $top i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (call $hash))
    (call $output_set (local.get $o) (i64.const 8))
    (local.set $n (call $input_length))
    (block $done (loop $l
      (br_if $done (i64.gt_u (i64.add (local.get $k) (i64.const 6)) (local.get $n)))
      (local.set $kind (call $byte (local.get $k)))
      (local.set $a (i32.or
        (i32.or (call $byte (i64.add (local.get $k) (i64.const 1))) (i32.shl (call $byte (i64.add (local.get $k) (i64.const 2))) (i32.const 8)))
        (i32.or (i32.shl (call $byte (i64.add (local.get $k) (i64.const 3))) (i32.const 16)) (i32.shl (call $byte (i64.add (local.get $k) (i64.const 4))) (i32.const 24)))))
      (local.set $v (i32.add (call $byte (i64.add (local.get $k) (i64.const 5))) (i32.const 1)))
      (local.set $k (i64.add (local.get $k) (i64.const 6)))
      (local.set $top (i32.mul (memory.size) (i32.const 65536)))
      ;; Any address where a 16-byte write fits.
      (local.set $a (i32.rem_u (local.get $a) (i32.sub (local.get $top) (i32.const 15))))
      (block $b14 (block $b13 (block $b12 (block $b11 (block $b10 (block $b9 (block $b8 (block $b7
      (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
        (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 $b8 $b9 $b10 $b11 $b12 $b13 $b14 (i32.rem_u (local.get $kind) (i32.const 15))))
        (i32.store8 (local.get $a) (local.get $v)) (br $l))
        (i32.store16 (local.get $a) (local.get $v)) (br $l))
        (i32.store (local.get $a) (i32.mul (local.get $v) (i32.const 0x01010101))) (br $l))
        (i64.store (local.get $a) (i64.mul (i64.extend_i32_u (local.get $v)) (i64.const 0x0101010101010101))) (br $l))
        (f32.store (local.get $a) (f32.convert_i32_u (local.get $v))) (br $l))
        (f64.store (local.get $a) (f64.convert_i32_u (local.get $v))) (br $l))
        (i64.store32 (local.get $a) (i64.const -1)) (br $l))
        (memory.fill (local.get $a) (local.get $v) (i32.const 16)) (br $l))
        (memory.copy (local.get $a) (i32.const 1000) (i32.const 16)) (br $l))
        (v128.store (local.get $a) (i8x16.splat (local.get $v))) (br $l))
        ;; A large memarg offset: the address is the sum.
        (i64.store offset=65536 (i32.rem_u (local.get $a) (i32.sub (local.get $top) (i32.const 65552))) (i64.const -1)) (br $l))
        (i32.atomic.store (i32.and (local.get $a) (i32.const -4)) (local.get $v)) (br $l))
        (global.set $g (local.get $v)) (br $l))
        (call_indirect (type $pokeT) (local.get $a) (local.get $v) (i32.const 0)) (br $l))
      ;; Grow, and write in the new page.
      (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))
        (then (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)) (local.get $v))))
      (br $l)))
    (i32.const 0)))`

/** Writes by the host: WASI's `fd_read` and a host function's output land in guest memory. */
const HOST_WRITES = `(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "app" "fill" (func $fill (param i32 i32 i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 3)
  (func (export "read") (result i32)
    (i32.store (i32.const 16) (i32.const 40000))
    (i32.store (i32.const 20) (i32.const 16))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (i32.const 0))
  ;; The iovec lies at the start of the buffer it names, at the end of a granule (40952 = 10 x 4 KiB - 8):
  ;; the read overwrites it (with a pointer elsewhere) and goes on into the next granule.
  (func (export "read_over_iovec") (result i32)
    (i32.store (i32.const 40952) (i32.const 40952))
    (i32.store (i32.const 40956) (i32.const 4104))
    (drop (call $fd_read (i32.const 0) (i32.const 40952) (i32.const 1) (i32.const 24)))
    (i32.const 0))
  (func (export "peek_over") (result i32) (call $peek (i32.const 40968)) (i32.const 0))
  ;; fd_write's count lands at 60000, a granule the module itself never stores to.
  (func (export "write_count") (result i32)
    (i32.store (i32.const 16) (i32.const 1000))
    (i32.store (i32.const 20) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 60000)))
    (i32.const 0))
  (func (export "peek_count") (result i32) (call $peek (i32.const 60000)) (i32.const 0))
  (func (export "fill") (result i32) (drop (call $fill (i32.const 0) (i32.const 0) (i32.const 50000) (i32.const 16))) (i32.const 0))
  (func $peek (param $at i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (i64.load (local.get $at)))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (i64.load offset=8 (local.get $at)))
    (call $output_set (local.get $o) (i64.const 16)))
  (func (export "peek_read") (result i32) (call $peek (i32.const 40000)) (i32.const 0))
  (func (export "peek_fill") (result i32) (call $peek (i32.const 50000)) (i32.const 0)))`

let wasm: Uint8Array
let hostWrites: Uint8Array
const opened: Plugin[] = []
beforeAll(async () => {
  const r = await runWat({ kind: 'wat', entry: 'scribble.wat', text: WAT, debug: false })
  if (!r.ok) throw new Error(r.message)
  wasm = r.module
  const h = await runWat({ kind: 'wat', entry: 'host-writes.wat', text: HOST_WRITES, debug: false })
  if (!h.ok) throw new Error(h.message)
  hostWrites = h.module
})
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()))
})

/** Deterministic pseudo-random bytes (xorshift32). */
function rng(seed: number): () => number {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) & 0xff
  }
}
const cmd = (kind: number, address: number, value = 0x5a) => [
  kind,
  address & 0xff,
  (address >>> 8) & 0xff,
  (address >>> 16) & 0xff,
  address >>> 24,
  value,
]
const hashOf = (out: Uint8Array) => new DataView(out.buffer, out.byteOffset, 8).getBigUint64(0, true)
const TOP = 3 * 65536

/** Writes that reach granule edges and the end of memory (granules of 4 KiB for 192 KiB). */
const EDGES = [
  ...cmd(3, 4096 - 4), // an i64 across a granule boundary
  ...cmd(3, 4096 * 7 - 1),
  ...cmd(6, 4096 * 9 - 2), // four bytes of 0xff across one
  ...cmd(2, 4096 * 11 - 1),
  ...cmd(9, 8192 - 8), // a v128 across one
  ...cmd(2, TOP - 16),
  ...cmd(0, TOP - 16),
  ...cmd(7, TOP - 16), // fill up to the last byte
  ...cmd(10, 12345), // offset=65536
  ...cmd(13, 65536 - 3), // through call_indirect, offset=3
  ...cmd(6, 0),
]

describe.each([
  ['in-process', undefined],
  ['in-process', 1e9],
  ['worker', undefined],
] as const)('a plugin writing everywhere (%s, fuel %s)', (isolation, fuel) => {
  const load = async (state: 'fresh' | 'keep') => {
    const p = await plugin(wasm, { isolation, state, limits: { memory: '1MiB', ...(fuel !== undefined ? { fuel } : {}) } })
    opened.push(p)
    return p
  }

  it('every fresh call sees the memory and globals of the first, whatever the last one wrote', async () => {
    const p = await load('fresh')
    const first = hashOf(await p.call('scribble', new Uint8Array(0)))
    // One write per call: a write the reset missed is not hidden by another that copies all of memory.
    for (let k = 0; k < EDGES.length / 6; k++) {
      await p.call('scribble', new Uint8Array(EDGES.slice(k * 6, k * 6 + 6)))
      expect(hashOf(await p.call('scribble', new Uint8Array(0))), `after edge write ${k}`).toBe(first)
    }
    const next = rng(0x9e3779b9)
    const plain = [0, 1, 2, 3, 4, 5, 6, 10, 12, 13]
    for (let call = 0; call < 300; call++) {
      const input = new Uint8Array(6 * (1 + (call % 4))).map(() => next())
      for (let i = 0; i < input.length; i += 6) {
        // Mostly plain stores (bulk ones copy all memory back), mostly in the low granules.
        if (call % 10 !== 0) input[i] = plain[input[i]! % plain.length]!
        if (i % 12 === 0) input[i + 3] = input[i + 4] = 0
      }
      expect(hashOf(await p.call('scribble', input)), `call ${call}`).toBe(first)
    }
    // A grown memory is no different (the plugin is re-instantiated).
    await p.call('scribble', new Uint8Array([...cmd(14, 0), ...cmd(14, 0)]))
    expect(hashOf(await p.call('scribble', new Uint8Array(0)))).toBe(first)
  })

  it('keep: the same writes are seen by the next call (the probe detects them)', async () => {
    const p = await load('keep')
    const first = hashOf(await p.call('scribble', new Uint8Array(0)))
    for (let k = 0; k < EDGES.length / 6; k++) {
      const before = hashOf(await p.call('scribble', new Uint8Array(EDGES.slice(k * 6, k * 6 + 6).map((b, i) => (i === 5 ? k + 0x40 : b)))))
      const after = hashOf(await p.call('scribble', new Uint8Array(0)))
      expect(after, `command ${k}`).not.toBe(before)
    }
    expect(hashOf(await p.call('scribble', new Uint8Array(0)))).not.toBe(first)
  })
})

describe.each(['in-process', 'worker'] as const)('what the host wrote into a plugin (%s)', (isolation) => {
  const load = async (state: 'fresh' | 'keep') => {
    const p = await plugin(hostWrites, { isolation, state, host: { 'app.fill': () => 'SECRET-SECRET-16' } })
    opened.push(p)
    return p
  }
  const text = (b: Uint8Array) => new TextDecoder().decode(b)

  it('fresh: the previous input (fd_read) and host function output are gone; keep: both stay', async () => {
    const fresh = await load('fresh')
    const keep = await load('keep')
    // Each write is followed directly by its check: another call could hide a missed one.
    for (const p of [fresh, keep]) await p.call('read', 'customer-a-secret')
    expect(text(await fresh.call('peek_read'))).toBe('\0'.repeat(16))
    expect(text(await keep.call('peek_read'))).toBe('customer-a-secre')
    // The new iovec names 100000 (one byte); the secret lands at 40968, in the next granule.
    const over = new Uint8Array([0xa0, 0x86, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode('SECRET-SECRET-16')])
    for (const p of [fresh, keep]) await p.call('read_over_iovec', over)
    expect(text(await fresh.call('peek_over'))).toBe('\0'.repeat(16))
    expect(text(await keep.call('peek_over'))).toBe('SECRET-SECRET-16')
    for (const p of [fresh, keep]) await p.call('write_count')
    expect(await fresh.call('peek_count')).toEqual(new Uint8Array(16))
    expect((await keep.call('peek_count'))[0]).toBe(5)
    for (const p of [fresh, keep]) await p.call('fill')
    expect(text(await fresh.call('peek_fill'))).toBe('\0'.repeat(16))
    expect(text(await keep.call('peek_fill'))).toBe('SECRET-SECRET-16')
  })
})
