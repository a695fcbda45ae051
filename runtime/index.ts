/**
 * @module The public API of caplet.
 */
export { run, runSync, TRAP_EXIT_CODE } from './run.js'
export type { MountSpec, OutputOption, RunOptions, RunResult, RunStats } from './run.js'
export type { TrapInfo, TrapKind } from './trap.js'
export { loadModule } from './module.js'
export { ModuleError, PolicyError, SandboxError } from './errors.js'
export * from '../wasi-host/index.js'
export { createHostDirFs } from '../wasi-host/node/host-dir-fs.js'
