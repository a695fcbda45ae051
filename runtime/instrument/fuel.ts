/**
 * @module Fuel metering: a deterministic instruction budget written into the module. One unit
 * is one instruction of the original module executed, plus one per 64 elements a bulk operation
 * moves; charged in advance per straight-line segment, checked at loop headers and at the entry
 * of functions that call. An appended `i64` global exported as `caplet_fuel` holds what remains.
 * It must never count the code it inserts, nor move an existing index. Details:
 * runtime/instrument/README.md and docs/internals.md, "Fuel".
 */
import { InstrumentError, malformed } from './errors.js'
import { FUEL_EXPORT } from './fuel-export.js'
import { prefixedKind, readBodies, readLocals, skipImmediates, UNDECODABLE } from './code-decoder.js'
import { ByteWriter, leb, putSleb, putU32, readU32, skipLeb, u32At } from './leb128.js'
import { BASE_IMM, Imm, hex, unsupportedName } from './opcodes.js'
import {
  ExternalKind,
  SectionId,
  encodeSections,
  findSection,
  parseSections,
  putSection,
  readExports,
  readFunctionTypes,
  readImports,
  readLimits,
  readTypes,
  skipBlockType,
  vectorCount,
  type Section,
} from './sections.js'

/** The default name of the exported fuel counter. */
export { FUEL_EXPORT }
/** The largest budget the counter holds. */
export const MAX_FUEL = 0x7fffffffffffffffn

export interface FuelOptions {
  /** Export name of the counter. Default `caplet_fuel`; the module must not already export it. */
  exportName?: string
  /**
   * The counter's value at instantiation, which is what a start function (section 8) runs on
   * before the runtime can set the budget. Default 0: a runtime that forgets to set the budget
   * gets an immediate fuel trap rather than an unmetered guest. clang's WASI commands have no
   * start function; see `hasStartFunction`.
   */
  initialFuel?: bigint
}

export interface FuelMeterResult {
  bytes: Uint8Array
  exportName: string
  /** Index of the counter in the global index space. */
  globalIndex: number
  /** Functions instrumented (the module's own, not its imports). */
  functions: number
  /** Where the counter is checked (loop headers, entries of functions that call) and charged (all charge sites). */
  checks: number
  charges: number
  /**
   * Unmetered copies appended for straight-line functions (no branch, loop or call) that are
   * called directly: such a call is charged in the caller, like the callee's instructions inlined.
   */
  clones: number
  /** The module has a start function, which runs on `initialFuel` during instantiation. */
  hasStartFunction: boolean
}

/**
 * Adds fuel metering to a module. Pure: `bytes` is not modified.
 *
 * @throws InstrumentError: `EXPORT_NAME_TAKEN`; `UNKNOWN_OPCODE` for an instruction not in the
 *   table; `UNSUPPORTED_FEATURE` for exception handling, typed references and GC; `MALFORMED`.
 */
