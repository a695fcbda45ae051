/**
 * @module Records which parts of linear memory a module writes, so a plugin's fresh-state reset
 * copies back only those instead of all of memory. Appends two globals: a 64-bit bitmap
 * (`caplet_dirty`, one bit per granule of 2^`caplet_dirty_shift` bytes) and the shift, which the
 * embedder sets once memory's size is known. Every plain store sets its granule's bit after it
 * succeeds; bulk, SIMD and atomic writes set every bit. Pure, no `node:` import. SECURITY: the
 * globals are appended after every existing index, so the module's own code cannot name them;
 * a write it could hide from the bitmap would survive a reset, so nothing that writes is skipped.
 */
import { InstrumentError, malformed } from './errors.js'
import { ByteWriter, readU32, u32At, leb } from './leb128.js'
import { readBodies, readLocals, skipImmediates, UNDECODABLE } from './code-decoder.js'
import {
  encodeSections,
  ExternalKind,
  findSection,
  parseSections,
  putSection,
  readExports,
  readFunctionTypes,
  readImports,
  readLimits,
  readTypes,
  SectionId,
  vectorCount,
} from './sections.js'

export const DIRTY_EXPORT = 'caplet_dirty'
export const DIRTY_SHIFT_EXPORT = 'caplet_dirty_shift'
/** Bits in the bitmap: granules of memory it tells apart. */
export const DIRTY_GRANULES = 64
/** Bytes a store may write past the start of the granule it marks (an 8-byte store at a granule's end). */
export const DIRTY_SPILL = 8
const MAX_LOCALS = 50_000

/** The store opcodes (0x36 i32.store .. 0x3e i64.store32) and the value type each takes. */
const STORE_TYPE: Record<number, number> = {
  0x36: 0x7f,
  0x37: 0x7e,
  0x38: 0x7d,
  0x39: 0x7c,
  0x3a: 0x7f,
  0x3b: 0x7f,
  0x3c: 0x7e,
  0x3d: 0x7e,
  0x3e: 0x7e,
}
/** The scratch locals each rewritten body gets, after its own: the address, then one per value type. */
const SCRATCH = [0x7f, 0x7f, 0x7e, 0x7d, 0x7c] as const
const slot = (type: number) => (type === 0x7f ? 1 : type === 0x7e ? 2 : type === 0x7d ? 3 : 4)

/** Whether a prefixed instruction may write memory other than through a plain store. */
function bulkWrite(prefix: number, sub: number): boolean {
  if (prefix === 0xfc) return sub === 8 || sub === 10 || sub === 11 // memory.init, memory.copy, memory.fill
  if (prefix === 0xfd) return sub === 11 || (sub >= 88 && sub <= 91) // v128.store, v128.storeN_lane
  return prefix === 0xfe && sub !== 3 // atomics (fence excepted): conservatively, all of them
}

/**
 * Adds write tracking, or answers `undefined` for a module it cannot track exactly (64-bit or
 * several memories, instructions it cannot decode, too many locals): its resets copy all memory.
 * @throws InstrumentError (`MALFORMED`, `EXPORT_NAME_TAKEN`)
 */
export function trackWrites(bytes: Uint8Array): Uint8Array | undefined {
  const mod = parseSections(bytes)
  const imports = readImports(findSection(mod, SectionId.Import))
  if (imports.some((i) => i.kind === ExternalKind.Memory)) return undefined
  const memories = findSection(mod, SectionId.Memory)
  if (memories === undefined || vectorCount(memories) !== 1) return undefined
  if (readLimits(memories.payload, readU32(memories.payload, 0).next).value.is64) return undefined
  const importedFuncs = imports.filter((i) => i.kind === ExternalKind.Function).length
  const importedGlobals = imports.filter((i) => i.kind === ExternalKind.Global).length
  const globalSection = findSection(mod, SectionId.Global)
  const definedGlobals = vectorCount(globalSection)
  const dirty = importedGlobals + definedGlobals
  const shift = dirty + 1
  const exportSection = findSection(mod, SectionId.Export)
  const exports = readExports(exportSection)
  for (const e of exports) {
    if (e.name === DIRTY_EXPORT || e.name === DIRTY_SHIFT_EXPORT)
      throw new InstrumentError('EXPORT_NAME_TAKEN', `the module already exports "${e.name}"`, { exportName: e.name })
    if (e.kind === ExternalKind.Global && e.index >= dirty)
      throw malformed(`export ${JSON.stringify(e.name)} names a global that does not exist`)
  }

  const code = findSection(mod, SectionId.Code)
  if (code !== undefined) {
    const types = readTypes(findSection(mod, SectionId.Type))
    const funcTypes = readFunctionTypes(findSection(mod, SectionId.Function))
    const params = (f: number) => {
      const t = types[funcTypes[f]!]
      if (t === undefined) throw malformed(`function ${importedFuncs + f} has no type`)
      return t.params
    }
    const rewritten = rewriteBodies(code.payload, params, dirty, shift)
    if (rewritten === undefined) return undefined
    putSection(mod, SectionId.Code, rewritten)
  }

  // (global (mut i64) (i64.const 0)) (global (mut i32) (i32.const 0)), appended.
  const g = new ByteWriter(16 + (globalSection?.payload.length ?? 0))
  g.u32(definedGlobals + 2)
  if (globalSection !== undefined) g.bytes(globalSection.payload.subarray(readU32(globalSection.payload, 0).next))
  g.bytes(new Uint8Array([0x7e, 0x01, 0x42, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b]))
  putSection(mod, SectionId.Global, g.finish())
  const x = new ByteWriter(64 + (exportSection?.payload.length ?? 0))
  x.u32(exports.length + 2)
  if (exportSection !== undefined) x.bytes(exportSection.payload.subarray(readU32(exportSection.payload, 0).next))
  x.name(DIRTY_EXPORT)
  x.u8(ExternalKind.Global)
  x.u32(dirty)
  x.name(DIRTY_SHIFT_EXPORT)
  x.u8(ExternalKind.Global)
  x.u32(shift)
  putSection(mod, SectionId.Export, x.finish())
  return encodeSections(mod)
}

