/**
 * @module `plugin(module, options)`: load a WebAssembly plugin once, call its exports with data
 * many times. In-process, the plugin runs on the caller's thread (lowest latency; fuel is the
 * only stop, host functions must be synchronous, HTTP runs on a helper thread); in a worker
 * (the default), each call can also be stopped by a timeout or a signal, and host functions
 * (sync or async) run on the embedder's thread, reached through the synchronous bridge. Either
 * way the plugin sees only its input, its policy and the host functions granted by name.
 * Never lets a plugin's failure, or a host function's, reject anything but that call.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { ModuleError, PluginCallError, PluginUnusableError, PolicyError } from '../errors.js'
import type { ModuleSource } from '../module.js'
import { resolvePolicy, type ResolvedPolicy, type RunOptions } from '../policy.js'
import { parseDuration, parseSize } from '../units.js'
import { BridgeClient, BridgeServer, createBridge, type ServedService } from '../worker/bridge.js'
import { startBridgeHelper, startBridgeHelperSync, type BridgeHelper } from '../worker/bridge-helper.js'
import { PluginEngine, type CallOutcome, type CallRequest, type EngineConfig, type EngineServices } from './engine.js'
import { PluginAbort } from './extism-kernel.js'
import { httpOverBridge } from './bridged-services.js'
import { HostInput, hostOutputBytes, isThenable } from './host-input.js'
import { resolveHttp, type ResolvedHttp } from './http.js'
import { create as createHttpService } from './http-service.js'
import { loadPlugin, type LoadedPlugin } from './load.js'
import { PluginWorker } from './plugin-worker.js'
import type { CallOptions, HostFunction, Plugin, PluginOptions } from './types.js'

const PLUGIN_KEYS = ['host', 'state', 'config', 'http', 'log', 'maxVarBytes', 'reset', 'initialize'] as const
const DEFAULT_VAR_BYTES = 1 << 20
const MAX_BLOCK_BYTES = 256 * 1024 * 1024

/** Everything a plugin needs, checked once. */
export interface PreparedPlugin {
  loaded: LoadedPlugin
  policy: ResolvedPolicy
  host: ReadonlyMap<string, HostFunction>
  state: 'fresh' | 'keep'
  reset: 'snapshot' | 'instantiate'
  initialize: string | undefined
  config: [string, string][]
  varBytes: number
  http: ResolvedHttp | undefined
  log: PluginOptions['log']
}

const isAsync = (f: unknown) => typeof f === 'function' && f.constructor?.name === 'AsyncFunction'

/** The `host` option as `'module.field'` -> function; its problems go to `problems`. */
export function parseHostFunctions(
  option: PluginOptions['host'],
  isolation: 'worker' | 'in-process',
  problems: string[],
): Map<string, HostFunction> {
  const host = new Map<string, HostFunction>()
  if (option !== undefined) {
    if (typeof option !== 'object' || option === null) problems.push('host: must be an object of host functions')
    else {
      for (const [key, v] of Object.entries(option)) {
        if (typeof v === 'function') {
          if (!key.includes('.')) problems.push(`host.${key}: name it "module.field", or nest it as { module: { field: fn } }`)
          else host.set(key, v)
        } else if (typeof v === 'object' && v !== null) {
          for (const [field, fn] of Object.entries(v)) {
            if (typeof fn !== 'function') problems.push(`host.${key}.${field}: must be a function`)
            else host.set(`${key}.${field}`, fn)
          }
        } else problems.push(`host.${key}: must be a function or an object of functions`)
      }
    }
  }
  if (isolation === 'in-process') {
    for (const [name, fn] of host) {
      if (isAsync(fn))
        problems.push(
          `host.${name}: an async host function needs isolation "worker" (an in-process plugin runs on this thread, which cannot wait for a promise mid-call)`,
        )
    }
  }
  return host
}

/** The names of the async host functions (which \`callSync\` cannot wait for). */
export function asyncHostFunctions(host: ReadonlyMap<string, HostFunction>): string[] {
  return [...host].filter(([, fn]) => isAsync(fn)).map(([n]) => n)
}

