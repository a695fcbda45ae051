/**
 * @module JavaScript/TypeScript plugins: a program compiled by `compileScript` called like a
 * plugin, in caplet's QuickJS engine under the plugin's policy. A module that exports functions
 * is evaluated once at load and `call(name, input)` calls its export `name` with the input
 * (string or bytes, as given); the return value is the output. A module that exports none runs
 * its top level per call (input as `stdin`, name as `args[0]`, stdout the output). Each call
 * starts from the evaluated snapshot, unless `state: 'keep'` (in-process: one engine instance).
 * Host functions are granted by name as for `plugin()` (`callHost(name, input)`).
 */
import { PluginCallError, PluginUnusableError, PolicyError } from '../errors.js'
import type { RunResult } from '../launch.js'
import { parseDuration, parseSize } from '../units.js'
import type { RunOptions } from '../policy.js'
import {
  isScriptProgram,
  loadScriptDriver,
  runScript,
  runScriptSync,
  type ScriptHost,
  type ScriptPluginRun,
  type ScriptProgram,
} from '../script.js'
import { forgetScriptProgram, HOST_FAILURE, HostFailure } from '../script-guest.js'
import { PluginAbort } from './extism-kernel.js'
import { HostInput } from './host-input.js'
import { asyncHostFunctions, callHostSync, hostService, parseHostFunctions } from './plugin.js'
import type { CallOptions, HostFunction, HostFunctions, Plugin } from './types.js'

export interface ScriptPluginOptions extends Omit<RunOptions, 'stdin' | 'stdout' | 'stderr' | 'signal' | 'args'> {
  /**
   * The names `call` accepts. A program that exports functions: some of them (default: all).
   * One that exports nothing: passed to its top level as `args[0]` (default `['main']`).
   */
  exports?: readonly string[]
  /** Host functions the script may call with `callHost('module.field', input)`, as `plugin()`'s `host`. */
  host?: HostFunctions
  /**
   * `fresh` (default): every call starts from the engine's initialised state. `keep` (needs
   * isolation 'in-process'): the calls share one engine instance (globals persist); a trap, a
   * limit or a failed host function leaves the plugin unusable.
   */
  state?: 'fresh' | 'keep'
}

const STDERR_KEPT = 4096
/**
 * Calls a `keep` plugin of the top-level convention may make: each evaluates the program anew in
 * the one instance, and QuickJS keeps every evaluated module (its heap grows per call until fuel
 * or memory runs out). Exported functions have no such bound.
 */
export const MAX_KEPT_TOP_LEVEL_CALLS = 1000
const NAME = /^[A-Za-z_$][\w$.-]{0,127}$/

class ScriptPlugin implements Plugin {
  readonly #program: ScriptProgram
  readonly #options: RunOptions
  readonly #exports: readonly string[]
  readonly #hostFns: ReadonlyMap<string, HostFunction>
  readonly #host: ScriptHost | undefined
  #closed = false
  #unusable: string | undefined

  readonly #run: ScriptPluginRun
  /** The export convention: this plugin's id (its snapshots' key on every thread). */
  readonly #id: string | undefined
  #topLevelCalls = 0

  constructor(
    program: ScriptProgram,
    options: RunOptions,
    exports: readonly string[],
    host: ReadonlyMap<string, HostFunction>,
    keep: boolean,
    id: string | undefined,
  ) {
    this.#id = id
    this.#program = program
    this.#options = options
    this.#exports = exports
    this.#hostFns = host
    this.#host =
      host.size === 0
        ? undefined
        : {
            call: (name, input) => {
              try {
                return callHostSync(host, name, [new HostInput(input)])
              } catch (e) {
                throw new HostFailure(name, e instanceof PluginAbort ? e.message : `host function ${name} failed: ${String(e)}`)
              }
            },
            service: hostService(host),
          }
    this.#run = { host: this.#host, repeat: true, ...(keep ? { kept: { slot: undefined, lost: false } } : {}) }
  }

