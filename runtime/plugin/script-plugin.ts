/**
 * @module JavaScript/TypeScript plugins: a program compiled by `compileScript` called like a
 * plugin. Each call runs the program in caplet's QuickJS engine (`runScript`) under the plugin's
 * policy with the input as `stdin` and the export's name as `args[0]`; its stdout is the output.
 * Every call starts from the engine's initialised snapshot (fresh state; no `keep`), and host
 * functions are not offered. Never lets a call's failure reject anything but that call.
 */
import { PluginCallError, PluginUnusableError, PolicyError } from '../errors.js'
import type { RunResult } from '../launch.js'
import type { RunOptions } from '../policy.js'
import { isScriptProgram, runScript, type ScriptProgram } from '../script.js'
import type { CallOptions, Plugin } from './types.js'

export interface ScriptPluginOptions extends Omit<RunOptions, 'stdin' | 'stdout' | 'stderr' | 'signal' | 'args'> {
  /** The names `call` accepts, passed to the program as `args[0]` (default `['main']`). */
  exports?: readonly string[]
}

const STDERR_KEPT = 4096
const NAME = /^[A-Za-z_$][\w$.-]{0,127}$/

class ScriptPlugin implements Plugin {
  readonly #program: ScriptProgram
  readonly #options: RunOptions
  readonly #exports: readonly string[]
  #closed = false

  constructor(program: ScriptProgram, options: RunOptions, exports: readonly string[]) {
    this.#program = program
    this.#options = options
    this.#exports = exports
  }

  exports(): string[] {
    return [...this.#exports]
  }

  async call(name: string, input?: Uint8Array | string, o?: CallOptions): Promise<Uint8Array> {
    if (this.#closed) throw new PluginUnusableError('the plugin is closed')
    const problems: string[] = []
    if (typeof name !== 'string' || !this.#exports.includes(name))
      problems.push(`name: the plugin has no callable export ${JSON.stringify(name)} (callable: ${this.#exports.join(', ')})`)
    if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array))
      problems.push('input: must be a string or a Uint8Array')
    if (o?.fuel !== undefined && (!Number.isSafeInteger(o.fuel) || o.fuel <= 0)) problems.push('fuel: must be a positive integer')
    if (problems.length > 0) throw new PolicyError(problems)
    const limits = { ...this.#options.limits }
    if (o?.fuel !== undefined) limits.fuel = o.fuel
    if (o?.timeout !== undefined) limits.timeout = o.timeout
    if (o?.maxOutput !== undefined) limits.stdout = o.maxOutput
    const r = await runScript(this.#program, {
      ...this.#options,
      limits,
      args: [this.#program.entry, name],
      stdin: typeof input === 'string' ? input : (input?.slice() ?? new Uint8Array(0)),
      stdout: 'capture',
      stderr: 'capture',
      ...(o?.signal !== undefined ? { signal: o.signal } : {}),
    })
    if (this.#closed) throw new PluginUnusableError('the plugin was closed during the call')
    return outcome(r)
  }

  callSync(): Uint8Array {
    throw new PolicyError(["callSync: a JavaScript plugin runs in caplet's JavaScript engine, loaded asynchronously; use call()"])
  }

  async close(): Promise<void> {
    this.#closed = true
  }
}

function outcome(r: RunResult): Uint8Array {
  const stderr = r.stderr.byteLength > 0 ? new TextDecoder().decode(r.stderr.subarray(0, STDERR_KEPT)) : undefined
  const extra = stderr !== undefined ? { stderr } : {}
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
 * for options a script plugin cannot honour (host functions, `state: 'keep'`, a bad export name).
 */
export async function scriptPlugin(program: ScriptProgram, options: ScriptPluginOptions = {}): Promise<Plugin> {
  const problems: string[] = []
  if (!isScriptProgram(program)) problems.push("program: not a compiled script (use compileScript from caplet's toolchain)")
  const run: Record<string, unknown> = { ...options }
  delete run.exports
  for (const k of ['host', 'http', 'config', 'initialize', 'reset']) {
    if (k in run) problems.push(`${k}: not offered to JavaScript plugins`)
    delete run[k]
  }
  if (run.state !== undefined && run.state !== 'fresh')
    problems.push('state: JavaScript plugins start every call fresh ("keep" is not offered)')
  delete run.state
  for (const k of ['stdin', 'stdout', 'stderr', 'signal', 'args']) {
    if (k in run)
      problems.push(`${k}: not a plugin option (a call's input is its stdin, the export's name its args[0], its output the result)`)
    delete run[k]
  }
  const exports = options.exports ?? ['main']
  if (!Array.isArray(exports) || exports.length === 0) problems.push('exports: must be a non-empty list of names')
  else
    for (const n of exports)
      if (typeof n !== 'string' || !NAME.test(n))
        problems.push(`exports: ${JSON.stringify(n)} is not a name (letters, digits, _ $ . -; at most 128)`)
  if (problems.length > 0) throw new PolicyError(problems)
  return new ScriptPlugin(program, run as RunOptions, [...exports])
}
