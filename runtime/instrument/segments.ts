/**
 * @module The one reader of element segments (all eight encodings) and constant expressions
 * (initialisers and offsets of globals, data and element segments), for `caplet inspect`, tier
 * hints and state export. Apart from `sections.ts` because it decodes instructions with
 * `code-decoder.ts`, which itself reads value types from `sections.ts`.
 */
import { skipImmediates, UNDECODABLE } from './code-decoder.js'
import { InstrumentError, malformed } from './errors.js'
import { readU32, skipLeb } from './leb128.js'
import { BASE_IMM, Imm } from './opcodes.js'
import type { Section } from './sections.js'

const REF_FUNC = 0xd2
const END = 0x0b

/**
 * The constant expression at `pos` of `p` (a section payload at module offset `base`), up to and
 * including its `end`; `onRefFunc` gets each `ref.func` index. Returns the offset after `end`.
 * @throws InstrumentError MALFORMED when it runs past the payload, UNSUPPORTED_FEATURE for an opcode with undecodable immediates
 */
export function readConstExpr(p: Uint8Array, pos: number, base: number, onRefFunc?: (f: number) => void): number {
  for (;;) {
    const at = pos
    const op = p[pos++]
    if (op === undefined) throw malformed('constant expression runs past its section', base + at)
    if (op === END) return pos
    if (op === REF_FUNC) {
      const f = readU32(p, pos)
      onRefFunc?.(f.value)
      pos = f.next
    } else if (BASE_IMM[op] === Imm.Control || (pos = skipImmediates(p, pos, op)) === UNDECODABLE)
      throw new InstrumentError('UNSUPPORTED_FEATURE', `opcode 0x${op.toString(16)} in a constant expression`, { offset: base + at })
    if (pos > p.length) throw malformed('constant expression runs past its section', base + at)
  }
}

export interface ElementSegment {
  /** The encoding (0-7): bit 0 passive or declarative, bit 1 explicit table or declarative, bit 2 expressions. */
  flags: number
  /** Passive (`elem.drop`-able, placed by `table.init`): flags 1 and 5. */
  passive: boolean
  /** The functions it names, by index or by `ref.func` in its offset or items, in order. */
  functions: number[]
}

/**
 * Every element segment of the element section.
 * @throws InstrumentError MALFORMED (with the module offset) for unknown flags or a truncated segment
 */
export function readElementSegments(s: Section | undefined): ElementSegment[] {
  if (s === undefined) return []
  const p = s.payload
  const out: ElementSegment[] = []
  const n = readU32(p, 0)
  let pos = n.next
  for (let i = 0; i < n.value; i++) {
    const flags = readU32(p, pos)
    const f = flags.value
    if (f > 7) throw malformed(`element segment ${i} has unknown flags ${f}`, s.offset + pos)
    pos = flags.next
    const functions: number[] = []
    const push = (x: number) => {
      functions.push(x)
    }
    if (f === 2 || f === 6) pos = readU32(p, pos).next // table index
    if ((f & 1) === 0) pos = readConstExpr(p, pos, s.offset, push) // active: offset
    // elemkind (0x00), or a reference type: funcref, externref, or (ref null? heaptype) of typed references.
    if (f !== 0 && f !== 4) pos = p[pos] === 0x63 || p[pos] === 0x64 ? skipLeb(p, pos + 1, 5) : pos + 1
    const k = readU32(p, pos)
    pos = k.next
    for (let j = 0; j < k.value; j++) {
      if ((f & 4) !== 0) pos = readConstExpr(p, pos, s.offset, push)
      else {
        const x = readU32(p, pos)
        functions.push(x.value)
        pos = x.next
      }
    }
    out.push({ flags: f, passive: f === 1 || f === 5, functions })
  }
  return out
}