export function meterFuel(bytes: Uint8Array, options: FuelOptions = {}): FuelMeterResult {
  const exportName = options.exportName ?? FUEL_EXPORT
  const initialFuel = options.initialFuel ?? 0n
  if (typeof initialFuel !== 'bigint' || initialFuel < 0n || initialFuel > MAX_FUEL) {
    throw new InstrumentError('BAD_OPTION', `initialFuel must be a bigint in [0, 2^63 - 1], got ${String(initialFuel)}`)
  }
  const module = parseSections(bytes)
  const types = readTypes(findSection(module, SectionId.Type))
  const imports = readImports(findSection(module, SectionId.Import))
  const funcTypes = readFunctionTypes(findSection(module, SectionId.Function))
  const globalSection = findSection(module, SectionId.Global)
  const exportSection = findSection(module, SectionId.Export)
  const codeSection = findSection(module, SectionId.Code)

  let importedFuncs = 0
  let importedGlobals = 0
  for (const imp of imports) {
    if (imp.kind === ExternalKind.Function) importedFuncs++
    else if (imp.kind === ExternalKind.Global) importedGlobals++
  }
  const definedGlobals = vectorCount(globalSection)
  const globalIndex = importedGlobals + definedGlobals

  const exports = readExports(exportSection)
  for (const e of exports) {
    if (e.name === exportName) {
      throw new InstrumentError(
        'EXPORT_NAME_TAKEN',
        `the module already exports ${JSON.stringify(exportName)}; choose another exportName for the fuel counter`,
        { exportName },
      )
    }
    // Would be invalid input, but becomes valid once the counter exists: never let it through.
    if (e.kind === ExternalKind.Global && e.index >= globalIndex)
      throw malformed(`export ${JSON.stringify(e.name)} names global ${e.index}, which does not exist`)
  }

  // The counter: (global (mut i64) (i64.const initialFuel)), appended.
  const g = new ByteWriter(64 + (globalSection?.payload.length ?? 0))
  g.u32(definedGlobals + 1)
  if (globalSection !== undefined) g.bytes(globalSection.payload.subarray(readU32(globalSection.payload, 0).next))
  g.u8(0x7e)
  g.u8(0x01)
  g.u8(0x42)
  g.s64(initialFuel)
  g.u8(0x0b)
  putSection(module, SectionId.Global, g.finish())

  const x = new ByteWriter(64 + (exportSection?.payload.length ?? 0))
  x.u32(exports.length + 1)
  if (exportSection !== undefined) x.bytes(exportSection.payload.subarray(readU32(exportSection.payload, 0).next))
  x.name(exportName)
  x.u8(ExternalKind.Global)
  x.u32(globalIndex)
  putSection(module, SectionId.Export, x.finish())

  let checks = 0
  let charges = 0
  let clones = 0
  if (codeSection !== undefined) {
    const paramCounts = new Uint32Array(funcTypes.length)
    for (let i = 0; i < funcTypes.length; i++) {
      const t = types[funcTypes[i]!]
      if (t === undefined) throw malformed(`function ${importedFuncs + i} has type ${funcTypes[i]}, which does not exist`)
      paramCounts[i] = t.params
    }
    const memory64 = hasMemory64(findSection(module, SectionId.Memory), imports)
    const rewriter = new CodeRewriter(codeSection.payload, {
      base: codeSection.offset,
      counterGlobal: globalIndex,
      globalCount: importedGlobals + definedGlobals,
      importedFuncs,
      paramCounts,
      memory64,
    })
    putSection(module, SectionId.Code, rewriter.run())
    checks = rewriter.checks
    charges = rewriter.charges
    clones = rewriter.clones.length
    if (clones > 0) {
      // The clones' types, appended to the function section: no existing index moves.
      const f = new ByteWriter(funcTypes.length * 2 + clones * 2 + 8)
      f.u32(funcTypes.length + clones)
      for (const t of funcTypes) f.u32(t)
      for (const i of rewriter.clones) f.u32(funcTypes[i]!)
      putSection(module, SectionId.Function, f.finish())
    }
  } else if (funcTypes.length > 0) {
    throw malformed('function section without a code section')
  }

  return {
    bytes: encodeSections(module),
    exportName,
    globalIndex,
    functions: funcTypes.length,
    checks,
    charges,
    clones,
    hasStartFunction: findSection(module, SectionId.Start) !== undefined,
  }
}

/** Reads the fuel that remains from an instance of a metered module. */
export function remainingFuel(instance: WebAssembly.Instance, exportName = FUEL_EXPORT): bigint {
  return fuelGlobal(instance, exportName).value as bigint
}

/** Sets the budget of an instance of a metered module (before calling into it). */
export function setFuel(instance: WebAssembly.Instance, fuel: bigint, exportName = FUEL_EXPORT): void {
  if (fuel < 0n || fuel > MAX_FUEL) throw new InstrumentError('BAD_OPTION', `fuel must be in [0, 2^63 - 1], got ${fuel}`)
  fuelGlobal(instance, exportName).value = fuel
}

