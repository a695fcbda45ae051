/**
 * @module The module pipeline: load (path, bytes, URL), validate, rewrite as the policy asks
 * (memory and table caps, fuel, engine-tier hints), compile once per process (cached by content
 * hash and instrumentation), and check imports against what the host provides before anything
 * runs, so an unknown import is refused by name rather than failing at link time. It runs on
 * untrusted bytes before any limit applies: every pass must be linear in the module's size.
 * Why the `auto` tier hints the looping functions of the start spine: docs/internals.md,
 * "Engine tiers".
 */
import { Buffer, constants } from 'node:buffer'
import { createHash } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { ModuleError } from './errors.js'
import { beforeEdit, insertTierHints, tierHints, type Tier } from './instrument/index.js'
import { cachedTierHints } from './module-cache.js'
import type { ImportPlan, ImportPolicy } from './link/imports.js'
import { ExternalKind, findSection, parseSections, readExports, SectionId, type Export } from './instrument/sections.js'
import {
  checkImports,
  checkModuleHeader,
  instrumentModule,
  invalidModule,
  isCommand,
  notCommandMessage,
  type ReusedMemory,
  type Instrumented,
} from './module-pipeline.js'

export { checkImports, importedFunctions, isCommand } from './module-pipeline.js'

export type ModuleSource = string | URL | Uint8Array | ArrayBuffer | WebAssembly.Module

const cache = new Map<string, WebAssembly.Module>()
const CACHE_MAX = 64
let keepModules = true

/**
 * Whether compiled modules are kept for later loads in this process (the default). A process that
 * loads one module and exits (the CLI) turns it off: a big module read from a path then costs no
 * hash of its bytes (30 MB: ~25 ms) unless the disk cache needs its digest.
 */
export function keepCompiledModules(keep: boolean): void {
  keepModules = keep
  if (!keep) cache.clear()
}

let lazyBodies = false
let lazyValidationOn = false

/**
 * For a process that runs one module and exits (the CLI, not `--dry-run`): a module with more than
 * `BASELINE_CODE_BYTES` of code on the `baseline` tier is compiled with its function bodies
 * validated by the engine as each is first compiled (V8's `--wasm-lazy-validation`) instead of all
 * up front: yosys' 30 MB compiles in ~20 ms instead of 60–200. No body ever runs unvalidated; an
 * invalid one is reported when it is first called (trap kind `invalid-code`), not before the run.
 * The engine flag is process-wide, hence opt-in.
 */
export function validateBigModulesLazily(on: boolean): void {
  lazyBodies = on
}

function validateLazily(): void {
  if (lazyValidationOn) return
  lazyValidationOn = true
  try {
    setFlagsFromString('--wasm-lazy-validation')
  } catch {
    // Another engine: it validates up front, as always.
  }
}

/** Spare bytes after a module read from a path: the memory cap's rewrite grows it in place (`capMemory`). */
const SPARE = 64

