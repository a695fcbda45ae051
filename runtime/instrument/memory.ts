/**
 * @module Memory cap: rewrite each defined memory's declared maximum so the engine itself enforces
 * the limit. `memory.grow` past the new maximum then returns -1, as the spec says, and a guest's
 * `malloc` returns NULL; nothing has to be checked on the host's side at run time.
 */
import { InstrumentError } from './errors.js'
import { ByteWriter, putU32, readU32 } from './leb128.js'
import {
  ExternalKind,
  SectionId,
  encodeSections,
  findSection,
  parseSections,
  putSection,
  readImports,
  readLimits,
  writeLimits,
  u32Size,
  type Limits,
} from './sections.js'
import { REUSED_MEMORY_IMPORT } from './fuel-export.js'

export { REUSED_MEMORY_IMPORT }

/** 64 KiB. */
export const WASM_PAGE_SIZE = 65536
/** The largest memory a 32-bit memory can declare: 4 GiB. */
export const MAX_PAGES_32 = 65536
/** The largest memory a memory64 memory can declare (2^64 bytes). */
export const MAX_PAGES_64 = 2 ** 48

export interface CappedMemory {
  /** Memory index (imported memories come first). */
  index: number
  minPages: number
  /** The maximum the module declared, if any. */
  declaredMaxPages: number | undefined
  /** The maximum it has now: `min(declared, cap)`. */
  maxPages: number
  is64: boolean
  shared: boolean
}

export interface ImportedMemory {
  index: number
  module: string
  name: string
  minPages: number
  maxPages: number | undefined
}

export interface MemoryCapResult {
  /** The rewritten module; the input itself when nothing needed to change. */
  bytes: Uint8Array
  changed: boolean
  memories: CappedMemory[]
  /**
   * Memories the module imports: their size is whoever supplies them's business, so a cap cannot
   * be written into the module. caplet provides no memory import; the runtime refuses them.
   */
  importedMemories: ImportedMemory[]
  /** Set when the module was rewritten in place (`capMemory`'s `room`): how to undo it. */
  edit?: InPlaceEdit
}

/** A memory section rewritten inside the caller's own buffer; everything after it moved by `length - old.length`. */
export interface InPlaceEdit {
  /** The edited module: a view of the same memory as the bytes given. */
  bytes: Uint8Array
  /** Where the memory section (id and size included) starts. */
  at: number
  /** Its length now. */
  length: number
  /** Its bytes before the edit (a copy). */
  old: Uint8Array
}

/** A fresh copy of the module as it was before `edit`. */
export function beforeEdit(edit: InPlaceEdit): Uint8Array {
  const bytes = edit.bytes
  const out = new Uint8Array(bytes.length - edit.length + edit.old.length)
  out.set(bytes.subarray(0, edit.at))
  out.set(edit.old, edit.at)
  out.set(bytes.subarray(edit.at + edit.length), edit.at + edit.old.length)
  return out
}

/**
 * Caps every memory the module defines at `maxPages` 64 KiB pages: the declared maximum becomes
 * `min(declared, maxPages)`, and one is added if absent. Pure: `bytes` is not modified, unless
 * `room` is given: then the buffer under `bytes` is caplet's own (nobody else holds it) with
 * `room` bytes usable from `bytes.byteOffset`, and the limits are rewritten in place (the bytes
 * after the section shifted) when the module still fits, instead of copying it (30 MB: ~15 ms).
 * Every check is made before the first write: a throw leaves `bytes` as they were.
 *
 * @throws InstrumentError `MEMORY_MIN_EXCEEDS_CAP` (with `details.minPages`/`capPages`) when a
 *   memory's minimum is already above the cap, so the runtime can refuse the module up front;
 *   `MALFORMED` for a broken module; `BAD_OPTION` for a cap that is not a non-negative integer.
 */
