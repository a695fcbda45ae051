/**
 * @module Exports a module's hidden mutable state so an embedder can snapshot and restore it:
 * every defined mutable global (C's `__stack_pointer`, a heap pointer) and every defined table
 * gets an export named `caplet_global_<index>` / `caplet_table_<index>`. Also reads function
 * signatures with their value types (what the plugin layer checks host imports against).
 * Pure: no `node:` import; never changes what the module computes, only what it exports.
 */
import { InstrumentError, malformed } from './errors.js'
import { ByteWriter, readU32, skipLeb } from './leb128.js'
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
  SectionId,
  skipValType,
} from './sections.js'
import { readConstExpr, readElementSegments } from './segments.js'

export const GLOBAL_EXPORT_PREFIX = 'caplet_global_'
export const TABLE_EXPORT_PREFIX = 'caplet_table_'

export interface StateExports {
  /** The rewritten module. */
  bytes: Uint8Array
  /** Export names of the defined mutable globals (and of already-exported ones, under their own name). */
  globals: string[]
  /** Export names of the defined tables. */
  tables: string[]
}

/**
 * Adds exports for every defined mutable global and every defined table not exported yet.
 * @throws InstrumentError (`MALFORMED`, `UNSUPPORTED_FEATURE`, `EXPORT_NAME_TAKEN`)
 */
export function exportState(bytes: Uint8Array): StateExports {
  const mod = parseSections(bytes)
  const imports = readImports(findSection(mod, SectionId.Import))
  const importedGlobals = imports.filter((i) => i.kind === ExternalKind.Global).length
  const importedTables = imports.filter((i) => i.kind === ExternalKind.Table).length
  const exportSection = findSection(mod, SectionId.Export)
  const existing = readExports(exportSection)
  const names = new Set(existing.map((e) => e.name))
  const exportedGlobal = new Map(existing.filter((e) => e.kind === ExternalKind.Global).map((e) => [e.index, e.name]))
  const exportedTable = new Map(existing.filter((e) => e.kind === ExternalKind.Table).map((e) => [e.index, e.name]))
  const added: { name: string; kind: number; index: number }[] = []
  const globals: string[] = []
  const tables: string[] = []
  const add = (name: string, kind: number, index: number) => {
    if (names.has(name)) throw new InstrumentError('EXPORT_NAME_TAKEN', `the module already exports "${name}"`, { exportName: name })
    names.add(name)
    added.push({ name, kind, index })
  }

  const g = findSection(mod, SectionId.Global)
  if (g !== undefined) {
    const p = g.payload
    const count = readU32(p, 0)
    let pos = count.next
    for (let i = 0; i < count.value; i++) {
      pos = skipValType(p, pos)
      const mutable = p[pos++]
      if (mutable === undefined) throw malformed('global section runs past its end', g.offset + pos)
      pos = readConstExpr(p, pos, g.offset)
      if (mutable !== 1) continue
      const index = importedGlobals + i
      const own = exportedGlobal.get(index)
      if (own !== undefined) globals.push(own)
      else {
        add(`${GLOBAL_EXPORT_PREFIX}${index}`, ExternalKind.Global, index)
        globals.push(`${GLOBAL_EXPORT_PREFIX}${index}`)
      }
    }
  }
  const t = findSection(mod, SectionId.Table)
  if (t !== undefined) {
    const p = t.payload
    const count = readU32(p, 0)
    let pos = count.next
    for (let i = 0; i < count.value; i++) {
      if (p[pos] === 0x40) throw new InstrumentError('UNSUPPORTED_FEATURE', `table ${i} has an initialiser`, { offset: t.offset + pos })
      pos = skipValType(p, pos)
      pos = readLimits(p, pos).next
      const index = importedTables + i
      const own = exportedTable.get(index)
      if (own !== undefined) tables.push(own)
      else {
        add(`${TABLE_EXPORT_PREFIX}${index}`, ExternalKind.Table, index)
        tables.push(`${TABLE_EXPORT_PREFIX}${index}`)
      }
    }
  }
  if (added.length === 0) return { bytes, globals, tables }
  const w = new ByteWriter((exportSection?.payload.length ?? 0) + 32 * added.length)
  w.u32(existing.length + added.length)
  if (exportSection !== undefined) w.bytes(exportSection.payload.subarray(readU32(exportSection.payload, 0).next))
  const utf8 = new TextEncoder()
  for (const e of added) {
    const name = utf8.encode(e.name)
    w.u32(name.length)
    w.bytes(name)
    w.u8(e.kind)
    w.u32(e.index)
  }
  putSection(mod, SectionId.Export, w.finish())
  return { bytes: encodeSections(mod), globals, tables }
}

