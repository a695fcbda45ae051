/**
 * @module Loads a plugin module: reads, validates and instruments it (table cap, memory cap,
 * fuel, and exports of its mutable globals and tables for the state snapshot), then checks
 * every import against what is granted: WASI functions (and the policy's syscall allow-list),
 * Extism's `extism:host/env` functions with their exact signatures, and the embedder's host
 * functions by name, with a signature caplet can pass data through. Anything else is refused
 * here, by name, before the plugin runs. Never instantiates the module.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { WASI_PREVIEW1_FUNCTIONS } from '../../wasi-host/index.js'
import { ModuleError } from '../errors.js'
import { capMemory, capTables, FUEL_EXPORT, InstrumentError, meterFuel } from '../instrument/index.js'
import { trackWrites } from '../instrument/write-tracking.js'
import { exportState, functionSignatures, hasPassiveSegments, type FunctionSignature } from '../instrument/export-state.js'
import { withTierHints, type ModuleSource } from '../module.js'
import type { ResolvedPolicy } from '../policy.js'
import { formatSize } from '../units.js'
import { EXTISM_FUNCTIONS } from './extism-kernel.js'
import type { ImportStub } from '../link/imports.js'

export const EXTISM_ENV = 'extism:host/env'
export const EXTISM_USER = 'extism:host/user'
/** The built-in host function for plugins outside the Extism ABI: HTTP behind the allow-list. */
export const HTTP_FUNCTION = 'caplet:http.request'

/** How a granted host function exchanges data with the plugin. */
export type HostConvention =
  /** `(i32 ptr, i32 len, i32 out_ptr, i32 out_cap) -> i32`: bytes in; bytes out when they fit (the length is returned either way, as `snprintf`). */
  | 'buffer'
  /** Extism's `extism:host/user`: every parameter an i64 block offset, the result (if any) a new block's offset. */
  | 'extism'

export interface HostImport {
  /** `module.field`. */
  name: string
  convention: HostConvention
  params: number
  hasResult: boolean
}

export interface LoadedPlugin {
  module: WebAssembly.Module
  /** Export names of the mutable globals (the fuel counter excluded) and tables to snapshot. */
  globals: string[]
  tables: string[]
  wasiFunctions: string[]
  extismFunctions: string[]
  hostImports: HostImport[]
  /** Exports `call` accepts (no parameters; no result or one i32). */
  callable: string[]
  /** Imports linked to stubs: denied syscalls (`deniedSyscalls: 'enosys'`) and unknown imports (`unknownImports`). */
  stubs: ImportStub[]
  /** `reactor`: runs `_initialize` at load; `command`: exports `_start`; `library`: neither. */
  kind: 'reactor' | 'command' | 'library'
  /** Passive data or element segments: state a snapshot cannot restore (fresh calls re-instantiate). */
  passiveSegments: boolean
  /** The module records the memory it writes (`trackWrites`): a reset copies back only that. */
  writeTracking: boolean
  argv0: string
  digest: string
}

function readBytes(source: ModuleSource): Uint8Array {
  if (source instanceof WebAssembly.Module)
    throw new ModuleError(
      'a plugin needs its module bytes (a path, URL or bytes), not a compiled WebAssembly.Module: caplet rewrites it to snapshot its state',
    )
  if (typeof source === 'string' || source instanceof URL) {
    const path = source instanceof URL ? fileURLToPath(source) : source
    try {
      return readFileSync(path)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      throw new ModuleError(`cannot read plugin ${JSON.stringify(path)}: ${code === 'ENOENT' ? 'no such file' : String(code ?? e)}`, {
        cause: e,
      })
    }
  }
  try {
    return new Uint8Array(source instanceof Uint8Array ? source : new Uint8Array(source))
  } catch (e) {
    throw new ModuleError(`cannot read the module bytes: ${(e as Error).message}`, { cause: e })
  }
}

const sameSig = (s: FunctionSignature, want: { params: readonly string[]; results: readonly string[] }) =>
  s.params.length === want.params.length &&
  s.results.length === want.results.length &&
  s.params.every((t, i) => t === want.params[i]) &&
  s.results.every((t, i) => t === want.results[i])
const show = (s: FunctionSignature) => `(${s.params.join(', ')}) -> (${s.results.join(', ')})`

/**
 * Reads, checks and instruments a plugin.
 * @param granted the host functions granted, by `module.field`
 * @throws ModuleError naming what is wrong (an ungranted import first of all)
 */
