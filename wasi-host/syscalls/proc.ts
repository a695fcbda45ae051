/**
 * @module proc_exit, proc_raise, sched_yield.
 *
 * SECURITY: `proc_raise` never delivers a real signal (node:wasi forwards it, and its guest can
 * kill the host process); it is `NOSYS`, which the spec allows.
 */
import { Errno } from '../abi/constants.js'
import { ProcExit } from '../errors.js'
import type { HostState } from '../host-state.js'

export function proc_exit(_h: HostState, code: number): never {
  throw new ProcExit(code)
}

export function proc_raise(_h: HostState, _signal: number): number {
  return Errno.NOSYS
}

export function sched_yield(_h: HostState): number {
  return Errno.SUCCESS
}
