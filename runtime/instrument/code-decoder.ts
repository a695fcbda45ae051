/**
 * @module The one decoder of function bodies: the code section's framing, a body's locals, and
 * the length of every instruction's immediates, from the shapes in `opcodes.ts`. Every pass that
 * walks instructions (fuel metering, tier hints) steps with `skipImmediates`, so a new opcode is
 * added once and the passes cannot disagree on where an instruction ends. It must never guess:
 * an opcode it does not know is reported, since a wrong length would desynchronise every pass.
 */
import { malformed } from './errors.js'
import { leb, readU32, skipLeb, u32At } from './leb128.js'
import { BASE_IMM, FC_IMM, FD_IMM, FE_IMM, Imm } from './opcodes.js'
import { skipBlockType, skipValType } from './sections.js'

/** What `skipImmediates` answers for an opcode it does not know or that the tables refuse. */
export const UNDECODABLE = -1

/** The bodies of a code section: `starts[i]`, `ends[i]` delimit body i (its locals and code) in the payload. */
export interface CodeBodies {
  starts: Uint32Array
  ends: Uint32Array
}

/**
 * Splits a code section's payload into its bodies. @throws InstrumentError MALFORMED when a body
 * runs past the section, bytes trail the last one, or the count is not `expected` (when given)
 */
export function readBodies(payload: Uint8Array, expected?: number, sectionOffset = 0): CodeBodies {
  const count = readU32(payload, 0)
  if (expected !== undefined && count.value !== expected) {
    throw malformed(`code section has ${count.value} bodies for ${expected} functions`, sectionOffset)
  }
  const starts = new Uint32Array(count.value)
  const ends = new Uint32Array(count.value)
  let pos = count.next
  for (let i = 0; i < count.value; i++) {
    const size = readU32(payload, pos)
    const end = size.next + size.value
    if (end > payload.length) throw malformed(`body ${i} runs past the code section`, sectionOffset + pos)
    starts[i] = size.next
    ends[i] = end
    pos = end
  }
  if (pos !== payload.length) throw malformed('code section has trailing bytes', sectionOffset + pos)
  return { starts, ends }
}

/** A body's local declarations: `groups` entries declaring `count` locals; the code starts at `next`. */
export interface Locals {
  groups: number
  count: number
  next: number
}

/** Reads the local declarations at the start of a body. @throws InstrumentError (MALFORMED, UNSUPPORTED_FEATURE for typed references) */
export function readLocals(p: Uint8Array, start: number): Locals {
  const g = readU32(p, start)
  let pos = g.next
  let count = 0
  for (let i = 0; i < g.value; i++) {
    const n = readU32(p, pos)
    count += n.value
    pos = skipValType(p, n.next)
  }
  return { groups: g.value, count, next: pos }
}

/** The immediate shape of a prefixed instruction (`0xfc`, `0xfd`, `0xfe`) with sub-opcode `sub`. */
export function prefixedKind(prefix: number, sub: number): number {
  const k = prefix === 0xfc ? FC_IMM[sub] : prefix === 0xfd ? FD_IMM[sub] : prefix === 0xfe ? FE_IMM[sub] : undefined
  return k ?? Imm.Unknown
}

/** The offset after a memarg at `pos`: align (bit 6: a memory index follows), [memidx], offset (u64 for memory64). */
export function skipMemArg(p: Uint8Array, pos: number): number {
  const align = u32At(p, pos)
  pos = leb.next
  if ((align & 0x40) !== 0) pos = skipLeb(p, pos, 5)
  return skipLeb(p, pos, 10)
}

/**
 * The offset just after the immediates of instruction `op`, whose immediates start at `pos`
 * (the byte after the opcode), or `UNDECODABLE` for an opcode (or prefixed sub-opcode) that
 * `opcodes.ts` does not know or refuses. Control instructions included: block types, labels,
 * `br_table`'s vector, call and type indices.
 * @throws InstrumentError MALFORMED for a truncated or over-long LEB128, UNSUPPORTED_FEATURE for a typed-reference block or value type
 */
export function skipImmediates(p: Uint8Array, pos: number, op: number): number {
  switch (BASE_IMM[op]) {
    case Imm.None:
      return pos
    case Imm.U32: case Imm.Local: case Imm.Global: case Imm.I32Const: case Imm.RefNull:
      return skipLeb(p, pos, 5)
    case Imm.U32x2:
      return skipLeb(p, skipLeb(p, pos, 5), 5)
    case Imm.I64Const:
      return skipLeb(p, pos, 10)
    case Imm.F32Const:
      return pos + 4
    case Imm.F64Const:
      return pos + 8
    case Imm.MemArg:
      return skipMemArg(p, pos)
    case Imm.SelectT: {
      const n = u32At(p, pos)
      pos = leb.next
      for (let k = 0; k < n; k++) pos = skipValType(p, pos)
      return pos
    }
    case Imm.Prefix: {
      const sub = u32At(p, pos)
      return skipShape(p, leb.next, prefixedKind(op, sub))
    }
    case Imm.Control:
      return skipControl(p, pos, op)
    default: // Unknown, Unsupported
      return UNDECODABLE
  }
}

/** The immediates of a prefixed instruction, after its sub-opcode. */
function skipShape(p: Uint8Array, pos: number, kind: number): number {
  switch (kind) {
    case Imm.None: return pos
    case Imm.U32: return skipLeb(p, pos, 5)
    case Imm.U32x2: return skipLeb(p, skipLeb(p, pos, 5), 5)
    case Imm.MemArg: return skipMemArg(p, pos)
    case Imm.MemArgLane: return skipMemArg(p, pos) + 1
    case Imm.Bytes16: return pos + 16
    case Imm.Lane: case Imm.Byte: return pos + 1
    default: return UNDECODABLE
  }
}

function skipControl(p: Uint8Array, pos: number, op: number): number {
  switch (op) {
    case 0x02: case 0x03: case 0x04: // block loop if
      return skipBlockType(p, pos)
    case 0x0c: case 0x0d: case 0x10: case 0x12: // br br_if call return_call
      return skipLeb(p, pos, 5)
    case 0x0e: { // br_table: a vector of labels, then the default
      const n = u32At(p, pos)
      pos = leb.next
      for (let k = 0; k <= n; k++) pos = skipLeb(p, pos, 5)
      return pos
    }
    case 0x11: case 0x13: // call_indirect return_call_indirect: type, table
      return skipLeb(p, skipLeb(p, pos, 5), 5)
    default: // unreachable nop else end return
      return pos
  }
}
