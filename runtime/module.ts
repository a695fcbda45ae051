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
 * compile the functions that contain a loop straight with TurboFan when they are first
 * called, and leaves the others to Liftoff and tier-up; start-up pays TurboFan only for the
 * looping functions that actually run. `optimized` compiles every function with TurboFan
 * (the steadiest code, the slowest start of a large module); `baseline` is V8's own default.
 * Without the hints feature (another engine, a V8 that dropped it), every tier is `baseline`.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { WASI_PREVIEW1_FUNCTIONS } from '../wasi-host/index.js'
import { ModuleError } from './errors.js'
import { capMemory, InstrumentError, meterFuel, readU32, skipLeb } from './instrument/index.js'
import { BASE_IMM, FC_IMM, FD_IMM, FE_IMM, Imm } from './instrument/opcodes.js'
import { skipBlockType } from './instrument/sections.js'
import { formatSize } from './units.js'

export type ModuleSource = string | URL | Uint8Array | ArrayBuffer | WebAssembly.Module

const PROVIDED = new Set(WASI_PREVIEW1_FUNCTIONS)
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
  const bytes = typeof source === 'string' || source instanceof URL ? readSource(source) : new Uint8Array(source)
  const tier = options.tier ?? defaultTier()
  const key = `${createHash('sha256').update(bytes).digest('hex')}:${options.memoryPages ?? ''}:${options.fuel ? 'fuel' : ''}:${tier}`
  let mod = cache.get(key)
  if (mod === undefined) {
    if (bytes.byteLength < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new ModuleError('not a WebAssembly module (no "\\0asm" header); compile it for wasm32-wasi first')
    }
    if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
      try {
        new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>)
      } catch (e) {
        throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
      }
    }
    const code = withTierHints(instrumentFor(bytes, options), tier)
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

function instrumentFor(bytes: Uint8Array, options: LoadOptions): Uint8Array {
  let code = bytes
  try {
    if (options.memoryPages !== undefined) code = capMemory(code, options.memoryPages).bytes
    if (options.fuel) code = meterFuel(code).bytes
  } catch (e) {
    if (e instanceof InstrumentError && e.code === 'MEMORY_MIN_EXCEEDS_CAP') {
      const { minPages = 0, capPages = 0 } = e.details
      throw new ModuleError(`the module needs ${formatSize(minPages * 65536)} of memory to start, more than the memory limit of ${formatSize(capPages * 65536)}; raise limits.memory (--memory)`, { cause: e })
    }
    if (e instanceof InstrumentError) throw new ModuleError(e.message.replace(/^\[caplet\] /, ''), { cause: e })
    throw e
  }
  return code
}

/**
 * @throws ModuleError naming every import the host does not provide, or the policy's
 * syscall allow-list does not grant.
 */
export function checkImports(mod: WebAssembly.Module, allowed?: readonly string[]): void {
  const unknown: string[] = []
  const denied: string[] = []
  const allow = allowed ? new Set(allowed) : undefined
  for (const imp of WebAssembly.Module.imports(mod)) {
    if (imp.module !== 'wasi_snapshot_preview1' || imp.kind !== 'function' || !PROVIDED.has(imp.name)) {
      unknown.push(`${imp.module}.${imp.name} (${imp.kind})`)
    } else if (allow && !allow.has(imp.name)) denied.push(imp.name)
  }
  if (unknown.length > 0) {
    throw new ModuleError(`module imports what caplet does not provide: ${unknown.join(', ')}`)
  }
  if (denied.length > 0) {
    throw new ModuleError(`module imports WASI functions the policy does not allow: ${denied.join(', ')} (add them to syscalls)`)
  }
  const exports = WebAssembly.Module.exports(mod)
  if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory')) {
    throw new ModuleError('module does not export its memory as "memory"')
  }
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

/** Per-function hint bytes and where the code section starts; undefined to leave the module as it is. */
export function tierHints(code: Uint8Array, tier: Tier): { hints: Uint8Array; codeSectionAt: number } | undefined {
  try {
    let pos = 8
    while (pos < code.length) {
      const start = pos
      const id = code[pos++]!
      const size = readU32(code, pos)
      const end = size.next + size.value
      if (id === 0 && nameIs(code, size.next, HINTS_SECTION)) return undefined // the module brought its own
      if (id === 10) {
        const n = readU32(code, size.next)
        const hints = new Uint8Array(n.value)
        let at = n.next
        for (let f = 0; f < n.value; f++) {
          const body = readU32(code, at)
          const bodyEnd = body.next + body.value
          hints[f] = tier === 'optimized' || hasLoop(code, body.next, bodyEnd) ? HINT_OPTIMIZED : HINT_DEFAULT
          at = bodyEnd
        }
        return { hints, codeSectionAt: start }
      }
      pos = end
    }
  } catch {
    // A construct the scanner cannot decode: no hints, the engine's default tiers.
  }
  return undefined
}

function nameIs(code: Uint8Array, at: number, name: string): boolean {
  const len = readU32(code, at)
  if (len.value !== name.length) return false
  for (let i = 0; i < name.length; i++) if (code[len.next + i] !== name.charCodeAt(i)) return false
  return true
}

/** Whether the function body in `[pos, end)` contains a `loop`. @throws on what it cannot decode */
export function hasLoop(code: Uint8Array, pos: number, end: number): boolean {
  const groups = readU32(code, pos)
  pos = groups.next
  for (let g = 0; g < groups.value; g++) {
    pos = skipLeb(code, pos, 5) // count
    pos = skipValTypeLoosely(code, pos)
  }
  while (pos < end) {
    const op = code[pos++]!
    switch (BASE_IMM[op]) {
      case Imm.None: break
      case Imm.Control:
        switch (op) {
          case 0x03: return true // loop
          case 0x02: case 0x04: pos = skipBlockType(code, pos); break // block, if
          case 0x0c: case 0x0d: case 0x10: case 0x12: pos = skipLeb(code, pos, 5); break // br, br_if, call, return_call
          case 0x11: case 0x13: pos = skipLeb(code, skipLeb(code, pos, 5), 5); break // call_indirect, return_call_indirect
          case 0x0e: { // br_table
            const n = readU32(code, pos)
            pos = n.next
            for (let i = 0; i <= n.value; i++) pos = skipLeb(code, pos, 5)
            break
          }
          default: break // unreachable, else, end, return
        }
        break
      case Imm.U32: case Imm.Local: case Imm.Global: pos = skipLeb(code, pos, 5); break
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
  return false
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
