/**
 * @module Engine-tier hints: which functions V8 should compile optimised up front, written as a
 * `compilationHints` custom section (why: docs/internals.md, "Engine tiers"). Pure, over the module's
 * bytes, with the one code decoder (`code-decoder.ts`). It must never change what a module does:
 * a module it cannot decode gets no hints, never a guess.
 */
import { readBodies, readLocals, skipImmediates, UNDECODABLE } from './code-decoder.js'
import { encodeU32, leb, readU32, u32At } from './leb128.js'
import { BASE_IMM, Imm } from './opcodes.js'
import { readElementSegments } from './segments.js'
import {
  ExternalKind,
  findSection,
  parseSections,
  readExports,
  readImports,
  SectionId,
  type ParsedModule,
  type Section,
} from './sections.js'

/**
 * `auto`: looping functions compiled optimised on first call, the rest baseline then tier-up.
 * `optimized`: every function compiled optimised on first call. `baseline`: the engine's default.
 */
export type Tier = 'auto' | 'optimized' | 'baseline'

/** One byte per function: bits 0-1 strategy (0 = default), 2-3 baseline tier, 4-5 top tier (2 = optimised). */
const HINT_OPTIMIZED = (2 << 2) | (2 << 4)
const HINT_DEFAULT = 0
export const HINTS_SECTION = 'compilationHints'

/**
 * `code` with a compilation-hints section for `tier` (before the code section, where V8 reads
 * it), or unchanged when the tier needs none or the module has a construct the decoder does not
 * know (then the engine's default applies). Whether the engine reads hints is the caller's test.
 */
export function addTierHints(code: Uint8Array, tier: Tier): Uint8Array {
  if (tier === 'baseline') return code
  const hints = tierHints(code, tier)
  return hints === undefined ? code : insertTierHints(code, hints)
}

/** Per-function hint bytes, and where the code section (the hints go before it) starts. */
export interface TierHints {
  hints: Uint8Array
  codeSectionAt: number
}

/** `code` with the hints section inserted before its code section (one copy). */
export function insertTierHints(code: Uint8Array, hints: TierHints): Uint8Array {
  const name = new TextEncoder().encode(HINTS_SECTION)
  const count = encodeU32(hints.hints.length)
  const payload = [...encodeU32(name.length), ...name, ...count]
  const size = payload.length + hints.hints.length
  const header = new Uint8Array([0, ...encodeU32(size), ...payload])
  const out = new Uint8Array(code.length + header.length + hints.hints.length)
  out.set(code.subarray(0, hints.codeSectionAt))
  out.set(header, hints.codeSectionAt)
  out.set(hints.hints, hints.codeSectionAt + header.length)
  out.set(code.subarray(hints.codeSectionAt), hints.codeSectionAt + header.length + hints.hints.length)
  return out
}

/**
 * Whether `hints` (from a cache, not trusted) fit `code`: the code section starts at
 * `codeSectionAt`, there is one hint per defined function, each a value `tierHints` writes, and
 * `code` has no hints of its own. Hints that fit can change only which tier compiles a function,
 * never what the module does.
 */
export function tierHintsFit(code: Uint8Array, hints: TierHints): boolean {
  try {
    const mod = parseSections(code)
    if (mod.sections.some((s) => s.id === SectionId.Custom && s.name === HINTS_SECTION)) return false
    const codeSection = findSection(mod, SectionId.Code)
    if (codeSection === undefined) return false
    if (codeSection.offset - (codeSection.raw!.length - codeSection.payload.length) !== hints.codeSectionAt) return false
    if (readU32(codeSection.payload, 0).value !== hints.hints.length) return false
    return hints.hints.every((h) => h === HINT_OPTIMIZED || h === HINT_DEFAULT)
  } catch {
    return false
  }
}

/**
 * Per-function hint bytes and where the code section starts; undefined to leave the module as
 * it is. `optimized`: every function. `auto`: the looping functions of the start spine.
 */
export function tierHints(code: Uint8Array, tier: Tier): TierHints | undefined {
  try {
    const mod = parseSections(code)
    if (mod.sections.some((s) => s.id === SectionId.Custom && s.name === HINTS_SECTION)) return undefined // its own
    const codeSection = findSection(mod, SectionId.Code)
    if (codeSection === undefined) return undefined
    const codeSectionAt = codeSection.offset - (codeSection.raw!.length - codeSection.payload.length)
    const n = readU32(codeSection.payload, 0).value
    const hints = new Uint8Array(n)
    if (tier === 'optimized') {
      hints.fill(HINT_OPTIMIZED)
      return { hints, codeSectionAt }
    }
    const spine = startSpine(mod, codeSection)
    if (spine === undefined) return undefined
    let any = false
    for (let f = 0; f < n; f++) {
      if (spine[f] === 1) {
        hints[f] = HINT_OPTIMIZED
        any = true
      }
    }
    return any ? { hints, codeSectionAt } : undefined
  } catch {
    // A construct the scanner cannot decode: no hints, the engine's default tiers.
    return undefined
  }
}