function fuelGlobal(instance: WebAssembly.Instance, exportName: string): WebAssembly.Global {
  const g = instance.exports[exportName]
  if (!(g instanceof WebAssembly.Global))
    throw new InstrumentError('BAD_OPTION', `the instance has no fuel counter ${JSON.stringify(exportName)}: was the module metered?`)
  return g
}

// ---------------------------------------------------------------------------------------------

// What is inserted, at a position of the original body.
const EV_ENTRY = 0 // global.get G; (charge + check)
const EV_CHECK = 1 // charge + check (loop header)
const EV_CHARGE = 2 // local -= cost
const EV_FLUSH = 3 // global = local
const EV_RELOAD = 4 // local = global (after a call); fused with a CHARGE that follows it
const EV_RETARGET = 5 // replace the function index of a `call` (to a straight-line callee's clone)
const EV_BULK = 6 // local -= (length on the stack) >> BULK_SHIFT, leaving the length in place

/** A bulk operation costs one unit per 2^BULK_SHIFT elements (bytes or table entries). */
export const BULK_SHIFT = 6
/** 0xFC sub-opcodes whose last operand is an element count: memory.init/copy/fill, table.init/copy/fill. */
const BULK_OPS = new Set([8, 10, 11, 12, 14, 17])

// The construct each open label belongs to.
const K_FUNC = 0
const K_BLOCK = 1
const K_LOOP = 2
const K_IF = 3

const OP_I64_CONST = 0x42
const OP_I64_SUB = 0x7d
const OP_I64_EXTEND_I32_U = 0xad
const OP_I64_SHR_U = 0x88
const OP_I64_LT_S = 0x53
const OP_LOCAL_GET = 0x20
const OP_LOCAL_SET = 0x21
const OP_LOCAL_TEE = 0x22
const OP_GLOBAL_GET = 0x23
const OP_GLOBAL_SET = 0x24
const OP_IF = 0x04
const OP_END = 0x0b
const OP_UNREACHABLE = 0x00
const BLOCKTYPE_EMPTY = 0x40

/** Whether any memory, defined or imported, has 64-bit addresses (its bulk lengths are i64). */
function hasMemory64(memorySection: Section | undefined, imports: readonly { kind: number; limits?: { is64: boolean } }[]): boolean {
  if (imports.some((i) => i.kind === ExternalKind.Memory && i.limits?.is64 === true)) return true
  if (memorySection === undefined) return false
  const p = memorySection.payload
  const count = readU32(p, 0)
  let pos = count.next
  for (let i = 0; i < count.value; i++) {
    const l = readLimits(p, pos)
    if (l.value.is64) return true
    pos = l.next
  }
  return false
}

/** What the rewriter needs to know of the module around a code section. */
interface CodeRewriterOptions {
  /** Offset of the code section's payload in the module (for error offsets). */
  base: number
  /** Index of the fuel counter in the global index space. */
  counterGlobal: number
  /** Globals that exist (imported and defined, the counter not included): `global.get/set` beyond them are refused. */
  globalCount: number
  /** Imported functions: defined function i is function `importedFuncs + i`. */
  importedFuncs: number
  /** Per defined function, its parameter count (the first locals). */
  paramCounts: Uint32Array
  /** Some memory has 64-bit addresses (bulk operations on it are refused). */
  memory64: boolean
}

/** Scans and rewrites every function body of a code section. */
class CodeRewriter {
  checks = 0
  charges = 0

  readonly #p: Uint8Array
  readonly #base: number
  readonly #globalIndex: number
  readonly #globalCount: number
  readonly #importedFuncs: number
  readonly #paramCounts: Uint32Array
  readonly #out: ByteWriter
  readonly #body = new ByteWriter(1 << 16)

