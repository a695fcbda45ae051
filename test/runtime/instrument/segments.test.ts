import { describe, expect, it } from 'vitest'
import { InstrumentError } from '../../../runtime/instrument/errors.js'
import { readConstExpr, readElementSegments } from '../../../runtime/instrument/segments.js'
import { SectionId, type Section } from '../../../runtime/instrument/sections.js'

const elem = (...bytes: number[]): Section => ({ id: SectionId.Element, payload: Uint8Array.from(bytes), offset: 100 })
const I32_0 = [0x41, 0x00, 0x0b] // i32.const 0; end
const REF = (f: number) => [0xd2, f, 0x0b] // ref.func f; end

describe('readElementSegments', () => {
  it('reads all eight encodings, with the functions each names', () => {
    const s = elem(
      8,
      ...[0, ...I32_0, 2, 1, 2], // active, table 0, indices
      ...[1, 0x00, 1, 3], // passive, elemkind, indices
      ...[2, 1, ...I32_0, 0x00, 1, 4], // active, table 1, elemkind, indices
      ...[3, 0x00, 1, 5], // declarative, indices
      ...[4, ...I32_0, 2, ...REF(6), 0xd0, 0x70, 0x0b], // active, expressions (ref.func, ref.null)
      ...[5, 0x70, 1, ...REF(7)], // passive, funcref, expressions
      ...[6, 1, ...I32_0, 0x64, 0x00, 1, ...REF(8)], // active, table 1, (ref 0), expressions
      ...[7, 0x70, 1, ...REF(9)], // declarative, expressions
    )
    const segs = readElementSegments(s)
    expect(segs.map((x) => x.flags)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(segs.map((x) => x.functions)).toEqual([[1, 2], [3], [4], [5], [6], [7], [8], [9]])
    expect(segs.filter((x) => x.passive).map((x) => x.flags)).toEqual([1, 5])
  })

  it('names the module offset of unknown flags and of a truncated expression', () => {
    expect(() => readElementSegments(elem(1, 8))).toThrow(/element segment 0 has unknown flags 8/)
    try {
      readElementSegments(elem(1, 0, 0x41, 0x00))
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(InstrumentError)
      expect((e as InstrumentError).details.offset).toBe(104)
    }
  })
})

describe('readConstExpr', () => {
  it('skips extended constants and v128.const, reporting ref.func', () => {
    const seen: number[] = []
    const p = Uint8Array.from([0x41, 0x01, 0x41, 0x02, 0x6a, 0xfd, 0x0c, ...new Array<number>(16).fill(0), 0xd2, 0x05, 0x0b, 0xff])
    expect(readConstExpr(p, 0, 0, (f) => seen.push(f))).toBe(p.length - 1)
    expect(seen).toEqual([5])
  })

  it('refuses a control instruction', () => {
    expect(() => readConstExpr(Uint8Array.from([0x02, 0x40, 0x0b]), 0, 0)).toThrow(/opcode 0x2 in a constant expression/)
  })
})
