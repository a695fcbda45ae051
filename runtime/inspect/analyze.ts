/**
 * @module `inspectModule`: everything a module can ever ask of the host, read from its bytes
 * without compiling or running it. A module reaches the outside only through its imports, and
 * every direct call site is a static `call`: the inventory of call sites per import is complete,
 * and an import that is also reachable through a table (or a `ref.func`, or re-exported) is
 * flagged, since an indirect call could reach it from anywhere.
 *
 * Pure data out (`ModuleReport`, the JSON of `caplet inspect --json`: keys are stable, see the
 * README). Never compiles or instantiates the module, never trusts a count without bounds
 * (every read is bounds-checked by the LEB128 readers), and names are returned as the module
 * spells them: callers that print them escape them (`escapeControlCharacters`).
 */
import { ModuleError } from '../errors.js'
import { walkCode } from '../instrument/code-decoder.js'
import { InstrumentError, malformed } from '../instrument/errors.js'
import { readU32, skipLeb } from '../instrument/leb128.js'
import { readConstExpr, readElementSegments } from '../instrument/segments.js'
import {
  ExternalKind,
  findSection,
  parseSections,
  readExports,
  readImports,
  readLimits,
  readName,
  SectionId,
  type Limits,
  type ParsedModule,
  type Section,
} from '../instrument/sections.js'
import { WASI_FUNCTIONS, WASI_MODULE } from './wasi-functions.js'

export const REPORT_VERSION = 1

export type ExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag'

export interface CallerReport {
  /** Function index (imports counted). */
  index: number
  /** From the `name` section, when present. */
  name: string | null
  sites: number
}

export interface ImportReport {
  module: string
  name: string
  kind: ExternKind
  /** Function index, for functions. */
  index: number | null
  /** A function caplet provides (`wasi_snapshot_preview1`, one of its 46). */
  provided: boolean
  /** For provided WASI functions: what it does, in a few words. */
  description: string | null
  /** Direct `call`/`return_call` sites of this import. */
  callSites: number
  /** The functions calling it directly, most sites first. */
  callers: CallerReport[]
  /** In an element segment, named by `ref.func`, or exported: an indirect call may reach it. */
  reachableViaTable: boolean
  exported: boolean
}

export interface ImportGroup {
  module: string
  wasi: boolean
  imports: ImportReport[]
}

export interface ExportReport {
  name: string
  kind: ExternKind
  index: number
  /** For functions: the name-section name of the function, when present. */
  function: string | null
}

export interface MemoryReport {
  index: number
  imported: boolean
  /** In 64 KiB pages. */
  min: number
  max: number | null
  shared: boolean
  memory64: boolean
  /** Whether caplet's memory cap (`--memory`, default 1 GiB) applies: every defined memory. */
  capped: boolean
}

export interface TableReport {
  index: number
  imported: boolean
  elementType: string
  min: number
  max: number | null
}

export interface ModuleReport {
  /** Version of this report's shape; grows only by new keys. */
  version: number
  size: number
  /** `command` exports `_start`; `reactor` exports `_initialize` or neither but has exports. */
  kind: 'command' | 'reactor'
  moduleName: string | null
  functions: { imported: number; defined: number }
  imports: ImportGroup[]
  /** Imports caplet does not provide (anything outside its 46 WASI functions), as `module.name`. */
  unknownImports: string[]
  exports: ExportReport[]
  memories: MemoryReport[]
  tables: TableReport[]
  /** The start function (runs at instantiation, before `_start`). */
  start: { index: number; name: string | null } | null
  /** `call_indirect` sites: each may reach any function of the table. */
  indirectCallSites: number
  features: string[]
  customSections: { name: string; size: number }[]
  /** Whether every function body was decoded; otherwise `notes` says what was not. */
  complete: boolean
  notes: string[]
}

const KINDS: readonly ExternKind[] = ['function', 'table', 'memory', 'global', 'tag']

/**
 * Reads a module's inventory. @throws ModuleError naming the byte offset when the bytes are
 * not a well-formed module
 */
export function inspectModule(bytes: Uint8Array): ModuleReport {
  try {
    return analyze(bytes)
  } catch (e) {
    if (e instanceof InstrumentError) {
      const at = e.details.offset !== undefined && !/at byte \d+/.test(e.message) ? ` (at byte ${e.details.offset})` : ''
      throw new ModuleError(`${e.reason}${at}`, { cause: e })
    }
    throw e
  }
}

