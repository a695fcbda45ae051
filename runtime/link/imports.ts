/**
 * @module How a module's imports link under a policy, decided before anything runs: a WASI function
 * provided, one the policy denies (refused or stubbed `ENOSYS`), or an unknown import (refused, or
 * stubbed to trap or return zeros, as wasmtime's `--trap-unknown-imports`). The plan is plain data
 * (it crosses into a worker); `stubFunctions` makes the stubs on the guest's thread.
 *
 * SECURITY: a stub only records the call and traps or returns a constant; it touches no guest
 * memory. Non-function imports are never stubbed. Refusals happen before instantiation, so no
 * guest code (not even a start function) runs for a refused module.
 */
import { escapeControlCharacters } from '../../wasi-host/trace/escape.js'
import { WASI_PREVIEW1_FUNCTIONS } from '../../wasi-host/abi/preview1.js'
import { UnknownImportsError, ModuleError } from '../errors.js'
import { readU32 } from '../instrument/leb128.js'
import { REUSED_MEMORY_IMPORT } from '../instrument/memory.js'
import { ExternalKind, findSection, parseSections, readImports, SectionId } from '../instrument/sections.js'
import type { ImportStub } from './stubs.js'

export { stubFunctions, UnknownImportCalled, type ImportStub } from './stubs.js'

export type UnknownImportsMode = 'reject' | 'trap' | 'default'
export type DeniedSyscallsMode = 'refuse' | 'enosys'

export interface ImportPolicy {
  /** Allow-list of WASI functions (undefined: all 46). */
  syscalls?: readonly string[] | undefined
  /** WASI functions denied even if allowed. */
  denySyscalls?: readonly string[] | undefined
  /** What a denied WASI import does: refuse the module (default) or return ENOSYS when called. */
  deniedSyscalls?: DeniedSyscallsMode | undefined
  /** What an import caplet does not provide does: refuse the module (default), trap when called, or return zeros. */
  unknownImports?: UnknownImportsMode | undefined
  /**
   * Non-WASI function imports the caller itself provides (`"env.host_call"`), accepted beside
   * the WASI ones: caplet's own engines (the JavaScript engine's hooks), never a user's choice.
   */
  hostImports?: readonly string[] | undefined
}

export interface ImportPlan {
  /** WASI functions the host provides to this module. */
  functions: string[]
  stubs: ImportStub[]
  /** The memory the host supplies (`caplet.memory`, made by caplet's own rewrite), and its limits. */
  memory?: { minPages: number; maxPages: number }
}

const WASI = 'wasi_snapshot_preview1'
const PROVIDED = new Set(WASI_PREVIEW1_FUNCTIONS)
/** How many names a refusal lists before "and N more". */
const NAMES_SHOWN = 3
/** Longest name a refusal prints (CRuby's imports carry whole signatures). */
const NAME_CHARS = 48

function short(module: string, name: string): string {
  const full = escapeControlCharacters(`${module}.${name}`)
  return full.length > NAME_CHARS ? `${full.slice(0, NAME_CHARS - 1)}…` : full
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, NAMES_SHOWN).join(', ')
  return names.length > NAMES_SHOWN ? `${shown} and ${names.length - NAMES_SHOWN} more` : shown
}

/**
 * Decides how each import links. `bytes` (the module's own bytes) are needed only for
 * `unknownImports: 'default'`, to know what each stub returns.
 * @throws ModuleError (UnknownImportsError for unprovided imports) naming what is refused and the flag that would allow it
 */
