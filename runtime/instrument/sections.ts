/**
 * @module A section-level reader and writer for WebAssembly binaries.
 *
 * `parseSections` splits a module into its sections without decoding them; `encodeSections`
 * puts them back. A section the caller did not replace is written from its original bytes, so
 * a module round-trips byte for byte (even a non-minimal section-size LEB128 is kept), and
 * custom and unknown sections are always copied untouched.
 *
 * The readers below decode only the sections the rewriter needs (types, imports, functions,
 * memories, globals, exports); everything else stays opaque.
 */
import { InstrumentError, malformed } from './errors.js'
import { ByteWriter, putU32, readU32, readU64, readS33, type Decoded } from './leb128.js'

export const WASM_MAGIC = 0x6d736100 // "\0asm", little endian
export const WASM_VERSION = 1

export const SectionId = {
  Custom: 0,
  Type: 1,
  Import: 2,
  Function: 3,
  Table: 4,
  Memory: 5,
  Global: 6,
  Export: 7,
  Start: 8,
  Element: 9,
  Code: 10,
  Data: 11,
  DataCount: 12,
  Tag: 13,
} as const
export type SectionId = (typeof SectionId)[keyof typeof SectionId]

/** Where each known non-custom section may appear, in the order the spec requires. */
const SECTION_ORDER: Readonly<Record<number, number>> = {
  [SectionId.Type]: 1,
  [SectionId.Import]: 2,
  [SectionId.Function]: 3,
  [SectionId.Table]: 4,
  [SectionId.Memory]: 5,
  [SectionId.Tag]: 6,
  [SectionId.Global]: 7,
  [SectionId.Export]: 8,
  [SectionId.Start]: 9,
  [SectionId.Element]: 10,
  [SectionId.DataCount]: 11,
  [SectionId.Code]: 12,
  [SectionId.Data]: 13,
}

export interface Section {
  id: number
  /** The section's contents (after the id and size), a view into the input for parsed sections. */
  payload: Uint8Array
  /** Offset of `payload` in the parsed module (for error messages); -1 for a new section. */
  offset: number
  /** The section exactly as read (id, size, payload); absent once replaced. */
  raw?: Uint8Array
  /** For custom sections: the name. */
  name?: string
}

