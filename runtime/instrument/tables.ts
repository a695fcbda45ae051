/**
 * @module Table cap: bound what a module's tables can make the host allocate. Table entries live
 * in the engine's heap, not in linear memory, so the memory cap does not cover them: a 65-byte
 * module declaring two tables of 10^7 funcrefs makes V8 abort the whole process with "heap limit"
 * before any resource limit applies. Every defined table's minimum must fit the cap, and its
 * maximum is rewritten to at most the cap, so `table.grow` past it fails (-1) as the spec says.
 */
import { InstrumentError, malformed } from './errors.js'
import { ByteWriter, readU32 } from './leb128.js'
import { SectionId, encodeSections, findSection, parseSections, putSection, readLimits, writeLimits, type Limits } from './sections.js'

export interface TableCap {
  /** Most tables a module may define. */
  maxTables: number
  /** Most entries one table may ever hold. */
  maxEntries: number
}

/** 8 tables of up to 2^20 entries: at most 64 MiB of references, far above what compilers emit. */
export const DEFAULT_TABLE_CAP: TableCap = Object.freeze({ maxTables: 8, maxEntries: 1 << 20 })

/** funcref and externref: the reference types a plain table may hold. */
const REF_TYPES = new Set([0x70, 0x6f])

/**
 * Caps every defined table. Pure: `bytes` is not modified; returns them unchanged if nothing had to change.
 * @throws InstrumentError `TABLES_EXCEED_CAP`, `UNSUPPORTED_FEATURE` (tables with initialisers or
 *   64-bit indices), `MALFORMED`
 */
export function capTables(bytes: Uint8Array, cap: TableCap = DEFAULT_TABLE_CAP): Uint8Array {
  const module = parseSections(bytes)
  const section = findSection(module, SectionId.Table)
  if (section === undefined) return bytes
  const p = section.payload
  const count = readU32(p, 0)
  if (count.value > cap.maxTables) {
    throw new InstrumentError('TABLES_EXCEED_CAP', `the module defines ${count.value} tables; at most ${cap.maxTables} are allowed`)
  }
  let pos = count.next
  const tables: { type: number; limits: Limits }[] = []
  let changed = false
  for (let i = 0; i < count.value; i++) {
    const type = p[pos]
    if (type === undefined) throw malformed('unexpected end of input in a table type', section.offset + pos)
    if (!REF_TYPES.has(type)) {
      throw new InstrumentError(
        'UNSUPPORTED_FEATURE',
        `table ${i} has an unsupported element type or an initialiser (0x${type.toString(16)})`,
        { offset: section.offset + pos },
      )
    }
    const { value: limits, next } = readLimits(p, pos + 1)
    if (limits.is64) throw new InstrumentError('UNSUPPORTED_FEATURE', `table ${i} uses 64-bit indices`, { offset: section.offset + pos })
    pos = next
    if (limits.min > cap.maxEntries) {
      throw new InstrumentError(
        'TABLES_EXCEED_CAP',
        `table ${i} needs at least ${limits.min} entries; at most ${cap.maxEntries} are allowed`,
      )
    }
    const max = limits.max === undefined ? cap.maxEntries : Math.min(limits.max, cap.maxEntries)
    if (max !== limits.max) changed = true
    tables.push({ type, limits: { ...limits, max } })
  }
  if (pos !== p.length) throw malformed('table section has trailing bytes', section.offset + pos)
  if (!changed) return bytes
  const w = new ByteWriter(p.length + 8 * tables.length)
  w.u32(tables.length)
  for (const t of tables) {
    w.u8(t.type)
    writeLimits(w, t.limits)
  }
  putSection(module, SectionId.Table, w.finish())
  return encodeSections(module)
}
