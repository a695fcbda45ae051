/**
 * @module The public API of caplet (`import … from 'caplet'`): run or prepare a WASI command
 * under a policy, the errors they reject with, and the option and result types. The low-level
 * host is `caplet/wasi-host`; the Node backends are `caplet/node`. Nothing else is exported here.
 */
export { prepare, prepareSync, run, runSync, TRAP_EXIT_CODE, LIMIT_EXIT_CODE } from './sandbox.js'
export type { Program, RunResult } from './sandbox.js'
export type { RunStats, LimitKind } from './execute.js'
export type {
  Duration,
  Limits,
  MountSpec,
  OutputOption,
  ResolvedMount,
  ResolvedPolicy,
  RunInput,
  RunOptions,
  Size,
  TraceOptions,
  TraceSink,
} from './policy.js'
export type { Denial } from './denials.js'
export type { TraceSummaryRow } from './trace-output.js'
/** `caplet inspect` as a function: what a module can ever ask of the host. */
export { inspectModule } from './inspect/index.js'
export type { ModuleReport } from './inspect/index.js'
export { resolvePolicy } from './policy.js'
export type { ModuleSource } from './module.js'
export type { OverlayReport } from './mounts.js'
export type { TrapFrame, TrapInfo, TrapKind } from './trap.js'
export { ModuleError, NetworkError, PolicyError, SandboxError, UnknownImportsError } from './errors.js'
export type { SandboxErrorCode } from './errors.js'
export type { ListeningSocket, SocketSpec } from './socket-grants.js'
export { PluginCallError, PluginUnusableError } from './errors.js'
export type { PluginFailure } from './errors.js'
export { HostInput, plugin, pluginSync, scriptPlugin } from './plugin/index.js'
export type {
  CallOptions,
  HostFunction,
  HostFunctions,
  HostOutput,
  HttpOptions,
  Plugin,
  PluginOptions,
  ScriptPluginOptions,
} from './plugin/index.js'
export { parseDuration, parseSize } from './units.js'
/** The backend type a `MountSpec.fs` takes, and what an overlay report lists. */
export type { Filesystem, OverlayChange } from '../wasi-host/index.js'
export { runScript, isScriptProgram, SCRIPT_MIN_MEMORY } from './script.js'
export type { ScriptProgram } from './script.js'
export { compileScript } from '../toolchain/js/index.js'
export type { CompileScriptResult, ScriptSource } from '../toolchain/js/index.js'
export { compile, formatDiagnostics, languageForFile, LANGUAGES } from '../toolchain/index.js'
export type { CompileOptions, CompileRequest, CompileResult, Diagnostic } from '../toolchain/index.js'
export { CompileError, ToolchainError } from './errors.js'
