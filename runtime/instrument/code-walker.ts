/**
 * @module A read-only walker over function bodies: decodes every instruction of the code
 * section and reports what an analysis needs (each opcode, direct calls with their byte offset,
 * `call_indirect`, `ref.func`, memory indices), without rewriting anything.
 *
 * Unlike the fuel scanner, it decodes what metering refuses (exception handling, legacy and
 * `try_table`; tail calls; typed function references), since an inventory must describe any
 * valid module. GC instructions (0xFB) are not decoded: the body is reported as undecoded
 * (`WalkIncomplete`) rather than guessed. It must never desynchronise silently: anything
 * unknown throws, with the byte offset in the module.
 */
import { malformed } from './errors.js'
import { readS33, readU32, skipLeb } from './leb128.js'
import { BASE_IMM, FC_IMM, FD_IMM, FE_IMM, Imm } from './opcodes.js'

/** What the walker reports; every callback is optional. Offsets are in the whole module. */
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

/** A body holds instructions the walker does not decode (GC): analysis of it is partial. */
export class WalkIncomplete extends Error {
  constructor(readonly offset: number, readonly what: string) {
    super(`${what} at byte ${offset}`)
    this.name = 'WalkIncomplete'
  }
}

/**
 * Walks the code section's bodies: `onBody(i, start, end)` is called before each body (defined
 * function `i`, its byte range in the module) and the body is then decoded into `visitor`.
 * `base` is the code section payload's offset in the module. A body the walker cannot decode
 * throws `WalkIncomplete` unless `onIncomplete` takes it (then the walk goes on with the next).
 * @throws InstrumentError (MALFORMED) on bytes that are not a valid body
 */
export function walkCode(
  payload: Uint8Array, base: number, visitor: CodeVisitor,
  onBody?: (index: number, start: number, end: number) => void,
  onIncomplete?: (index: number, e: WalkIncomplete) => void,
): void {
  const count = readU32(payload, 0)
  let at = count.next
  for (let f = 0; f < count.value; f++) {
    const size = readU32(payload, at)
    const end = size.next + size.value
    if (end > payload.length) throw malformed(`function body ${f} runs past the code section`, base + at)
    onBody?.(f, base + size.next, base + end)
    try {
      walkBody(payload, size.next, end, base, visitor)
    } catch (e) {
      if (e instanceof WalkIncomplete && onIncomplete) onIncomplete(f, e)
      else throw e
    }
    at = end
  }
}

/** Decodes one body in `code[pos, end)` (locals, then instructions). */
export function walkBody(code: Uint8Array, pos: number, end: number, base: number, v: CodeVisitor): void {
  const groups = readU32(code, pos)
  pos = groups.next
  for (let g = 0; g < groups.value; g++) {
    pos = skipLeb(code, pos, 5)
    pos = skipValType(code, pos, base)
  }
  while (pos < end) {
    const at = pos
    const op = code[pos++]!
    const kind = BASE_IMM[op]
    if (kind === Imm.Prefix) {
      const sub = readU32(code, pos)
      pos = sub.next
      v.op?.(op, sub.value, base + at)
      pos = prefixed(code, pos, op, sub.value, base + at, v)
      continue
    }
    v.op?.(op, -1, base + at)
    switch (kind) {
      case Imm.None: break
      case Imm.Control: pos = control(code, pos, op, base, at, v); break
      case Imm.Unsupported: pos = proposal(code, pos, op, base, at); break
      case Imm.U32: {
        const x = readU32(code, pos)
        if (op === 0xd2) v.refFunc?.(x.value, base + at)
        else if (op === 0x3f || op === 0x40) v.memory?.(x.value, base + at)
        pos = x.next
        break
      }
      case Imm.Local: case Imm.Global: case Imm.I32Const: case Imm.RefNull: pos = skipLeb(code, pos, 5); break
      case Imm.I64Const: pos = skipLeb(code, pos, 10); break
      case Imm.F32Const: pos += 4; break
      case Imm.F64Const: pos += 8; break
      case Imm.MemArg: pos = memArg(code, pos, base + at, v); break
      case Imm.SelectT: {
        const n = readU32(code, pos)
        pos = n.next
        for (let i = 0; i < n.value; i++) pos = skipValType(code, pos, base)
        break
      }
      default:
        throw malformed(`unknown opcode 0x${op.toString(16)}`, base + at)
    }
    if (pos > end) throw malformed('instruction runs past the end of its function body', base + at)
  }
}