  exports(): string[] {
    return [...this.#exports]
  }

  /** The run's options for one call. @throws PolicyError */
  #plan(name: unknown, input: unknown, o: CallOptions | undefined): RunOptions {
    if (this.#closed) throw new PluginUnusableError('the plugin is closed')
    if (this.#unusable !== undefined) throw new PluginUnusableError(this.#unusable)
    if (this.#run.kept !== undefined && this.#id === undefined && this.#topLevelCalls >= MAX_KEPT_TOP_LEVEL_CALLS)
      throw new PluginUnusableError(
        `the plugin (state: 'keep') made its ${MAX_KEPT_TOP_LEVEL_CALLS} calls: a program without exported functions is evaluated anew on every call, and the engine keeps every evaluated module; export functions (export function ${typeof name === 'string' ? name : 'main'}(input) { ... }) to make unbounded calls`,
      )
    const problems: string[] = []
    if (typeof name !== 'string' || !this.#exports.includes(name))
      problems.push(`name: the plugin has no callable export ${JSON.stringify(name)} (callable: ${this.#exports.join(', ')})`)
    if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array))
      problems.push('input: must be a string or a Uint8Array')
    if (o?.fuel !== undefined && (!Number.isSafeInteger(o.fuel) || o.fuel <= 0)) problems.push('fuel: must be a positive integer')
    // Checked here, as plugin() checks them, so a bad value is a PolicyError naming the call option.
    for (const [k, check] of [
      ['timeout', parseDuration],
      ['maxOutput', parseSize],
    ] as const) {
      try {
        if (o?.[k] !== undefined) check(o[k] as never)
      } catch (e) {
        problems.push(`${k}: ${(e as Error).message}`)
      }
    }
    if (problems.length > 0) throw new PolicyError(problems)
    const limits = { ...this.#options.limits }
    if (o?.fuel !== undefined) limits.fuel = o.fuel
    if (o?.timeout !== undefined) limits.timeout = o.timeout
    if (o?.maxOutput !== undefined) limits.stdout = o.maxOutput
    return {
      ...this.#options,
      limits,
      args: [this.#program.entry, name as string],
      stdin: typeof input === 'string' ? input : ((input as Uint8Array | undefined)?.slice() ?? new Uint8Array(0)),
      stdout: 'capture',
      stderr: 'capture',
      ...(o?.signal !== undefined ? { signal: o.signal } : {}),
    }
  }

  /** The run's plugin side: with the export convention, which function and how it gets the input. */
  #runFor(name: string, input: unknown): ScriptPluginRun {
    if (this.#id === undefined) {
      if (this.#run.kept !== undefined) this.#topLevelCalls++
      return this.#run
    }
    return { ...this.#run, call: { plugin: this.#id, name, bytes: input instanceof Uint8Array } }
  }

  async call(name: string, input?: Uint8Array | string, o?: CallOptions): Promise<Uint8Array> {
    const options = this.#plan(name, input, o)
    const r = await runScript(this.#program, options, undefined, this.#runFor(name, input))
    if (this.#closed) throw new PluginUnusableError('the plugin was closed during the call')
    return this.#settle(r)
  }

  callSync(name: string, input?: Uint8Array | string, o?: CallOptions): Uint8Array {
    const options = this.#plan(name, input, o)
    // The same refusals as plugin()'s callSync.
    if (o?.timeout !== undefined || this.#options.limits?.timeout !== undefined)
      throw new PolicyError([
        "timeout: callSync runs on this thread, which cannot be stopped mid-instruction; use call() with isolation 'worker', or fuel",
      ])
    const async = asyncHostFunctions(this.#hostFns)
    if (async.length > 0)
      throw new PolicyError([`host: callSync runs on this thread, which cannot wait for the async host functions ${async.join(', ')}`])
    o?.signal?.throwIfAborted()
    return this.#settle(runScriptSync(this.#program, options, this.#runFor(name, input)))
  }

  /** The call's output, or its failure; a kept instance lost to a trap or a limit makes the plugin unusable. */
  #settle(r: RunResult): Uint8Array {
    try {
      return outcome(r, this.#hostFns)
    } catch (e) {
      if (this.#run.kept?.lost === true && this.#unusable === undefined && e instanceof PluginCallError)
        this.#unusable = `the plugin (state: 'keep') is unusable after a failed call: ${e.reason}`
      throw e
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    // A kept instance is the plugin's alone: dropped, never returned to the pool.
    if (this.#run.kept !== undefined) this.#run.kept.slot = undefined
    if (this.#id !== undefined) forgetScriptProgram(this.#id)
  }
}

function outcome(r: RunResult, host: ReadonlyMap<string, HostFunction>): Uint8Array {
  const stderr = r.stderr.byteLength > 0 ? new TextDecoder().decode(r.stderr.subarray(0, STDERR_KEPT)) : undefined
  const extra = stderr !== undefined ? { stderr } : {}
  const failed =
    r.trap?.kind === 'host-fault' && r.trap.message.startsWith(`${HOST_FAILURE}: `)
      ? r.trap.message.slice(HOST_FAILURE.length + 2)
      : undefined
  if (failed !== undefined) {
    // The granted function the message names ("host function NAME failed: ..."), if any.
    let fn: string | undefined
    for (const n of host.keys()) {
      const at = failed.indexOf(`host function ${n}`)
      const after = failed[at + 14 + n.length]
      if (at >= 0 && (after === undefined || after === ' ' || after === ':') && n.length > (fn?.length ?? -1)) fn = n
    }
    throw new PluginCallError(failed, 'host', { ...(fn !== undefined ? { hostFunction: fn } : {}), ...extra })
  }
  if (r.limit !== undefined) throw new PluginCallError(`limit exceeded: ${r.limit}`, 'limit', { limit: r.limit, ...extra })
  if (r.trap !== undefined) throw new PluginCallError(`the plugin trapped: ${r.trap.message}`, 'trap', { trap: r.trap, ...extra })
  if (r.exitCode !== 0) {
    const first = stderr?.split('\n').find((l) => l.trim() !== '')
    throw new PluginCallError(`the plugin exited with code ${r.exitCode}${first !== undefined ? `: ${first}` : ''}`, 'plugin', {
      status: r.exitCode,
      ...extra,
    })
  }
  return r.stdout
}

/**
 * Loads a JavaScript/TypeScript plugin (a `compileScript` program). Rejects with `PolicyError`
 * for options a script plugin cannot honour (HTTP, config, `state: 'keep'` in a worker), bad host functions
 * (as `plugin()`), or a bad export name.
 */
export async function scriptPlugin(program: ScriptProgram, options: ScriptPluginOptions = {}): Promise<Plugin> {
  const problems: string[] = []
  if (!isScriptProgram(program)) problems.push("program: not a compiled script (use compileScript from caplet's toolchain)")
  const run: Record<string, unknown> = { ...options }
  delete run.exports
  const host = parseHostFunctions(options.host, options.isolation ?? 'worker', problems)
  delete run.host
  for (const k of ['http', 'config', 'initialize', 'reset']) {
    if (k in run) problems.push(`${k}: not offered to JavaScript plugins`)
    delete run[k]
  }
  const state = run.state ?? 'fresh'
  if (state !== 'fresh' && state !== 'keep') problems.push('state: must be "fresh" or "keep"')
  else if (state === 'keep' && (options.isolation ?? 'worker') !== 'in-process')
    problems.push("state: a JavaScript plugin keeps its state in one engine instance on this thread: 'keep' needs isolation 'in-process'")
  delete run.state
  for (const k of ['stdin', 'stdout', 'stderr', 'signal', 'args']) {
    if (k in run)
      problems.push(`${k}: not a plugin option (a call's input is its stdin, the export's name its args[0], its output the result)`)
    delete run[k]
  }
  const given = options.exports
  if (given !== undefined && (!Array.isArray(given) || given.length === 0)) problems.push('exports: must be a non-empty list of names')
  else
    for (const n of given ?? [])
      if (typeof n !== 'string' || !NAME.test(n))
        problems.push(`exports: ${JSON.stringify(n)} is not a name (letters, digits, _ $ . -; at most 128)`)
  if (problems.length > 0) throw new PolicyError(problems)
  // callSync needs the engine's driver on this thread.
  await loadScriptDriver()
  if ((program.exports?.length ?? 0) === 0)
    return new ScriptPlugin(program, run as RunOptions, [...(given ?? ['main'])], host, state === 'keep', undefined)
  // The export convention: the module is evaluated now (no input), snapshotted on this thread, and its functions listed.
  const id = crypto.randomUUID()
  const probe = { ...(run as RunOptions), args: [program.entry], stdin: new Uint8Array(0), stdout: 'capture', stderr: 'capture' } as const
  const pluginRun: ScriptPluginRun = { call: { plugin: id, name: '', bytes: false } }
  const r =
    (options.isolation ?? 'worker') === 'in-process'
      ? runScriptSync(program, probe, pluginRun)
      : await runScript(program, probe, undefined, pluginRun)
  const listed: unknown = JSON.parse(new TextDecoder().decode(outcome(r, host)))
  // Written by the engine driver, not the script (whose stdout is dropped while it loads); checked all the same.
  if (!Array.isArray(listed) || !listed.every((n) => typeof n === 'string')) throw new Error('the plugin load did not list its functions')
  const functions = listed as string[]
  if (functions.length === 0)
    throw new PolicyError([`program: the module exports no function (its exports: ${program.exports!.join(', ')})`])
  const missing = (given ?? []).filter((n) => !functions.includes(n))
  if (missing.length > 0)
    throw new PolicyError([`exports: the module exports no function ${missing.join(', ')} (its functions: ${functions.join(', ')})`])
  return new ScriptPlugin(program, run as RunOptions, given ?? functions, host, state === 'keep', id)
}
