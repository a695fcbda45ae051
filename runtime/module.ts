/**
 * @module The module pipeline: load (path, bytes, URL), validate, compile once per process
 * (cached by content hash), and check imports against what the host provides before anything
 * runs, so an unknown import is refused by name rather than failing at link time.
 *
 * Engine tiers. V8 compiles a wasm function on its first call with its baseline compiler
 * (Liftoff) and recompiles it with its optimising compiler (TurboFan) once it has run enough;
 * but the new code is used from the *next* call on: V8 has no on-stack replacement for wasm.
 * A function whose hot loop runs inside one call (a `main` that loops, a kernel called once)
 * therefore stays in baseline code for its whole run, at about 2x the cost of optimised code.
 * A function without a loop can only be hot by being called often, and tier-up serves it.
 * So `tier: 'auto'` (the default) asks V8, through its per-function compilation hints, to
 * compile straight with TurboFan the looping functions of the start spine (`_start` and what
 * only it calls, once: `main`, a kernel called once), and leaves every other function to
 * Liftoff and tier-up; start-up pays TurboFan for a handful of functions, whatever the size
 * of the module. `optimized` compiles every function with TurboFan
 * (the steadiest code, the slowest start of a large module); `baseline` is V8's own default.
 * Without the hints feature (another engine, a V8 that dropped it), every tier is `baseline`.
 */
import { Buffer } from 'node:buffer'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { ModuleError } from './errors.js'
import { readU32, skipLeb } from './instrument/index.js'
import { BASE_IMM, FC_IMM, FD_IMM, FE_IMM, Imm } from './instrument/opcodes.js'
import {
  ExternalKind, findSection, parseSections, readExports, readImports, SectionId, skipBlockType, type ParsedModule, type Section,
} from './instrument/sections.js'
import { checkImports, checkModuleBytes, instrumentModule } from './module-pipeline.js'

export { checkImports, importedFunctions, isCommand } from './module-pipeline.js'

export type ModuleSource = string | URL | Uint8Array | ArrayBuffer | WebAssembly.Module

const cache = new Map<string, WebAssembly.Module>()
const CACHE_MAX = 64

function readSource(source: string | URL): Uint8Array {
  const path = source instanceof URL ? fileURLToPath(source) : source
  try {
    return readFileSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : String(code ?? e)
    throw new ModuleError(`cannot read module ${JSON.stringify(path)}: ${why}`, { cause: e })
  }
}

export interface LoadOptions {
  /** Cap linear memory at this many 64 KiB pages (the module is rewritten). */
  memoryPages?: number | undefined
  /** Instrument for fuel metering. */
  fuel?: boolean
  /** Only these WASI functions may be imported. */
  syscalls?: readonly string[] | undefined
  /** Which engine tier compiles which function (see the module comment). Default `auto`. */
  tier?: Tier | undefined
}

/**
 * `auto`: looping functions compiled optimised on first call, the rest baseline then tier-up.
 * `optimized`: every function compiled optimised on first call. `baseline`: the engine's default.
 */
export type Tier = 'auto' | 'optimized' | 'baseline'
export const TIERS: readonly Tier[] = ['auto', 'optimized', 'baseline']

/** The tier used when none is given: `CAPLET_TIER` in the environment, else `auto`. */
export function defaultTier(): Tier {
  const env = typeof process !== 'undefined' ? process.env.CAPLET_TIER : undefined
  return env !== undefined && (TIERS as readonly string[]).includes(env) ? env as Tier : 'auto'
}

/**
 * Compiles (or reuses) a module, instrumented as asked, and checks its imports.
 * Compiled modules are cached per process by content hash and instrumentation.
 * @throws ModuleError
 */