export interface ParsedModule {
  version: number
  sections: Section[]
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function readName(bytes: Uint8Array, offset: number): Decoded<string> {
  const len = readU32(bytes, offset)
  const end = len.next + len.value
  if (end > bytes.length) throw malformed('name runs past the end of its section', offset)
  let value: string
  try {
    value = utf8.decode(bytes.subarray(len.next, end))
  } catch {
    throw malformed('name is not valid UTF-8', offset)
  }
  return { value, next: end }
}

/** Splits a module into sections. Payloads are views into `bytes` (no copy). */
export function parseSections(input: Uint8Array): ParsedModule {
  // A plain view: subarrays of a Node Buffer are Buffers, much slower to make by the thousand.
  const bytes = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  if (bytes.length < 8) throw malformed('shorter than the 8-byte header')
  const magic = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0
  if (magic !== WASM_MAGIC) throw malformed('no "\\0asm" header: not a WebAssembly module', 0)
  const version = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0
  if (version !== WASM_VERSION) {
    throw new InstrumentError('UNSUPPORTED_FEATURE', `unsupported binary version ${version} (only core modules, version 1)`, { offset: 4 })
  }
  const sections: Section[] = []
  let pos = 8
  let lastOrder = 0
  while (pos < bytes.length) {
    const start = pos
    const id = bytes[pos++]!
    const size = readU32(bytes, pos)
    const end = size.next + size.value
    if (end > bytes.length) throw malformed(`section ${id} runs past the end of the module`, start)
    const order = SECTION_ORDER[id]
    if (id !== SectionId.Custom) {
      if (order !== undefined) {
        if (order <= lastOrder) throw malformed(`section ${id} is out of order or repeated`, start)
        lastOrder = order
      }
    }
    const section: Section = { id, payload: bytes.subarray(size.next, end), offset: size.next, raw: bytes.subarray(start, end) }
    if (id === SectionId.Custom) section.name = readName(bytes.subarray(0, end), size.next).value
    sections.push(section)
    pos = end
  }
  return { version, sections }
}

/**
 * The sections back into a module. Untouched sections are copied from their original bytes,
 * into one buffer of the exact size (a 30 MB module is copied once, not grown and trimmed).
 */
export function encodeSections(module: ParsedModule): Uint8Array {
  let total = 8
  for (const s of module.sections) total += s.raw !== undefined ? s.raw.length : 1 + u32Size(s.payload.length) + s.payload.length
  const out = new Uint8Array(total)
  out.set([
    0x00,
    0x61,
    0x73,
    0x6d,
    module.version & 0xff,
    (module.version >>> 8) & 0xff,
    (module.version >>> 16) & 0xff,
    module.version >>> 24,
  ])
  let at = 8
  for (const s of module.sections) {
    if (s.raw !== undefined) {
      out.set(s.raw, at)
      at += s.raw.length
    } else {
      out[at++] = s.id
      at = putU32(out, at, s.payload.length)
      out.set(s.payload, at)
      at += s.payload.length
    }
  }
  return out
}

/** How many bytes `n` (a u32) takes as LEB128. */
export function u32Size(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

export function findSection(module: ParsedModule, id: SectionId): Section | undefined {
  return module.sections.find((s) => s.id === id)
}

/**
 * Replaces the section with `id`, or inserts it where the spec's order puts it (custom sections
 * between stay where they are, relative to the known sections around them).
 */
export function putSection(module: ParsedModule, id: SectionId, payload: Uint8Array): void {
  const section: Section = { id, payload, offset: -1 }
  const at = module.sections.findIndex((s) => s.id === id)
  if (at >= 0) {
    module.sections[at] = section
    return
  }
  const order = SECTION_ORDER[id]!
  let insertAt = module.sections.length
  for (let i = 0; i < module.sections.length; i++) {
    const o = SECTION_ORDER[module.sections[i]!.id]
    if (o !== undefined && o > order) {
      insertAt = i
      break
    }
  }
  module.sections.splice(insertAt, 0, section)
}

// ---------------------------------------------------------------------------------------------
// Decoders for the few sections the rewriter reads.

/** Value-type codes. */
export const ValType = {
  I32: 0x7f,
  I64: 0x7e,
  F32: 0x7d,
  F64: 0x7c,
  V128: 0x7b,
  FuncRef: 0x70,
  ExternRef: 0x6f,
} as const

/** Skips one value type; refuses the GC proposal's reference types. */
export function skipValType(bytes: Uint8Array, pos: number): number {
  const b = bytes[pos]
  switch (b) {
    case 0x7f:
    case 0x7e:
    case 0x7d:
    case 0x7c:
    case 0x7b:
    case 0x70:
    case 0x6f:
      return pos + 1
    case 0x63:
    case 0x64: // (ref null ht), (ref ht): typed function references / GC
      throw new InstrumentError('UNSUPPORTED_FEATURE', `typed reference value types (0x${b.toString(16)}) are not supported`, {
        offset: pos,
      })
    case undefined:
      throw malformed('unexpected end of input in a value type', pos)
    default:
      throw new InstrumentError('UNSUPPORTED_FEATURE', `unknown value type 0x${b.toString(16)}`, { offset: pos })
  }
}

export interface Limits {
  flags: number
  min: number
  max: number | undefined
  /** memory64 (flag bit 2): min and max are u64 on the wire. */
  is64: boolean
  shared: boolean
}

export function readLimits(bytes: Uint8Array, offset: number): Decoded<Limits> {
  const flags = bytes[offset]
  if (flags === undefined) throw malformed('unexpected end of input in limits', offset)
  if ((flags & ~0x07) !== 0) throw new InstrumentError('UNSUPPORTED_FEATURE', `unknown limits flags 0x${flags.toString(16)}`, { offset })
  const is64 = (flags & 0x04) !== 0
  let pos = offset + 1
  const readBound = (): number => {
    if (!is64) {
      const r = readU32(bytes, pos)
      pos = r.next
      return r.value
    }
    const r = readU64(bytes, pos)
    pos = r.next
    if (r.value > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('memory64 limit too large', offset)
    return Number(r.value)
  }
  const min = readBound()
  const max = (flags & 0x01) !== 0 ? readBound() : undefined
  return { value: { flags, min, max, is64, shared: (flags & 0x02) !== 0 }, next: pos }
}

export function writeLimits(w: ByteWriter, limits: Limits): void {
  const flags = (limits.flags & ~0x01) | (limits.max !== undefined ? 0x01 : 0)
  w.u8(flags)
  const put = (n: number) => (limits.is64 ? w.u64(BigInt(n)) : w.u32(n))
  put(limits.min)
  if (limits.max !== undefined) put(limits.max)
}

export interface FuncType {
  params: number
  results: number
}

/** The type section's function types; anything but plain `func` types (GC) is refused. */
export function readTypes(section: Section | undefined): FuncType[] {
  if (section === undefined) return []
  const p = section.payload
  const count = readU32(p, 0)
  let pos = count.next
  const types: FuncType[] = []
  for (let i = 0; i < count.value; i++) {
    const form = p[pos]
    if (form !== 0x60) {
      throw new InstrumentError(
        'UNSUPPORTED_FEATURE',
        `type ${i} is not a function type (form 0x${(form ?? 0).toString(16)}): GC types are not supported`,
        { offset: section.offset + pos },
      )
    }
    pos++
    const params = readU32(p, pos)
    pos = params.next
    for (let k = 0; k < params.value; k++) pos = skipValType(p, pos)
    const results = readU32(p, pos)
    pos = results.next
    for (let k = 0; k < results.value; k++) pos = skipValType(p, pos)
    types.push({ params: params.value, results: results.value })
  }
  return types
}

export const ExternalKind = {
  Function: 0,
  Table: 1,
  Memory: 2,
  Global: 3,
  Tag: 4,
} as const
export type ExternalKind = (typeof ExternalKind)[keyof typeof ExternalKind]

export interface Import {
  module: string
  name: string
  kind: ExternalKind
  /** Function imports: the type index. */
  typeIndex?: number
  /** Memory imports: the limits. */
  limits?: Limits
}

export function readImports(section: Section | undefined): Import[] {
  if (section === undefined) return []
  const p = section.payload
  const count = readU32(p, 0)
  let pos = count.next
  const imports: Import[] = []
  for (let i = 0; i < count.value; i++) {
    const mod = readName(p, pos)
    const name = readName(p, mod.next)
    pos = name.next
    const kind = p[pos++]
    const imp: Import = { module: mod.value, name: name.value, kind: kind as ExternalKind }
    switch (kind) {
      case ExternalKind.Function: {
        const t = readU32(p, pos)
        imp.typeIndex = t.value
        pos = t.next
        break
      }
      case ExternalKind.Table: {
        pos = skipValType(p, pos)
        pos = readLimits(p, pos).next
        break
      }
      case ExternalKind.Memory: {
        const l = readLimits(p, pos)
        imp.limits = l.value
        pos = l.next
        break
      }
      case ExternalKind.Global: {
        pos = skipValType(p, pos)
        pos++ // mutability
        break
      }
      case ExternalKind.Tag: {
        pos++ // attribute (0 = exception)
        pos = readU32(p, pos).next
        break
      }
      default:
        throw malformed(`import ${i} has unknown kind ${kind}`, section.offset + pos - 1)
    }
    imports.push(imp)
  }
  if (pos > p.length) throw malformed('import section runs past its end', section.offset)
  return imports
}

/** The function section: the type index of each defined function. */
export function readFunctionTypes(section: Section | undefined): Uint32Array {
  if (section === undefined) return new Uint32Array(0)
  const p = section.payload
  const count = readU32(p, 0)
  const out = new Uint32Array(count.value)
  let pos = count.next
  for (let i = 0; i < count.value; i++) {
    const t = readU32(p, pos)
    out[i] = t.value
    pos = t.next
  }
  return out
}

export interface Export {
  name: string
  kind: ExternalKind
  index: number
}

export function readExports(section: Section | undefined): Export[] {
  if (section === undefined) return []
  const p = section.payload
  const count = readU32(p, 0)
  let pos = count.next
  const exports: Export[] = []
  for (let i = 0; i < count.value; i++) {
    const name = readName(p, pos)
    const kind = p[name.next]
    if (kind === undefined) throw malformed('export section runs past its end', section.offset)
    const index = readU32(p, name.next + 1)
    exports.push({ name: name.value, kind: kind as ExternalKind, index: index.value })
    pos = index.next
  }
  return exports
}

/** The number of entries of a vector section (its leading u32), 0 when absent. */
export function vectorCount(section: Section | undefined): number {
  return section === undefined ? 0 : readU32(section.payload, 0).value
}

/** The block type at `pos` in a code body: returns the offset after it. */
export function skipBlockType(bytes: Uint8Array, pos: number): number {
  const b = bytes[pos]
  switch (b) {
    case 0x40:
    case 0x7f:
    case 0x7e:
    case 0x7d:
    case 0x7c:
    case 0x7b:
    case 0x70:
    case 0x6f:
      return pos + 1
    case 0x63:
    case 0x64:
      throw new InstrumentError('UNSUPPORTED_FEATURE', 'typed reference block types are not supported', { offset: pos })
    case undefined:
      throw malformed('unexpected end of input in a block type', pos)
  }
  const r = readS33(bytes, pos)
  if (r.value < 0) throw new InstrumentError('UNSUPPORTED_FEATURE', `unknown block type 0x${b.toString(16)}`, { offset: pos })
  return r.next
}
