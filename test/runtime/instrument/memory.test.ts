import { describe, expect, it } from 'vitest'
import { InstrumentError, SectionId, capMemory, findSection, meterFuel, parseSections } from '../../../runtime/instrument/index.js'
import { buildModule, instantiate, op, readGuest, runGuest, u32 } from './wasm.js'

/** The memory's declared limits, as a test reads them back: [flags, min, max?]. */
function limitsOf(bytes: Uint8Array): number[] {
  const memory = findSection(parseSections(bytes), SectionId.Memory)!
  return [...memory.payload.subarray(1)]
}

/** A module with one memory and an exported `grow(pages) -> old size or -1`. */
function growable(limits: number[]): Uint8Array {
  return buildModule({
    memory: limits,
    funcs: [{ params: [0x7f], results: [0x7f], body: [op.local_get, 0, op.memory_grow, 0], export: 'grow' }],
  })
}

describe('capMemory', () => {
  it('lowers a declared maximum above the cap', () => {
    const bytes = growable([0x01, 1, ...u32(1000)])
    const r = capMemory(bytes, 16)
    expect(r.changed).toBe(true)
    expect(r.memories).toEqual([{ index: 0, minPages: 1, declaredMaxPages: 1000, maxPages: 16, is64: false, shared: false }])
    expect(limitsOf(r.bytes)).toEqual([0x01, 1, 16])
    const grow = instantiate(r.bytes).exports.grow as (n: number) => number
    expect(grow(15)).toBe(1)
    expect(grow(1)).toBe(-1)
  })

  it('adds a maximum where the module declared none', () => {
    const r = capMemory(growable([0x00, 2]), 4)
    expect(limitsOf(r.bytes)).toEqual([0x01, 2, 4])
    const { exports } = instantiate(r.bytes)
    const grow = exports.grow as (n: number) => number
    expect(grow(3)).toBe(-1)
    expect(grow(2)).toBe(2)
    expect((exports.memory as WebAssembly.Memory).buffer.byteLength).toBe(4 * 65536)
  })

  it('leaves a smaller maximum, and the bytes, alone', () => {
    const bytes = growable([0x01, 1, 8])
    const r = capMemory(bytes, 16)
    expect(r.changed).toBe(false)
    expect(r.bytes).toBe(bytes)
    expect(r.memories[0]!.maxPages).toBe(8)
  })

  it('clamps a cap above 4 GiB to what a 32-bit memory can declare', () => {
    const r = capMemory(growable([0x00, 1]), 1 << 20)
    expect(r.memories[0]!.maxPages).toBe(65536)
    expect(WebAssembly.validate(r.bytes as Uint8Array<ArrayBuffer>)).toBe(true)
  })

  it('refuses a module whose minimum is already above the cap, with the numbers', () => {
    const bytes = growable([0x00, ...u32(300)])
    let error: unknown
    try {
      capMemory(bytes, 256)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InstrumentError)
    const e = error as InstrumentError
    expect(e.code).toBe('MEMORY_MIN_EXCEEDS_CAP')
    expect(e.details).toMatchObject({ memoryIndex: 0, minPages: 300, capPages: 256 })
    expect(e.message).toContain('300 pages')
    expect(e.message).toContain('16 MiB')
  })

  it('reports imported memories instead of rewriting them', () => {
    const bytes = buildModule({
      imports: [{ module: 'env', name: 'memory', desc: [0x02, 0x01, 1, 32] }],
      funcs: [{ body: [op.nop] }],
    })
    const r = capMemory(bytes, 16)
    expect(r.changed).toBe(false)
    expect(r.memories).toEqual([])
    expect(r.importedMemories).toEqual([{ index: 0, module: 'env', name: 'memory', minPages: 1, maxPages: 32 }])
  })

  it('keeps shared and memory64 flags', () => {
    // shared needs a maximum; memory64 limits are u64 on the wire.
    expect(limitsOf(capMemory(growable([0x03, 1, 100]), 10).bytes)).toEqual([0x03, 1, 10])
    const mem64 = buildModule({ memory: [0x04, 1], exportMemory: false })
    expect(limitsOf(capMemory(mem64, 10).bytes)).toEqual([0x05, 1, 10])
  })

  it('rejects a cap that is not a whole number of pages', () => {
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => capMemory(growable([0x00, 1]), bad)).toThrow(/non-negative whole number/)
  })

  it('stops a real guest at the cap: malloc returns NULL and the guest carries on', () => {
    const guest = readGuest('test/fixtures/wasm/fuel_alloc.wasm')
    const free = runGuest(guest, ['fuel_alloc', '20'])
    expect(free).toMatchObject({ exitCode: 0, trap: undefined })
    expect(free.stdout).toMatch(/^allocated 20 MiB/)

    const capped = capMemory(guest, 256) // 16 MiB
    const r = runGuest(capped.bytes, ['fuel_alloc'])
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(0)
    const count = Number(/allocated (\d+) MiB/.exec(r.stdout)?.[1])
    expect(count).toBeGreaterThan(8)
    expect(count).toBeLessThan(16)

    // The cap survives metering on top of it.
    const both = runGuest(meterFuel(capped.bytes).bytes, ['fuel_alloc'], 10n ** 12n)
    expect(both.stdout).toBe(r.stdout)
  })
})
