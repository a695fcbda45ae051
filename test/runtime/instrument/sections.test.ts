import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { InstrumentError, SectionId, encodeSections, parseSections, putSection } from '../../../runtime/instrument/index.js'
import { allGuests, buildModule, op, sameBytes } from './wasm.js'

describe('section reader and writer', () => {
  it.each(allGuests())('round-trips $name byte for byte', ({ path }) => {
    const bytes = new Uint8Array(readFileSync(path))
    const parsed = parseSections(bytes)
    expect(parsed.sections.length).toBeGreaterThan(3)
    expect(sameBytes(encodeSections(parsed), bytes)).toBe(true)
  })

  it('keeps custom and unknown sections, and non-minimal section sizes, untouched', () => {
    const base = buildModule({ funcs: [{ body: [op.nop] }], custom: [{ name: 'producers', bytes: [1, 2, 3] }] })
    // Insert a custom section whose size is a padded (5-byte) LEB128 right after the header.
    const padded = [0x00, 0x85, 0x80, 0x80, 0x80, 0x00, 0x04, 0x6e, 0x6f, 0x74, 0x65]
    const bytes = new Uint8Array([...base.subarray(0, 8), ...padded, ...base.subarray(8)])
    expect(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)).toBe(true)
    const parsed = parseSections(bytes)
    expect(parsed.sections.map((s) => s.name).filter(Boolean)).toEqual(['note', 'producers'])
    expect(encodeSections(parsed)).toEqual(bytes)
  })

  it('puts a new section where the order requires and replaces an existing one', () => {
    const bytes = buildModule({ funcs: [{ body: [op.nop], export: 'f' }] })
    const parsed = parseSections(bytes)
    // A global section goes between function (3) and export (7).
    putSection(parsed, SectionId.Global, new Uint8Array([0x01, 0x7f, 0x00, 0x41, 0x07, 0x0b]))
    expect(parsed.sections.map((s) => s.id)).toEqual([1, 3, 6, 7, 10])
    const out = encodeSections(parsed)
    expect(WebAssembly.validate(out as Uint8Array<ArrayBuffer>)).toBe(true)
    putSection(parsed, SectionId.Global, new Uint8Array([0x00]))
    expect(parsed.sections.map((s) => s.id)).toEqual([1, 3, 6, 7, 10])
  })

  it('refuses what is not a module', () => {
    for (const bad of [
      new Uint8Array([]),
      new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 0, 0, 0]),
      new TextEncoder().encode('hello world!'),
    ]) {
      expect(() => parseSections(bad)).toThrow(InstrumentError)
    }
    const truncated = buildModule({ funcs: [{ body: [op.nop] }] }).subarray(0, -2)
    expect(() => parseSections(truncated)).toThrow(/runs past the end/)
    const component = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00])
    expect(() => parseSections(component)).toThrow(/unsupported binary version/)
  })
})
