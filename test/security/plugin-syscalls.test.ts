/**
 * A plugin under a policy that denies syscalls: the policy's `syscalls` allow-list and
 * `denySyscalls` apply to plugins as to `run`. A plugin importing a denied syscall is refused at
 * load; with `deniedSyscalls: 'enosys'` it loads and the call gets ENOSYS with nothing done
 * (the buffer it asked to fill stays untouched), in-process and in a worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModuleError } from '../../runtime/errors.js'
import { plugin, type Plugin } from '../../runtime/plugin/index.js'
import { compile } from '../../toolchain/index.js'

const ENOSYS = 52
// probe: random_get(64, 16), then writes [errno byte][the 16 bytes] to stdout with fd_write.
const PROBE = `(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "probe") (result i32)
    (i32.store8 (i32.const 100) (call $random (i32.const 64) (i32.const 16)))
    (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 64)) (i32.store (i32.const 12) (i32.const 16))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 200)))
    (i32.const 0)))`

let wasm: Uint8Array
const opened: Plugin[] = []
beforeAll(async () => {
  wasm = (await compile({ language: 'wat', files: { 'probe.wat': PROBE }, options: { cache: false } })).module
})
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()))
})

const nonZero = (b: Uint8Array) => b.some((x) => x !== 0)

describe("plugins obey the policy's syscall lists", () => {
  it('a granted random_get fills the buffer (the probe works)', async () => {
    const p = await plugin(wasm, { isolation: 'in-process' })
    opened.push(p)
    const out = await p.call('probe')
    expect(out[0]).toBe(0)
    expect(nonZero(out.subarray(1))).toBe(true)
  })

  it('denySyscalls refuses the plugin at load, naming the syscall', async () => {
    await expect(plugin(wasm, { isolation: 'in-process', denySyscalls: ['random_get'] })).rejects.toThrow(ModuleError)
    await expect(plugin(wasm, { isolation: 'in-process', denySyscalls: ['random_get'] })).rejects.toThrow(
      /random_get \(in the policy's denySyscalls\)/,
    )
    await expect(plugin(wasm, { denySyscalls: ['random_get'] })).rejects.toThrow(/random_get/)
  })

  it('an allow-list without the syscall refuses it too', async () => {
    await expect(plugin(wasm, { isolation: 'in-process', syscalls: ['fd_write'] })).rejects.toThrow(
      /random_get \(not in the policy's syscalls\)/,
    )
  })

  for (const isolation of ['in-process', 'worker'] as const) {
    it(`${isolation}: a denied syscall stubbed to ENOSYS does nothing, call after call`, async () => {
      const p = await plugin(wasm, { isolation, denySyscalls: ['random_get'], deniedSyscalls: 'enosys' })
      opened.push(p)
      for (let i = 0; i < 3; i++) {
        const out = await p.call('probe')
        expect(out[0]).toBe(ENOSYS)
        expect(out.byteLength).toBe(17)
        expect(nonZero(out.subarray(1))).toBe(false)
      }
      const q = await plugin(wasm, { isolation, syscalls: ['fd_write'], deniedSyscalls: 'enosys' })
      opened.push(q)
      expect((await q.call('probe'))[0]).toBe(ENOSYS)
    })
  }

  it('denying fd_write leaves the plugin no way to produce output', async () => {
    const p = await plugin(wasm, { isolation: 'in-process', denySyscalls: ['fd_write'], deniedSyscalls: 'enosys' })
    opened.push(p)
    expect((await p.call('probe')).byteLength).toBe(0)
  })
})