  // Per-body scan state, reused across bodies.
  #events = new Int32Array(3 * 1024)
  #nEvents = 0
  #ctrlKind = new Uint8Array(256)
  #ctrlTargeted = new Uint8Array(256)
  /** Per defined function: its cost if it is straight-line code (no branch, loop or call), else -1. */
  #straightCost = new Int32Array(0)
  /** Per defined function: the index of its unmetered clone, once a direct call needs one; else -1. */
  #cloneOf = new Int32Array(0)
  /** Defined functions cloned, in the order their clones are appended. */
  readonly clones: number[] = []

  readonly #memory64: boolean

  constructor(payload: Uint8Array, o: CodeRewriterOptions) {
    this.#memory64 = o.memory64
    this.#p = payload
    this.#base = o.base
    this.#globalIndex = o.counterGlobal
    this.#globalCount = o.globalCount
    this.#importedFuncs = o.importedFuncs
    this.#paramCounts = o.paramCounts
    // Metering grows compiled C by 40-50%, branch-dense code by up to 90%.
    this.#out = new ByteWriter(Math.ceil(payload.length * 1.6) + 64)
  }

  run(): Uint8Array {
    const p = this.#p
    const { starts, ends } = readBodies(p, this.#paramCounts.length, this.#base)
    const n = starts.length

    this.#straightCost = new Int32Array(n)
    for (let i = 0; i < n; i++) this.#straightCost[i] = this.#straightLineCost(starts[i]!, ends[i]!)
    this.#cloneOf = new Int32Array(n).fill(-1)

    for (let i = 0; i < n; i++) this.#rewriteBody(i, starts[i]!, ends[i]!)

    // The clones: the original bodies, unmetered (their callers pay for them).
    const bodies = this.#out.view()
    const w = new ByteWriter(bodies.length + 16)
    w.u32(n + this.clones.length)
    w.bytes(bodies)
    for (const i of this.clones) {
      w.u32(ends[i]! - starts[i]!)
      w.bytes(p.subarray(starts[i]!, ends[i]!))
    }
    return w.view()
  }

  /**
   * The instruction count of a body that is straight-line code (blocks allowed, but no branch,
   * if, loop, call, return or unreachable), else -1. A direct call to such a function is charged
   * as 1 + this cost inside the caller's segment, with no write-back of the counter around it.
   * Anything odd (unknown opcodes, malformed code) answers -1: the main pass reports it.
   */
  #straightLineCost(start: number, end: number): number {
    const p = this.#p
    let pos: number
    try {
      pos = readLocals(p, start).next
    } catch {
      return -1
    }
    let n = 0
    let depth = 0
    while (pos < end) {
      const op = p[pos++]!
      n++
      switch (BASE_IMM[op]) {
        case Imm.None:
        case Imm.Local:
        case Imm.Global:
        case Imm.U32:
        case Imm.I32Const:
        case Imm.RefNull:
        case Imm.I64Const:
        case Imm.F32Const:
        case Imm.F64Const:
        case Imm.MemArg:
          pos = skipImmediates(p, pos, op)
          continue
        case Imm.Control:
          if (op === 0x02) {
            if (p[pos] === 0x63 || p[pos] === 0x64) return -1
            pos = skipBlockType(p, pos)
            depth++
            continue
          }
          if (op !== 0x0b) return -1
          if (depth-- === 0) return pos === end ? n : -1
          continue
        case Imm.Prefix:
          // Only immediate-free prefixed ops: a bulk operation (which has immediates) charges
          // by its length where it runs, which an unmetered clone would not.
          if (prefixedKind(op, u32At(p, pos)) !== Imm.None) return -1
          pos = leb.next
          continue
        default: // select t, unknown, unsupported
          return -1
      }
    }
    return -1
  }

