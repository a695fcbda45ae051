/**
 * @module The platform-neutral half of the module pipeline, shared by Node (`module.ts`) and the
 * browser (`browser/load-module.ts`): checks that bytes are a valid module, rewrites them under
 * the policy (table cap always, memory cap, fuel metering) and checks a compiled module's imports
 * against what the host provides and the policy allows. No `node:` import, no I/O, no cache:
 * where the bytes come from and how they are compiled and cached is each platform's business.
 * It must never let a module through with an import the host does not provide or the policy
 * does not grant.
 */
import { ModuleError } from './errors.js'
import { capMemory, capTables, importMemory, InstrumentError, meterFuel, type InPlaceEdit } from './instrument/index.js'
import { formatSize } from './units.js'
import { planImports, type ImportPlan, type ImportPolicy } from './link/imports.js'

/** How to rewrite a module: what the policy asks of it. */
export interface InstrumentOptions {
  /** Cap linear memory at this many 64 KiB pages. */
  memoryPages?: number | undefined
  /** Instrument for fuel metering. */
  fuel?: boolean | undefined
  /** Make the (capped) memory an import the host supplies and reuses (`importMemory`). */
  reuseMemory?: boolean | undefined
}

/** The limits of the memory a rewritten module imports (`InstrumentOptions.reuseMemory`). */
export interface ReusedMemory {
  minPages: number
  maxPages: number
}

/** @throws ModuleError when `bytes` do not start with the WebAssembly magic number */
export function checkModuleHeader(bytes: Uint8Array): void {
  if (bytes.byteLength < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new ModuleError('not a WebAssembly module (no "\\0asm" header); compile it for wasm32-wasi first')
  }
}

/**
 * The engine's reason `bytes` are not a valid module, as a ModuleError; undefined when they are.
 * A separate validation pass costs a tenth of a compile: callers that compile anyway ask only
 * when something failed, to name the fault in the caller's bytes rather than in a rewrite.
 */
export function invalidModule(bytes: Uint8Array): ModuleError | undefined {
  if (WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) return undefined
  try {
    new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>)
  } catch (e) {
    return new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
  }
  return undefined
}

/** @throws ModuleError when `bytes` are not a valid WebAssembly module, with the engine's reason */
export function checkModuleBytes(bytes: Uint8Array): void {
  checkModuleHeader(bytes)
  const invalid = invalidModule(bytes)
  if (invalid !== undefined) throw invalid
}

/** What `instrumentModule` tells besides the module. */
export interface Instrumented {
  /** The limits of the memory the module now imports (`reuseMemory`). */
  memory?: ReusedMemory
  /** Set when `bytes` themselves were rewritten (`room`): `beforeEdit` gives them back as they were. */
  edit?: InPlaceEdit
}

/**
 * The module rewritten as the policy asks. `room`: only for bytes caplet read itself and nobody
 * else holds, with that many bytes usable from their start; the memory cap may then rewrite them in
 * place (`out.edit` says so) instead of copying the module. Never for a caller's bytes.
 * @throws ModuleError
 */
export function instrumentModule(bytes: Uint8Array, options: InstrumentOptions, out?: Instrumented, room?: number): Uint8Array {
  let code = bytes
  try {
    // SECURITY: tables are engine heap the memory cap does not cover; always bound them.
    code = capTables(code)
    if (options.memoryPages !== undefined) {
      const capped = capMemory(code, options.memoryPages, code === bytes && out !== undefined ? room : undefined)
      code = capped.bytes
      if (out !== undefined && capped.edit !== undefined) out.edit = capped.edit
    }
    // Only a capped memory: the import carries the cap as its maximum.
    if (options.reuseMemory && options.memoryPages !== undefined) {
      const r = importMemory(code)
      code = r.bytes
      if (out !== undefined && r.memory !== undefined) out.memory = r.memory
    }
    if (options.fuel) code = meterFuel(code).bytes
  } catch (e) {
    if (e instanceof InstrumentError && e.code === 'MEMORY_MIN_EXCEEDS_CAP') {
      const { minPages = 0, capPages = 0 } = e.details
      throw new ModuleError(
        `the module needs ${formatSize(minPages * 65536)} of memory to start, more than the memory limit of ${formatSize(capPages * 65536)}; raise limits.memory (--memory)`,
        { cause: e },
      )
    }
    if (e instanceof InstrumentError) throw new ModuleError(e.reason, { cause: e })
    throw e
  }
  return code
}

/**
 * How the module's imports link under the policy (`planImports`), once it exports its memory.
 * @throws ModuleError naming what the host does not provide or the policy denies, with the flag
 * that would allow it
 */
export function checkImports(mod: WebAssembly.Module, policy: ImportPolicy = {}, bytes?: Uint8Array, memory?: ReusedMemory): ImportPlan {
  const plan = planImports(mod, bytes, policy, memory !== undefined)
  if (memory !== undefined) plan.memory = memory
  if (!moduleShape(mod).exportsMemory) {
    throw new ModuleError('module does not export its memory as "memory"')
  }
  return plan
}

/** A module's imports and whether it exports "memory": fixed for its lifetime, so read once. */
interface ModuleShape {
  imports: WebAssembly.ModuleImportDescriptor[]
  exportsMemory: boolean
  /** Whether it exports a `_start` function: a WASI command. */
  exportsStart: boolean
  names?: readonly string[]
}

const shapes = new WeakMap<WebAssembly.Module, ModuleShape>()

function moduleShape(mod: WebAssembly.Module): ModuleShape {
  let shape = shapes.get(mod)
  if (shape === undefined) {
    const exports = WebAssembly.Module.exports(mod)
    shape = {
      imports: WebAssembly.Module.imports(mod),
      exportsMemory: exports.some((e) => e.name === 'memory' && e.kind === 'memory'),
      exportsStart: exports.some((e) => e.name === '_start' && e.kind === 'function'),
    }
    shapes.set(mod, shape)
  }
  return shape
}

/**
 * Why a module cannot be run as a program, in one line with the way forward: a reactor (it
 * exports `_initialize`, like CRuby's `ruby.wasm`) or another library is loaded with `plugin()`
 * and its exports called.
 */
export function notCommandMessage(exports: readonly { name: string }[]): string {
  const reactor = exports.some((e) => e.name === '_initialize')
  return (
    `${reactor ? 'module is a WASI reactor (it exports _initialize, not _start)' : 'module has no "_start" export: it is not a WASI command'}: ` +
    "a library to call, not a program to run; load it with plugin() from 'caplet' and call its exports (caplet inspect MODULE lists them)"
  )
}

/** Whether the module is a WASI command (exports a `_start` function). */
export function isCommand(mod: WebAssembly.Module): boolean {
  return moduleShape(mod).exportsStart
}

/** The names of the WASI functions the module imports (every import, once checkImports passed). */
export function importedFunctions(mod: WebAssembly.Module): readonly string[] {
  const shape = moduleShape(mod)
  return (shape.names ??= shape.imports.map((i) => i.name))
}
