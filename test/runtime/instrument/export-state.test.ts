import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { exportState, functionSignatures, hasPassiveSegments } from '../../../runtime/instrument/export-state.js'
import { InstrumentError } from '../../../runtime/instrument/index.js'

const stdio = readFileSync(new URL('../../fixtures/plugins/plugin-stdio.wasm', import.meta.url))

describe('exportState', () => {
  it('exports every defined mutable global (the C stack pointer) and every table', () => {
    const { bytes, globals, tables } = exportState(stdio)
    expect(globals.length).toBeGreaterThan(0)
    expect(tables.length).toBeGreaterThan(0)
    const exports = WebAssembly.Module.exports(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>))
    for (const g of globals) expect(exports).toContainEqual({ name: g, kind: 'global' })
    for (const t of tables) expect(exports).toContainEqual({ name: t, kind: 'table' })
    // What the module computes is untouched: the other exports are all still there.
    for (const e of WebAssembly.Module.exports(new WebAssembly.Module(stdio))) expect(exports).toContainEqual(e)
  })

  it('leaves a module without mutable globals or tables as it is', () => {
    const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])
    expect(exportState(empty)).toEqual({ bytes: empty, globals: [], tables: [] })
  })

  it('refuses when the export name it needs is taken', () => {
    // (global (mut i32) (i32.const 0)) and an export of function-less name "caplet_global_0" for a memory.
    const mod = new Uint8Array([
      0,
      0x61,
      0x73,
      0x6d,
      1,
      0,
      0,
      0,
      5,
      3,
      1,
      0,
      1, // memory 1
      6,
      6,
      1,
      0x7f,
      1,
      0x41,
      0,
      0x0b, // global (mut i32) i32.const 0
      7,
      19,
      1,
      15,
      ...new TextEncoder().encode('caplet_global_0'),
      2,
      0, // export "caplet_global_0" (memory 0)
    ])
    expect(() => exportState(mod)).toThrow(InstrumentError)
  })

  it('reads import and export signatures with their value types', () => {
    const { imports, exports } = functionSignatures(stdio)
    expect(imports.get('wasi_snapshot_preview1.fd_write')).toEqual({ params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] })
    expect(exports.get('transform')).toEqual({ params: [], results: ['i32'] })
    expect(exports.get('takes_args')).toEqual({ params: ['i32'], results: ['i32'] })
  })

  it('tells modules with passive segments (state a snapshot cannot restore)', () => {
    const head = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1]
    const passive = new Uint8Array([...head, 11, 4, 1, 1, 1, 0x61])
    const active = new Uint8Array([...head, 11, 7, 1, 0, 0x41, 0, 0x0b, 1, 0x61])
    expect(hasPassiveSegments(passive)).toBe(true)
    expect(hasPassiveSegments(active)).toBe(false)
    expect(hasPassiveSegments(stdio)).toBe(false)
  })
})
