/**
 * @module The API's core: `run()` for one guest under one policy, and `prepare()` for many runs
 * of one module under one policy, as wasmtime's `InstancePre` (policy validated, module loaded,
 * instrumented, compiled and its imports checked once; each run gets a fresh host, descriptors,
 * mounts and instance). By default the guest runs in a worker thread, stoppable at any
 * instruction; `in-process` runs it on the caller's thread, where only fuel can stop it. The
 * in-process executor and scripts load when a run needs them; sandbox.ts, the public API, loads
 * the executor with this module, for the synchronous calls.
 */
import { basename } from 'node:path'
import { withLimitDenial } from './denials.js'
import { runInWorker, type Command, type RunResult } from './launch.js'
import { codeShift, loadLinked, type ModuleSource } from './module.js'
import { defaultPool } from './worker/pool.js'
import {
  inProcess,
  preparePolicy,
  resolveRunInput,
  type PreparedPolicy,
  type ResolvedPolicy,
  type RunInput,
  type RunOptions,
} from './policy.js'
import { isScriptProgram, type ScriptProgram } from '../toolchain/js/index.js'
import { LIMIT_EXIT_CODE, TRAP_EXIT_CODE } from './trap.js'

type InProcess = typeof import('./in-process.js')
let inProcessRuns: InProcess | undefined

/** Gives this module the in-process executor ahead of need (sandbox.ts does, for `runSync`). */
export function provideInProcess(m: InProcess): void {
  inProcessRuns = m
}

/** The in-process executor, loaded now if no run has needed it yet. */
async function loadInProcess(): Promise<InProcess> {
  return (inProcessRuns ??= await import('./in-process.js'))
}

/** The in-process executor for a synchronous run: it must have been provided (sandbox.ts). */
function inProcessNow(): InProcess {
  if (inProcessRuns === undefined) throw new Error('caplet: the in-process executor is not loaded (import the runtime from sandbox.ts)')
  return inProcessRuns
}

export type { RunResult }

/** A module prepared under a policy, to be run many times. */
export interface Program {
  /**
   * Runs the program once, in a worker unless it was prepared with `isolation: 'in-process'`.
   * `input` replaces what varies per run (args, env, stdin, output delivery, signal); every other
   * part of the policy is the prepared one. Resolves with a result whatever the guest did;
   * rejects for bad input (`PolicyError`) or, when the signal aborts, with its reason.
   */
  run(input?: RunInput): Promise<RunResult>
  /**
   * Runs the program once on the caller's thread, synchronously.
   * @throws PolicyError for bad input, or when the program has a timeout (only a worker can stop it)
   */
  runSync(input?: RunInput): RunResult
}

class PreparedProgram implements Program {
  readonly #command: Command
  readonly #prepared: PreparedPolicy
  /** The prepared policy for runs on the caller's thread, made at the first `runSync`. */
  #inProcess: PreparedPolicy | undefined

  constructor(module: ModuleSource, prepared: PreparedPolicy) {
    const { module: mod, plan } = loadCommand(module, prepared.policy)
    this.#command = {
      module: mod,
      functions: plan.functions,
      stubs: plan.stubs,
      codeShift: codeShift(mod),
      argv0: argv0Of(module),
      ...(plan.memory !== undefined ? { memory: plan.memory } : {}),
    }
    this.#prepared = prepared
  }

  async run(input?: RunInput): Promise<RunResult> {
    const r = resolveRunInput(this.#prepared, input)
    r.signal?.throwIfAborted()
    const local = r.policy.sockets.length > 0 || r.policy.isolation === 'in-process' ? await loadInProcess() : undefined
    // The executor may have just loaded: a signal aborted meanwhile still stops the run before it starts.
    if (local !== undefined) r.signal?.throwIfAborted()
    const result =
      local === undefined
        ? await runInWorker(this.#command, r)
        : r.policy.sockets.length > 0
          ? await (r.policy.isolation === 'in-process'
              ? local.runInProcessWithSockets(this.#command, r)
              : local.runInWorkerWithSockets(this.#command, r))
          : local.runInProcess(this.#command, r)
    return withLimitDenial(result, r.policy)
  }

  runSync(input?: RunInput): RunResult {
    const r = resolveRunInput((this.#inProcess ??= inProcess(this.#prepared)), input)
    r.signal?.throwIfAborted()
    const local = inProcessNow()
    return withLimitDenial(
      r.policy.sockets.length > 0 ? local.runSyncWithSockets(this.#command, r) : local.runInProcess(this.#command, r),
      r.policy,
    )
  }
}

/**
 * Validates the policy and loads the module for many runs (see `Program`).
 * @throws PolicyError listing every problem, ModuleError
 */
export function prepareSync(module: ModuleSource, options: RunOptions = {}): Program {
  return new PreparedProgram(module, preparePolicy(options))
}

/** `prepareSync` as a promise: rejects with `PolicyError` or `ModuleError`. */
export async function prepare(module: ModuleSource, options: RunOptions = {}): Promise<Program> {
  return prepareSync(module, options)
}

/**
 * Runs a WASI command module (or a compiled JavaScript/TypeScript program) under a policy. Resolves with a result whatever the guest did;
 * rejects only for what the caller got wrong (`PolicyError`, `ModuleError`) or, when
 * `options.signal` aborts, with the signal's reason.
 */
export async function run(module: ModuleSource | ScriptProgram, options: RunOptions = {}): Promise<RunResult> {
  // A JavaScript/TypeScript program compiled by `compileScript` runs inside caplet's JS engine.
  if (isScriptProgram(module)) return (await import('./script.js')).runScript(module, options)
  const prepared = preparePolicy(options)
  options.signal?.throwIfAborted()
  return new PreparedProgram(module, prepared).run()
}

/** `run` on the caller's thread, synchronously (isolation is forced to `in-process`). */
export function runSync(module: ModuleSource, options: RunOptions = {}): RunResult {
  return prepareSync(module, { ...options, isolation: 'in-process' }).runSync()
}

/** Loads a WASI command: a module that exports `_start`. @throws ModuleError */
function loadCommand(module: ModuleSource, policy: ResolvedPolicy): ReturnType<typeof loadLinked> {
  const linked = loadLinked(module, {
    memoryPages: memoryCap(module, policy),
    fuel: policy.limits.fuel !== undefined,
    syscalls: policy.syscalls,
    tier: policy.tier,
    denySyscalls: policy.denySyscalls,
    deniedSyscalls: policy.deniedSyscalls,
    unknownImports: policy.unknownImports,
    command: true,
    // A long-running embedder reuses its workers (`WorkerPool.reserve`): then each thread also
    // keeps the memory of a finished run for the next one, zeroed (a fresh memory costs a GC
    // and its kernel mappings per run).
    reuseMemory: defaultPool.reserved > 0,
  })
  return linked
}

function argv0Of(module: ModuleSource): string {
  return typeof module === 'string' ? basename(module) : module instanceof URL ? basename(module.pathname) : 'main.wasm'
}

/** The default cap needs the module's bytes; a precompiled module gets only an explicit one (which loadModule refuses). */
function memoryCap(module: ModuleSource, policy: ResolvedPolicy): number | undefined {
  return module instanceof WebAssembly.Module && !policy.limits.memoryExplicit ? undefined : policy.limits.memoryPages
}

export { TRAP_EXIT_CODE, LIMIT_EXIT_CODE }