/** A value type as the JS API names it. */
export type WasmValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref'

export interface FunctionSignature {
  params: WasmValType[]
  results: WasmValType[]
}

const VALTYPES: Record<number, WasmValType> = {
  0x7f: 'i32',
  0x7e: 'i64',
  0x7d: 'f32',
  0x7c: 'f64',
  0x7b: 'v128',
  0x70: 'funcref',
  0x6f: 'externref',
}

function readValTypes(p: Uint8Array, pos: number): { types: WasmValType[]; next: number } {
  const n = readU32(p, pos)
  pos = n.next
  const types: WasmValType[] = []
  for (let k = 0; k < n.value; k++) {
    const t = VALTYPES[p[pos]!]
    if (t === undefined) skipValType(p, pos) // throws with the reason
    types.push(t!)
    pos++
  }
  return { types, next: pos }
}

/** The signatures of the module's function imports (`module.name` -> signature) and of its exported functions. */
export function functionSignatures(bytes: Uint8Array): {
  imports: Map<string, FunctionSignature>
  exports: Map<string, FunctionSignature>
} {
  const mod = parseSections(bytes)
  const typeSection = findSection(mod, SectionId.Type)
  const types: FunctionSignature[] = []
  if (typeSection !== undefined) {
    const p = typeSection.payload
    const count = readU32(p, 0)
    let pos = count.next
    for (let i = 0; i < count.value; i++) {
      if (p[pos] !== 0x60)
        throw new InstrumentError('UNSUPPORTED_FEATURE', `type ${i} is not a function type`, { offset: typeSection.offset + pos })
      const params = readValTypes(p, pos + 1)
      const results = readValTypes(p, params.next)
      types.push({ params: params.types, results: results.types })
      pos = results.next
    }
  }
  const imports = new Map<string, FunctionSignature>()
  let importedFunctions = 0
  for (const imp of readImports(findSection(mod, SectionId.Import))) {
    if (imp.kind !== ExternalKind.Function) continue
    importedFunctions++
    const sig = types[imp.typeIndex!]
    if (sig === undefined) throw malformed(`import ${imp.module}.${imp.name} names a missing type`)
    imports.set(`${imp.module}.${imp.name}`, sig)
  }
  const defined = readFunctionTypes(findSection(mod, SectionId.Function))
  const exports = new Map<string, FunctionSignature>()
  for (const e of readExports(findSection(mod, SectionId.Export))) {
    if (e.kind !== ExternalKind.Function) continue
    const typeIndex = e.index < importedFunctions ? undefined : defined[e.index - importedFunctions]
    const sig = typeIndex === undefined ? undefined : types[typeIndex]
    if (sig !== undefined) exports.set(e.name, sig)
  }
  return { imports, exports }
}

/** Skips a vector of bytes (a data segment's contents). */
function skipBytes(p: Uint8Array, pos: number): number {
  const n = readU32(p, pos)
  return n.next + n.value
}

/**
 * Whether the module has passive data or element segments: `data.drop` / `elem.drop` change
 * instance state that no export reaches, so a snapshot cannot restore it in place.
 * @throws InstrumentError on a malformed section
 */
export function hasPassiveSegments(bytes: Uint8Array): boolean {
  const mod = parseSections(bytes)
  const data = findSection(mod, SectionId.Data)
  if (data !== undefined) {
    const p = data.payload
    const count = readU32(p, 0)
    let pos = count.next
    for (let i = 0; i < count.value; i++) {
      const flags = readU32(p, pos)
      pos = flags.next
      if (flags.value === 1) return true
      if (flags.value === 2) pos = readU32(p, pos).next
      else if (flags.value !== 0) throw malformed(`data segment ${i} has unknown flags ${flags.value}`, data.offset + pos)
      pos = skipBytes(p, readConstExpr(p, pos, data.offset))
    }
  }
  return readElementSegments(findSection(mod, SectionId.Element)).some((e) => e.passive)
}
