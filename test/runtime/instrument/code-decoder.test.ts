/**
 * The one code decoder (`runtime/instrument/code-decoder.ts`): every immediate shape of every
 * opcode class is skipped to the exact byte after it (checked by a trailing sentinel), unknown and
 * refused opcodes are reported rather than guessed, truncated immediates are MALFORMED, and the
 * code section framing and locals are read as the binary format says. Then the tier hints that
 * now walk bodies with it.
 */
import { describe, expect, it } from 'vitest'
import {
  InstrumentError,
  prefixedKind,
  readBodies,
  readLocals,
  skipImmediates,
  skipMemArg,
  tierHints,
  UNDECODABLE,
  walkCode,
  WalkIncomplete,
} from '../../../runtime/instrument/index.js'
import { BASE_IMM, FC_IMM, FD_IMM, FE_IMM, Imm } from '../../../runtime/instrument/opcodes.js'
import { buildModule, I32, I64, op, u32, V128 } from './wasm.js'

const SENTINEL = 0xee

/** `skipImmediates` over `[opcode, ...imm, SENTINEL]`: must stop exactly at the sentinel. */
function skipsTo(opcode: number, imm: number[]): void {
  const bytes = new Uint8Array([opcode, ...imm, SENTINEL])
  const end = skipImmediates(bytes, 1, opcode)
  expect(end, `0x${opcode.toString(16)} ${imm.join(',')}`).toBe(1 + imm.length)
  expect(bytes[end]).toBe(SENTINEL)
}

/** The same for a prefixed instruction: `[prefix, ...u32(sub), ...imm, SENTINEL]`. */
function prefixedSkipsTo(prefix: number, sub: number, imm: number[]): void {
  const bytes = new Uint8Array([prefix, ...u32(sub), ...imm, SENTINEL])
  const end = skipImmediates(bytes, 1, prefix)
  expect(end, `0x${prefix.toString(16)} ${sub}`).toBe(bytes.length - 1)
}

/** A sample immediate for each shape, with multi-byte LEB128s where the shape has one. */
const MEMARG = [0x02, ...u32(70000)] // align 2, offset 70000 (3 bytes)
const MEMARG_MULTI = [0x42, 0x01, ...u32(300)] // align 2 | bit 6, memory 1, offset 300
const SAMPLE: Record<number, number[]> = {
  [Imm.None]: [],
  [Imm.U32]: u32(200_000),
  [Imm.U32x2]: [...u32(128), ...u32(3)],
  [Imm.MemArg]: MEMARG,
  [Imm.I32Const]: [0x80, 0x80, 0x80, 0x80, 0x78], // i32.const -2^31, 5 bytes
  [Imm.I64Const]: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00], // 10 bytes
  [Imm.F32Const]: [1, 2, 3, 4],
  [Imm.F64Const]: [1, 2, 3, 4, 5, 6, 7, 8],
  [Imm.SelectT]: [2, I32, V128],
  [Imm.RefNull]: [0x70],
  [Imm.Local]: u32(49_999),
  [Imm.Global]: u32(5),
  [Imm.Bytes16]: Array.from({ length: 16 }, (_, i) => i),
  [Imm.Lane]: [15],
  [Imm.MemArgLane]: [...MEMARG, 7],
  [Imm.Byte]: [0],
}