export function loadPlugin(
  source: ModuleSource,
  policy: ResolvedPolicy,
  granted: ReadonlySet<string>,
  options: { fuel: boolean; http: boolean; trackWrites: boolean },
): LoadedPlugin {
  const original = readBytes(source)
  if (original.byteLength < 8 || original[0] !== 0 || original[1] !== 0x61 || original[2] !== 0x73 || original[3] !== 0x6d) {
    throw new ModuleError('not a WebAssembly module (no "\\0asm" header)')
  }
  let probe: WebAssembly.Module
  try {
    probe = new WebAssembly.Module(original as Uint8Array<ArrayBuffer>)
  } catch (e) {
    throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
  }
  const sigs = functionSignatures(original)
  const refused: string[] = []
  const wasiFunctions: string[] = []
  const extismFunctions: string[] = []
  const hostImports: HostImport[] = []
  const provided = new Set(WASI_PREVIEW1_FUNCTIONS)
  const allow = policy.syscalls ? new Set(policy.syscalls) : undefined
  const deny = new Set(policy.denySyscalls ?? [])
  const stubs: ImportStub[] = []
  /** An import nobody grants: refused, or a stub per `unknownImports` (as for `run`). */
  const unknown = (imp: WebAssembly.ModuleImportDescriptor, sig: FunctionSignature, why: string) => {
    const mode = policy.unknownImports
    if (mode === 'reject') refused.push(`${imp.module}.${imp.name} (${why})`)
    // A v128 cannot cross into JS: such an import can only trap.
    else if (mode === 'trap' || sig.results.includes('v128'))
      stubs.push({ module: imp.module, name: imp.name, action: 'trap', results: [] })
    else stubs.push({ module: imp.module, name: imp.name, action: 'default', results: [...sig.results] })
  }
  for (const imp of WebAssembly.Module.imports(probe)) {
    const name = `${imp.module}.${imp.name}`
    if (imp.kind !== 'function') {
      refused.push(`${name} (${imp.kind}: plugins import functions only)`)
      continue
    }
    const sig = sigs.imports.get(name)!
    if (imp.module === 'wasi_snapshot_preview1') {
      if (!provided.has(imp.name)) unknown(imp, sig, 'not a WASI preview1 function')
      else if ((allow && !allow.has(imp.name)) || deny.has(imp.name)) {
        if (policy.deniedSyscalls === 'enosys') stubs.push({ module: imp.module, name: imp.name, action: 'enosys', results: ['i32'] })
        else refused.push(`${name} (${deny.has(imp.name) ? "in the policy's denySyscalls" : "not in the policy's syscalls"})`)
      } else wasiFunctions.push(imp.name)
    } else if (imp.module === EXTISM_ENV) {
      const want = Object.hasOwn(EXTISM_FUNCTIONS, imp.name) ? EXTISM_FUNCTIONS[imp.name] : undefined
      if (want === undefined) unknown(imp, sig, 'not an Extism function caplet provides')
      else if (!sameSig(sig, want)) refused.push(`${name} (declared ${show(sig)}, Extism's is ${show(want as FunctionSignature)})`)
      else extismFunctions.push(imp.name)
    } else if (granted.has(name) || (name === HTTP_FUNCTION && options.http)) {
      if (imp.module === EXTISM_USER) {
        if (!sig.params.every((t) => t === 'i64') || sig.results.length > 1 || (sig.results.length === 1 && sig.results[0] !== 'i64')) {
          refused.push(`${name} (declared ${show(sig)}; an Extism host function takes and returns i64 offsets)`)
        } else hostImports.push({ name, convention: 'extism', params: sig.params.length, hasResult: sig.results.length === 1 })
      } else if (sameSig(sig, { params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] })) {
        hostImports.push({ name, convention: 'buffer', params: 4, hasResult: true })
      } else {
        refused.push(`${name} (declared ${show(sig)}; a host function takes (i32 ptr, i32 len, i32 out_ptr, i32 out_cap) -> i32)`)
      }
    } else if (name === HTTP_FUNCTION) {
      unknown(imp, sig, 'HTTP is not granted: set http.allowedHosts')
    } else {
      unknown(imp, sig, "not granted: add it to the plugin's host functions")
    }
  }
  if (refused.length > 0) throw new ModuleError(`plugin imports what was not granted: ${refused.join(', ')}`)

  let code: Uint8Array = original
  let globals: string[]
  let tables: string[]
  let passiveSegments: boolean
  let writeTracking = false
  try {
    passiveSegments = hasPassiveSegments(original)
    code = capTables(code)
    code = capMemory(code, policy.limits.memoryPages).bytes
    if (options.fuel) code = meterFuel(code).bytes
    const state = exportState(code)
    code = state.bytes
    globals = state.globals.filter((g) => g !== FUEL_EXPORT)
    tables = state.tables
    // Last, so its globals are neither metered nor snapshotted as the plugin's own.
    const tracked = options.trackWrites && !passiveSegments ? trackWrites(code) : undefined
    if (tracked !== undefined) code = tracked
    writeTracking = tracked !== undefined
  } catch (e) {
    if (e instanceof InstrumentError && e.code === 'MEMORY_MIN_EXCEEDS_CAP') {
      const { minPages = 0, capPages = 0 } = e.details
      throw new ModuleError(
        `the plugin needs ${formatSize(minPages * 65536)} of memory to start, more than the memory limit of ${formatSize(capPages * 65536)}; raise limits.memory`,
        { cause: e },
      )
    }
    if (e instanceof InstrumentError) throw new ModuleError(e.reason, { cause: e })
    throw e
  }
  let module: WebAssembly.Module
  try {
    module = new WebAssembly.Module(withTierHints(code, policy.tier ?? 'auto') as Uint8Array<ArrayBuffer>)
  } catch (e) {
    throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
  }
  const exports = WebAssembly.Module.exports(module)
  if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory'))
    throw new ModuleError('plugin does not export its memory as "memory"')
  const exported = new Set(exports.filter((e) => e.kind === 'function').map((e) => e.name))
  const callable = [...sigs.exports.entries()]
    .filter(
      ([n, s]) =>
        exported.has(n) &&
        n !== '_initialize' &&
        !n.startsWith('caplet_') &&
        s.params.length === 0 &&
        (s.results.length === 0 || (s.results.length === 1 && s.results[0] === 'i32')),
    )
    .map(([n]) => n)
  const kind = exported.has('_initialize') ? 'reactor' : exported.has('_start') ? 'command' : 'library'
  const argv0 =
    typeof source === 'string' ? source.split('/').pop()! : source instanceof URL ? source.pathname.split('/').pop()! : 'plugin.wasm'
  return {
    module,
    globals,
    tables,
    wasiFunctions,
    extismFunctions,
    hostImports,
    stubs,
    callable,
    kind,
    passiveSegments,
    writeTracking,
    argv0,
    digest: createHash('sha256').update(original).digest('hex'),
  }
}
