/**
 * @module The public API of caplet (`import … from 'caplet'`): run or prepare a WASI command
 * under a policy, the errors they reject with, and the option and result types. The low-level
 * host is `caplet/wasi-host`; the Node backends are `caplet/node`. Nothing else is exported here.
 */
export { prepare, prepareSync, run, runSync, TRAP_EXIT_CODE, LIMIT_EXIT_CODE } from './sandbox.js'
export type { Program, RunResult } from './sandbox.js'
export type { RunStats, LimitKind } from './execute.js'
export type { Duration, Limits, MountSpec, OutputOption, ResolvedMount, ResolvedPolicy, RunInput, RunOptions, Size } from './policy.js'
export { resolvePolicy } from './policy.js'
export type { ModuleSource } from './module.js'
export type { OverlayReport } from './mounts.js'
export type { TrapInfo, TrapKind } from './trap.js'
export { ModuleError, PolicyError, SandboxError } from './errors.js'
export type { SandboxErrorCode } from './errors.js'
export { parseDuration, parseSize } from './units.js'
/** The backend type a `MountSpec.fs` takes, and what an overlay report lists. */
export type { Filesystem, OverlayChange } from '../wasi-host/index.js'