/**
 * The start spine: `_start` and every function that only ever runs once per run because it has
 * exactly one direct call site, outside any loop, in a function of the spine, and is neither
 * exported nor reachable through a table or `ref.func`. A loop in such a function runs inside one
 * activation, which V8 cannot move to optimised code; every other function that gets hot is
 * entered again and is served by tier-up. Returns, per defined function, 1 for a spine function
 * with a loop, 0 otherwise; undefined when there is no `_start`.
 */
function startSpine(mod: ParsedModule, codeSection: Section): Uint8Array | undefined {
  const imported = readImports(findSection(mod, SectionId.Import)).filter((i) => i.kind === ExternalKind.Function).length
  const exports = readExports(findSection(mod, SectionId.Export)).filter((e) => e.kind === ExternalKind.Function)
  const start = exports.find((e) => e.name === '_start')
  if (start === undefined || start.index < imported) return undefined
  const p = codeSection.payload
  const count = readU32(p, 0)
  const n = count.value
  const loops = new Uint8Array(n)
  /** Direct call sites per callee (defined functions only); 2 means "more than once". */
  const sites = new Uint8Array(n)
  /** Callees called once, outside loops, by each function: [caller, callee] pairs. */
  const onceEdges: number[] = []
  const pinned = new Uint8Array(n) // exported, in a table, or referenced by ref.func
  for (const e of exports) if (e.index >= imported) pinned[e.index - imported] = 1
  for (const seg of readElementSegments(findSection(mod, SectionId.Element)))
    for (const f of seg.functions) if (f >= imported) pinned[f - imported] = 1
  const { starts, ends } = readBodies(p, n)
  for (let f = 0; f < n; f++) {
    scanBody(p, starts[f]!, ends[f]!, (kind, index, inLoop) => {
      if (kind === 'loop') loops[f] = 1
      else if (index >= imported) {
        const callee = index - imported
        if (kind === 'ref') pinned[callee] = 1
        else {
          sites[callee] = inLoop || sites[callee]! > 0 ? 2 : 1
          if (!inLoop) onceEdges.push(f, callee)
        }
      }
    })
  }
  const onSpine = new Uint8Array(n)
  onSpine[start.index - imported] = 1
  // Edges run caller -> callee; a callee joins when its only call site is in a spine function.
  // SECURITY: one breadth-first walk over a caller-indexed edge list, so every edge is visited
  // once: a fixpoint over all edges was quadratic, and untrusted bytes could stall the host
  // (a 300 KB chain of 40k functions took 6 s before any limit applied).
  const offsets = new Uint32Array(n + 1)
  for (let i = 0; i < onceEdges.length; i += 2) offsets[onceEdges[i]! + 1]!++
  for (let f = 0; f < n; f++) offsets[f + 1]! += offsets[f]!
  const callees = new Uint32Array(onceEdges.length / 2)
  const fill = offsets.slice(0, n)
  for (let i = 0; i < onceEdges.length; i += 2) callees[fill[onceEdges[i]!]!++] = onceEdges[i + 1]!
  const queue = [start.index - imported]
  for (let q = 0; q < queue.length; q++) {
    const caller = queue[q]!
    for (let e = offsets[caller]!; e < offsets[caller + 1]!; e++) {
      const callee = callees[e]!
      if (onSpine[callee] === 0 && sites[callee] === 1 && pinned[callee] === 0) {
        onSpine[callee] = 1
        queue.push(callee)
      }
    }
  }
  for (let f = 0; f < n; f++) onSpine[f] = onSpine[f]! & loops[f]!
  return onSpine
}

type BodyEvent = (kind: 'loop' | 'call' | 'ref', index: number, inLoop: boolean) => void

const skipU32 = (p: Uint8Array, pos: number): number => (u32At(p, pos), leb.next)

/**
 * Decodes one function body in `[start, end)`, reporting loops, direct calls (with whether they
 * sit inside a loop) and `ref.func`. @throws on anything it cannot decode
 */
function scanBody(code: Uint8Array, start: number, end: number, on: BodyEvent): void {
  let pos = readLocals(code, start).next
  // Open blocks, innermost last: 1 for a loop, 0 for block/if; `loopDepth` counts the 1s.
  const blocks: number[] = []
  let loopDepth = 0
  while (pos < end) {
    const op = code[pos++]!
    const kind = BASE_IMM[op]
    if (kind === Imm.None) continue
    if (kind === Imm.Control || op === 0xd2)
      switch (op) {
        case 0x03: // loop
          on('loop', 0, loopDepth > 0)
          blocks.push(1)
          loopDepth++
          break
        case 0x02:
        case 0x04: // block, if
          blocks.push(0)
          break
        case 0x0b: // end (the last one closes the body)
          if (blocks.pop() === 1) loopDepth--
          break
        case 0x10:
        case 0x12: // call, return_call
          on('call', u32At(code, pos), loopDepth > 0)
          break
        case 0xd2: // ref.func
          on('ref', u32At(code, pos), loopDepth > 0)
          break
      }
    pos = skipImmediates(code, pos, op)
    // Unknown, or a proposal the opcode table refuses.
    if (pos === UNDECODABLE) throw new Error(`opcode 0x${op.toString(16)}`)
  }
}
