/**
 * @module The opcode table the code scanner decodes with: for every instruction it knows, the
 * shape of its immediates. An opcode missing here is refused, never guessed: a wrong immediate
 * length would desynchronise the scan and put metering code in the wrong place.
 *
 * Covered: MVP; sign extension; non-trapping float-to-int, bulk memory and table (0xFC);
 * reference types; multi-value block types; multi-memory memargs and memory indices; memory64
 * offsets; fixed-width and relaxed SIMD (0xFD); threads/atomics (0xFE); tail calls.
 * Refused as unsupported: exception handling, typed function references and GC (see `UNSUPPORTED`).
 */

/** Immediate shapes. */
export const Imm = {
  /** Not a known opcode. */
  Unknown: 0,
  None: 1,
  /** One LEB128 index (table, memory, function, label…). */
  U32: 2,
  /** Two LEB128 indices. */
  U32x2: 3,
  /** align (u32, bit 6 = a memory index follows), [memidx u32], offset (u32, u64 for memory64). */
  MemArg: 4,
  I32Const: 5,
  I64Const: 6,
  F32Const: 7,
  F64Const: 8,
  /** `select t*`: a vector of value types. */
  SelectT: 9,
  /** `ref.null ht`: a heap type (s33). */
  RefNull: 10,
  /** local.get/set/tee: a local index (bounds-checked by the scanner). */
  Local: 11,
  /** global.get/set: a global index (bounds-checked by the scanner). */
  Global: 12,
  /** Structured control and branches: handled by the scanner itself. */
  Control: 13,
  /** 0xFC, 0xFD, 0xFE: a LEB128 sub-opcode follows. */
  Prefix: 14,
  /** Known, but metering cannot account for it soundly. */
  Unsupported: 15,
  /** SIMD: 16 immediate bytes (v128.const, i8x16.shuffle). */
  Bytes16: 16,
  /** SIMD: one lane-index byte. */
  Lane: 17,
  /** SIMD: memarg then a lane-index byte. */
  MemArgLane: 18,
  /** atomic.fence: one reserved byte. */
  Byte: 19,
} as const

function table(size: number, entries: ReadonlyArray<readonly [number, number, number]>): Uint8Array {
  const t = new Uint8Array(size)
  for (const [from, to, kind] of entries) t.fill(kind, from, to + 1)
  return t
}

/** Single-byte opcodes. */
export const BASE_IMM: Uint8Array = table(256, [
  [0x00, 0x05, Imm.Control], // unreachable nop block loop if else (nop is reclassified below)
  [0x06, 0x0a, Imm.Unsupported], // try catch throw rethrow throw_ref
  [0x0b, 0x13, Imm.Control], // end br br_if br_table return call call_indirect return_call return_call_indirect
  [0x14, 0x15, Imm.Unsupported], // call_ref return_call_ref
  [0x18, 0x19, Imm.Unsupported], // delegate catch_all
  [0x1a, 0x1b, Imm.None], // drop select
  [0x1c, 0x1c, Imm.SelectT],
  [0x1f, 0x1f, Imm.Unsupported], // try_table
  [0x20, 0x22, Imm.Local],
  [0x23, 0x24, Imm.Global],
  [0x25, 0x26, Imm.U32], // table.get table.set
  [0x28, 0x3e, Imm.MemArg], // loads and stores
  [0x3f, 0x40, Imm.U32], // memory.size memory.grow (memory index)
  [0x41, 0x41, Imm.I32Const],
  [0x42, 0x42, Imm.I64Const],
  [0x43, 0x43, Imm.F32Const],
  [0x44, 0x44, Imm.F64Const],
  [0x45, 0xc4, Imm.None], // numeric MVP (0x45-0xbf) and sign extension (0xc0-0xc4)
  [0xd0, 0xd0, Imm.RefNull],
  [0xd1, 0xd1, Imm.None], // ref.is_null
  [0xd2, 0xd2, Imm.U32], // ref.func
  [0xd3, 0xd6, Imm.Unsupported], // ref.eq ref.as_non_null br_on_null br_on_non_null
  [0xfb, 0xfb, Imm.Unsupported], // GC
  [0xfc, 0xfe, Imm.Prefix],
])
BASE_IMM[0x01] = Imm.None

