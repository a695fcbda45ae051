/**
 * `trackWrites`: rewritten modules stay valid and compute the same; the bitmap marks the granule
 * each store lands in (memarg offset included) and every granule for bulk writes; modules it
 * cannot track exactly (imported, 64-bit or several memories) are left alone (`undefined`).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { InstrumentError } from '../../../runtime/instrument/index.js'
import { DIRTY_EXPORT, DIRTY_SHIFT_EXPORT, trackWrites } from '../../../runtime/instrument/write-tracking.js'
import { I32, I64, allGuests, buildModule, instantiate, op, readGuest, runGuest, u32 } from './wasm.js'

const STORE = (at: number, offset = 0) => [op.i32_const, ...u32(at), op.i32_const, 1, 0x36, 2, ...u32(offset)] // i32.store

describe('trackWrites', () => {
  it.each(allGuests())('keeps $name valid', ({ path }) => {
    const out = trackWrites(new Uint8Array(readFileSync(path)))
    if (out !== undefined) expect(WebAssembly.validate(out as Uint8Array<ArrayBuffer>)).toBe(true)
  })

  it.each([
    ['samples/hello.wasm', ['hello']],
    ['test/fixtures/wasm/fuel_kernels.wasm', ['fuel_kernels', 'sieve', '10000']],
    ['test/fixtures/wasm/fuel_kernels.wasm', ['fuel_kernels', 'hash', '128']],
  ])('%s %j prints the same tracked and untracked', (path, args) => {
    const bytes = readGuest(path)
    const tracked = trackWrites(bytes)
    expect(tracked).toBeDefined()
    const a = runGuest(bytes, args)
    const b = runGuest(tracked!, args)
    expect(b.stdout).toBe(a.stdout)
    expect(b.exitCode).toBe(a.exitCode)
  })

  const module = (body: number[]) =>
    buildModule({ memory: [0x00, 4], funcs: [{ export: 'f', body }], globals: [[I32, 1, op.i32_const, 0, op.end]] })

  it('marks the granule of each store, counting its memarg offset, and every granule for memory.fill', () => {
    const inst = instantiate(trackWrites(module([...STORE(0), ...STORE(70000), ...STORE(4, 200000)]))!)
    const dirty = inst.exports[DIRTY_EXPORT] as WebAssembly.Global
    ;(inst.exports[DIRTY_SHIFT_EXPORT] as WebAssembly.Global).value = 12 // 4 KiB granules
    ;(inst.exports.f as () => void)()
    expect(dirty.value).toBe((1n << 0n) | (1n << BigInt(70000 >> 12)) | (1n << BigInt(200004 >> 12)))
    dirty.value = 0n
    const fill = [op.i32_const, 0, op.i32_const, 0, op.i32_const, 1, 0xfc, 11, 0]
    const inst2 = instantiate(trackWrites(module(fill))!)
    ;(inst2.exports.f as () => void)()
    expect(inst2.exports[DIRTY_EXPORT]).toBeInstanceOf(WebAssembly.Global)
    expect((inst2.exports[DIRTY_EXPORT] as WebAssembly.Global).value).toBe(-1n)
  })

  it('a store that traps marks nothing; a body without stores is left as it was', () => {
    const inst = instantiate(trackWrites(module(STORE(4 * 65536)))!)
    ;(inst.exports[DIRTY_SHIFT_EXPORT] as WebAssembly.Global).value = 12
    expect(() => (inst.exports.f as () => void)()).toThrow(WebAssembly.RuntimeError)
    expect((inst.exports[DIRTY_EXPORT] as WebAssembly.Global).value).toBe(0n)
    const plain = module([op.i32_const, 1, op.drop])
    expect(trackWrites(plain)!.length).toBeLessThan(plain.length + 64)
  })

  it('leaves alone what it cannot track exactly, refuses a taken export name', () => {
    const imported = buildModule({ imports: [{ module: 'm', name: 'mem', desc: [0x02, 0x00, 1] }], funcs: [{ body: STORE(0) }] })
    expect(trackWrites(imported)).toBeUndefined()
    expect(trackWrites(buildModule({ memory: [0x04, 1], funcs: [{ body: [0x42, 0, 0x42, 1, 0x37, 3, 0] }] }))).toBeUndefined() // memory64
    expect(() =>
      trackWrites(
        buildModule({ memory: [0x00, 1], globals: [[I64, 1, 0x42, 0, op.end]], exports: [{ name: DIRTY_EXPORT, kind: 3, index: 0 }] }),
      ),
    ).toThrow(InstrumentError)
  })
})