/** Validates the options and loads the module. @throws PolicyError listing every problem, ModuleError */
export function preparePlugin(module: ModuleSource, caller: PluginOptions): PreparedPlugin {
  // Each option read once (a getter answers once): the policy and the plugin's own checks see the same values.
  const options: PluginOptions = { ...caller }
  const problems: string[] = []
  const run: Record<string, unknown> = { ...options }
  for (const k of PLUGIN_KEYS) delete run[k]
  for (const k of ['stdin', 'stdout', 'stderr', 'signal']) {
    if (k in run) problems.push(`${k}: not a plugin option (a call's input is its stdin; its output is the result)`)
    delete run[k]
  }
  let policy: ResolvedPolicy | undefined
  try {
    // Output is captured per call; the limits apply to each call.
    policy = resolvePolicy(run as RunOptions)
  } catch (e) {
    if (e instanceof PolicyError) problems.push(...e.problems)
    else throw e
  }
  const state = options.state ?? 'fresh'
  if (state !== 'fresh' && state !== 'keep') problems.push(`state: must be "fresh" or "keep"`)
  const reset = options.reset ?? 'snapshot'
  if (reset !== 'snapshot' && reset !== 'instantiate') problems.push(`reset: must be "snapshot" or "instantiate"`)
  const host = parseHostFunctions(options.host, options.isolation ?? 'worker', problems)
  const config: [string, string][] = []
  if (options.config !== undefined) {
    if (typeof options.config !== 'object' || options.config === null) problems.push('config: must be an object of strings')
    else
      for (const [k, v] of Object.entries(options.config)) {
        if (typeof v !== 'string') problems.push(`config.${k}: must be a string`)
        else config.push([k, v])
      }
  }
  let varBytes = DEFAULT_VAR_BYTES
  try {
    if (options.maxVarBytes !== undefined) varBytes = parseSize(options.maxVarBytes)
  } catch (e) {
    problems.push(`maxVarBytes: ${(e as Error).message}`)
  }
  const { problems: httpProblems, http } = resolveHttp(options.http)
  problems.push(...httpProblems)
  if (options.log !== undefined && typeof options.log !== 'function') problems.push('log: must be a function')
  const initialize = options.initialize
  if (initialize !== undefined && (typeof initialize !== 'string' || initialize === '_initialize'))
    problems.push('initialize: must name an export other than _initialize (which runs anyway)')
  if (problems.length > 0) throw new PolicyError(problems)
  const loaded = loadPlugin(module, policy!, new Set(host.keys()), {
    fuel: policy!.limits.fuel !== undefined,
    http: http !== undefined,
    trackWrites: state === 'fresh' && reset === 'snapshot',
  })
  if (initialize !== undefined && !loaded.callable.includes(initialize)) {
    throw new PolicyError([
      `initialize: the plugin has no export ${JSON.stringify(initialize)} taking no arguments (callable: ${loaded.callable.join(', ') || 'none'})`,
    ])
  }
  return { loaded, policy: policy!, host, state, reset, initialize, config, varBytes, http, log: options.log }
}

export function engineConfig(p: PreparedPlugin, isolation: 'worker' | 'in-process'): EngineConfig {
  return {
    plugin: p.loaded,
    policy: { ...p.policy, isolation },
    state: p.state,
    reset: p.reset,
    initialize: p.initialize,
    config: p.config,
    varBytes: p.varBytes,
    blockBytes: Math.min(p.policy.limits.memoryPages * 65536, MAX_BLOCK_BYTES),
  }
}

/** Calls a granted host function; a throw or a bad result becomes the call's failure. */
export function invokeHost(fns: ReadonlyMap<string, HostFunction>, name: string, inputs: HostInput[]): unknown {
  const fn = fns.get(name)
  if (fn === undefined) throw new PluginAbort('host', `no host function ${name} was granted`, name)
  try {
    return fn(...inputs)
  } catch (e) {
    throw new PluginAbort('host', `host function ${name} failed: ${e instanceof Error ? e.message : String(e)}`, name, e)
  }
}

