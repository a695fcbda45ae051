/**
 * @module The plugin API's public types: options, per-call options, host functions and the values
 * they see. Plain types only; nothing here runs or grants anything.
 */
import type { Duration, RunOptions, Size } from '../policy.js'
import type { HostInput } from './host-input.js'

/**
 * What a host function may return: bytes, a string (UTF-8), nothing (empty), or a JSON-able
 * value (serialised with `JSON.stringify`). Anything else fails the call.
 */
export type HostOutput = Uint8Array | string | number | boolean | null | undefined | readonly unknown[] | { readonly [k: string]: unknown }

/**
 * A host function the embedder grants to the plugin by name. It receives the plugin's arguments
 * as `HostInput`s (bytes copied out of the plugin and checked; decode them with `text()` or
 * `json()`, which validate), and returns what the plugin gets back. It may be `async` when the
 * plugin runs in a worker; in-process only synchronous functions are possible. A throw fails
 * the call (not the host) with that error.
 */
export type HostFunction = (...inputs: HostInput[]) => HostOutput | Promise<HostOutput>

/** Host functions by `'module.field'`, or nested `{ module: { field: fn } }`. */
export type HostFunctions = Readonly<Record<string, HostFunction | Readonly<Record<string, HostFunction>>>>

export interface HttpOptions {
  /**
   * Hosts the plugin may reach: `host:port` exactly, `host` (the scheme's default port), or
   * `*.example.com[:port]` (any subdomain, not the domain itself). Empty: no HTTP at all.
   */
  allowedHosts: readonly string[]
  /** Largest response body the plugin receives (default 1 MiB); a larger one fails the call. */
  maxResponseBytes?: Size
  /** Time one request may take, connection to the last byte (default 10s). */
  timeout?: Duration
  /** Redirects followed (default 5), each only to an allowed host. */
  maxRedirects?: number
}

export interface PluginOptions extends Omit<RunOptions, 'stdin' | 'stdout' | 'stderr' | 'signal'> {
  /** Host functions the plugin may import, by name. Nothing else is granted. */
  host?: HostFunctions
  /** `fresh` (default): every call starts from the state right after initialisation. `keep`: calls share state. */
  state?: 'fresh' | 'keep'
  /** Extism `config_get` values. */
  config?: Readonly<Record<string, string>>
  /** Outbound HTTP (Extism `http_request`, and the `caplet:http.request` host function). None by default. */
  http?: HttpOptions
  /** Receives the plugin's logs (Extism `log_*`) and its stderr, one message at a time. Default: discarded. */
  log?: (level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'stderr', message: string) => void
  /**
   * How a `fresh` plugin is reset after a call: `snapshot` (default) restores memory, globals and
   * tables in place; `instantiate` builds a new instance and runs its initialisation again
   * (slower: for comparison, or for a module whose state caplet cannot restore in place).
   */
  reset?: 'snapshot' | 'instantiate'
  /**
   * An export run once at load, after `_initialize`, whose resulting state every `fresh` call
   * starts from: e.g. `'_start'` for a module whose runtime starts there (AssemblyScript's WASI
   * shim, a command that sets up tables). Its output is discarded; exit code 0 counts as done.
   */
  initialize?: string
  /** Bounds on Extism variables (`var_set`): total bytes of keys and values,
   * plus 256 bytes of bookkeeping per variable (default 1 MiB). */
  maxVarBytes?: Size
}

export interface CallOptions {
  /** Fuel for this call (needs `limits.fuel` at load, which is the default for each call). */
  fuel?: number
  /** Wall-clock limit for this call (worker isolation only). */
  timeout?: Duration
  /** Largest output (stdout, or Extism's output) of this call (default: `limits.stdout`, else 16 MiB). */
  maxOutput?: Size
  /** Aborts the call (worker isolation: at once; in-process: before it starts). */
  signal?: AbortSignal
}

export interface Plugin {
  /**
   * Calls an export with `input` and resolves with its output. Rejects with `PluginCallError`
   * (trap, limit, the plugin's error, a host function's error), `PluginUnusableError`, or
   * `PolicyError` for bad call options.
   */
  call(name: string, input?: Uint8Array | string, options?: CallOptions): Promise<Uint8Array>
  /** `call` on this thread, synchronously (in-process; needs synchronous host functions and no timeout). */
  callSync(name: string, input?: Uint8Array | string, options?: CallOptions): Uint8Array
  /** The exports `call` accepts. */
  exports(): string[]
  /** Frees the plugin: its worker, helper thread and bridge. Later calls reject. Idempotent. */
  close(): Promise<void>
}