export function loadModule(source: ModuleSource, options: LoadOptions = {}): WebAssembly.Module {
  if (source instanceof WebAssembly.Module) {
    if (options.memoryPages !== undefined || options.fuel) {
      throw new ModuleError('memory and fuel limits need the module bytes, not a compiled WebAssembly.Module')
    }
    checkImports(source, options.syscalls)
    return source
  }
  const { bytes, digest } = typeof source === 'string' || source instanceof URL ? hashed(readSource(source)) : remembered(source)
  const tier = options.tier ?? defaultTier()
  const key = `${digest}:${options.memoryPages ?? ''}:${options.fuel ? 'fuel' : ''}:${tier}`
  let mod = cache.get(key)
  if (mod === undefined) {
    checkModuleBytes(bytes)
    const code = withTierHints(instrumentModule(bytes, options), tier)
    try {
      mod = new WebAssembly.Module(code as Uint8Array<ArrayBuffer>)
    } catch (e) {
      throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
    }
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
    cache.set(key, mod)
  }
  checkImports(mod, options.syscalls)
  return mod
}

interface Hashed {
  /** A private copy of the bytes: what is compiled, never the caller's (which may change). */
  readonly bytes: Uint8Array
  readonly digest: string
}

function hashed(bytes: Uint8Array): Hashed {
  return { bytes, digest: createHash('sha256').update(bytes).digest('hex') }
}

/**
 * The bytes last passed in each caller's object, with their digest. The same object passed
 * again is compared byte for byte with that private copy (a memcmp, several times cheaper than
 * hashing) and, only if equal, keeps its digest; changed bytes are copied and hashed afresh.
 * NOTE: the copy lives as long as the caller's object does (a weak key); it is the copy the
 * module is compiled from anyway. SECURITY: the cache key always describes exactly the bytes
 * that get compiled: a copy taken before hashing, so a writer racing on shared memory cannot
 * make one digest name another module.
 */
const seen = new WeakMap<Uint8Array | ArrayBuffer, Hashed>()

function remembered(source: Uint8Array | ArrayBuffer): Hashed {
  let view: Uint8Array
  let copy: Uint8Array
  try {
    view = source instanceof Uint8Array ? source : new Uint8Array(source)
    const last = seen.get(source)
    if (last !== undefined && last.bytes.byteLength === view.byteLength && Buffer.compare(last.bytes, view) === 0) return last
    copy = new Uint8Array(view) // a copy (Buffer#slice would be a view)
  } catch (e) {
    // A buffer transferred away (detached) cannot be read: the caller's bytes are unusable.
    throw new ModuleError(`cannot read the module bytes: ${(e as Error).message}`, { cause: e })
  }
  const fresh = hashed(copy)
  seen.set(source, fresh)
  return fresh
}

// ---- Engine tiers: V8's compilation hints ------------------------------------------------------

/** One byte per function: bits 0-1 strategy (0 = default), 2-3 baseline tier, 4-5 top tier (2 = optimised). */
const HINT_OPTIMIZED = (2 << 2) | (2 << 4)
const HINT_DEFAULT = 0
const HINTS_SECTION = 'compilationHints'

let hintsSupported: boolean | undefined

/**
 * Whether this engine honours compilation hints. The V8 flag is switched on once (it only lets
 * a module carry a `compilationHints` section); a module whose hints section has the wrong
 * count must then fail to compile, which tells that the section is read at all.
 */
export function compilationHintsSupported(): boolean {
  if (hintsSupported !== undefined) return hintsSupported
  hintsSupported = false
  try {
    setFlagsFromString('--experimental-wasm-compilation-hints')
    // (module (func)) with a hints section declaring 2 hints for its 1 function.
    const probe = new Uint8Array([
      0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      1, 4, 1, 0x60, 0, 0, // type section: () -> ()
      3, 2, 1, 0, // function section: one function of type 0
      0, 20, 16, ...Array.from('compilationHints', (c) => c.charCodeAt(0)), 2, 0, 0,
      10, 4, 1, 2, 0, 0x0b, // code section: one empty body
    ])
    try {
      new WebAssembly.Module(probe)
    } catch {
      hintsSupported = true
    }
  } catch {
    // No node:v8 flags here (another engine): the hints section is inert.
  }
  return hintsSupported
}

/**
 * `code` with a compilation-hints section for `tier` (before the code section, where V8 reads
 * it), or unchanged when the tier needs none, the engine ignores hints, or the module has a
 * construct the scanner does not know (then the engine's default applies).
 */
