/**
 * @module Classifies why a guest stopped abnormally, from what the engine or the host threw.
 */
import { GuestFault, HostInvariantError } from '../wasi-host/index.js'
import { UnknownImportCalled } from './link/imports.js'

export type TrapKind =
  | 'unreachable'
  | 'out-of-bounds'
  | 'stack-overflow'
  | 'arithmetic'
  | 'indirect-call'
  | 'memory-fault'
  | 'host-fault'
  | 'unknown-import'
  | 'runtime'

export interface TrapInfo {
  kind: TrapKind
  /** One line: what happened. */
  message: string
  /** The syscall that faulted, for `memory-fault` and `host-fault`. */
  syscall?: string
  /** The last few syscalls the guest made, oldest first. */
  recentSyscalls: string[]
}

/** Returns a TrapInfo if `e` is a guest trap, or undefined if it is something else. */
export function classifyTrap(e: unknown, recentSyscalls: string[]): TrapInfo | undefined {
  if (e instanceof GuestFault) {
    return { kind: 'memory-fault', message: `bad pointer passed to ${e.syscall ?? 'a syscall'}: ${e.message}`, syscall: e.syscall, recentSyscalls }
  }
  if (e instanceof UnknownImportCalled) {
    return { kind: 'unknown-import', message: e.message, syscall: e.importName, recentSyscalls }
  }
  if (e instanceof HostInvariantError) {
    return { kind: 'host-fault', message: e.message, syscall: e.syscall, recentSyscalls }
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return { kind: 'stack-overflow', message: 'call stack exhausted', recentSyscalls }
  }
  if (e instanceof WebAssembly.RuntimeError) {
    const m = e.message
    const kind: TrapKind = /unreachable/.test(m) ? 'unreachable'
      : /out of bounds|out-of-bounds/.test(m) && !/table/.test(m) ? 'out-of-bounds'
      : /divide by zero|divide result|integer overflow|float unrepresentable|invalid conversion/.test(m) ? 'arithmetic'
      : /table|indirect|null function|signature mismatch|function signature/.test(m) ? 'indirect-call'
      : /call stack/i.test(m) ? 'stack-overflow'
      : 'runtime'
    return { kind, message: m, recentSyscalls }
  }
  return undefined
}
