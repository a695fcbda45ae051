/**
 * @module Running a compiled JavaScript/TypeScript program (`toolchain/js`) under a policy:
 * `runScript(program, options)` resolves with the same `RunResult` as `run()`. The program runs
 * inside QuickJS (`script-engine.ts`), a wasm module loaded through caplet's own pipeline
 * (memory cap, fuel, syscall allow-list) and served by a `WasiHost` built from the policy like
 * any guest's, in a pooled worker (timeout and abort stop it at any instruction) or in-process.
 * What a script sees is documented in `script-prelude.ts`.
 */
import { createHash } from 'node:crypto'
import { isScriptProgram, type ScriptProgram } from '../toolchain/js/index.js'
import { PolicyError } from './errors.js'
import { runInWorker, type Command, type RunResult } from './launch.js'
import { runInProcess } from './in-process.js'
import { loadLinked } from './module.js'
import type { ImportPlan } from './link/imports.js'
import { preparePolicy, resolveRunInput, type RunInput, type RunOptions } from './policy.js'
import { SCRIPT_API_FUNCTIONS } from './script-api.js'
import { engineBytes, ENGINE_HOST_IMPORTS, type HostCaller, type KeptEngine, type ScriptCall } from './script-guest.js'
import type { ServedService } from './worker/bridge.js'

export type { ScriptProgram }
export { isScriptProgram }

/** The least memory cap a script may run under: the engine's initialised heap and some room. */
export const SCRIPT_MIN_MEMORY = 8 * 1024 * 1024

let engineDigest: string | undefined
/**
 * The engine modules loaded on this thread, by instrumentation: a run finds its module without
 * comparing the engine's 620 KB with the cached copy (`loadModule`'s check, about 25 µs a run).
 * The bytes are caplet's own (`engineBytes()`, read once, never handed out), so they cannot change.
 */
const engineModules = new Map<string, { module: WebAssembly.Module; plan: ImportPlan; key: string }>()
const MAX_ENGINE_MODULES = 8

/** The engine module under the policy's instrumentation, and its snapshot key. */
function loadEngine(policy: ReturnType<typeof preparePolicy>['policy']): { module: WebAssembly.Module; plan: ImportPlan; key: string } {
  const fuel = policy.limits.fuel !== undefined
  const loadKey = `${policy.limits.memoryPages}:${fuel ? 'fuel' : ''}:${policy.tier ?? ''}:${policy.syscalls?.join(',') ?? '*'}:-${policy.denySyscalls?.join(',') ?? ''}:${policy.deniedSyscalls}`
  const known = engineModules.get(loadKey)
  if (known !== undefined) return known
  const bytes = engineBytes()
  engineDigest ??= createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  const { module, plan } = loadLinked(bytes, {
    memoryPages: policy.limits.memoryPages,
    fuel,
    syscalls: policy.syscalls,
    denySyscalls: policy.denySyscalls,
    deniedSyscalls: policy.deniedSyscalls,
    tier: policy.tier,
    hostImports: ENGINE_HOST_IMPORTS.map((n) => `env.${n}`),
  })
  // The engine a thread keeps is told apart by everything its module was loaded with (syscalls too).
  const loaded = { module, plan, key: `${engineDigest}:${loadKey}` }
  if (engineModules.size >= MAX_ENGINE_MODULES) engineModules.delete(engineModules.keys().next().value!)
  engineModules.set(loadKey, loaded)
  return loaded
}

/** A script plugin's host functions: called directly in-process, served over the bridge to a worker. */
export interface ScriptHost {
  call: HostCaller
  service: ServedService
}

/** What a script plugin adds to a run: its host functions, and (`keep`, in-process) the instance its calls share. */
export interface ScriptPluginRun {
  host?: ScriptHost | undefined
  kept?: KeptEngine | undefined
  /** The program runs many times (a plugin's calls): parsed once per thread, then loaded from QuickJS bytecode. */
  repeat?: boolean
  /** A call of an exported function (the export convention), not a run of the top level. */
  call?: ScriptCall | undefined
}

/** The engine command and the resolved run. @throws PolicyError */
function prepareScript(program: ScriptProgram, options: RunOptions, input: RunInput | undefined, plugin: ScriptPluginRun) {
  if (!isScriptProgram(program)) throw new PolicyError(["program: not a compiled script (use compileScript from caplet's toolchain)"])
  const prepared = preparePolicy(options)
  if (prepared.policy.limits.memoryPages * 65536 < SCRIPT_MIN_MEMORY) {
    throw new PolicyError([
      `limits.memory: a JavaScript guest needs at least ${SCRIPT_MIN_MEMORY / 1024 / 1024} MiB (the engine itself takes about 4 MiB)`,
    ])
  }
  options.signal?.throwIfAborted()
  const { module, plan, key } = loadEngine(prepared.policy)
  // The script API's own calls obey the same allow- and deny-lists as the engine's imports.
  const allowed = prepared.policy.syscalls ? new Set(prepared.policy.syscalls) : undefined
  const denied = new Set(prepared.policy.denySyscalls ?? [])
  const functions = [
    ...new Set([
      ...plan.functions.filter((n) => !ENGINE_HOST_IMPORTS.includes(n)),
      ...SCRIPT_API_FUNCTIONS.filter((n) => (allowed === undefined || allowed.has(n)) && !denied.has(n)),
    ]),
  ]
  const script = {
    program,
    engineKey: key,
    ...(plugin.host !== undefined ? { host: true } : {}),
    ...(plugin.kept ? { kept: plugin.kept } : {}),
    ...(plugin.repeat === true ? { repeat: true } : {}),
    ...(plugin.call !== undefined ? { call: plugin.call } : {}),
  }
  const command: Command = { module, functions, stubs: plan.stubs, argv0: program.entry, script }
  return { command, run: resolveRunInput(prepared, input) }
}

/**
 * Runs a compiled script under a policy (the `RunOptions` of `run()`): in a worker unless
 * `isolation: 'in-process'`. Resolves with a result whatever the script did; rejects for a
 * bad policy (`PolicyError`) or program, or with the signal's reason when it aborts.
 * `plugin`: the host functions `callHost` reaches, the instance a `keep` plugin's calls share.
 */
export async function runScript(
  program: ScriptProgram,
  options: RunOptions = {},
  input?: RunInput,
  plugin: ScriptPluginRun = {},
): Promise<RunResult> {
  const { command, run } = prepareScript(program, options, input, plugin)
  const host = plugin.host
  if (plugin.kept !== undefined && run.policy.isolation !== 'in-process') throw new Error('a kept engine instance runs in-process only')
  if (run.policy.isolation === 'in-process') {
    // The engine driver (and QuickJS's wrapper) load on first use; a worker loads its own.
    await import('./script-run.js')
    return runInProcess(command, run, undefined, host?.call)
  }
  return runInWorker(command, run, host !== undefined ? { host: host.service } : undefined)
}

/** `runScript` on this thread, synchronously (the policy's isolation is ignored). Call `loadScriptDriver` once first. */
export function runScriptSync(program: ScriptProgram, options: RunOptions, plugin: ScriptPluginRun = {}): RunResult {
  const { command, run } = prepareScript(program, { ...options, isolation: 'in-process' }, undefined, plugin)
  return runInProcess(command, run, undefined, plugin.host?.call)
}

/** Loads the engine driver on this thread (what `runScriptSync` needs). */
export async function loadScriptDriver(): Promise<void> {
  await import('./script-run.js')
}