export function hostBytes(name: string, value: unknown): Uint8Array {
  try {
    return hostOutputBytes(value)
  } catch (e) {
    throw new PluginAbort('host', `host function ${name}: ${(e as Error).message}`, name, e)
  }
}

/** Calls a granted host function on this thread. @throws PluginAbort when it fails, is not granted or returns a Promise */
export function callHostSync(fns: ReadonlyMap<string, HostFunction>, name: string, inputs: HostInput[]): Uint8Array {
  const r = invokeHost(fns, name, inputs)
  if (isThenable(r)) {
    // Nobody will wait for it: keep its rejection from becoming an unhandled one.
    Promise.resolve(r).catch(() => {})
    throw new PluginAbort(
      'host',
      `host function ${name} returned a Promise: in-process plugins take synchronous host functions (use isolation "worker")`,
      name,
    )
  }
  return hostBytes(name, r)
}

/** The in-process engine's services: host functions called directly, HTTP through a helper thread. */
function inProcessServices(p: PreparedPlugin, helper: BridgeHelper | undefined): EngineServices {
  const client = helper ? new BridgeClient(helper.channel) : undefined
  return {
    host: (name, inputs) => callHostSync(p.host, name, inputs),
    http: (request, body) => httpOverBridge(client, request, body),
    log: (level, message) => p.log?.(level, message),
  }
}

interface CallPlan {
  req: CallRequest
  timeoutMs: number | undefined
  signal: AbortSignal | undefined
}

function planCall(p: PreparedPlugin, name: unknown, input: unknown, o: CallOptions | undefined): CallPlan {
  const problems: string[] = []
  if (typeof name !== 'string') problems.push('name: must be a string')
  let bytes: Uint8Array = new Uint8Array(0)
  if (typeof input === 'string') bytes = new TextEncoder().encode(input)
  else if (input instanceof Uint8Array) bytes = input.slice()
  else if (input !== undefined) problems.push('input: must be a string or a Uint8Array')
  const req: CallRequest = { name: name as string, input: bytes }
  let timeoutMs: number | undefined
  if (o !== undefined) {
    if (o.fuel !== undefined) {
      if (!Number.isSafeInteger(o.fuel) || o.fuel <= 0) problems.push('fuel: must be a positive integer')
      else if (p.policy.limits.fuel === undefined)
        problems.push('fuel: the plugin was loaded without limits.fuel, so its code is not metered; set limits.fuel when loading')
      else req.fuel = o.fuel
    }
    try {
      if (o.timeout !== undefined) timeoutMs = parseDuration(o.timeout)
    } catch (e) {
      problems.push(`timeout: ${(e as Error).message}`)
    }
    try {
      if (o.maxOutput !== undefined) req.maxOutput = parseSize(o.maxOutput)
    } catch (e) {
      problems.push(`maxOutput: ${(e as Error).message}`)
    }
  }
  timeoutMs ??= p.policy.limits.timeoutMs
  if (problems.length > 0) throw new PolicyError(problems)
  return { req, timeoutMs, signal: o?.signal }
}

/** The outcome as the API's value or error. */
function settle(outcome: CallOutcome): Uint8Array {
  if (outcome.ok) return outcome.output
  if (outcome.failure === 'unusable') throw new PluginUnusableError(outcome.message)
  if (outcome.failure === 'usage') throw new PolicyError([`name: ${outcome.message}`])
  const details: ConstructorParameters<typeof PluginCallError>[2] = {}
  if (outcome.trap) details.trap = outcome.trap
  if (outcome.limit) details.limit = outcome.limit
  if (outcome.status !== undefined) details.status = outcome.status
  if (outcome.stderr !== undefined) details.stderr = outcome.stderr
  if (outcome.hostFunction !== undefined) details.hostFunction = outcome.hostFunction
  throw new PluginCallError(outcome.message, outcome.failure, details, outcome.cause !== undefined ? { cause: outcome.cause } : undefined)
}

