/**
 * Red team, wave 2, plugins: floods of tiny Extism variables and blocks that cost the host far
 * more than the bytes the limits count, u64 offsets that alias a block modulo 2^32, an error
 * message cut inside a character, and fresh-state reset against a plugin that rewrites its
 * table, its own exported global and grows its memory during a call; host functions that call
 * back into their plugin; HTTP headers that re-route; a timeout while an async host function runs.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { PluginCallError } from '../../runtime/errors.js'
import { plugin, type Plugin } from '../../runtime/plugin/index.js'
import { BLOCK_COST } from '../../runtime/plugin/extism-kernel.js'
import { compile } from '../../toolchain/index.js'

const td = new TextDecoder()
const opened: Plugin[] = []
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()))
})

const ENV = (name: string, params: string, result = '') =>
  `(import "extism:host/env" "${name}" (func $${name} (param ${params}) ${result ? `(result ${result})` : ''}))`

async function load(wat: string, options: Parameters<typeof plugin>[1] = {}): Promise<Plugin> {
  const wasm = (await compile({ language: 'wat', files: { 'p.wat': wat }, options: { cache: false } })).module
  const p = await plugin(wasm, { isolation: 'in-process', ...options })
  opened.push(p)
  return p
}

async function failure(p: Plugin, name: string): Promise<PluginCallError> {
  const e = await p.call(name).then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(e, `${name} should fail`).toBeInstanceOf(PluginCallError)
  return e as PluginCallError
}

describe('Extism kernel: floods of tiny things are charged what they cost the host', () => {
  // 100,000 distinct 3-byte keys with empty values: 300 KB of bytes, ~25 MB of host heap.
  const VARS = `(module ${ENV('alloc', 'i64', 'i64')} ${ENV('free', 'i64')} ${ENV('store_u8', 'i64 i32')} ${ENV('var_set', 'i64 i64')}
    (memory (export "memory") 1)
    (func (export "flood") (result i32) (local $i i32) (local $k i64) (local $v i64)
      (loop $l
        (local.set $k (call $alloc (i64.const 3)))
        (call $store_u8 (local.get $k) (i32.add (i32.const 33) (i32.rem_u (local.get $i) (i32.const 94))))
        (call $store_u8 (i64.add (local.get $k) (i64.const 1))
          (i32.add (i32.const 33) (i32.rem_u (i32.div_u (local.get $i) (i32.const 94)) (i32.const 94))))
        (call $store_u8 (i64.add (local.get $k) (i64.const 2)) (i32.add (i32.const 33) (i32.div_u (local.get $i) (i32.const 8836))))
        (local.set $v (call $alloc (i64.const 0)))
        (call $var_set (local.get $k) (local.get $v))
        (call $free (local.get $v)) (call $free (local.get $k))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
      (i32.const 0)))`

  it('100,000 tiny variables under a 1 MiB maxVarBytes hit the vars limit (each costs its bookkeeping)', async () => {
    const p = await load(VARS, { state: 'keep', limits: { fuel: 1e10 } })
    const e = await failure(p, 'flood')
    expect([e.failure, e.limit]).toEqual(['limit', 'vars'])
  })

  it('empty blocks stop at blockBytes / BLOCK_COST, not one per byte of the limit', async () => {
    // The count of blocks comes back as the export's status (an output would need one more block).
    const p = await load(
      `(module ${ENV('alloc', 'i64', 'i64')}
        (memory (export "memory") 1)
        (func (export "flood") (result i32) (local $n i32)
          (block $full (loop $l
            (br_if $full (i64.eqz (call $alloc (i64.const 0))))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $n) (i32.const 2000000)))))
          (local.get $n)))`,
      { limits: { fuel: 1e10, memory: '1MiB' } },
    )
    const blocks = (await failure(p, 'flood')).status!
    expect(blocks).toBeGreaterThan(1000)
    expect(blocks).toBeLessThanOrEqual((1 << 20) / BLOCK_COST)
  })
})

describe('Extism kernel: forged offsets', () => {
  const ALIAS = `(module ${ENV('alloc', 'i64', 'i64')} ${ENV('load_u8', 'i64', 'i32')} ${ENV('store_u8', 'i64 i32')}
    ${ENV('output_set', 'i64 i64')} ${ENV('config_get', 'i64', 'i64')}
    (memory (export "memory") 1)
    (func (export "load_alias") (result i32) (local $b i64)
      (local.set $b (call $alloc (i64.const 16)))
      (drop (call $load_u8 (i64.add (local.get $b) (i64.const 0x100000000)))) (i32.const 0))
    (func (export "store_alias") (result i32) (local $b i64)
      (local.set $b (call $alloc (i64.const 16)))
      (call $store_u8 (i64.or (local.get $b) (i64.const 0x8000000000000000)) (i32.const 1)) (i32.const 0))
    (func (export "output_wrap") (result i32) (local $b i64)
      (local.set $b (call $alloc (i64.const 16)))
      ;; a length that wraps to 15 in u32 arithmetic
      (call $output_set (local.get $b) (i64.const 0x10000000f)) (i32.const 0))
    (func (export "config_mid_block") (result i32) (local $b i64)
      (local.set $b (call $alloc (i64.const 16)))
      (drop (call $config_get (i64.add (local.get $b) (i64.const 1)))) (i32.const 0)))`

  it('an offset 2^32 past a live block, or with the sign bit set, is a memory fault, not an alias', async () => {
    const p = await load(ALIAS)
    for (const [name, fn] of [
      ['load_alias', 'load_u8'],
      ['store_alias', 'store_u8'],
      ['config_mid_block', 'config_get'],
    ]) {
      const e = await failure(p, name!)
      expect([e.failure, e.trap?.kind, e.trap?.syscall]).toEqual(['trap', 'memory-fault', `extism:host/env.${fn}`])
    }
    // A length past 4 GiB is the output limit, never truncated to its low 32 bits.
    const e = await failure(p, 'output_wrap')
    expect([e.failure, e.limit]).toEqual(['limit', 'stdout'])
  })

  it('error_set: a long valid UTF-8 message cut at 4 KiB stays valid (the cut backs off to a character)', async () => {
    // 4095 ASCII bytes, then "é" (2 bytes) straddling byte 4096.
    const p = await load(
      `(module ${ENV('alloc', 'i64', 'i64')} ${ENV('error_set', 'i64')} ${ENV('store_u8', 'i64 i32')}
        (memory (export "memory") 1)
        (func (export "long_error") (result i32) (local $b i64) (local $i i64)
          (local.set $b (call $alloc (i64.const 5000)))
          (loop $l (call $store_u8 (i64.add (local.get $b) (local.get $i)) (i32.const 0x61))
            (local.set $i (i64.add (local.get $i) (i64.const 1)))
            (br_if $l (i64.lt_u (local.get $i) (i64.const 5000))))
          (call $store_u8 (i64.add (local.get $b) (i64.const 4095)) (i32.const 0xc3))
          (call $store_u8 (i64.add (local.get $b) (i64.const 4096)) (i32.const 0xa9))
          (call $error_set (local.get $b)) (i32.const 1)))`,
    )
    const e = await failure(p, 'long_error')
    expect(e.failure).toBe('plugin')
    expect(e.message).not.toMatch(/not valid UTF-8/)
    expect(e.message).toContain('a'.repeat(4095))
  })
})

describe('fresh state: a call that rewrites its table, its exported global and grows memory', () => {
  // `probe` reports what it sees (table slot 0's answer, the exported global, memory pages, a
  // byte in memory), then vandalises all four.
  const WAT = `(module ${ENV('alloc', 'i64', 'i64')} ${ENV('output_set', 'i64 i64')} ${ENV('store_u64', 'i64 i64')}
    (type $t (func (result i32)))
    (memory (export "memory") 1)
    (table $tab 2 funcref)
    (elem (i32.const 0) $one $two)
    (global $g (export "counter") (mut i64) (i64.const 7))
    (func $one (result i32) (i32.const 1))
    (func $two (result i32) (i32.const 2))
    (func (export "probe") (result i32) (local $o i64)
      (local.set $o (call $alloc (i64.const 8)))
      (call $store_u64 (local.get $o)
        (i64.or (i64.or (i64.extend_i32_u (call_indirect (type $t) (i32.const 0)))
                        (i64.shl (global.get $g) (i64.const 8)))
                (i64.or (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16))
                        (i64.shl (i64.extend_i32_u (i32.load8_u (i32.const 100))) (i64.const 24)))))
      (call $output_set (local.get $o) (i64.const 8))
      (table.set $tab (i32.const 0) (ref.func $two))
      (global.set $g (i64.add (global.get $g) (i64.const 1)))
      (i32.store8 (i32.const 100) (i32.const 0x55))
      (drop (memory.grow (i32.const 1)))
      (i32.const 0)))`
  const seen = (out: Uint8Array) => {
    const v = new DataView(out.buffer, out.byteOffset, 8).getBigUint64(0, true)
    return { slot0: Number(v & 0xffn), counter: Number((v >> 8n) & 0xffn), pages: Number((v >> 16n) & 0xffn), byte: Number(v >> 24n) }
  }
  for (const reset of ['snapshot', 'instantiate'] as const) {
    it(`${reset}: every call sees the state after initialisation`, async () => {
      const p = await load(WAT, { state: 'fresh', reset, limits: { memory: '1MiB' } })
      for (let i = 0; i < 3; i++) expect(seen(await p.call('probe'))).toEqual({ slot0: 1, counter: 7, pages: 1, byte: 0 })
    })
  }
  it('keep: the vandalism persists (the probe can see it)', async () => {
    const p = await load(WAT, { state: 'keep', limits: { memory: '1MiB' } })
    expect(seen(await p.call('probe'))).toEqual({ slot0: 1, counter: 7, pages: 1, byte: 0 })
    expect(seen(await p.call('probe'))).toEqual({ slot0: 2, counter: 8, pages: 2, byte: 0x55 })
  })
})

describe('a host function that calls back into the plugin it serves', () => {
  // `outer` puts 0x2222 in a block, calls the host, then outputs the block; `inner` outputs 0x1111
  // from a block of its own (at the same offset: the store is emptied per call).
  const WAT = `(module ${ENV('alloc', 'i64', 'i64')} ${ENV('store_u64', 'i64 i64')} ${ENV('output_set', 'i64 i64')}
    (import "app" "cb" (func $cb (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "inner") (result i32) (local $b i64)
      (local.set $b (call $alloc (i64.const 8)))
      (call $store_u64 (local.get $b) (i64.const 0x1111))
      (call $output_set (local.get $b) (i64.const 8)) (i32.const 0))
    (func (export "outer") (result i32) (local $b i64)
      (local.set $b (call $alloc (i64.const 8)))
      (call $store_u64 (local.get $b) (i64.const 0x2222))
      (drop (call $cb (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
      (call $output_set (local.get $b) (i64.const 8)) (i32.const 0)))`
  const word = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)

  for (const state of ['fresh', 'keep'] as const) {
    it(`in-process, ${state}: the re-entrant call is refused and the outer call keeps its own blocks`, async () => {
      let inner: unknown
      const p: Plugin = await load(WAT, {
        state,
        host: {
          'app.cb': () => {
            try {
              inner = p.callSync('inner')
            } catch (e) {
              inner = e
            }
            return ''
          },
        },
      })
      expect(word(await p.call('outer'))).toBe(0x2222n)
      expect(inner).toBeInstanceOf(PluginCallError)
      expect((inner as Error).message).toMatch(/already in a call/)
      expect(word(await p.call('inner'))).toBe(0x1111n)
    })
  }

  it('worker: the re-entrant call is refused at once instead of waiting on itself forever', async () => {
    let inner: unknown
    const wasm = (await compile({ language: 'wat', files: { 'p.wat': WAT }, options: { cache: false } })).module
    const p: Plugin = await plugin(wasm, {
      isolation: 'worker',
      host: {
        'app.cb': async () => {
          inner = await p.call('inner').then(
            () => 'answered',
            (e: unknown) => e,
          )
          return ''
        },
      },
    })
    opened.push(p)
    expect(word(await p.call('outer', '', { timeout: '4s' }))).toBe(0x2222n)
    expect(inner).toBeInstanceOf(PluginCallError)
    expect(word(await p.call('inner'))).toBe(0x1111n)
  })
})

describe('plugin HTTP: headers that would re-route or re-frame a request to an allowed host', () => {
  const HOST_WASM = new URL('../fixtures/plugins/plugin-host.wasm', import.meta.url)
  it('Host, Content-Length, Transfer-Encoding, Connection and proxy headers are refused before any request', async () => {
    const seen: string[] = []
    const server = createServer((req, res) => {
      seen.push(`${req.headers.host} ${req.headers['transfer-encoding'] ?? ''}`)
      res.end('vhost')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    try {
      const p = await plugin(HOST_WASM, {
        isolation: 'worker',
        host: { 'app.lookup': () => '' },
        http: { allowedHosts: [`127.0.0.1:${port}`] },
      })
      opened.push(p)
      const url = `http://127.0.0.1:${port}/`
      // The probe works: a plain request gets through.
      expect(td.decode(await p.call('http', JSON.stringify({ url, method: 'GET' })))).toContain('vhost')
      for (const headers of [
        { Host: 'admin.internal' },
        { host: 'other-tenant.example' },
        { 'Content-Length': '100' },
        { 'transfer-encoding': 'chunked' },
        { Connection: 'upgrade', Upgrade: 'websocket' },
        { 'Proxy-Authorization': 'Basic eA==' },
      ]) {
        const e = await p.call('http', JSON.stringify({ url, method: 'GET', headers })).then(
          () => undefined,
          (x: unknown) => x,
        )
        expect(e, JSON.stringify(headers)).toBeInstanceOf(PluginCallError)
        expect((e as Error).message).toMatch(/header/)
      }
      expect(seen).toEqual([`127.0.0.1:${port} `])
    } finally {
      server.close()
    }
  })
})

describe('a worker plugin stopped by its timeout while an async host function is still running', () => {
  it('the call fails as a limit, the late answer goes nowhere, and the next calls work', async () => {
    const wasm = (
      await compile({
        language: 'wat',
        files: {
          'p.wat': `(module (import "app" "slow" (func $slow (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "outer") (result i32) (drop (call $slow (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))) (i32.const 0))
            (func (export "ok") (result i32) (i32.const 0)))`,
        },
        options: { cache: false },
      })
    ).module
    let settled = 0
    const p = await plugin(wasm, {
      isolation: 'worker',
      host: {
        'app.slow': async () => {
          await new Promise((r) => setTimeout(r, 300))
          settled++
          return 'late'.repeat(256)
        },
      },
    })
    opened.push(p)
    const e = await p.call('outer', '', { timeout: '100ms' }).then(
      () => undefined,
      (x: unknown) => x,
    )
    expect(e).toBeInstanceOf(PluginCallError)
    expect((e as PluginCallError).limit).toBe('timeout')
    expect(await p.call('ok')).toEqual(new Uint8Array(0))
    await new Promise((r) => setTimeout(r, 400))
    expect(settled).toBe(1)
    expect(await p.call('ok')).toEqual(new Uint8Array(0))
  })
})