function analyze(input: Uint8Array): ModuleReport {
  const bytes = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  const mod = parseSections(bytes)
  const features = new Set<string>()
  const notes: string[] = []
  const imports = readImports(findSection(mod, SectionId.Import))
  const funcImports = imports.filter((i) => i.kind === ExternalKind.Function)
  const nImported = funcImports.length
  const nDefined = vectorLength(findSection(mod, SectionId.Function))
  const names = readNameSection(mod, notes)
  const nameOf = (i: number): string | null => names.functions.get(i) ?? null
  const exports = readExports(findSection(mod, SectionId.Export))
  for (const e of exports) if (e.kind > ExternalKind.Tag) throw malformed(`export ${JSON.stringify(e.name)} has unknown kind ${e.kind}`)

  // Types: multi-value and GC are visible there.
  scanTypes(findSection(mod, SectionId.Type), features)

  // Memories and tables, imported first.
  const memories: MemoryReport[] = []
  const tables: TableReport[] = []
  for (const imp of imports) {
    if (imp.kind === ExternalKind.Memory && imp.limits) memories.push(memoryReport(memories.length, true, imp.limits))
  }
  readTableImports(mod, tables)
  for (const l of readVector(findSection(mod, SectionId.Memory), (p, pos) => readLimits(p, pos)))
    memories.push(memoryReport(memories.length, false, l))
  readTables(findSection(mod, SectionId.Table), tables)
  if (memories.length > 1) features.add('multi-memory')
  for (const m of memories) {
    if (m.shared) features.add('threads')
    if (m.memory64) features.add('memory64')
  }
  if (tables.length > 1 || tables.some((t) => t.elementType !== 'funcref')) features.add('reference-types')
  if (findSection(mod, SectionId.Tag) !== undefined || imports.some((i) => i.kind === ExternalKind.Tag)) features.add('exception-handling')
  if (findSection(mod, SectionId.DataCount) !== undefined) features.add('bulk-memory')

  // Functions reachable other than by a direct call.
  const escaping = new Set<number>()
  for (const f of elementFunctions(findSection(mod, SectionId.Element), features)) escaping.add(f)
  for (const f of globalRefFuncs(findSection(mod, SectionId.Global))) escaping.add(f)
  const exportedFuncs = new Set(exports.filter((e) => e.kind === ExternalKind.Function).map((e) => e.index))

  // Call sites of each imported function, per caller.
  const sites = new Uint32Array(nImported)
  const callers: Map<number, number>[] = funcImports.map(() => new Map())
  let indirect = 0
  let caller = 0
  const code = findSection(mod, SectionId.Code)
  if (code !== undefined) {
    if (vectorLength(code) !== nDefined)
      throw malformed(`the code section has ${vectorLength(code)} bodies for ${nDefined} functions`, code.offset)
    walkCode(
      code.payload,
      code.offset,
      {
        op: (op, sub) => noteFeature(op, sub, features),
        call: (index, _at, tail) => {
          if (tail) features.add('tail-calls')
          if (index < nImported) {
            sites[index]!++
            const m = callers[index]!
            m.set(caller, (m.get(caller) ?? 0) + 1)
          }
        },
        callIndirect: (_t, table) => {
          indirect++
          if (table !== 0) features.add('reference-types')
        },
        refFunc: (index) => {
          escaping.add(index)
        },
        memory: (index) => {
          if (index !== 0) features.add('multi-memory')
        },
      },
      (f) => {
        caller = nImported + f
      },
      (f, e) => {
        features.add('gc')
        notes.push(
          `function ${nImported + f}${nameOf(nImported + f) !== null ? ` (${nameOf(nImported + f)})` : ''} was not fully decoded: ${e.message}; its calls are not counted`,
        )
      },
    )
  }

  const groups = new Map<string, ImportGroup>()
  const unknownImports: string[] = []
  let fi = 0
  for (const imp of imports) {
    const isFunc = imp.kind === ExternalKind.Function
    const index = isFunc ? fi++ : -1
    const provided = isFunc && imp.module === WASI_MODULE && Object.hasOwn(WASI_FUNCTIONS, imp.name)
    if (!provided) unknownImports.push(`${imp.module}.${imp.name}`)
    const report: ImportReport = {
      module: imp.module,
      name: imp.name,
      kind: kindName(imp.kind),
      index: isFunc ? index : null,
      provided,
      description: provided ? WASI_FUNCTIONS[imp.name]!.does : null,
      callSites: isFunc ? sites[index]! : 0,
      callers: isFunc
        ? [...callers[index]!]
            .map(([i, n]) => ({ index: i, name: nameOf(i), sites: n }))
            .sort((a, b) => b.sites - a.sites || a.index - b.index)
        : [],
      reachableViaTable: isFunc && (escaping.has(index) || exportedFuncs.has(index)),
      exported: isFunc && exportedFuncs.has(index),
    }
    let g = groups.get(imp.module)
    if (g === undefined) groups.set(imp.module, (g = { module: imp.module, wasi: imp.module === WASI_MODULE, imports: [] }))
    g.imports.push(report)
  }

  const startSection = findSection(mod, SectionId.Start)
  const startIndex = startSection !== undefined ? readU32(startSection.payload, 0).value : undefined
  const exportsStart = exports.some((e) => e.name === '_start' && e.kind === ExternalKind.Function)
  return {
    version: REPORT_VERSION,
    size: bytes.byteLength,
    kind: exportsStart ? 'command' : 'reactor',
    moduleName: names.module,
    functions: { imported: nImported, defined: nDefined },
    imports: [...groups.values()],
    unknownImports,
    exports: exports.map((e) => ({
      name: e.name,
      kind: kindName(e.kind),
      index: e.index,
      function: e.kind === ExternalKind.Function ? nameOf(e.index) : null,
    })),
    memories,
    tables,
    start: startIndex === undefined ? null : { index: startIndex, name: nameOf(startIndex) },
    indirectCallSites: indirect,
    features: [...features].sort(),
    customSections: mod.sections.filter((s) => s.id === SectionId.Custom).map((s) => ({ name: s.name ?? '', size: s.payload.length })),
    complete: notes.length === 0,
    notes,
  }
}