describe('skipImmediates: every base opcode class', () => {
  it('skips the immediates of every non-control, non-prefix opcode the table knows', () => {
    let checked = 0
    for (let opcode = 0; opcode < 256; opcode++) {
      const kind = BASE_IMM[opcode]!
      if (kind === Imm.Control || kind === Imm.Prefix || kind === Imm.Unknown || kind === Imm.Unsupported) continue
      skipsTo(opcode, SAMPLE[kind]!)
      checked++
    }
    // 0x01 nop, drop/select, select t, locals, globals, tables, 23 loads/stores, memory.size/grow,
    // 4 consts, 128 numeric, ref.null/is_null/func.
    expect(checked).toBe(1 + 2 + 1 + 3 + 2 + 2 + 23 + 2 + 4 + 128 + 3)
  })

  it('takes a memarg with a memory index (multi-memory) and a 64-bit offset (memory64)', () => {
    skipsTo(0x28, MEMARG_MULTI)
    skipsTo(0x36, [0x03, ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]])
    expect(skipMemArg(new Uint8Array([0x40, 0x81, 0x01, 0x00, SENTINEL]), 0)).toBe(4)
  })

  it('skips control instructions: block types, labels, br_table, calls', () => {
    for (const bt of [[0x40], [I32], [V128], u32(3)]) {
      skipsTo(op.block, bt)
      skipsTo(op.loop, bt)
      skipsTo(op.if, bt)
    }
    skipsTo(op.block, [0x80, 0x01]) // type index 128 as an s33
    for (const o of [0x00, 0x05, 0x0b, 0x0f]) skipsTo(o, []) // unreachable else end return
    skipsTo(0x0c, u32(300)) // br
    skipsTo(0x0d, u32(0)) // br_if
    skipsTo(0x0e, [...u32(3), 0, 1, ...u32(200), 2]) // br_table: 3 labels + default
    skipsTo(0x10, u32(70_000)) // call
    skipsTo(0x12, u32(1)) // return_call
    skipsTo(0x11, [...u32(129), 0]) // call_indirect type table
    skipsTo(0x13, [...u32(1), ...u32(2)]) // return_call_indirect
  })

  it('reports unknown and refused opcodes instead of guessing a length', () => {
    for (const o of [0x06, 0x08, 0x14, 0x1f, 0xd3, 0xd5, 0xfb]) expect(skipImmediates(new Uint8Array([o, 0, 0]), 1, o)).toBe(UNDECODABLE)
    for (const o of [0x16, 0x17, 0x1d, 0x1e, 0x27, 0xc5, 0xcf, 0xd7, 0xff])
      expect(skipImmediates(new Uint8Array([o, 0, 0]), 1, o)).toBe(UNDECODABLE)
  })

  it('refuses a truncated or over-long immediate as MALFORMED', () => {
    const malformed = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        expect(e).toBeInstanceOf(InstrumentError)
        expect((e as InstrumentError).code).toBe('MALFORMED')
        return
      }
      throw new Error('did not throw')
    }
    malformed(() => skipImmediates(new Uint8Array([0x41, 0x80]), 1, 0x41)) // i32.const cut short
    malformed(() => skipImmediates(new Uint8Array([0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 1, 0x20)) // 6-byte local index
    malformed(() => skipImmediates(new Uint8Array([0x0e, 0x05, 0x00]), 1, 0x0e)) // br_table runs out
    malformed(() => skipImmediates(new Uint8Array([0xfd]), 1, 0xfd)) // prefix without sub-opcode
  })
})

describe('skipImmediates: every prefixed sub-opcode', () => {
  it.each([
    [0xfc, FC_IMM],
    [0xfd, FD_IMM],
    [0xfe, FE_IMM],
  ] as const)('prefix 0x%s: known sub-opcodes skip exactly, gaps are undecodable', (prefix, table) => {
    let known = 0
    for (let sub = 0; sub < table.length + 8; sub++) {
      const kind = prefixedKind(prefix, sub)
      expect(kind).toBe(table[sub] ?? Imm.Unknown)
      if (kind === Imm.Unknown) {
        expect(skipImmediates(new Uint8Array([prefix, ...u32(sub), 0, 0, 0]), 1, prefix)).toBe(UNDECODABLE)
        continue
      }
      prefixedSkipsTo(prefix, sub, SAMPLE[kind]!)
      known++
    }
    expect(known).toBe({ 0xfc: 18, 0xfd: 236 + 20, 0xfe: 4 + 63 }[prefix])
  })

  it('reads a multi-byte sub-opcode (relaxed SIMD, 0xfd 0x100 and up)', () => {
    prefixedSkipsTo(0xfd, 0x100, [])
    prefixedSkipsTo(0xfd, 0x113, [])
    expect(skipImmediates(new Uint8Array([0xfd, ...u32(0x114)]), 1, 0xfd)).toBe(UNDECODABLE)
  })
})

describe('readBodies and readLocals', () => {
  it('frames the code section and reads locals', () => {
    // Two bodies: (local i32 i32) (local i64) nop end, and an empty one.
    const b0 = [2, 2, I32, 1, I64, 0x01, 0x0b]
    const b1 = [0, 0x0b]
    const payload = new Uint8Array([2, b0.length, ...b0, b1.length, ...b1])
    const { starts, ends } = readBodies(payload, 2)
    expect([...starts]).toEqual([2, 2 + b0.length + 1])
    expect([...ends]).toEqual([2 + b0.length, payload.length])
    expect(readLocals(payload, starts[0]!)).toEqual({ groups: 2, count: 3, next: 2 + 5 })
    expect(readLocals(payload, starts[1]!)).toEqual({ groups: 0, count: 0, next: starts[1]! + 1 })
  })

  it('refuses a wrong count, a body past the end, trailing bytes, and typed-reference locals', () => {
    const code = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        return (e as InstrumentError).code
      }
      return 'none'
    }
    expect(code(() => readBodies(new Uint8Array([1, 2, 0, 0x0b]), 2))).toBe('MALFORMED')
    expect(code(() => readBodies(new Uint8Array([1, 9, 0, 0x0b]), 1))).toBe('MALFORMED')
    expect(code(() => readBodies(new Uint8Array([1, 2, 0, 0x0b, 0]), 1))).toBe('MALFORMED')
    expect(code(() => readLocals(new Uint8Array([1, 1, 0x64, 0x70]), 0))).toBe('UNSUPPORTED_FEATURE')
  })
})

