import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { beforeEdit, capMemory, InstrumentError } from '../../runtime/instrument/index.js'
import { runSync } from '../../runtime/index.js'
import { keepCompiledModules, loadModule } from '../../runtime/module.js'
import { buildModule, op, u32 } from './instrument/wasm.js'

const dir = mkdtempSync(join(tmpdir(), 'caplet-memcap-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function written(name: string, bytes: Uint8Array): string {
  const path = join(dir, name)
  writeFileSync(path, bytes)
  return path
}

/** A module with `limits` for its memory, `grow(pages) -> old size or -1`, and a `_start` that traps in a named function. */
function growable(limits: number[]): Uint8Array {
  const names = [0, 1, 2].map((i) => [...u32(i), ...u32(5), ...new TextEncoder().encode(`fn_${i}x`.slice(0, 5))])
  const sub = [...u32(3), ...names.flat()]
  return buildModule({
    memory: limits,
    funcs: [
      { params: [0x7f], results: [0x7f], body: [op.local_get, 0, op.memory_grow, 0], export: 'grow' },
      { body: [op.nop, op.unreachable] },
      { body: [op.call, 1], export: '_start' },
    ],
    custom: [{ name: 'name', bytes: [1, ...u32(sub.length), ...sub] }],
  })
}

/** The caller's buffer inside a bigger one with sentinels around it, as capMemory's `room`. */
function roomy(bytes: Uint8Array, spare: number): Uint8Array {
  const whole = new Uint8Array(bytes.length + spare + 8).fill(0xee)
  whole.set(bytes, 4)
  return whole.subarray(4, 4 + bytes.length)
}

describe('capMemory in place (room)', () => {
  const cases: [string, number[], number][] = [
    ['a maximum added: the module grows', [0x00, 1], 16384],
    ['a maximum lowered to the same length', [0x01, 1, ...u32(65536)], 16384],
    ['a maximum lowered to a shorter one: the module shrinks', [0x01, 1, ...u32(1000)], 16],
  ]
  for (const [what, limits, cap] of cases) {
    it(`${what}: same bytes as the copying rewrite, in the same buffer, undoable`, () => {
      const original = growable(limits)
      const bytes = roomy(original, 16)
      const whole = new Uint8Array(bytes.buffer)
      const r = capMemory(bytes, cap, 16 + bytes.length)
      expect(r.edit).toBeDefined()
      expect(r.bytes.buffer).toBe(bytes.buffer)
      expect(r.bytes.byteOffset).toBe(bytes.byteOffset)
      expect([...r.bytes]).toEqual([...capMemory(original, cap).bytes])
      expect([...beforeEdit(r.edit!)]).toEqual([...original])
      // Nothing before the module or past its room was touched.
      expect(whole.subarray(0, 4).every((b) => b === 0xee)).toBe(true)
      expect(whole.subarray(4 + bytes.length + 16).every((b) => b === 0xee)).toBe(true)
      const grow = new WebAssembly.Instance(new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>)).exports.grow as (
        n: number,
      ) => number
      expect(grow(cap)).toBe(-1)
    })
  }

  it('copies when the module would outgrow its room, leaving the bytes as they were', () => {
    const original = growable([0x00, 1])
    const bytes = roomy(original, 16)
    const r = capMemory(bytes, 16384, bytes.length + 2) // the maximum takes 3 bytes
    expect(r.edit).toBeUndefined()
    expect(r.bytes.buffer).not.toBe(bytes.buffer)
    expect([...bytes]).toEqual([...original])
  })

  it('a room past the end of the buffer is not trusted', () => {
    const original = growable([0x00, 1])
    const r = capMemory(original, 16384, original.length + 64)
    expect(r.edit).toBeUndefined()
    expect([...r.bytes]).toEqual([...capMemory(new Uint8Array(original), 16384).bytes])
  })

  it('a refused module is left as it was', () => {
    const original = growable([0x00, ...u32(300)])
    const bytes = roomy(original, 16)
    expect(() => capMemory(bytes, 256, bytes.length + 16)).toThrow(InstrumentError)
    expect([...bytes]).toEqual([...original])
  })
})

describe('a module read from a path is capped in place; a caller’s bytes never are', () => {
  it('the cap holds for a path and for bytes, and the caller’s buffer is byte-identical after', () => {
    const original = growable([0x00, 1])
    const path = written('grow.wasm', original)
    const mine = new Uint8Array(original)
    keepCompiledModules(false) // a path's module is not found in the cache: it is read and rewritten each time
    try {
      for (const source of [path, mine, mine.buffer]) {
        const mod = loadModule(source, { memoryPages: 4 })
        const grow = new WebAssembly.Instance(mod).exports.grow as (n: number) => number
        expect(grow(3)).toBe(1)
        expect(grow(1)).toBe(-1)
      }
    } finally {
      keepCompiledModules(true)
    }
    expect([...mine]).toEqual([...original])
    expect([...readFileSync(path)]).toEqual([...original])
    runSync(mine, { limits: { memory: '256KiB' } })
    expect([...mine]).toEqual([...original])
  })

  for (const [what, limits] of [
    ['grew', [0x00, 1]],
    ['kept its length', [0x01, 1, ...u32(65536)]],
    ['shrank', [0x01, 1, ...u32(65535 * 4)]],
  ] as const) {
    it(`trap frames name the function and its offset in the file when the limits ${what}`, () => {
      const original = growable([...limits])
      const path = written(`trap-${what}.wasm`, original)
      for (const source of [path, new Uint8Array(original)]) {
        const r = runSync(source, { limits: { memory: '1GiB' } })
        expect(r.trap?.kind).toBe('unreachable')
        const top = r.trap!.frames![0]!
        expect(top.name).toBe('fn_1x')
        expect(original[top.offset]).toBe(op.unreachable)
        expect(original[top.offset - 1]).toBe(op.nop)
      }
    })
  }

  it('an invalid module read from a path gets the message its own bytes get', () => {
    // i32.add with nothing on the stack, in the code section after the memory section that grows.
    const bad = buildModule({ memory: [0x00, 1], funcs: [{ body: [op.nop, 0x6a, op.drop], export: '_start' }] })
    const path = written('bad.wasm', bad)
    let engine = ''
    try {
      new WebAssembly.Module(bad as Uint8Array<ArrayBuffer>)
    } catch (e) {
      engine = (e as Error).message
    }
    expect(engine).toMatch(/@\+\d+/)
    for (const source of [path, new Uint8Array(bad)]) {
      expect(() => loadModule(source, { memoryPages: 16384 })).toThrow(`invalid WebAssembly module: ${engine}`)
    }
  })
})