  #fail(code: 'UNKNOWN_OPCODE' | 'UNSUPPORTED_FEATURE' | 'MALFORMED', what: string, func: number, at: number, opcode?: string): never {
    const offset = this.#base + at
    const details = opcode === undefined ? { functionIndex: func, offset } : { functionIndex: func, offset, opcode }
    const prefix =
      code === 'UNKNOWN_OPCODE'
        ? 'cannot meter fuel: unknown instruction'
        : code === 'UNSUPPORTED_FEATURE'
          ? 'cannot meter fuel: unsupported instruction'
          : 'malformed module:'
    throw new InstrumentError(code, `${prefix} ${what} in function ${func} at byte ${offset}`, details)
  }

  /** Adds `acc` instructions to the cost of the charge whose value sits at `#events[charge]`. */
  #settle(charge: number, acc: number): void {
    this.#events[charge] = this.#events[charge]! + acc
  }

  #push(pos: number, kind: number, value: number): number {
    let ev = this.#events
    const at = this.#nEvents * 3
    if (at + 3 > ev.length) {
      const bigger = new Int32Array(ev.length * 2)
      bigger.set(ev)
      this.#events = ev = bigger
    }
    ev[at] = pos
    ev[at + 1] = kind
    ev[at + 2] = value
    this.#nEvents++
    return at + 2
  }

  #rewriteBody(index: number, start: number, end: number): void {
    const p = this.#p
    const func = this.#importedFuncs + index

    // Locals: count the declared ones; the counter's local goes after all of them.
    const declared = readLocals(p, start)
    const groups = declared.groups
    let pos = declared.next
    const locals = this.#paramCounts[index]! + declared.count
    if (pos > end) this.#fail('MALFORMED', 'local declarations run past the body', func, start)
    // The JS API caps a function at 50,000 locals (params included); the counter needs one more.
    if (locals + 1 >= MAX_LOCALS)
      this.#fail('UNSUPPORTED_FEATURE', `${locals} locals: no room for the fuel counter's (limit ${MAX_LOCALS})`, func, start)
    const localsEnd = pos
    const fuelLocal = locals

    // ---- Scan: find segments, record what to insert where. ----
    this.#nEvents = 0
    let ctrlKind = this.#ctrlKind
    let ctrlTargeted = this.#ctrlTargeted
    let depth = 0 // index of the innermost open label; 0 = the function's own
    ctrlKind[0] = K_FUNC
    ctrlTargeted[0] = 0

    let acc = 0 // instructions counted towards the current charge
    let dead = false // the current code cannot be reached
    this.#push(localsEnd, EV_ENTRY, 0)
    let charge = 2 // index in #events of the current charge's cost
    let checks = 1
    let charges = 1
    let finished = false
    let calls = false
    let bulk = false

    const globalCount = this.#globalCount

    while (pos < end) {
      const opAt = pos
      const op = p[pos++]!
      acc++
      const kind = BASE_IMM[op]!
      switch (kind) {
        case Imm.None:
          continue
        case Imm.Local: {
          // SECURITY: a local beyond the declared ones would be the fuel counter's once it is added.
          const v = u32At(p, pos)
          pos = leb.next
          if (v >= locals) this.#fail('MALFORMED', `local ${v} does not exist (the function has ${locals})`, func, opAt)
          continue
        }
        case Imm.Global: {
          // SECURITY: likewise a global beyond the module's would be the fuel counter.
          const g = u32At(p, pos)
          pos = leb.next
          if (g >= globalCount) this.#fail('MALFORMED', `global ${g} does not exist`, func, opAt)
          continue
        }
        case Imm.Prefix: {
          const sub = u32At(p, pos)
          if (op === 0xfc && BULK_OPS.has(sub)) {
            if (this.#memory64 && sub <= 11)
              this.#fail('UNSUPPORTED_FEATURE', 'bulk memory operation on a module with 64-bit memory', func, opAt, hex(op, sub))
            this.#push(opAt, EV_BULK, 0)
            bulk = true
          }
          pos = skipImmediates(p, pos, op)
          if (pos === UNDECODABLE) this.#fail('UNKNOWN_OPCODE', hex(op, sub), func, opAt, hex(op, sub))
          continue
        }
        case Imm.Unsupported:
          return this.#fail('UNSUPPORTED_FEATURE', unsupportedName(op), func, opAt, hex(op))
        case Imm.Unknown:
          return this.#fail('UNKNOWN_OPCODE', hex(op), func, opAt, hex(op))
        case Imm.Control:
          break
        default:
          pos = skipImmediates(p, pos, op)
          continue
      }

      // ---- Control instructions. ----
      switch (op) {
        case 0x02: // block
        case 0x03: // loop
        case 0x04: {
          // if
          pos = skipBlockType(p, pos)
          if (++depth >= ctrlKind.length) {
            const k = new Uint8Array(ctrlKind.length * 2)
            k.set(ctrlKind)
            const t = new Uint8Array(ctrlKind.length * 2)
            t.set(ctrlTargeted)
            this.#ctrlKind = ctrlKind = k
            this.#ctrlTargeted = ctrlTargeted = t
          }
          ctrlTargeted[depth] = 0
          if (op === 0x02) {
            ctrlKind[depth] = K_BLOCK
            // The body of a block is only entered by falling into it: same charge.
          } else {
            ctrlKind[depth] = op === 0x03 ? K_LOOP : K_IF
            if (!dead) this.#settle(charge, acc)
            acc = 0
            dead = false
            charge = this.#push(pos, op === 0x03 ? EV_CHECK : EV_CHARGE, 0)
            if (op === 0x03) checks++
            else charges++
          }
          break
        }
        case 0x05: {
          // else
          if (depth === 0 || ctrlKind[depth] !== K_IF) this.#fail('MALFORMED', 'else outside an if', func, opAt)
          if (!dead) this.#settle(charge, acc)
          acc = 0
          dead = false
          charge = this.#push(pos, EV_CHARGE, 0)
          charges++
          break
        }
        case 0x0b: {
          // end
          if (depth === 0) {
            // The function's own end: write the counter back for the caller.
            this.#push(opAt, EV_FLUSH, 0)
            if (pos !== end) this.#fail('MALFORMED', 'code after the end of the function', func, pos)
            finished = true
            break
          }
          const k = ctrlKind[depth]
          const targeted = ctrlTargeted[depth]
          depth--
          // Code after a loop, or after a block nothing branches to, is only reached by falling
          // out of the construct: it shares the current charge. Anything else is a branch target.
          if (k === K_LOOP || (k === K_BLOCK && targeted === 0)) break
          if (!dead) this.#settle(charge, acc)
          acc = 0
          dead = false
          charge = this.#push(pos, EV_CHARGE, 0)
          charges++
          break
        }
        case 0x0c: // br
        case 0x0d: {
          // br_if
          const l = u32At(p, pos)
          pos = leb.next
          const target = depth - l
          if (target < 0) this.#fail('MALFORMED', `branch to label ${l} beyond depth ${depth}`, func, opAt)
          ctrlTargeted[target] = 1
          if (target === 0) this.#push(opAt, EV_FLUSH, 0)
          if (!dead) this.#settle(charge, acc)
          acc = 0
          if (op === 0x0c) {
            dead = true
          } else {
            dead = false
            charge = this.#push(pos, EV_CHARGE, 0)
            charges++
          }
          break
        }
        case 0x0e: {
          // br_table
          const n = u32At(p, pos)
          pos = leb.next
          let toFunction = false
          for (let k = 0; k <= n; k++) {
            const l = u32At(p, pos)
            pos = leb.next
            const target = depth - l
            if (target < 0) this.#fail('MALFORMED', `branch to label ${l} beyond depth ${depth}`, func, opAt)
            ctrlTargeted[target] = 1
            if (target === 0) toFunction = true
          }
          if (toFunction) this.#push(opAt, EV_FLUSH, 0)
          if (!dead) this.#settle(charge, acc)
          acc = 0
          dead = true
          break
        }
        case 0x00: // unreachable
        case 0x0f: // return
          this.#push(opAt, EV_FLUSH, 0)
          if (!dead) this.#settle(charge, acc)
          acc = 0
          dead = true
          break
        case 0x10: // call
        case 0x11: {
          // call_indirect
          if (op === 0x10) {
            const immediate = pos
            const callee = u32At(p, pos) - this.#importedFuncs
            pos = leb.next
            const cost = callee >= 0 ? (this.#straightCost[callee] ?? -1) : -1
            if (cost >= 0) {
              // Straight-line code in another function: it runs whole once entered, so it is
              // part of this segment, and the call goes to an unmetered clone of it (the original,
              // which charges itself, stays for tables, exports and `ref.func`).
              acc += cost
              let clone = this.#cloneOf[callee]!
              if (clone < 0) {
                clone = this.#importedFuncs + this.#cloneOf.length + this.clones.length
                this.#cloneOf[callee] = clone
                this.clones.push(callee)
              }
              this.#push(immediate, EV_RETARGET, clone)
              break
            }
          } else {
            pos = skipImmediates(p, pos, op)
          }
          calls = true
          this.#push(opAt, EV_FLUSH, 0)
          this.#push(pos, EV_RELOAD, 0)
          if (!dead) this.#settle(charge, acc)
          acc = 0
          dead = false
          charge = this.#push(pos, EV_CHARGE, 0)
          charges++
          break
        }
        case 0x12: // return_call
        case 0x13: // return_call_indirect
          pos = skipImmediates(p, pos, op)
          calls = true
          this.#push(opAt, EV_FLUSH, 0)
          if (!dead) this.#settle(charge, acc)
          acc = 0
          dead = true
          break
        default:
          this.#fail('UNKNOWN_OPCODE', hex(op), func, opAt, hex(op))
      }
      if (finished) break
    }
    if (!finished) this.#fail('MALFORMED', 'function body does not end with `end`', func, end)
    if (pos > end) this.#fail('MALFORMED', 'instruction runs past the end of the body', func, end)
    if (!dead) this.#settle(charge, acc)

    // A function that calls nothing cannot recurse: its entry needs a charge but no check (its
    // loops check themselves, and whoever called it checks again on its next loop or call).
    const leaf = !calls
    if (leaf) checks--
    this.checks += checks
    this.charges += charges
    this.#emit(start, localsEnd, end, groups, fuelLocal, leaf, bulk)
  }

  /** Writes one body: the locals plus the counter's, then the code with the insertions. */
  #emit(start: number, localsEnd: number, end: number, groups: number, L: number, leaf: boolean, bulk: boolean): void {
    const p = this.#p
    const G = this.#globalIndex
    const ev = this.#events
    const n = this.#nEvents
    // Every insertion is at most MAX_INSERT bytes (a retarget replaces up to 5 with 5); the
    // locals grow by at most 7.
    const w = this.#body
    w.length = 0
    const buf = w.reserve(end - start + n * MAX_INSERT + 16)
    let o = 0

    // Locals: one more group, `(local i64)`, and `(local i32)` to hold a bulk operation's length.
    o = putU32(buf, o, groups + (bulk ? 2 : 1))
    o = copy(buf, o, p, skipLeb(p, start, 5), localsEnd)
    buf[o++] = 1
    buf[o++] = 0x7e
    if (bulk) {
      buf[o++] = 1
      buf[o++] = 0x7f
    }
    const S = L + 1

    let copied = localsEnd
    for (let e = 0; e < n; e++) {
      const at = ev[e * 3]!
      const kind = ev[e * 3 + 1]!
      const cost = ev[e * 3 + 2]!
      if (at > copied) {
        o = copy(buf, o, p, copied, at)
        copied = at
      }
      switch (kind) {
        case EV_ENTRY:
          buf[o++] = OP_GLOBAL_GET
          o = putU32(buf, o, G)
          if (leaf) {
            // local = global - cost
            buf[o++] = OP_I64_CONST
            o = putSleb(buf, o, cost)
            buf[o++] = OP_I64_SUB
            buf[o++] = OP_LOCAL_SET
            o = putU32(buf, o, L)
          } else {
            o = putCheck(buf, o, cost, L, G)
          }
          break
        case EV_CHECK:
          buf[o++] = OP_LOCAL_GET
          o = putU32(buf, o, L)
          o = putCheck(buf, o, cost, L, G)
          break
        case EV_CHARGE:
          if (cost === 0) break
          buf[o++] = OP_LOCAL_GET
          o = putU32(buf, o, L)
          buf[o++] = OP_I64_CONST
          o = putSleb(buf, o, cost)
          buf[o++] = OP_I64_SUB
          buf[o++] = OP_LOCAL_SET
          o = putU32(buf, o, L)
          break
        case EV_FLUSH:
          buf[o++] = OP_LOCAL_GET
          o = putU32(buf, o, L)
          buf[o++] = OP_GLOBAL_SET
          o = putU32(buf, o, G)
          break
        case EV_RELOAD: {
          buf[o++] = OP_GLOBAL_GET
          o = putU32(buf, o, G)
          // Fused with the charge of the segment after the call: local = global - cost.
          const next = e + 1
          if (next < n && ev[next * 3] === at && ev[next * 3 + 1] === EV_CHARGE && ev[next * 3 + 2]! > 0) {
            buf[o++] = OP_I64_CONST
            o = putSleb(buf, o, ev[next * 3 + 2]!)
            buf[o++] = OP_I64_SUB
            e = next
          }
          buf[o++] = OP_LOCAL_SET
          o = putU32(buf, o, L)
          break
        }
        case EV_RETARGET:
          o = putU32(buf, o, cost)
          copied = skipLeb(p, at, 5)
          break
        case EV_BULK:
          // stack: ..., length  ->  local.tee S; L = L - (u64(S) >> BULK_SHIFT); stack unchanged
          buf[o++] = OP_LOCAL_TEE
          o = putU32(buf, o, S)
          buf[o++] = OP_LOCAL_GET
          o = putU32(buf, o, L)
          buf[o++] = OP_LOCAL_GET
          o = putU32(buf, o, S)
          buf[o++] = OP_I64_EXTEND_I32_U
          buf[o++] = OP_I64_CONST
          o = putSleb(buf, o, BULK_SHIFT)
          buf[o++] = OP_I64_SHR_U
          buf[o++] = OP_I64_SUB
          buf[o++] = OP_LOCAL_SET
          o = putU32(buf, o, L)
          break
      }
    }
    o = copy(buf, o, p, copied, end)
    w.length = o

    this.#out.u32(o)
    this.#out.bytes(buf.subarray(0, o))
  }
}