function control(code: Uint8Array, pos: number, op: number, base: number, at: number, v: CodeVisitor): number {
  switch (op) {
    case 0x02: case 0x03: case 0x04: return skipBlockType(code, pos, base) // block loop if
    case 0x0c: case 0x0d: return skipLeb(code, pos, 5) // br br_if
    case 0x0e: { // br_table
      const n = readU32(code, pos)
      pos = n.next
      for (let i = 0; i <= n.value; i++) pos = skipLeb(code, pos, 5)
      return pos
    }
    case 0x10: case 0x12: { // call return_call
      const f = readU32(code, pos)
      v.call?.(f.value, base + at, op === 0x12)
      return f.next
    }
    case 0x11: case 0x13: { // call_indirect return_call_indirect
      const t = readU32(code, pos)
      const table = readU32(code, t.next)
      v.callIndirect?.(t.value, table.value, base + at)
      return table.next
    }
    default: return pos // unreachable nop else end return
  }
}

/** Exception handling and typed function references: decoded here, refused by the metering table. */
function proposal(code: Uint8Array, pos: number, op: number, base: number, at: number): number {
  switch (op) {
    case 0x06: return skipBlockType(code, pos, base) // try
    case 0x07: case 0x08: case 0x09: case 0x18: return skipLeb(code, pos, 5) // catch throw rethrow delegate
    case 0x0a: case 0x19: return pos // throw_ref catch_all
    case 0x1f: { // try_table bt vec(catch)
      pos = skipBlockType(code, pos, base)
      const n = readU32(code, pos)
      pos = n.next
      for (let i = 0; i < n.value; i++) {
        const k = code[pos++]
        if (k === 0 || k === 1) pos = skipLeb(code, skipLeb(code, pos, 5), 5) // tag label
        else if (k === 2 || k === 3) pos = skipLeb(code, pos, 5) // label
        else throw malformed(`unknown try_table catch kind ${k}`, base + pos - 1)
      }
      return pos
    }
    case 0x14: case 0x15: case 0xd5: case 0xd6: return skipLeb(code, pos, 5) // call_ref return_call_ref br_on_null br_on_non_null
    case 0xd3: case 0xd4: return pos // ref.eq ref.as_non_null
    case 0xfb: throw new WalkIncomplete(base + at, 'a GC instruction (0xFB prefix)')
    default: throw malformed(`unknown opcode 0x${op.toString(16)}`, base + at)
  }
}

function prefixed(code: Uint8Array, pos: number, op: number, sub: number, at: number, v: CodeVisitor): number {
  const kind = op === 0xfc ? FC_IMM[sub] : op === 0xfd ? FD_IMM[sub] : FE_IMM[sub]
  switch (kind) {
    case Imm.None: return pos
    case Imm.U32: {
      const x = readU32(code, pos)
      if (op === 0xfc && sub === 11) v.memory?.(x.value, at) // memory.fill mem
      return x.next
    }
    case Imm.U32x2: {
      const a = readU32(code, pos)
      const b = readU32(code, a.next)
      if (op === 0xfc && sub === 8) v.memory?.(b.value, at) // memory.init data mem
      if (op === 0xfc && sub === 10) { v.memory?.(a.value, at); v.memory?.(b.value, at) } // memory.copy
      return b.next
    }
    case Imm.MemArg: return memArg(code, pos, at, v)
    case Imm.MemArgLane: return memArg(code, pos, at, v) + 1
    case Imm.Bytes16: return pos + 16
    case Imm.Lane: case Imm.Byte: return pos + 1
    default: throw malformed(`unknown opcode 0x${op.toString(16)} ${sub}`, at)
  }
}

function memArg(code: Uint8Array, pos: number, at: number, v: CodeVisitor): number {
  const align = readU32(code, pos)
  pos = align.next
  if ((align.value & 0x40) !== 0) {
    const m = readU32(code, pos)
    v.memory?.(m.value, at)
    pos = m.next
  } else v.memory?.(0, at)
  return skipLeb(code, pos, 10)
}

/** A value type, including the typed-reference forms `(ref null? ht)`. */
function skipValType(code: Uint8Array, pos: number, base: number): number {
  const b = code[pos]
  if (b === undefined) throw malformed('unexpected end of input in a value type', base + pos)
  if (b === 0x63 || b === 0x64) return readS33(code, pos + 1).next
  if (b >= 0x69 && b <= 0x7f) return pos + 1 // numeric, vector and abstract heap-type shorthands
  throw malformed(`unknown value type 0x${b.toString(16)}`, base + pos)
}

function skipBlockType(code: Uint8Array, pos: number, base: number): number {
  const b = code[pos]
  if (b === undefined) throw malformed('unexpected end of input in a block type', base + pos)
  if (b === 0x40) return pos + 1
  if (b === 0x63 || b === 0x64) return readS33(code, pos + 1).next
  if (b >= 0x69 && b <= 0x7f) return pos + 1
  const r = readS33(code, pos)
  if (r.value < 0) throw malformed(`unknown block type 0x${b.toString(16)}`, base + pos)
  return r.next
}