/** The code section with every body that writes memory rewritten, or `undefined` (see `trackWrites`). */
function rewriteBodies(payload: Uint8Array, params: (f: number) => number, dirty: number, shift: number): Uint8Array | undefined {
  const bodies = readBodies(payload)
  const out = new ByteWriter(payload.length * 2 + 16)
  out.u32(bodies.starts.length)
  for (let f = 0; f < bodies.starts.length; f++) {
    const start = bodies.starts[f]!
    const end = bodies.ends[f]!
    const locals = readLocals(payload, start)
    const base = params(f) + locals.count
    const body = new ByteWriter(end - start + 64)
    let copied = locals.next
    let writes = false
    let pos = locals.next
    while (pos < end) {
      const at = pos
      const op = payload[pos++]!
      let next: number
      if (op === 0xfc || op === 0xfd || op === 0xfe) {
        const sub = u32At(payload, pos)
        next = skipImmediates(payload, at + 1, op)
        if (next !== UNDECODABLE && bulkWrite(op, sub)) {
          // Every granule: i64.const -1; global.set dirty; then the instruction.
          body.bytes(payload.subarray(copied, at))
          body.u8(0x42)
          body.u8(0x7f)
          body.u8(0x24)
          body.u32(dirty)
          copied = at
          writes = true
        }
      } else {
        next = skipImmediates(payload, pos, op)
        const type = STORE_TYPE[op]
        if (type !== undefined && next !== UNDECODABLE) {
          const align = u32At(payload, pos)
          if ((align & 0x40) !== 0) return undefined // a memory index: multi-memory
          const offset = u32At(payload, leb.next)
          const a = base
          const v = base + slot(type)
          body.bytes(payload.subarray(copied, at))
          body.u8(0x21) // local.set v
          body.u32(v)
          body.u8(0x22) // local.tee a
          body.u32(a)
          body.u8(0x20) // local.get v
          body.u32(v)
          body.bytes(payload.subarray(at, next)) // the store itself
          body.u8(0x23) // global.get dirty
          body.u32(dirty)
          body.u8(0x42) // i64.const 1
          body.u8(0x01)
          body.u8(0x20) // local.get a
          body.u32(a)
          if (offset !== 0) {
            // Cannot wrap: a store whose address + offset passes 2^32 has trapped before this runs.
            body.u8(0x41)
            body.s32(offset | 0)
            body.u8(0x6a) // i32.add
          }
          body.u8(0x23) // global.get shift
          body.u32(shift)
          body.u8(0x76) // i32.shr_u
          body.u8(0xad) // i64.extend_i32_u
          body.u8(0x86) // i64.shl
          body.u8(0x84) // i64.or
          body.u8(0x24) // global.set dirty
          body.u32(dirty)
          copied = next
          writes = true
        }
      }
      if (next === UNDECODABLE) return undefined
      if (next > end) throw malformed('instruction runs past the end of its function body', at)
      pos = next
    }
    if (!writes) {
      out.u32(end - start)
      out.bytes(payload.subarray(start, end))
      continue
    }
    if (base + SCRATCH.length > MAX_LOCALS) return undefined
    body.bytes(payload.subarray(copied, end))
    const head = new ByteWriter(32 + locals.next - start)
    head.u32(locals.groups + 4)
    head.bytes(payload.subarray(readU32(payload, start).next, locals.next))
    head.u32(2)
    head.u8(0x7f)
    for (const t of SCRATCH.slice(2)) {
      head.u32(1)
      head.u8(t)
    }
    const h = head.finish()
    const b = body.finish()
    out.u32(h.length + b.length)
    out.bytes(h)
    out.bytes(b)
  }
  return out.finish()
}