/** A module read from a path into caplet's own buffer, with `room` bytes usable (`capMemory`). */
function readSource(source: string | URL): { bytes: Uint8Array; room: number } {
  const path = source instanceof URL ? fileURLToPath(source) : source
  try {
    const fd = openSync(path, 'r')
    try {
      const stat = fstatSync(fd)
      const size = stat.size
      // Not a regular file's size (a pipe, /proc), or too big for a buffer: read it as before.
      if (!stat.isFile() || size === 0 || size + SPARE > constants.MAX_LENGTH) {
        const bytes = readFileSync(fd)
        return { bytes, room: bytes.length }
      }
      const buffer = Buffer.allocUnsafe(size + SPARE)
      let n = 0
      for (let r = 1; n < size && r > 0; n += r) r = readSync(fd, buffer, n, size - n, null)
      return { bytes: buffer.subarray(0, n), room: buffer.length }
    } finally {
      closeSync(fd)
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : String(code ?? e)
    throw new ModuleError(`cannot read module ${JSON.stringify(path)}: ${why}`, { cause: e })
  }
}

export interface LoadOptions extends ImportPolicy {
  /** Cap linear memory at this many 64 KiB pages (the module is rewritten). */
  memoryPages?: number | undefined
  /** Instrument for fuel metering. */
  fuel?: boolean
  /** Only these WASI functions may be imported. */
  syscalls?: readonly string[] | undefined
  /** Which engine tier compiles which function (see the module comment). Default `auto`. */
  tier?: Tier | undefined
  /** Refuse a module that is not a WASI command (before its imports are checked: no import flag makes a library runnable). */
  command?: boolean
  /** Its capped memory becomes an import the host supplies and reuses between runs (`importMemory`). */
  reuseMemory?: boolean
}

export type { Tier }
export const TIERS: readonly Tier[] = ['auto', 'optimized', 'baseline']

/** Modules with more code than this start on the engine's own tiering (see `defaultTier`). */
export const BASELINE_CODE_BYTES = 2 * 1024 * 1024

/**
 * The tier used when none is given: `CAPLET_TIER` in the environment, else `baseline` for a
 * module with more than `BASELINE_CODE_BYTES` of code (the analysis and TurboFan's up-front
 * compiles cost big modules more at start than they save), else `auto`.
 */
export function defaultTier(bytes?: Uint8Array): Tier {
  const env = typeof process !== 'undefined' ? process.env.CAPLET_TIER : undefined
  if (env !== undefined && (TIERS as readonly string[]).includes(env)) return env as Tier
  return bytes !== undefined && codeBytes(bytes) > BASELINE_CODE_BYTES ? 'baseline' : 'auto'
}

/** The size of the code section's payload (0 when the module cannot be parsed). */
function codeBytes(bytes: Uint8Array): number {
  try {
    return findSection(parseSections(bytes), SectionId.Code)?.payload.length ?? 0
  } catch {
    return 0
  }
}

/**
 * Compiles (or reuses) a module, instrumented as asked, and checks its imports.
 * Compiled modules are cached per process by content hash and instrumentation.
 * @throws ModuleError
 */
export function loadModule(source: ModuleSource, options: LoadOptions = {}): WebAssembly.Module {
  return loadLinked(source, options).module
}

/**
 * `loadModule`, with how each import links under the options (`link/imports.ts`).
 * @throws ModuleError
 */
export function loadLinked(source: ModuleSource, options: LoadOptions = {}): { module: WebAssembly.Module; plan: ImportPlan } {
  if (source instanceof WebAssembly.Module) {
    if (options.memoryPages !== undefined || options.fuel) {
      throw new ModuleError('memory and fuel limits need the module bytes, not a compiled WebAssembly.Module')
    }
    if (options.command && !isCommand(source)) throw new ModuleError(notCommandMessage(WebAssembly.Module.exports(source)))
    return { module: source, plan: checkImports(source, options) }
  }
  let bytes: Uint8Array
  let digest: string | undefined
  // Only bytes caplet read itself may be rewritten in place (`instrumentModule`'s `room`); a
  // caller's bytes, and the private copy `remembered` compares them with, never are.
  let room: number | undefined
  if (typeof source === 'string' || source instanceof URL) ({ bytes, room } = readSource(source))
  else ({ bytes, digest } = remembered(source))
  checkModuleHeader(bytes)
  const tier = options.tier ?? defaultTier(bytes)
  // A module read from a path is hashed only when its digest serves: the process keeps compiled
  // modules, or the tier's hints may come from the disk cache (`baseline` has none).
  if (digest === undefined && (keepModules || tier !== 'baseline')) digest = hashed(bytes).digest
  const identity =
    digest === undefined
      ? undefined
      : `${digest}:${options.memoryPages ?? ''}:${options.fuel ? 'fuel' : ''}${options.reuseMemory ? ':reuse' : ''}`
  const key = identity === undefined ? undefined : `${identity}:${tier}`
  let mod = key === undefined ? undefined : cache.get(key)
  const made: Instrumented = {}
  if (mod === undefined) {
    if (options.command) refuseLibrary(bytes)
    // After an in-place rewrite, `given` is what the module was as read: what errors and trap
    // offsets name. Only a failure pays for the copy.
    const read = bytes
    const given = (): Uint8Array => (made.edit === undefined ? read : beforeEdit(made.edit))
    // No separate validation pass: compiling validates. Only on a failure are the caller's own
    // bytes validated, so the message names their fault, not one in caplet's rewrite of them.
    let code: Uint8Array
    try {
      code = withTierHints(instrumentModule(bytes, options, made, room), tier, identity)
    } catch (e) {
      throw invalidModule(given()) ?? e
    }
    if (made.edit !== undefined) bytes = made.edit.bytes
    if (lazyBodies && tier === 'baseline' && codeBytes(bytes) > BASELINE_CODE_BYTES) validateLazily()
    try {
      mod = new WebAssembly.Module(code as Uint8Array<ArrayBuffer>)
    } catch (e) {
      throw (
        (code !== read ? invalidModule(given()) : undefined) ??
        new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
      )
    }
    if (key !== undefined && keepModules) {
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
      cache.set(key, mod)
    }
    // Trap offsets are in the compiled bytes: remember how far the code moved from the caller's
    // module (sections caplet inserted, an in-place edit), unless metering rewrote the bodies.
    const edited = made.edit === undefined ? 0 : made.edit.length - made.edit.old.length
    if (!options.fuel) codeShifts.set(mod, codeStart(code) - codeStart(bytes) + edited)
    if (made.memory !== undefined) hostMemories.set(mod, made.memory)
  }
  if (options.command && !isCommand(mod)) throw new ModuleError(notCommandMessage(WebAssembly.Module.exports(mod)))
  return { module: mod, plan: checkImports(mod, options, bytes, hostMemories.get(mod)) }
}

/** Refuses a module without a `_start` function from its export section, before compiling it (a 30 MB reactor costs seconds to compile). */
function refuseLibrary(bytes: Uint8Array): void {
  let exports: Export[]
  try {
    exports = readExports(findSection(parseSections(bytes), SectionId.Export))
  } catch {
    return // malformed: the compiler says how
  }
  const fn = exports.filter((e) => e.kind === ExternalKind.Function)
  if (!fn.some((e) => e.name === '_start')) throw new ModuleError(notCommandMessage(fn))
}

const codeShifts = new WeakMap<WebAssembly.Module, number>()
/** Modules whose memory caplet's rewrite made an import (`reuseMemory`), with its limits. */
const hostMemories = new WeakMap<WebAssembly.Module, ReusedMemory>()

/** Where the code section's payload starts, or NaN. */
function codeStart(bytes: Uint8Array): number {
  try {
    return findSection(parseSections(bytes), SectionId.Code)?.offset ?? NaN
  } catch {
    return NaN
  }
}

/**
 * How many bytes the compiled module's code sits after the same code in the caller's bytes
 * (subtract it from an engine's code offset); undefined when the bodies were rewritten (fuel)
 * or the module came compiled.
 */
export function codeShift(mod: WebAssembly.Module): number | undefined {
  const s = codeShifts.get(mod)
  return s === undefined || Number.isNaN(s) ? undefined : s
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
      0,
      0x61,
      0x73,
      0x6d,
      1,
      0,
      0,
      0,
      1,
      4,
      1,
      0x60,
      0,
      0, // type section: () -> ()
      3,
      2,
      1,
      0, // function section: one function of type 0
      0,
      20,
      16,
      ...Array.from('compilationHints', (c) => c.charCodeAt(0)),
      2,
      0,
      0,
      10,
      4,
      1,
      2,
      0,
      0x0b, // code section: one empty body
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
 * `code` with a compilation-hints section for `tier` (`addTierHints`), or unchanged when the
 * tier needs none or the engine ignores hints.
 */
export function withTierHints(code: Uint8Array, tier: Tier, identity?: string): Uint8Array {
  if (tier === 'baseline' || !compilationHintsSupported()) return code
  // Keyed by the identity of the bytes `code` was made from, so only a loader that knows it
  // (loadLinked) uses the on-disk cache.
  const hints = identity !== undefined ? cachedTierHints(code, identity, tier) : tierHints(code, tier)
  return hints === undefined ? code : insertTierHints(code, hints)
}
