/**
 * @module The stubs of a link plan (imports.ts), made on the guest's thread: what a worker needs
 * of linking, without the module parser that planned it.
 */
import { escapeControlCharacters } from '../../wasi-host/trace/escape.js'

/** One import linked to a stub. `results`: the wasm result types (for `default`), e.g. `['i32']`. */
export interface ImportStub {
  module: string
  name: string
  action: 'trap' | 'default' | 'enosys'
  results: string[]
}

/** Thrown by a `trap` stub: the guest called an import caplet does not provide. */
export class UnknownImportCalled extends Error {
  constructor(readonly importName: string) {
    super(`the guest called ${escapeControlCharacters(importName)}, an import caplet does not provide (stubbed by --trap-unknown-imports)`)
    this.name = 'UnknownImportCalled'
  }
}

const ENOSYS = 52

/**
 * The stub functions of a plan, grouped by module for the import object. `onCall` hears every
 * call of a stub (denials, traces); a trap stub throws `UnknownImportCalled` and also hands it to
 * `onTrap`, so a guest that catches it (exception handling) still ends as trapped.
 */
export function stubFunctions(
  stubs: readonly ImportStub[],
  onCall: (stub: ImportStub) => void,
  onTrap: (e: UnknownImportCalled) => void,
): Record<string, Record<string, (...args: unknown[]) => unknown>> {
  const out: Record<string, Record<string, (...args: unknown[]) => unknown>> = Object.create(null)
  for (const s of stubs) {
    const group = (out[s.module] ??= Object.create(null) as Record<string, (...args: unknown[]) => unknown>)
    const label = `${s.module}.${s.name}`
    let fn: (...args: unknown[]) => unknown
    if (s.action === 'trap') {
      fn = () => {
        onCall(s)
        const e = new UnknownImportCalled(label)
        onTrap(e)
        throw e
      }
    } else if (s.action === 'enosys') {
      fn = () => {
        onCall(s)
        return ENOSYS
      }
    } else {
      const zeros = s.results.map((t) => (t === 'i64' ? 0n : t === 'funcref' || t === 'externref' ? null : 0))
      const value = zeros.length === 0 ? undefined : zeros.length === 1 ? zeros[0] : zeros
      fn = () => {
        onCall(s)
        return Array.isArray(value) ? value.slice() : value
      }
    }
    group[s.name] = fn
  }
  return out
}