export function capMemory(bytes: Uint8Array, maxPages: number, room?: number): MemoryCapResult {
  if (!Number.isSafeInteger(maxPages) || maxPages < 0) {
    throw new InstrumentError('BAD_OPTION', `memory cap must be a non-negative whole number of pages, got ${maxPages}`)
  }
  const module = parseSections(bytes)
  const importedMemories: ImportedMemory[] = []
  for (const imp of readImports(findSection(module, SectionId.Import))) {
    if (imp.kind !== ExternalKind.Memory) continue
    importedMemories.push({
      index: importedMemories.length,
      module: imp.module,
      name: imp.name,
      minPages: imp.limits!.min,
      maxPages: imp.limits!.max,
    })
  }

  const section = findSection(module, SectionId.Memory)
  const memories: CappedMemory[] = []
  if (section === undefined) return { bytes, changed: false, memories, importedMemories }

  const p = section.payload
  const count = readU32(p, 0)
  let pos = count.next
  const rewritten: Limits[] = []
  let changed = false
  for (let i = 0; i < count.value; i++) {
    const { value: limits, next } = readLimits(p, pos)
    pos = next
    const index = importedMemories.length + i
    const cap = Math.min(maxPages, limits.is64 ? MAX_PAGES_64 : MAX_PAGES_32)
    if (limits.min > cap) {
      throw new InstrumentError(
        'MEMORY_MIN_EXCEEDS_CAP',
        `memory ${index} needs at least ${limits.min} pages (${formatBytes(limits.min)}) but the cap is ${cap} pages (${formatBytes(cap)})`,
        { memoryIndex: index, minPages: limits.min, capPages: cap },
      )
    }
    const newMax = limits.max === undefined ? cap : Math.min(limits.max, cap)
    if (newMax !== limits.max) changed = true
    rewritten.push({ ...limits, max: newMax })
    memories.push({ index, minPages: limits.min, declaredMaxPages: limits.max, maxPages: newMax, is64: limits.is64, shared: limits.shared })
  }
  if (pos !== p.length)
    throw new InstrumentError('MALFORMED', 'malformed module: memory section has trailing bytes', { offset: section.offset + pos })
  if (!changed) return { bytes, changed, memories, importedMemories }

  const w = new ByteWriter(p.length + 8)
  w.u32(rewritten.length)
  for (const limits of rewritten) writeLimits(w, limits)
  const payload = w.finish()
  const length = 1 + u32Size(payload.length) + payload.length
  const at = section.offset - (section.raw!.length - p.length)
  const size = bytes.length - section.raw!.length + length
  if (room !== undefined && size <= room && bytes.byteOffset + room <= bytes.buffer.byteLength) {
    const old = section.raw!.slice()
    const whole = new Uint8Array(bytes.buffer, bytes.byteOffset, Math.max(size, bytes.length))
    whole.copyWithin(at + length, at + section.raw!.length, bytes.length)
    const out = whole.subarray(0, size)
    out[at] = SectionId.Memory
    out.set(payload, putU32(out, at + 1, payload.length))
    return { bytes: out, changed, memories, importedMemories, edit: { bytes: out, at, length, old } }
  }
  putSection(module, SectionId.Memory, payload)
  return { bytes: encodeSections(module), changed, memories, importedMemories }
}

function formatBytes(pages: number): string {
  const bytes = pages * WASM_PAGE_SIZE
  if (bytes >= 2 ** 30 && bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30} GiB`
  if (bytes >= 2 ** 20 && bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20} MiB`
  return `${bytes / 1024} KiB`
}

export interface ImportedMemoryResult {
  bytes: Uint8Array
  /** The limits the host's memory must have; absent when the module was left as it was. */
  memory?: { minPages: number; maxPages: number }
}

/**
 * Turns the module's one defined memory into the import `caplet.memory` with the same limits,
 * so that the host can supply a memory it keeps between runs (zeroed first: a guest sees the
 * same bytes as in a fresh one). Memory index 0, its export and the active data segments (which
 * instantiation writes into an imported memory as into a defined one) are unchanged. Left as it
 * is: a module that imports a memory or defines none or several, a shared or 64-bit memory, one
 * without a maximum (cap it first). Pure: `bytes` is not modified. @throws InstrumentError `MALFORMED`
 */
export function importMemory(bytes: Uint8Array): ImportedMemoryResult {
  const module = parseSections(bytes)
  const importSection = findSection(module, SectionId.Import)
  if (readImports(importSection).some((i) => i.kind === ExternalKind.Memory)) return { bytes }
  const section = findSection(module, SectionId.Memory)
  if (section === undefined) return { bytes }
  const count = readU32(section.payload, 0)
  if (count.value !== 1) return { bytes }
  const { value: limits, next } = readLimits(section.payload, count.next)
  if (next !== section.payload.length)
    throw new InstrumentError('MALFORMED', 'malformed module: memory section has trailing bytes', { offset: section.offset + next })
  if (limits.shared || limits.is64 || limits.max === undefined) return { bytes }
  const old = importSection?.payload
  const oldCount = old === undefined ? undefined : readU32(old, 0)
  const w = new ByteWriter((old?.length ?? 0) + 32)
  w.u32((oldCount?.value ?? 0) + 1)
  if (old !== undefined) w.bytes(old.subarray(oldCount!.next))
  for (const name of [REUSED_MEMORY_IMPORT.module, REUSED_MEMORY_IMPORT.name]) {
    const utf8 = new TextEncoder().encode(name)
    w.u32(utf8.length)
    w.bytes(utf8)
  }
  w.u8(ExternalKind.Memory)
  writeLimits(w, limits)
  putSection(module, SectionId.Import, w.finish())
  const empty = new ByteWriter(1)
  empty.u32(0)
  putSection(module, SectionId.Memory, empty.finish())
  return { bytes: encodeSections(module), memory: { minPages: limits.min, maxPages: limits.max } }
}