class PluginHandle implements Plugin {
  readonly #p: PreparedPlugin
  readonly #isolation: 'worker' | 'in-process'
  #engine: PluginEngine | undefined
  #helper: BridgeHelper | undefined
  #worker: PluginWorker | undefined
  #closed = false
  /** Worker calls run one after another. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(p: PreparedPlugin, isolation: 'worker' | 'in-process', engine?: PluginEngine, helper?: BridgeHelper, worker?: PluginWorker) {
    this.#p = p
    this.#isolation = isolation
    this.#engine = engine
    this.#helper = helper
    this.#worker = worker
  }

  exports(): string[] {
    return [...this.#p.loaded.callable]
  }

  async call(name: string, input?: Uint8Array | string, options?: CallOptions): Promise<Uint8Array> {
    const plan = planCall(this.#p, name, input, options)
    if (this.#isolation === 'in-process') {
      if (plan.timeoutMs !== undefined)
        throw new PolicyError(["timeout: needs isolation 'worker' (an in-process plugin cannot be stopped mid-instruction; use fuel)"])
      plan.signal?.throwIfAborted()
      return this.#callInProcess(plan)
    }
    if (inHostFunction.getStore() === this.#p)
      throw new PluginCallError(
        'the plugin is already in a call: a host function cannot call back into it (it would wait on itself)',
        'host',
      )
    const run = this.#queue.then(async () => {
      if (this.#closed) throw new PluginUnusableError('the plugin is closed')
      plan.signal?.throwIfAborted()
      return settle(await this.#worker!.call(plan.req, plan.timeoutMs, plan.signal))
    })
    this.#queue = run.catch(() => {})
    return run
  }

  callSync(name: string, input?: Uint8Array | string, options?: CallOptions): Uint8Array {
    const plan = planCall(this.#p, name, input, options)
    if (plan.timeoutMs !== undefined)
      throw new PolicyError([
        "timeout: callSync runs on this thread, which cannot be stopped mid-instruction; use call() with isolation 'worker', or fuel",
      ])
    plan.signal?.throwIfAborted()
    if (this.#isolation === 'worker' && this.#engine === undefined) {
      if (this.#p.state === 'keep')
        throw new PolicyError([
          "state: a 'keep' plugin loaded with isolation 'worker' keeps its state in the worker; callSync would see another state (load it with isolation 'in-process')",
        ])
      const async = asyncHostFunctions(this.#p.host)
      if (async.length > 0)
        throw new PolicyError([`host: callSync runs on this thread, which cannot wait for the async host functions ${async.join(', ')}`])
      if (this.#p.http !== undefined)
        this.#helper ??= startBridgeHelperSync([{ name: 'http', factory: 'plugin-http', config: this.#p.http }], {
          capacity: bridgeCapacity(this.#p),
          unref: true,
        })
      this.#engine = newEngine(this.#p, 'in-process', this.#helper)
    }
    return this.#callInProcess(plan)
  }

  #callInProcess(plan: CallPlan): Uint8Array {
    if (this.#closed) throw new PluginUnusableError('the plugin is closed')
    return settle(this.#engine!.call(plan.req))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#engine?.close()
    await Promise.all([this.#helper?.close(), this.#worker?.close()])
  }
}

/** The plugin whose host function is running here (isolation 'worker'): calling it from there would wait on itself. */
const inHostFunction = new AsyncLocalStorage<PreparedPlugin>()

function bridgeCapacity(p: PreparedPlugin): number {
  return Math.min(64 << 20, Math.max(4 << 20, (p.http?.maxResponseBytes ?? 0) + (64 << 10)))
}

function newEngine(p: PreparedPlugin, isolation: 'worker' | 'in-process', helper: BridgeHelper | undefined): PluginEngine {
  try {
    return new PluginEngine(engineConfig(p, isolation), inProcessServices(p, helper))
  } catch (e) {
    throw new ModuleError(e instanceof Error ? e.message : String(e), { cause: e })
  }
}

/**
 * The bridge service through which a plugin in a worker calls the embedder's host functions;
 * `owner`: the plugin they serve (a call back into it from one of them is refused).
 */
export function hostService(fns: ReadonlyMap<string, HostFunction>, owner?: PreparedPlugin): ServedService {
  return {
    call: async (args: { name?: unknown; lengths?: unknown }, bytes) => {
      const name = args?.name
      const lengths = args?.lengths
      if (typeof name !== 'string' || !Array.isArray(lengths) || lengths.length > 64) throw new Error('malformed host call')
      const all = bytes ?? new Uint8Array(0)
      const inputs: HostInput[] = []
      let at = 0
      for (const n of lengths) {
        if (!Number.isSafeInteger(n) || n < 0 || at + n > all.byteLength) throw new Error('malformed host call')
        inputs.push(new HostInput(all.slice(at, at + n)))
        at += n
      }
      let r: unknown
      try {
        r = await (owner === undefined ? invokeHost(fns, name, inputs) : inHostFunction.run(owner, () => invokeHost(fns, name, inputs)))
      } catch (e) {
        if (e instanceof PluginAbort) throw new Error(e.message)
        throw new Error(`host function ${name} failed: ${e instanceof Error ? e.message : String(e)}`)
      }
      try {
        return { bytes: hostOutputBytes(r) }
      } catch (e) {
        throw new Error(`host function ${name}: ${(e as Error).message}`)
      }
    },
  }
}

/** The embedder-side services a worker plugin reaches through the bridge. */
export function embedderServices(p: PreparedPlugin): Record<string, ServedService> {
  const services: Record<string, ServedService> = {
    host: hostService(p.host, p),
    log: {
      write: (args: { level?: unknown; message?: unknown }) => {
        const level = args?.level
        if (
          typeof level === 'string' &&
          typeof args.message === 'string' &&
          ['trace', 'debug', 'info', 'warn', 'error', 'stderr'].includes(level)
        ) {
          try {
            p.log?.(level as 'info', args.message)
          } catch {
            /* a logger's failure is not the call's */
          }
        }
      },
    },
  }
  if (p.http !== undefined) services.http = createHttpService(p.http)
  return services
}

/**
 * Loads a plugin. Rejects with `PolicyError` (every problem of the options), `ModuleError`
 * (unreadable, invalid, or importing what was not granted, by name) or `PluginCallError`
 * (its initialisation failed).
 */
export async function plugin(module: ModuleSource, options: PluginOptions = {}): Promise<Plugin> {
  const p = preparePlugin(module, options)
  const isolation = p.policy.isolation
  if (isolation === 'in-process') {
    const helper =
      p.http !== undefined
        ? await startBridgeHelper([{ name: 'http', factory: 'plugin-http', config: p.http }], { capacity: bridgeCapacity(p), unref: true })
        : undefined
    try {
      return new PluginHandle(p, 'in-process', newEngine(p, 'in-process', helper), helper)
    } catch (e) {
      await helper?.close()
      throw e
    }
  }
  const worker = new PluginWorker(engineConfig(p, 'worker'), () => embedderServices(p), {
    capacity: bridgeCapacity(p),
    keep: p.state === 'keep',
    log: p.log !== undefined,
  })
  await worker.start()
  return new PluginHandle(p, 'worker', undefined, undefined, worker)
}

/** `plugin` on this thread, synchronously: isolation is forced to `in-process`. */
export function pluginSync(module: ModuleSource, options: PluginOptions = {}): Plugin {
  const p = preparePlugin(module, { ...options, isolation: 'in-process' })
  const helper =
    p.http !== undefined
      ? startBridgeHelperSync([{ name: 'http', factory: 'plugin-http', config: p.http }], { capacity: bridgeCapacity(p), unref: true })
      : undefined
  try {
    return new PluginHandle(p, 'in-process', newEngine(p, 'in-process', helper), helper)
  } catch (e) {
    void helper?.close()
    throw e
  }
}

export { BridgeServer, createBridge }