function kindName(k: number): ExternKind {
  return KINDS[k] ?? 'function'
}

function vectorLength(s: Section | undefined): number {
  return s === undefined ? 0 : readU32(s.payload, 0).value
}

function readVector<T>(s: Section | undefined, read: (p: Uint8Array, pos: number) => { value: T; next: number }): T[] {
  if (s === undefined) return []
  const p = s.payload
  const n = readU32(p, 0)
  let pos = n.next
  const out: T[] = []
  for (let i = 0; i < n.value; i++) {
    const r = read(p, pos)
    out.push(r.value)
    pos = r.next
  }
  return out
}

function memoryReport(index: number, imported: boolean, l: Limits): MemoryReport {
  return { index, imported, min: l.min, max: l.max ?? null, shared: l.shared, memory64: l.is64, capped: !imported }
}

function refTypeName(b: number | undefined): string {
  return b === 0x70 ? 'funcref' : b === 0x6f ? 'externref' : b === 0x64 || b === 0x63 ? 'typed-ref' : `0x${(b ?? 0).toString(16)}`
}

function readTableImports(mod: ParsedModule, tables: TableReport[]): void {
  const s = findSection(mod, SectionId.Import)
  if (s === undefined) return
  // readImports skips table types; read them again here for their element type and limits.
  const p = s.payload
  const n = readU32(p, 0)
  let pos = n.next
  for (let i = 0; i < n.value; i++) {
    pos = readName(p, pos).next
    pos = readName(p, pos).next
    const kind = p[pos++]
    if (kind === ExternalKind.Function || kind === ExternalKind.Tag) pos = skipLeb(p, kind === ExternalKind.Tag ? pos + 1 : pos, 5)
    else if (kind === ExternalKind.Memory) pos = readLimits(p, pos).next
    else if (kind === ExternalKind.Global) pos += 2
    else if (kind === ExternalKind.Table) {
      const et = p[pos++]
      const l = readLimits(p, pos)
      pos = l.next
      tables.push({ index: tables.length, imported: true, elementType: refTypeName(et), min: l.value.min, max: l.value.max ?? null })
    }
  }
}

function readTables(s: Section | undefined, tables: TableReport[]): void {
  if (s === undefined) return
  const p = s.payload
  const n = readU32(p, 0)
  let pos = n.next
  for (let i = 0; i < n.value; i++) {
    if (p[pos] === 0x40)
      throw new InstrumentError('UNSUPPORTED_FEATURE', 'tables with initialiser expressions are not supported', { offset: s.offset + pos })
    const et = p[pos++]
    if (et === 0x63 || et === 0x64) pos = skipLeb(p, pos, 5)
    const l = readLimits(p, pos)
    pos = l.next
    tables.push({ index: tables.length, imported: false, elementType: refTypeName(et), min: l.value.min, max: l.value.max ?? null })
  }
}

