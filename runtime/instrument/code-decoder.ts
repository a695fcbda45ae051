/**
 * @module The one decoder of function bodies: the code section's framing, a body's locals, and
 * the length of every instruction's immediates, from the shapes in `opcodes.ts`. Every pass that
 * walks instructions (fuel metering, tier hints) steps with `skipImmediates`, so a new opcode is
 * added once and the passes cannot disagree on where an instruction ends. It must never guess:
 * an opcode it does not know is reported, since a wrong length would desynchronise every pass.
 */
import { InstrumentError, malformed } from './errors.js'
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
    case Imm.U32:
    case Imm.Local:
    case Imm.Global:
    case Imm.I32Const:
    case Imm.RefNull:
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
    case Imm.None:
      return pos
    case Imm.U32:
      return skipLeb(p, pos, 5)
    case Imm.U32x2:
      return skipLeb(p, skipLeb(p, pos, 5), 5)
    case Imm.MemArg:
      return skipMemArg(p, pos)
    case Imm.MemArgLane:
      return skipMemArg(p, pos) + 1
    case Imm.Bytes16:
      return pos + 16
    case Imm.Lane:
    case Imm.Byte:
      return pos + 1
    default:
      return UNDECODABLE
  }
}

function skipControl(p: Uint8Array, pos: number, op: number): number {
  switch (op) {
    case 0x02:
    case 0x03:
    case 0x04: // block loop if
      return skipBlockType(p, pos)
    case 0x0c:
    case 0x0d:
    case 0x10:
    case 0x12: // br br_if call return_call
      return skipLeb(p, pos, 5)
    case 0x0e: {
      // br_table: a vector of labels, then the default
      const n = u32At(p, pos)
      pos = leb.next
      for (let k = 0; k <= n; k++) pos = skipLeb(p, pos, 5)
      return pos
    }
    case 0x11:
    case 0x13: // call_indirect return_call_indirect: type, table
      return skipLeb(p, skipLeb(p, pos, 5), 5)
    default: // unreachable nop else end return
      return pos
  }
}

/** What `walkCode` reports; every callback is optional. Offsets are in the whole module. */
export interface CodeVisitor {
  /** Every instruction: its opcode and, for the 0xFC/0xFD/0xFE prefixes, its sub-opcode (else -1). */
  op?(op: number, sub: number, offset: number): void
  /** `call` / `return_call` (tail) of function `index` (imports counted). */
  call?(index: number, offset: number, tail: boolean): void
  /** `call_indirect` / `return_call_indirect` through table `table`. */
  callIndirect?(typeIndex: number, table: number, offset: number): void
  /** `ref.func index`: the function's reference escapes into a value. */
  refFunc?(index: number, offset: number): void
  /** A memory access or memory instruction naming memory `index` (multi-memory when > 0). */
  memory?(index: number, offset: number): void
}

/** A body holds instructions the decoder does not decode (GC, typed references in types): analysis of it is partial. */
export class WalkIncomplete extends Error {
  constructor(
    readonly offset: number,
    readonly what: string,
  ) {
    super(`${what} at byte ${offset}`)
    this.name = 'WalkIncomplete'
  }
}

/**
 * A read-only walk over the code section for analyses (inspect): every instruction is stepped
 * with `skipImmediates`, and the instructions metering refuses (exception handling, tail calls,
 * typed function references) are decoded too, since an inventory must describe any valid module.
 * `onBody(i, start, end)` precedes defined function `i`; a body holding what cannot be decoded
 * (GC, typed-reference types) throws `WalkIncomplete` unless `onIncomplete` takes it.
 * `base` is the payload's offset in the module; every offset reported is in the module.
 * @throws InstrumentError MALFORMED on bytes that are not a valid body, naming the module offset
 */
export function walkCode(
  payload: Uint8Array,
  base: number,
  visitor: CodeVisitor,
  onBody?: (index: number, start: number, end: number) => void,
  onIncomplete?: (index: number, e: WalkIncomplete) => void,
): void {
  const bodies = rebased(base, () => readBodies(payload, undefined, 0))
  for (let f = 0; f < bodies.starts.length; f++) {
    const start = bodies.starts[f]!
    const end = bodies.ends[f]!
    onBody?.(f, base + start, base + end)
    try {
      rebased(base, () => walkBody(payload, start, end, base, visitor))
    } catch (e) {
      if (e instanceof WalkIncomplete && onIncomplete) onIncomplete(f, e)
      else throw e
    }
  }
}