export function planImports(mod: WebAssembly.Module, bytes: Uint8Array | undefined, p: ImportPolicy, hostMemory = false): ImportPlan {
  const allow = p.syscalls ? new Set(p.syscalls) : undefined
  const deny = new Set(p.denySyscalls ?? [])
  const unknownMode = p.unknownImports ?? 'reject'
  const functions: string[] = []
  const stubs: ImportStub[] = []
  const unknown: string[] = []
  const unstubbable: string[] = []
  const denied: string[] = []
  let results: Map<string, string[] | undefined> | undefined
  for (const imp of WebAssembly.Module.imports(mod)) {
    const isFunc = imp.kind === 'function'
    if (imp.module === WASI && isFunc && PROVIDED.has(imp.name)) {
      if ((allow && !allow.has(imp.name)) || deny.has(imp.name)) {
        if (p.deniedSyscalls === 'enosys') stubs.push({ module: imp.module, name: imp.name, action: 'enosys', results: ['i32'] })
        else denied.push(imp.name)
      } else functions.push(imp.name)
      continue
    }
    if (isFunc && p.hostImports?.includes(`${imp.module}.${imp.name}`)) continue
    // Only when caplet's rewrite made it (`hostMemory`): a module's own import of it is refused below.
    if (hostMemory && imp.kind === 'memory' && imp.module === REUSED_MEMORY_IMPORT.module && imp.name === REUSED_MEMORY_IMPORT.name)
      continue
    if (!isFunc) {
      unstubbable.push(`${short(imp.module, imp.name)} (${imp.kind})`)
      continue
    }
    if (unknownMode === 'reject') {
      unknown.push(`${imp.module}.${imp.name}`)
      continue
    }
    if (unknownMode === 'trap') {
      stubs.push({ module: imp.module, name: imp.name, action: 'trap', results: [] })
      continue
    }
    results ??= bytes ? importResults(bytes) : new Map()
    const r = results.get(`${imp.module}\0${imp.name}`)
    if (r === undefined) {
      throw new ModuleError(
        `--default-unknown-imports needs the module's bytes to know what ${short(imp.module, imp.name)} returns; pass the bytes, not a compiled WebAssembly.Module`,
      )
    }
    // A v128 cannot cross into JS: such an import can only trap.
    stubs.push({ module: imp.module, name: imp.name, action: r.includes('v128') ? 'trap' : 'default', results: r })
  }
  if (unstubbable.length > 0) {
    throw new ModuleError(
      `module imports ${unstubbable.length === 1 ? 'a non-function' : `${unstubbable.length} non-functions`} caplet does not provide: ${listed(unstubbable)} (only functions can be stubbed; caplet inspect lists them)`,
    )
  }
  if (unknown.length > 0) throw new UnknownImportsError(unknown, unknownImportsMessage(unknown, false))
  if (denied.length > 0) {
    throw new ModuleError(
      `module imports WASI functions the policy denies: ${listed(denied)} (allow them with --allow-syscalls ${denied.join(',')}, or stub them to return ENOSYS with --stub-denied-syscalls)`,
    )
  }
  return { functions, stubs }
}

/** The refusal of unprovided imports: short (count, a few names, the flags), or every name with `verbose`. */
export function unknownImportsMessage(imports: readonly string[], verbose: boolean): string {
  const list = verbose
    ? imports.map((n) => escapeControlCharacters(n)).join(', ')
    : listed(
        imports.map((n) => {
          const dot = n.indexOf('.')
          return short(n.slice(0, dot), n.slice(dot + 1))
        }),
      )
  const n = imports.length
  return `module imports ${n} function${n === 1 ? '' : 's'} caplet does not provide: ${list}; run with --trap-unknown-imports (each traps if called) or --default-unknown-imports (each returns 0)${verbose ? '' : '; caplet inspect MODULE or --verbose lists them all'}`
}

const VALTYPES: Readonly<Record<number, string>> = {
  0x7f: 'i32',
  0x7e: 'i64',
  0x7d: 'f32',
  0x7c: 'f64',
  0x7b: 'v128',
  0x70: 'funcref',
  0x6f: 'externref',
}

/** Result types of each function import, by `module\0name`; undefined for a type it cannot read. */
function importResults(bytes: Uint8Array): Map<string, string[] | undefined> {
  const mod = parseSections(bytes)
  const types: (string[] | undefined)[] = []
  const ts = findSection(mod, SectionId.Type)
  if (ts !== undefined) {
    const p = ts.payload
    const n = readU32(p, 0)
    let pos = n.next
    for (let i = 0; i < n.value; i++) {
      if (p[pos] !== 0x60) break // GC types: the rest stay unknown
      pos++
      const params = readU32(p, pos)
      pos = params.next + params.value // plain value types are one byte each
      const res = readU32(p, pos)
      pos = res.next
      const out: string[] = []
      for (let k = 0; k < res.value; k++) out.push(VALTYPES[p[pos++]!] ?? '?')
      types.push(out.includes('?') ? undefined : out)
    }
  }
  const map = new Map<string, string[] | undefined>()
  for (const imp of readImports(findSection(mod, SectionId.Import))) {
    if (imp.kind === ExternalKind.Function) map.set(`${imp.module}\0${imp.name}`, types[imp.typeIndex!])
  }
  return map
}