function scanTypes(s: Section | undefined, features: Set<string>): void {
  if (s === undefined) return
  const p = s.payload
  const n = readU32(p, 0)
  let pos = n.next
  for (let i = 0; i < n.value; i++) {
    const form = p[pos]
    if (form !== 0x60) {
      features.add('gc') // rec groups, struct and array types: not decoded further
      return
    }
    pos++
    for (let side = 0; side < 2; side++) {
      const k = readU32(p, pos)
      pos = k.next
      if (side === 1 && k.value > 1) features.add('multi-value')
      for (let j = 0; j < k.value; j++) {
        const t = p[pos]
        if (t === 0x7b) features.add('simd')
        if (t === 0x6f) features.add('reference-types')
        if (t === 0x63 || t === 0x64) {
          features.add('typed-function-references')
          pos = skipLeb(p, pos + 1, 5)
        } else pos++
      }
    }
  }
}

/** Function indices placed in tables by element segments; notes the features their encodings need. */
function elementFunctions(s: Section | undefined, features: Set<string>): number[] {
  const out: number[] = []
  for (const seg of readElementSegments(s)) {
    if (seg.flags !== 0) features.add(seg.flags === 2 || seg.flags === 6 ? 'reference-types' : 'bulk-memory')
    out.push(...seg.functions)
  }
  return out
}

function globalRefFuncs(s: Section | undefined): number[] {
  if (s === undefined) return []
  const p = s.payload
  const out: number[] = []
  const n = readU32(p, 0)
  let pos = n.next
  for (let i = 0; i < n.value; i++) {
    const t = p[pos++]
    if (t === 0x63 || t === 0x64) pos = skipLeb(p, pos, 5)
    pos++ // mutability
    pos = readConstExpr(p, pos, s.offset, (f) => out.push(f))
  }
  return out
}

interface Names {
  module: string | null
  functions: Map<number, string>
}

/** The `name` custom section's module and function names; a malformed one is noted, not fatal. */
function readNameSection(mod: ParsedModule, notes: string[]): Names {
  const names: Names = { module: null, functions: new Map() }
  const s = mod.sections.find((x) => x.id === SectionId.Custom && x.name === 'name')
  if (s === undefined) return names
  const p = s.payload
  try {
    let pos = readName(p, 0).next
    while (pos < p.length) {
      const id = p[pos++]!
      const size = readU32(p, pos)
      const end = size.next + size.value
      if (end > p.length) throw malformed('name subsection runs past its section', s.offset + pos)
      if (id === 0) names.module = readName(p.subarray(0, end), size.next).value
      else if (id === 1) {
        const sub = p.subarray(0, end)
        const n = readU32(sub, size.next)
        let q = n.next
        for (let i = 0; i < n.value; i++) {
          const idx = readU32(sub, q)
          const name = readName(sub, idx.next)
          names.functions.set(idx.value, name.value)
          q = name.next
        }
      }
      pos = end
    }
  } catch (e) {
    if (!(e instanceof InstrumentError)) throw e
    notes.push(`the name section is malformed (${e.reason}); names from it may be missing`)
  }
  return names
}

/** Which proposal an instruction belongs to. */
function noteFeature(op: number, sub: number, features: Set<string>): void {
  if (sub >= 0) {
    if (op === 0xfd) features.add('simd')
    else if (op === 0xfe) features.add('threads')
    else if (sub <= 7) features.add('saturating-float-to-int')
    else if (sub <= 14) features.add('bulk-memory')
    else features.add('reference-types')
    return
  }
  if (op < 0xc0) {
    if ((op >= 0x06 && op <= 0x0a) || op === 0x18 || op === 0x19 || op === 0x1f) features.add('exception-handling')
    else if (op === 0x14 || op === 0x15) features.add('typed-function-references')
    else if (op === 0x1c || op === 0x25 || op === 0x26) features.add('reference-types')
    return
  }
  if (op <= 0xc4) features.add('sign-extension')
  else if (op <= 0xd2) features.add('reference-types')
  else if (op === 0xd3 || op === 0xfb) features.add('gc')
  else if (op <= 0xd6) features.add('typed-function-references')
}