/** Locals per function (params included) that engines accept: the JS API's implementation limit. */
const MAX_LOCALS = 50_000

/** The largest insertion: a check at a function entry or loop header (with 5-byte LEBs). */
const MAX_INSERT = 48

function copy(dst: Uint8Array, at: number, src: Uint8Array, from: number, to: number): number {
  const n = to - from
  if (n < 64) {
    for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!
  } else {
    dst.set(src.subarray(from, to), at)
  }
  return at + n
}

/** With the counter on the stack: `local = counter - cost; if (local < 0) { global = local; unreachable }`. */
function putCheck(b: Uint8Array, at: number, cost: number, L: number, G: number): number {
  let o = at
  b[o++] = OP_I64_CONST
  o = putSleb(b, o, cost)
  b[o++] = OP_I64_SUB
  b[o++] = OP_LOCAL_TEE
  o = putU32(b, o, L)
  b[o++] = OP_I64_CONST
  b[o++] = 0
  b[o++] = OP_I64_LT_S
  b[o++] = OP_IF
  b[o++] = BLOCKTYPE_EMPTY
  b[o++] = OP_LOCAL_GET
  o = putU32(b, o, L)
  b[o++] = OP_GLOBAL_SET
  o = putU32(b, o, G)
  b[o++] = OP_UNREACHABLE
  b[o++] = OP_END
  return o
}
