import { describe, expect, it } from 'vitest'
import { capTables, DEFAULT_TABLE_CAP, InstrumentError } from '../../../runtime/instrument/index.js'
import { FUNCREF, name, section, u32 } from './wasm.js'

const HEADER = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]
/** A module with only a table section holding `tables` (each [reftype, ...limits]). */
const withTables = (tables: number[][]) => new Uint8Array([...HEADER, ...section(4, [...u32(tables.length), ...tables.flat()])])

/** The same module with table 0 exported as "t", so JS can probe how far it grows. */
function exportingTable(tables: number[][]): Uint8Array {
  return new Uint8Array([
    ...HEADER,
    ...section(4, [...u32(tables.length), ...tables.flat()]),
    ...section(7, [...u32(1), ...name('t'), 1, ...u32(0)]),
  ])
}

describe('capTables', () => {
  it('leaves modules without tables, or within the cap, byte-identical', () => {
    const none = new Uint8Array(HEADER)
    expect(capTables(none)).toBe(none)
    const small = withTables([[FUNCREF, 0x01, ...u32(4), ...u32(10)]])
    expect(capTables(small)).toBe(small)
  })

  it('adds a maximum to an unbounded table and lowers one above the cap, so table.grow stops there', () => {
    const cap = { maxTables: 8, maxEntries: 100 }
    for (const limits of [
      [0x00, ...u32(1)],
      [0x01, ...u32(1), ...u32(5_000_000)],
    ]) {
      const capped = capTables(exportingTable([[FUNCREF, ...limits]]), cap)
      const t = new WebAssembly.Instance(new WebAssembly.Module(capped as Uint8Array<ArrayBuffer>)).exports.t as WebAssembly.Table
      expect(t.grow(99)).toBe(1)
      expect(t.length).toBe(100)
      expect(() => t.grow(1)).toThrow(RangeError)
      expect(capTables(capped, cap)).toBe(capped)
    }
  })

  it('refuses a table whose minimum is above the cap, and too many tables', () => {
    expect(() => capTables(withTables([[FUNCREF, 0x00, ...u32(10_000_000)]]))).toThrow(InstrumentError)
    expect(() => capTables(withTables([[FUNCREF, 0x00, ...u32(10_000_000)]]))).toThrow(/at least 10000000 entries/)
    const many = Array.from({ length: DEFAULT_TABLE_CAP.maxTables + 1 }, () => [FUNCREF, 0x00, ...u32(1)])
    expect(() => capTables(withTables(many))).toThrow(/defines 9 tables/)
  })
})
