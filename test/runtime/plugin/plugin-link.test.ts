/**
 * How a plugin's imports link (`unknownImports`, as for `run`) and the `initialize` option.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModuleError, PluginCallError, PolicyError } from '../../../runtime/errors.js'
import { plugin, type Plugin } from '../../../runtime/plugin/index.js'
import { compile } from '../../../toolchain/index.js'

const OUT = `
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (func $emit (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr)) (i32.store (i32.const 4) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))`
// `escape` and `wide` are imports nobody grants.
const UNKNOWN = `(module
  (import "evil" "escape" (func $esc (param i32) (result i32)))
  (import "evil" "wide" (func $wide (result i64)))
  ${OUT}
  (memory (export "memory") 1)
  (func (export "call_escape") (result i32) (call $esc (i32.const 5)))
  (func (export "call_wide") (result i32) (i32.wrap_i64 (call $wide)))
  (func (export "ok") (i32.store8 (i32.const 64) (i32.const 111)) (call $emit (i32.const 64) (i32.const 1))))`
// `init` puts 7 at 32; `get` prints the byte at 32 as a digit and adds one to it; `boom` traps.
const INIT = `(module
  ${OUT}
  (memory (export "memory") 1)
  (func (export "init") (i32.store8 (i32.const 32) (i32.const 7)))
  (func (export "boom") unreachable)
  (func (export "get")
    (i32.store8 (i32.const 64) (i32.add (i32.const 48) (i32.load8_u (i32.const 32))))
    (i32.store8 (i32.const 32) (i32.add (i32.const 1) (i32.load8_u (i32.const 32))))
    (call $emit (i32.const 64) (i32.const 1))))`

const wat = async (src: string) => (await compile({ language: 'wat', files: { 'p.wat': src }, options: { cache: false } })).module
const td = new TextDecoder()
let unknown: Uint8Array
let init: Uint8Array
const opened: Plugin[] = []
const track = (p: Plugin) => {
  opened.push(p)
  return p
}
beforeAll(async () => {
  ;[unknown, init] = await Promise.all([wat(UNKNOWN), wat(INIT)])
})
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()))
})

describe('plugin: unknown imports', () => {
  it('reject (default): refused at load with every name', async () => {
    const e = await plugin(unknown, { isolation: 'in-process' }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ModuleError)
    expect((e as Error).message).toMatch(/evil\.escape \(not granted.*evil\.wide/)
  })

  for (const isolation of ['in-process', 'worker'] as const) {
    it(`${isolation}, trap: loads; calling one traps naming it; the plugin answers the next call`, async () => {
      const p = track(await plugin(unknown, { isolation, unknownImports: 'trap' }))
      expect(td.decode(await p.call('ok'))).toBe('o')
      const e = (await p.call('call_escape').catch((x: unknown) => x)) as PluginCallError
      expect(e).toBeInstanceOf(PluginCallError)
      expect(e.failure).toBe('trap')
      expect(e.trap?.kind).toBe('unknown-import')
      expect(e.message).toMatch(/evil\.escape/)
      expect(td.decode(await p.call('ok'))).toBe('o')
    })
  }

  it('default: each returns zeros (i32 and i64)', async () => {
    const p = track(await plugin(unknown, { isolation: 'in-process', unknownImports: 'default' }))
    expect((await p.call('call_escape')).byteLength).toBe(0)
    expect((await p.call('call_wide')).byteLength).toBe(0)
    expect(td.decode(p.callSync('ok'))).toBe('o')
  })
})

describe('plugin: initialize', () => {
  it('without it, fresh calls start from the instantiated state', async () => {
    const p = track(await plugin(init, { isolation: 'in-process' }))
    expect(td.decode(await p.call('get'))).toBe('0')
    expect(td.decode(await p.call('get'))).toBe('0')
  })

  for (const isolation of ['in-process', 'worker'] as const) {
    it(`${isolation}: the named export runs once at load; every fresh call starts from its state`, async () => {
      const p = track(await plugin(init, { isolation, initialize: 'init' }))
      for (let i = 0; i < 3; i++) expect(td.decode(await p.call('get'))).toBe('7')
      const k = track(await plugin(init, { isolation, initialize: 'init', state: 'keep' }))
      expect(td.decode(await k.call('get'))).toBe('7')
      expect(td.decode(await k.call('get'))).toBe('8')
    })
  }

  it('an initialize that is not a callable export is a PolicyError naming it', async () => {
    await expect(plugin(init, { isolation: 'in-process', initialize: 'nope' })).rejects.toThrow(PolicyError)
    await expect(plugin(init, { isolation: 'in-process', initialize: 'nope' })).rejects.toThrow(
      /initialize: the plugin has no export "nope"/,
    )
    await expect(plugin(init, { isolation: 'in-process', initialize: 3 as never })).rejects.toThrow(/initialize: must name an export/)
  })

  it('an initialize that traps fails the load with a ModuleError naming it', async () => {
    await expect(plugin(init, { isolation: 'in-process', initialize: 'boom' })).rejects.toThrow(ModuleError)
    await expect(plugin(init, { isolation: 'in-process', initialize: 'boom' })).rejects.toThrow(/initialisation failed \(boom\)/)
    await expect(plugin(init, { initialize: 'boom' })).rejects.toThrow(/initialisation failed \(boom\)/)
  })
})