/** 0xFC sub-opcodes (saturating truncation, bulk memory, tables). */
export const FC_IMM: Uint8Array = table(18, [
  [0, 7, Imm.None], // i32/i64.trunc_sat_f32/f64_s/u
  [8, 8, Imm.U32x2], // memory.init data mem
  [9, 9, Imm.U32], // data.drop
  [10, 10, Imm.U32x2], // memory.copy mem mem
  [11, 11, Imm.U32], // memory.fill mem
  [12, 12, Imm.U32x2], // table.init elem table
  [13, 13, Imm.U32], // elem.drop
  [14, 14, Imm.U32x2], // table.copy table table
  [15, 17, Imm.U32], // table.grow table.size table.fill
])

/** 0xFD sub-opcodes: fixed-width SIMD (0x00-0xff, with the spec's gaps) and relaxed SIMD. */
export const FD_IMM: Uint8Array = (() => {
  const t = table(0x114, [
    [0x00, 0x0b, Imm.MemArg], // v128.load*, v128.store
    [0x0c, 0x0d, Imm.Bytes16], // v128.const, i8x16.shuffle
    [0x0e, 0x14, Imm.None], // swizzle, splats
    [0x15, 0x22, Imm.Lane], // extract_lane / replace_lane
    [0x23, 0x53, Imm.None], // comparisons, bitwise, any_true
    [0x54, 0x5b, Imm.MemArgLane], // v128.load*_lane / store*_lane
    [0x5c, 0x5d, Imm.MemArg], // v128.load32_zero / load64_zero
    [0x5e, 0xff, Imm.None], // arithmetic and conversions (gaps cleared below)
    [0x100, 0x113, Imm.None], // relaxed SIMD
  ])
  // Unassigned opcodes inside 0x5e-0xff (reserved by the spec).
  for (const gap of [
    0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb, 0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee,
  ]) {
    t[gap] = Imm.Unknown
  }
  return t
})()

/** 0xFE sub-opcodes (threads: atomics, wait/notify, fence). */
export const FE_IMM: Uint8Array = table(0x4f, [
  [0x00, 0x02, Imm.MemArg], // memory.atomic.notify, wait32, wait64
  [0x03, 0x03, Imm.Byte], // atomic.fence
  [0x10, 0x4e, Imm.MemArg], // atomic loads, stores, rmw, cmpxchg
])

const UNSUPPORTED_NAMES: Readonly<Record<number, string>> = {
  0x06: 'try (exception handling)',
  0x07: 'catch (exception handling)',
  0x08: 'throw (exception handling)',
  0x09: 'rethrow (exception handling)',
  0x0a: 'throw_ref (exception handling)',
  0x14: 'call_ref (typed function references)',
  0x15: 'return_call_ref (typed function references)',
  0x18: 'delegate (exception handling)',
  0x19: 'catch_all (exception handling)',
  0x1f: 'try_table (exception handling)',
  0xd3: 'ref.eq (GC)',
  0xd4: 'ref.as_non_null (typed function references)',
  0xd5: 'br_on_null (typed function references)',
  0xd6: 'br_on_non_null (typed function references)',
  0xfb: 'GC instructions (0xFB prefix)',
}

export function unsupportedName(op: number): string {
  return UNSUPPORTED_NAMES[op] ?? `opcode 0x${op.toString(16)}`
}

export function hex(op: number, sub?: number): string {
  const h = (n: number) => `0x${n.toString(16).padStart(2, '0')}`
  return sub === undefined ? h(op) : `${h(op)} ${h(sub)}`
}