export function withTierHints(code: Uint8Array, tier: Tier): Uint8Array {
  if (tier === 'baseline' || !compilationHintsSupported()) return code
  const hints = tierHints(code, tier)
  if (hints === undefined) return code
  const name = new TextEncoder().encode(HINTS_SECTION)
  const count = leb128(hints.hints.length)
  const payload = [...leb128(name.length), ...name, ...count]
  const size = payload.length + hints.hints.length
  const header = new Uint8Array([0, ...leb128(size), ...payload])
  const out = new Uint8Array(code.length + header.length + hints.hints.length)
  out.set(code.subarray(0, hints.codeSectionAt))
  out.set(header, hints.codeSectionAt)
  out.set(hints.hints, hints.codeSectionAt + header.length)
  out.set(code.subarray(hints.codeSectionAt), hints.codeSectionAt + header.length + hints.hints.length)
  return out
}

function leb128(n: number): number[] {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

/**
 * Per-function hint bytes and where the code section starts; undefined to leave the module as
 * it is. `optimized`: every function. `auto`: the looping functions of the start spine.
 */
export function tierHints(code: Uint8Array, tier: Tier): { hints: Uint8Array; codeSectionAt: number } | undefined {
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
  for (const f of tableFunctions(findSection(mod, SectionId.Element))) if (f >= imported) pinned[f - imported] = 1
  let at = count.next
  for (let f = 0; f < n; f++) {
    const body = readU32(p, at)
    const end = body.next + body.value
    scanBody(p, body.next, end, (kind, index, inLoop) => {
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
    at = end
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

/** Function indices named by element segments (all eight encodings). */
function tableFunctions(section: Section | undefined): number[] {
  if (section === undefined) return []
  const p = section.payload
  const out: number[] = []
  const count = readU32(p, 0)
  let pos = count.next
  const constExpr = () => {
    // i32.const / i64.const / global.get / ref.null / ref.func, then end (0x0b).
    for (;;) {
      const op = p[pos++]
      if (op === 0x0b) return
      if (op === 0x41 || op === 0x23) pos = skipLeb(p, pos, 5)
      else if (op === 0x42) pos = skipLeb(p, pos, 10)
      else if (op === 0xd0) pos++
      else if (op === 0xd2) {
        const f = readU32(p, pos)
        out.push(f.value)
        pos = f.next
      } else throw new Error(`constant expression opcode ${op}`)
    }
  }
  const funcs = () => {
    const k = readU32(p, pos)
    pos = k.next
    for (let i = 0; i < k.value; i++) {
      const f = readU32(p, pos)
      out.push(f.value)
      pos = f.next
    }
  }
  const exprs = () => {
    const k = readU32(p, pos)
    pos = k.next
    for (let i = 0; i < k.value; i++) constExpr()
  }
  for (let s = 0; s < count.value; s++) {
    const flags = readU32(p, pos)
    pos = flags.next
    switch (flags.value) {
      case 0: constExpr(); funcs(); break
      case 1: case 3: pos++; funcs(); break
      case 2: pos = skipLeb(p, pos, 5); constExpr(); pos++; funcs(); break
      case 4: constExpr(); exprs(); break
      case 5: case 7: pos++; exprs(); break
      case 6: pos = skipLeb(p, pos, 5); constExpr(); pos++; exprs(); break
      default: throw new Error(`element segment flags ${flags.value}`)
    }
  }
  return out
}

type BodyEvent = (kind: 'loop' | 'call' | 'ref', index: number, inLoop: boolean) => void

/**
 * Decodes one function body in `[pos, end)`, reporting loops, direct calls (with whether they
 * sit inside a loop) and `ref.func`. @throws on anything it cannot decode
 */
function scanBody(code: Uint8Array, pos: number, end: number, on: BodyEvent): void {
  const groups = readU32(code, pos)
  pos = groups.next
  for (let g = 0; g < groups.value; g++) {
    pos = skipLeb(code, pos, 5) // count
    pos = skipValTypeLoosely(code, pos)
  }
  // Open blocks, innermost last: 1 for a loop, 0 for block/if; `loopDepth` counts the 1s.
  const blocks: number[] = []
  let loopDepth = 0
  while (pos < end) {
    const op = code[pos++]!
    switch (BASE_IMM[op]) {
      case Imm.None: break
      case Imm.Control:
        switch (op) {
          case 0x03: // loop
            on('loop', 0, loopDepth > 0)
            blocks.push(1)
            loopDepth++
            pos = skipBlockType(code, pos)
            break
          case 0x02: case 0x04: // block, if
            blocks.push(0)
            pos = skipBlockType(code, pos)
            break
          case 0x0b: // end (the last one closes the body)
            if (blocks.pop() === 1) loopDepth--
            break
          case 0x10: case 0x12: { // call, return_call
            const f = readU32(code, pos)
            on('call', f.value, loopDepth > 0)
            pos = f.next
            break
          }
          case 0x0c: case 0x0d: pos = skipLeb(code, pos, 5); break // br, br_if
          case 0x11: case 0x13: pos = skipLeb(code, skipLeb(code, pos, 5), 5); break // call_indirect, return_call_indirect
          case 0x0e: { // br_table
            const n = readU32(code, pos)
            pos = n.next
            for (let i = 0; i <= n.value; i++) pos = skipLeb(code, pos, 5)
            break
          }
          default: break // unreachable, else, return
        }
        break
      case Imm.U32:
        if (op === 0xd2) { // ref.func
          const f = readU32(code, pos)
          on('ref', f.value, loopDepth > 0)
          pos = f.next
        } else pos = skipLeb(code, pos, 5)
        break
      case Imm.Local: case Imm.Global: pos = skipLeb(code, pos, 5); break
      case Imm.U32x2: pos = skipLeb(code, skipLeb(code, pos, 5), 5); break
      case Imm.MemArg: pos = skipMemArg(code, pos); break
      case Imm.I32Const: pos = skipLeb(code, pos, 5); break
      case Imm.I64Const: pos = skipLeb(code, pos, 10); break
      case Imm.F32Const: pos += 4; break
      case Imm.F64Const: pos += 8; break
      case Imm.RefNull: pos = skipLeb(code, pos, 5); break
      case Imm.SelectT: {
        const n = readU32(code, pos)
        pos = n.next
        for (let i = 0; i < n.value; i++) pos = skipValTypeLoosely(code, pos)
        break
      }
      case Imm.Prefix: {
        const sub = readU32(code, pos)
        pos = sub.next
        const kind = op === 0xfc ? FC_IMM[sub.value] : op === 0xfd ? FD_IMM[sub.value] : FE_IMM[sub.value]
        switch (kind) {
          case Imm.None: break
          case Imm.U32: pos = skipLeb(code, pos, 5); break
          case Imm.U32x2: pos = skipLeb(code, skipLeb(code, pos, 5), 5); break
          case Imm.MemArg: pos = skipMemArg(code, pos); break
          case Imm.MemArgLane: pos = skipMemArg(code, pos) + 1; break
          case Imm.Bytes16: pos += 16; break
          case Imm.Lane: case Imm.Byte: pos += 1; break
          default: throw new Error(`opcode 0x${op.toString(16)} ${sub.value}`)
        }
        break
      }
      default: throw new Error(`opcode 0x${op.toString(16)}`) // unknown, or a proposal the table refuses
    }
  }
}

function skipMemArg(code: Uint8Array, pos: number): number {
  const align = readU32(code, pos)
  pos = align.next
  if ((align.value & 0x40) !== 0) pos = skipLeb(code, pos, 5)
  return skipLeb(code, pos, 10)
}

/** Value types in locals and `select t*`: numeric, vector and the two MVP reference types. */
function skipValTypeLoosely(code: Uint8Array, pos: number): number {
  const b = code[pos]
  if (b === 0x7f || b === 0x7e || b === 0x7d || b === 0x7c || b === 0x7b || b === 0x70 || b === 0x6f) return pos + 1
  throw new Error(`value type 0x${(b ?? 0).toString(16)}`)
}