describe('tier hints, through the decoder', () => {
  const LOOP = [op.loop, 0x40, op.end]
  /** Defined functions: 0 `_start` (calls 1 once, 2 twice), 1 loops, 2 loops (called twice), 3 loops but is exported, 4 loops inside SIMD code. */
  const mod = (extra: number[] = []) =>
    buildModule({
      memory: [0x00, 1],
      funcs: [
        { body: [0x10, 1, 0x10, 2, 0x10, 2, 0x10, 3, 0x10, 4, ...LOOP], export: '_start' },
        { body: [...LOOP, ...extra] },
        { body: LOOP },
        { body: LOOP, export: 'other' },
        { body: [0xfd, 12, ...Array<number>(16).fill(0), 0x1a, ...LOOP] }, // v128.const, drop
      ],
    })

  it('hints the looping functions of the start spine only', () => {
    const h = tierHints(mod(), 'auto')!
    expect(h).toBeDefined()
    expect([...h.hints].map((b) => (b === 0 ? 0 : 1))).toEqual([1, 1, 0, 0, 1])
    expect(tierHints(mod(), 'optimized')!.hints.every((b) => b !== 0)).toBe(true)
  })

  it('gives up (no hints) on a body the decoder cannot read', () => {
    expect(tierHints(mod([0xfd, ...u32(0x9a), 0x1a]), 'auto')).toBeUndefined() // a SIMD gap
    expect(tierHints(mod([0x06]), 'auto')).toBeUndefined() // try: refused
  })
})

describe('walkCode: the read-only walk inspect uses, on the same decoder', () => {
  const BASE = 1000
  /** Two bodies: 0 calls, tail-calls, ref.func, call_indirect, memory 1, legacy try and try_table; 1 holds a GC instruction. */
  const body0 = [
    0, 0x10, 0, 0x12, 1, 0xd2, 2, 0x1a, 0x41, 0, 0x11, 0, 1, 0x41, 0, 0x28, 0x42, 1, 0, 0x1a, 0x06, 0x40, 0x07, 0, 0x0b, 0x1f, 0x40, 1, 2,
    0, 0x0b, 0x0b,
  ]
  const body1 = [0, 0xfb, 0, 0x0b]
  const payload = new Uint8Array([2, body0.length, ...body0, body1.length, ...body1])

  it('reports calls, indirect calls, ref.func and memory indices at their module offsets, and decodes what metering refuses', () => {
    const seen: string[] = []
    const incomplete: [number, number][] = []
    walkCode(
      payload,
      BASE,
      {
        call: (f, at, tail) => seen.push(`call ${f}${tail ? ' tail' : ''} @${at - BASE}`),
        callIndirect: (t, table, at) => seen.push(`indirect ${t}/${table} @${at - BASE}`),
        refFunc: (f, at) => seen.push(`ref.func ${f} @${at - BASE}`),
        memory: (m, at) => seen.push(`memory ${m} @${at - BASE}`),
      },
      undefined,
      (f, e) => incomplete.push([f, e.offset - BASE]),
    )
    // payload: [count, size0, locals0, call...]: the first instruction is at 3.
    expect(seen).toEqual(['call 0 @3', 'call 1 tail @5', 'ref.func 2 @7', 'indirect 0/1 @12', 'memory 1 @17'])
    expect(incomplete).toEqual([[1, 2 + body0.length + 2]])
  })

  it('throws WalkIncomplete without a taker, and MALFORMED naming the module offset of an unknown opcode', () => {
    expect(() => walkCode(payload, BASE, {})).toThrow(WalkIncomplete)
    const bad = new Uint8Array([1, 3, 0, 0xff, 0x0b])
    expect(() => walkCode(bad, BASE, {})).toThrow(`at byte ${BASE + 3}`)
    const truncated = new Uint8Array([1, 3, 0, 0x10, 0x80])
    expect(() => walkCode(truncated, BASE, {})).toThrow(new RegExp(`at byte ${BASE + 4}`))
  })
})
