/**
 * @module The public API of caplet.
 */
export { prepare, prepareSync, run, runSync, TRAP_EXIT_CODE, LIMIT_EXIT_CODE } from './sandbox.js'
export type { Program, RunResult } from './sandbox.js'
export type { RunStats, LimitKind } from './execute.js'
export type { Duration, Limits, MountSpec, OutputOption, RunInput, RunOptions, Size } from './policy.js'
export { resolvePolicy } from './policy.js'
export type { TrapInfo, TrapKind } from './trap.js'
export { loadModule } from './module.js'
export { ModuleError, PolicyError, SandboxError } from './errors.js'
export { PluginCallError, PluginUnusableError } from './errors.js'
export type { PluginFailure } from './errors.js'
export * from './plugin/index.js'
export { parseDuration, parseSize } from './units.js'
export * from '../wasi-host/index.js'
export { createHostDirFs } from '../wasi-host/node/host-dir-fs.js'
