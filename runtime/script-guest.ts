/**
 * @module What the run pipeline knows of a JavaScript/TypeScript guest without loading the
 * JavaScript engine's driver: the plain data a worker job carries (`ScriptGuest`), the shape of
 * one run (`ScriptRun`), the engine's file and its `env` imports, and the slot through which
 * `script-run.ts` plugs in once loaded (importing `caplet` to run a `.wasm` must not pay for
 * QuickJS's driver). It must never hold per-run state.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { WasiHost } from '../wasi-host/index.js'
import type { ScriptProgram } from '../toolchain/js/index.js'
import { BridgeCallError, BridgeClient, type BridgeChannel } from './worker/bridge.js'
import type { startScript } from './script-run.js'

/** What a worker needs, beside the engine module, to run a script. Plain data. */
export interface ScriptGuest {
  program: ScriptProgram
  /** Names the compiled engine module (engine digest and instrumentation): the per-thread snapshot's key. */
  engineKey: string
  /** The run may call the embedder's host functions (`callHost`): over the bridge, in a worker. */
  host?: boolean
  /** A `keep` script plugin's engine instance, held across its calls (in-process only: not plain data). */
  kept?: KeptEngine
  /** The program runs many times on this thread (a plugin's calls): compiled to bytecode once and loaded from it. */
  repeat?: boolean
  /** A call of one of the program's exported functions (the export convention) instead of a run of its top level. */
  call?: ScriptCall
}

/**
 * A call of an exported function: the module is evaluated once per thread (input-less), then
 * snapshotted under `plugin` (fresh) or kept evaluated (`keep`); `name` is called with the run's
 * stdin as its argument. `name` '': evaluate only, and write the exported functions' names (JSON) to stdout.
 */
export interface ScriptCall {
  /** The plugin's id: whose snapshot this is (never shared between plugins). */
  plugin: string
  name: string
  /** The function receives the input as a Uint8Array (else as text). */
  bytes: boolean
}

/** The instance a `keep` script plugin's calls share; dropped (`lost`) after a run that did not end cleanly. */
export interface KeptEngine {
  slot: unknown
  lost: boolean
  /** The export convention: the evaluated module's namespace in `slot`. */
  namespace?: number | undefined
}

/** Calls one of the embedder's host functions: the input's bytes in, the output's out. Throws `HostFailure`. */
export type HostCaller = (name: string, input: Uint8Array) => Uint8Array

/** A host function failed (or was not granted): ends the run; the plugin call fails with `failure: 'host'`. */
export class HostFailure extends Error {
  constructor(
    readonly fn: string,
    readonly detail: string,
  ) {
    // The message names the function ("host function NAME ..."): only the message crosses from a worker.
    super(detail)
    this.name = HOST_FAILURE
  }
}
export const HOST_FAILURE = 'HostFailure'

/** A run's host functions reached over its bridge (the `host` service a script plugin serves). */
export function bridgedHostCaller(channel: BridgeChannel): HostCaller {
  const client = new BridgeClient(channel)
  return (name, input) => {
    try {
      return client.call('host', 'call', { name, lengths: [input.byteLength] }, input).bytes ?? new Uint8Array(0)
    } catch (e) {
      throw new HostFailure(
        name,
        e instanceof BridgeCallError ? e.message : `host function ${name} failed: ${e instanceof Error ? e.message : String(e)}`,
      )
    }
  }
}

/** One run of a script on a borrowed engine instance. */
export interface ScriptRun {
  readonly instance: WebAssembly.Instance
  /** Runs the program; returns the exit code, or throws what ended the run (a limit, a trap). */
  execute(): number
  /** Returns the instance; `clean` when the run ended normally (exit code, uncaught exception). */
  release(clean: boolean): void
}

/** `startScript` (script-run.ts, loaded with the engine): borrows an engine instance and binds it to a run's host. */
export type StartScript = typeof startScript

let starter: StartScript | undefined

let forgetter: ((plugin: string) => void) | undefined

/** Called once by `script-run.ts` when it loads. */
export function registerScriptRunner(start: StartScript, forget: (plugin: string) => void): void {
  starter = start
  forgetter = forget
}

/** Drops a closed plugin's program snapshots on this thread (a worker's go as it needs the room). */
export function forgetScriptProgram(plugin: string): void {
  forgetter?.(plugin)
}

/** The loaded driver. @throws Error when `script-run.ts` was never imported on this thread (a caplet bug) */
export function scriptRunner(): StartScript {
  if (starter === undefined) throw new Error('the JavaScript engine driver is not loaded on this thread')
  return starter
}

/** The `env` functions the engine imports (beside its WASI ones). */
export const ENGINE_HOST_IMPORTS: readonly string[] = [
  'host_call',
  'host_interrupt',
  'host_promise_rejection',
  'host_module_normalize',
  'host_module_load',
  'host_get_timezone_offset',
]

let cachedBytes: Uint8Array | undefined

/** The engine package's file (read once per process). */
export function engineBytes(): Uint8Array {
  return (cachedBytes ??= readFileSync(createRequire(import.meta.url).resolve('quickjs-wasi/quickjs.wasm')))
}