/** Runs `fn`, moving the offset of a decoding error from the payload to the module; typed-reference types become `WalkIncomplete`. */
function rebased<T>(base: number, fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (!(e instanceof InstrumentError) || e.details.offset === undefined) throw e
    const at = base + e.details.offset
    if (e.code === 'UNSUPPORTED_FEATURE') throw new WalkIncomplete(at, e.reason)
    throw new InstrumentError(e.code, e.reason.replace(/at byte \d+/, `at byte ${at}`), { ...e.details, offset: at })
  }
}

function walkBody(p: Uint8Array, start: number, end: number, base: number, v: CodeVisitor): void {
  let pos = readLocals(p, start).next
  while (pos < end) {
    const at = pos
    const op = p[pos++]!
    const kind = BASE_IMM[op]
    if (kind === Imm.Prefix) {
      const sub = readU32(p, pos)
      v.op?.(op, sub.value, base + at)
      if (v.memory) prefixedMemory(p, sub.next, op, sub.value, base + at, v.memory)
      pos = skipShape(p, sub.next, prefixedKind(op, sub.value))
    } else {
      v.op?.(op, -1, base + at)
      if (op === 0x10 || op === 0x12) v.call?.(readU32(p, pos).value, base + at, op === 0x12)
      else if (op === 0x11 || op === 0x13) {
        const t = readU32(p, pos)
        v.callIndirect?.(t.value, readU32(p, t.next).value, base + at)
      } else if (op === 0xd2) v.refFunc?.(readU32(p, pos).value, base + at)
      else if (op === 0x3f || op === 0x40) v.memory?.(readU32(p, pos).value, base + at)
      else if (kind === Imm.MemArg) v.memory?.(memArgIndex(p, pos), base + at)
      pos = kind === Imm.Unsupported ? skipProposal(p, pos, op) : skipImmediates(p, pos, op)
    }
    if (pos === UNDECODABLE) {
      if (op === 0xfb) throw new WalkIncomplete(base + at, 'a GC instruction (0xFB prefix)')
      throw malformed(`unknown opcode 0x${op.toString(16)}`, at)
    }
    if (pos > end) throw malformed('instruction runs past the end of its function body', at)
  }
}

/** The memory index a memarg at `pos` names (bit 6 of the alignment: an index follows). */
function memArgIndex(p: Uint8Array, pos: number): number {
  const align = readU32(p, pos)
  return (align.value & 0x40) !== 0 ? readU32(p, align.next).value : 0
}

function prefixedMemory(
  p: Uint8Array,
  pos: number,
  op: number,
  sub: number,
  at: number,
  memory: (index: number, offset: number) => void,
): void {
  const kind = prefixedKind(op, sub)
  if (kind === Imm.MemArg || kind === Imm.MemArgLane) memory(memArgIndex(p, pos), at)
  else if (op === 0xfc && sub === 11)
    memory(readU32(p, pos).value, at) // memory.fill mem
  else if (op === 0xfc && sub === 8)
    memory(readU32(p, readU32(p, pos).next).value, at) // memory.init data mem
  else if (op === 0xfc && sub === 10) {
    // memory.copy dst src
    const a = readU32(p, pos)
    memory(a.value, at)
    memory(readU32(p, a.next).value, at)
  }
}

/**
 * The immediates of the instructions `opcodes.ts` marks Unsupported (metering refuses them):
 * exception handling (legacy and `try_table`) and typed function references; GC stays undecodable.
 */
function skipProposal(p: Uint8Array, pos: number, op: number): number {
  switch (op) {
    case 0x06:
      return skipBlockType(p, pos) // try
    case 0x07:
    case 0x08:
    case 0x09:
    case 0x18: // catch throw rethrow delegate
    case 0x14:
    case 0x15:
    case 0xd5:
    case 0xd6: // call_ref return_call_ref br_on_null br_on_non_null
      return skipLeb(p, pos, 5)
    case 0x0a:
    case 0x19:
    case 0xd3:
    case 0xd4:
      return pos // throw_ref catch_all ref.eq ref.as_non_null
    case 0x1f: {
      // try_table bt vec(catch)
      pos = skipBlockType(p, pos)
      const n = readU32(p, pos)
      pos = n.next
      for (let i = 0; i < n.value; i++) {
        const k = p[pos++]
        if (k === 0 || k === 1)
          pos = skipLeb(p, skipLeb(p, pos, 5), 5) // tag label
        else if (k === 2 || k === 3)
          pos = skipLeb(p, pos, 5) // label
        else throw malformed(`unknown try_table catch kind ${k}`, pos - 1)
      }
      return pos
    }
    default:
      return UNDECODABLE // 0xfb GC
  }
}
