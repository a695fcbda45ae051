/**
 * @module One loaded plugin instance, driven synchronously on its thread (the embedder's or a
 * worker's): instantiates and initialises once, snapshots memory, mutable globals and tables, and
 * runs calls (input in, output out, per-call fuel and output limits), restoring the snapshot after
 * each `fresh` call (re-instantiating only when memory or a table grew).
 *
 * SECURITY: once a call threw to end it (trap, limit, `proc_exit`, host error), every later import
 * throws the same, so a guest catching it cannot carry on calling out. Host functions see only
 * copies of checked bytes (`HostInput`). `call` never throws: every failure is an outcome.
 */
import { concatBytes } from '../../wasi-host/abi/bytes.js'
import { GuestFault, HostInvariantError, LimitExceeded, ProcExit, WasiHost, type ClockSource } from '../../wasi-host/index.js'
import { GuestMemory } from '../../wasi-host/abi/guest-memory.js'
import { Errno, WasiError } from '../../wasi-host/index.js'
import { createNodeClocks } from '../../wasi-host/node/clocks.js'
import { coarsenClocks, seededRandomFill, virtualClocks } from '../guest-clocks.js'
import { FUEL_EXPORT } from '../instrument/fuel-export.js'
import { DIRTY_EXPORT, DIRTY_GRANULES, DIRTY_SHIFT_EXPORT, DIRTY_SPILL } from '../instrument/write-tracking.js'
import { stubFunctions } from '../link/stubs.js'
import { openMounts, type OpenedMounts } from '../mounts.js'
import type { ResolvedPolicy } from '../policy.js'
import { classifyTrap, type TrapInfo } from '../trap.js'
import { ExtismKernel, parseHttpRequest as parseRequest, PluginAbort, type HttpRequestSpec } from './extism-kernel.js'
import { HostInput } from './host-input.js'
import { HTTP_FUNCTION, type LoadedPlugin } from './load.js'

/** What the engine needs from outside its thread. Each may throw `PluginAbort`. */
export interface EngineServices {
  /** Calls a granted host function; returns its result as bytes. */
  host(name: string, inputs: HostInput[]): Uint8Array
  /** Sends an allowed HTTP request. */
  http(request: HttpRequestSpec, body: Uint8Array | undefined): { status: number; body: Uint8Array }
  log(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'stderr', message: string): void
}

/** The part of a plugin's configuration an engine needs (structured-clones into a worker). */
export interface EngineConfig {
  plugin: Omit<LoadedPlugin, 'module'> & { module: WebAssembly.Module }
  policy: ResolvedPolicy
  state: 'fresh' | 'keep'
  reset: 'snapshot' | 'instantiate'
  /** An export run once after `_initialize`, before the snapshot. */
  initialize: string | undefined
  config: [string, string][]
  varBytes: number
  blockBytes: number
}

export interface CallRequest {
  name: string
  input: Uint8Array
  fuel?: number | undefined
  maxOutput?: number | undefined
}

export type CallOutcome =
  | { ok: true; output: Uint8Array; fuelUsed?: number }
  | {
      ok: false
      failure: 'trap' | 'limit' | 'plugin' | 'host' | 'usage' | 'unusable'
      message: string
      trap?: TrapInfo
      limit?: string
      status?: number
      stderr?: string
      hostFunction?: string
      cause?: unknown
      /** The plugin cannot be called again (`keep` state after a failure). */
      unusable?: boolean
    }

/** WASI calls that leave nothing behind in the host between calls (no descriptor, no file). */
const CLEAN = new Set([
  'fd_write',
  'fd_read',
  'fd_fdstat_get',
  'fd_filestat_get',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_seek',
  'fd_tell',
  'clock_res_get',
  'clock_time_get',
  'random_get',
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'proc_exit',
  'sched_yield',
  'poll_oneoff',
])
const STDERR_KEPT = 4096
/** What an in-process call may sleep in all (it blocks the embedder's thread). */
const IN_PROCESS_SLEEP_NS = 1_000_000_000n
const DEFAULT_OUTPUT = 16 * 1024 * 1024
const lossy = new TextDecoder()

interface Snapshot {
  memory: Uint8Array
  globals: { global: WebAssembly.Global; value: unknown }[]
  tables: { table: WebAssembly.Table; refs: unknown[] }[]
}

export class PluginEngine {
  readonly #cfg: EngineConfig
  readonly #services: EngineServices
  readonly #kernel: ExtismKernel | undefined
  readonly #imports: WebAssembly.Imports
  readonly #gm = new GuestMemory()
  #instance!: WebAssembly.Instance
  #memory!: WebAssembly.Memory
  #fuel: WebAssembly.Global | undefined
  /** The granules of memory written since the snapshot (`trackWrites`), when the module records them. */
  #dirty: WebAssembly.Global | undefined
  #dirtyShift = 0
  /** The host wrote guest memory (WASI results, a host function's output): the reset copies all of it. */
  #hostWrote = false
  /** Granules the host wrote (WASI results), beside the module's own bitmap: bits 0-31, 32-63. */
  #hostLo = 0
  #hostHi = 0
  #snapshot!: Snapshot
  #host!: WasiHost
  #mounts: OpenedMounts | undefined
  #wasi: Record<string, (...a: unknown[]) => number> = {}
  #hostDirty = false
  #ended: unknown = undefined
  #unusable: string | undefined
  // Per call:
  #input: Uint8Array = new Uint8Array(0)
  #inputAt = 0
  #out: Uint8Array[] = []
  #outSize = 0
  #outLimit = DEFAULT_OUTPUT
  #err: Uint8Array[] = []
  #errSize = 0
  #slept = 0n
  #resetPending = false
  /** A call is running (on this thread's stack). */
  #inCall = false

  /** @throws Error when the plugin's initialisation fails (the caller reports it as a ModuleError) */
  constructor(cfg: EngineConfig, services: EngineServices) {
    this.#cfg = cfg
    this.#services = services
    const p = cfg.plugin
    if (p.extismFunctions.length > 0) {
      const blockBytes = cfg.blockBytes
      this.#kernel = new ExtismKernel(
        { blockBytes, varBytes: cfg.varBytes, outputBytes: cfg.policy.limits.stdoutBytes ?? DEFAULT_OUTPUT },
        new Map(cfg.config),
        { http: (r, b) => services.http(r, b), log: (l, m) => services.log(l, m) },
      )
    }
    this.#imports = this.#buildImports()
    this.#buildHost()
    this.#instantiate()
  }

  get unusable(): string | undefined {
    return this.#unusable
  }

  // ---- imports -----------------------------------------------------------------------------

  /** Wraps an import in the latch (see the module comment). */
  #latched<F extends (...a: never[]) => unknown>(f: F): F {
    return ((a: never, b: never, c: never, d: never, e: never, g: never, h: never, i: never, j: never) => {
      if (this.#ended !== undefined) throw this.#ended
      try {
        return f(a, b, c, d, e, g, h, i, j)
      } catch (x) {
        this.#ended = x
        throw x
      }
    }) as unknown as F
  }

  #buildImports(): WebAssembly.Imports {
    const p = this.#cfg.plugin
    const imports: Record<string, Record<string, unknown>> = {}
    const wasi: Record<string, unknown> = {}
    for (const name of p.wasiFunctions) {
      const clean = CLEAN.has(name)
      wasi[name] = this.#latched(
        (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown, g: unknown, h: unknown, i: unknown) => {
          if (!clean) this.#hostDirty = true
          // What the host writes into guest memory is marked for the reset, as the guest's own stores are.
          const iovecs = name === 'fd_read' ? this.#iovecs(b, c) : undefined
          let done = false
          try {
            const r = this.#wasi[name]!(a, b, c, d, e, f, g, h, i)
            done = true
            return r
          } finally {
            if (!done) this.#hostWrote = true
            else this.#markWasi(name, c, d, iovecs)
          }
        },
      )
    }
    if (p.wasiFunctions.length > 0) imports.wasi_snapshot_preview1 = wasi
    // Denied syscalls (ENOSYS) and unknown imports (trap or zeros): they reach nothing.
    for (const [module, fns] of Object.entries(
      stubFunctions(
        p.stubs,
        () => {},
        () => {},
      ),
    )) {
      const group = (imports[module] ??= {})
      for (const [field, fn] of Object.entries(fns)) group[field] = this.#latched(fn)
    }
    if (this.#kernel !== undefined) {
      const env: Record<string, unknown> = {}
      for (const [name, fn] of Object.entries(this.#kernel.imports(p.extismFunctions))) env[name] = this.#latched(fn)
      imports['extism:host/env'] = env
    }
    for (const imp of p.hostImports) {
      const dot = imp.name.indexOf('.', imp.name.startsWith('caplet:http') ? 'caplet:http'.length : 0)
      const module = imp.name.slice(0, dot)
      const field = imp.name.slice(dot + 1)
      const fn = imp.convention === 'buffer' ? this.#bufferImport(imp.name) : this.#extismImport(imp.name, imp.params, imp.hasResult)
      ;(imports[module] ??= {})[field] = this.#latched(fn)
    }
    return imports as WebAssembly.Imports
  }

  /** `(ptr, len, out_ptr, out_cap) -> len`: the output is written only when it fits (as snprintf). */
  #bufferImport(name: string): (...a: never[]) => number {
    const gm = this.#gm
    return ((ptr: number, len: number, outPtr: number, outCap: number): number => {
      ptr >>>= 0
      len >>>= 0
      outPtr >>>= 0
      outCap >>>= 0
      gm.refresh()
      try {
        gm.check(ptr, len)
        gm.check(outPtr, outCap)
      } catch (e) {
        if (e instanceof GuestFault) e.syscall = name
        throw e
      }
      this.#hostWrote = true
      const input = new HostInput(gm.copyOut(ptr, len))
      const out = name === HTTP_FUNCTION ? this.#httpFunction(input) : this.#services.host(name, [input])
      if (out.byteLength > 0x7fffffff) throw new PluginAbort('host', `host function ${name} returned more than 2 GiB`, name)
      // A host function may have grown nothing, but memory may have been replaced (re-derive).
      gm.refresh()
      if (out.byteLength <= outCap) gm.write(outPtr, out)
      return out.byteLength
    }) as unknown as (...a: never[]) => number
  }

  /** Extism's `extism:host/user` convention: i64 block offsets in, a new block's offset out. */
  #extismImport(name: string, params: number, hasResult: boolean): (...a: never[]) => unknown {
    return ((...args: bigint[]) => {
      const kernel = this.#kernel
      if (kernel === undefined) throw new PluginAbort('host', `${name}: Extism host functions need a plugin built on the Extism ABI`, name)
      const inputs = args.slice(0, params).map((o) => kernel.hostInput(name, o))
      const out = this.#services.host(name, inputs)
      if (!hasResult) return undefined
      return out.byteLength === 0 ? 0n : kernel.store(out)
    }) as unknown as (...a: never[]) => unknown
  }

  /** `caplet:http.request`: JSON `{url, method?, headers?, body?}` in, JSON `{status, body}` out. */
  #httpFunction(input: HostInput): Uint8Array {
    let req: { url?: unknown; method?: unknown; headers?: unknown; body?: unknown }
    try {
      req = input.json() as typeof req
    } catch {
      throw new PluginAbort('plugin', `${HTTP_FUNCTION}: the request is not UTF-8 JSON`)
    }
    if (typeof req !== 'object' || req === null) throw new PluginAbort('plugin', `${HTTP_FUNCTION}: the request must be a JSON object`)
    if (req.body !== undefined && typeof req.body !== 'string') throw new PluginAbort('plugin', `${HTTP_FUNCTION}: "body" must be a string`)
    const spec = { url: req.url, method: req.method, headers: req.headers }
    // Same checks as Extism's request.
    const checked = parseRequest(JSON.stringify(spec))
    const body = typeof req.body === 'string' ? new TextEncoder().encode(req.body) : undefined
    const res = this.#services.http(checked, body)
    return new TextEncoder().encode(JSON.stringify({ status: res.status, body: lossy.decode(res.body) }))
  }

  // ---- the WASI host -----------------------------------------------------------------------

  #buildHost(): void {
    this.#host?.close()
    this.#mounts?.close()
    const policy = this.#cfg.policy
    let clocks: ClockSource = policy.deterministic
      ? virtualClocks(policy.clocks.resolutionNs)
      : coarsenClocks(createNodeClocks(), policy.clocks.resolutionNs, policy.clocks.cputime)
    if (policy.isolation === 'in-process' && !policy.deterministic) {
      const base = clocks
      clocks = {
        ...base,
        sleep: (ns) => {
          if (this.#slept + ns > IN_PROCESS_SLEEP_NS) throw new WasiError(Errno.NOTSUP, 'in-process plugins may not sleep longer')
          this.#slept += ns
          base.sleep(ns)
        },
      }
    }
    this.#mounts = openMounts(policy, [], policy.deterministic ? clocks.realtime : undefined)
    const host = new WasiHost({
      args: policy.args ?? [this.#cfg.plugin.argv0],
      env: policy.env,
      preopens: this.#mounts.preopens,
      stdin: (dst) => {
        const n = Math.min(dst.byteLength, this.#input.byteLength - this.#inputAt)
        dst.set(this.#input.subarray(this.#inputAt, this.#inputAt + n))
        this.#inputAt += n
        return n
      },
      stdout: (chunk) => this.#write(chunk),
      stderr: (chunk) => this.#writeErr(chunk),
      clocks,
      ...(policy.deterministic ? { randomFill: seededRandomFill(policy.seed) } : {}),
      limits: { maxFds: policy.limits.maxFds },
      ...(policy.limits.fuel !== undefined
        ? {
            chargeWork: (bytes: number) => {
              const f = this.#fuel
              if (f) f.value = (f.value as bigint) - BigInt(bytes >>> 6)
            },
          }
        : {}),
      functions: this.#cfg.plugin.wasiFunctions,
    })
    // A plugin's exports return to us with no last call at which held writes would go out.
    host.writeBehind.enabled = false
    if (this.#memory !== undefined) host.memory.bind(this.#memory)
    this.#host = host
    this.#wasi = host.imports.wasi_snapshot_preview1 as unknown as Record<string, (...a: unknown[]) => number>
    this.#hostDirty = false
  }

  #write(chunk: Uint8Array): void {
    const room = this.#outLimit - this.#outSize
    if (chunk.byteLength > room) {
      throw new LimitExceeded('stdout', `output exceeded ${this.#outLimit} bytes`)
    }
    this.#out.push(chunk.slice())
    this.#outSize += chunk.byteLength
  }

  #writeErr(chunk: Uint8Array): void {
    const limit = this.#cfg.policy.limits.stderrBytes ?? DEFAULT_OUTPUT
    if (this.#errSize + chunk.byteLength > limit) throw new LimitExceeded('stderr', `stderr exceeded ${limit} bytes`)
    if (this.#errSize < STDERR_KEPT * 4) this.#err.push(chunk.slice(0, STDERR_KEPT * 4 - this.#errSize))
    this.#errSize += chunk.byteLength
  }

  // ---- instance, snapshot, restore ---------------------------------------------------------

  /** A new instance, initialised, and its snapshot. @throws what initialisation threw */
  #instantiate(): void {
    this.#ended = undefined
    const instance = new WebAssembly.Instance(this.#cfg.plugin.module, this.#imports)
    const memory = instance.exports.memory as WebAssembly.Memory
    this.#instance = instance
    this.#memory = memory
    this.#gm.bind(memory)
    this.#host.memory.bind(memory)
    this.#fuel = instance.exports[FUEL_EXPORT] as WebAssembly.Global | undefined
    // `_initialize` (a reactor's), then the embedder's `initialize` export: the state after them is the snapshot.
    const inits = [
      ...(this.#cfg.plugin.kind === 'reactor' ? ['_initialize'] : []),
      ...(this.#cfg.initialize !== undefined ? [this.#cfg.initialize] : []),
    ]
    for (const init of inits) {
      if (this.#fuel) this.#fuel.value = BigInt(this.#cfg.policy.limits.fuel ?? Number.MAX_SAFE_INTEGER)
      this.#beginIo(new Uint8Array(0), undefined)
      try {
        this.#kernel?.beginCall(new Uint8Array(0))
        ;(instance.exports[init] as () => void)()
        if (this.#ended !== undefined) throw this.#ended
      } catch (e) {
        const end = this.#ended ?? e
        // A command's `_start` ends in exit(0): initialised.
        if (!(end instanceof ProcExit && end.code === 0)) {
          throw new Error(`plugin initialisation failed${init === '_initialize' ? '' : ` (${init})`}: ${describe(end, this.#host)}`, {
            cause: end,
          })
        }
      }
      this.#ended = undefined
    }
    this.#out = []
    this.#err = []
    this.#snapshot = {
      memory: new Uint8Array(memory.buffer).slice(),
      globals: this.#cfg.plugin.globals.map((n) => {
        const global = instance.exports[n] as WebAssembly.Global
        return { global, value: global.value }
      }),
      tables: this.#cfg.plugin.tables.map((n) => {
        const table = instance.exports[n] as WebAssembly.Table
        const refs: unknown[] = []
        for (let i = 0; i < table.length; i++) refs.push(table.get(i))
        return { table, refs }
      }),
    }
    this.#dirty = undefined
    this.#hostWrote = false
    this.#hostLo = 0
    this.#hostHi = 0
    if (this.#cfg.plugin.writeTracking) {
      // Granules of 2^shift bytes, 64 of them covering memory as it is now (a grown one re-instantiates).
      const bytes = memory.buffer.byteLength
      this.#dirtyShift = Math.max(0, Math.ceil(Math.log2(Math.max(bytes, 1))) - Math.log2(DIRTY_GRANULES))
      ;(instance.exports[DIRTY_SHIFT_EXPORT] as WebAssembly.Global).value = this.#dirtyShift
      this.#dirty = instance.exports[DIRTY_EXPORT] as WebAssembly.Global
      this.#dirty.value = 0n
    }
  }

  /** Puts the instance back as it was after initialisation. @throws what re-initialisation threw */
  #restore(): void {
    const s = this.#snapshot
    const grown = this.#memory.buffer.byteLength !== s.memory.byteLength || s.tables.some((t) => t.table.length !== t.refs.length)
    if (grown || this.#cfg.reset === 'instantiate' || this.#cfg.plugin.passiveSegments) {
      // Memory and tables cannot shrink, and a dropped segment cannot come back: a fresh instance is the only way back.
      this.#instantiate()
    } else {
      this.#restoreMemory(s.memory)
      for (const g of s.globals) g.global.value = g.value
      for (const t of s.tables) {
        const refs = t.refs
        for (let i = 0; i < refs.length; i++) if (t.table.get(i) !== refs[i]) t.table.set(i, refs[i] as never)
      }
    }
    this.#kernel?.resetVars()
    if (this.#hostDirty || this.#cfg.policy.deterministic) this.#buildHost()
  }

  /**
   * The (buffer, length) pairs of an iovec array, read before the call; `undefined` (mark all):
   * too many or out of bounds. SECURITY: these are the buffers the host writes, because a read
   * scatters into the iovecs as checked before any byte lands (wasi-host/syscalls/iovecs.ts),
   * even when a buffer covers the array itself and the bytes read rewrite it.
   */
  #iovecs(ptr: unknown, count: unknown): number[] | undefined {
    if (this.#dirty === undefined || typeof ptr !== 'number' || typeof count !== 'number') return undefined
    const at = ptr >>> 0
    const n = count >>> 0
    const buffer = this.#memory.buffer
    if (n > 16 || at + n * 8 > buffer.byteLength) return undefined
    const v = new DataView(buffer)
    const out: number[] = []
    for (let k = 0; k < n; k++) out.push(v.getUint32(at + k * 8, true), v.getUint32(at + k * 8 + 4, true))
    return out
  }

  /** Marks what a WASI call that returned wrote: its result pointer (and, for `fd_read`, the buffers); anything else marks all. */
  #markWasi(name: string, c: unknown, d: unknown, iovecs: number[] | undefined): void {
    if (this.#dirty === undefined || this.#hostWrote) return
    switch (name) {
      case 'fd_close':
      case 'proc_exit':
      case 'sched_yield':
        return
      case 'fd_write':
        return this.#mark(d, 4)
      case 'fd_seek':
        return this.#mark(d, 8)
      case 'clock_time_get':
        return this.#mark(c, 8)
      case 'fd_read':
        if (iovecs === undefined) break
        for (let k = 0; k < iovecs.length; k += 2) this.#mark(iovecs[k], iovecs[k + 1]!)
        return this.#mark(d, 4)
    }
    this.#hostWrote = true
  }

  /** Marks the granules of \`len\` bytes at \`ptr\` (all of memory when they are not inside it). */
  #mark(ptr: unknown, len: number): void {
    if (len === 0) return
    const from = typeof ptr === 'number' ? ptr >>> 0 : -1
    if (from < 0 || from + len > this.#memory.buffer.byteLength) {
      this.#hostWrote = true
      return
    }
    const g = 2 ** this.#dirtyShift
    for (let k = Math.floor(from / g), last = Math.floor((from + len - 1) / g); k <= last; k++) {
      if (k < 32) this.#hostLo |= 1 << k
      else this.#hostHi |= 1 << (k - 32)
    }
  }

  /** Copies back the granules written since the snapshot (all of memory when that is unknown). */
  #restoreMemory(snapshot: Uint8Array): void {
    const dst = new Uint8Array(this.#memory.buffer)
    const dirty = this.#dirty
    let bits = dirty === undefined || this.#hostWrote ? -1n : (dirty.value as bigint)
    if (bits !== -1n && (this.#hostLo | this.#hostHi) !== 0) bits |= (BigInt(this.#hostHi >>> 0) << 32n) | BigInt(this.#hostLo >>> 0)
    this.#hostWrote = false
    this.#hostLo = 0
    this.#hostHi = 0
    if (bits === 0n) return
    if (bits === -1n) dst.set(snapshot)
    else {
      const lo = Number(BigInt.asUintN(32, bits))
      const hi = Number(BigInt.asUintN(32, bits >> 32n))
      const shift = this.#dirtyShift
      let run = -1
      for (let i = 0; i <= DIRTY_GRANULES; i++) {
        const set = i < 32 ? (lo >>> i) & 1 : i < 64 ? (hi >>> (i - 32)) & 1 : 0
        if (set === 1) {
          if (run < 0) run = i
        } else if (run >= 0) {
          // A store marks the granule it starts in: the next few bytes may be written too.
          const from = run * 2 ** shift
          const to = Math.min(i * 2 ** shift + DIRTY_SPILL, snapshot.byteLength)
          if (from < to) dst.set(snapshot.subarray(from, to), from)
          run = -1
        }
      }
    }
    if (dirty !== undefined) dirty.value = 0n
  }

  #beginIo(input: Uint8Array, maxOutput: number | undefined): void {
    this.#input = input
    this.#inputAt = 0
    this.#out = []
    this.#outSize = 0
    this.#outLimit = maxOutput ?? this.#cfg.policy.limits.stdoutBytes ?? DEFAULT_OUTPUT
    this.#err = []
    this.#errSize = 0
    this.#slept = 0n
  }

  // ---- calls -------------------------------------------------------------------------------

  /**
   * Runs one call. Never throws. A fresh plugin is reset before this returns, unless
   * `deferReset` (a worker posts the outcome first): then `reset()` must run before anything
   * else touches the engine; `call` runs it itself if it was not.
   */
  call(req: CallRequest, deferReset = false): CallOutcome {
    // A host function calling back into this plugin would reset the kernel and memory under the
    // running call (its blocks would then hold the inner call's data): refused.
    if (this.#inCall)
      return { ok: false, failure: 'host', message: 'the plugin is already in a call: a host function cannot call back into it' }
    if (this.#resetPending) this.reset()
    if (this.#unusable !== undefined) return { ok: false, failure: 'unusable', message: this.#unusable }
    const p = this.#cfg.plugin
    if (!p.callable.includes(req.name)) {
      return {
        ok: false,
        failure: 'usage',
        message: `the plugin has no callable export ${JSON.stringify(req.name)} (callable: ${p.callable.join(', ') || 'none'})`,
      }
    }
    const fn = this.#instance.exports[req.name] as () => number | undefined
    this.#beginIo(req.input, req.maxOutput)
    this.#ended = undefined
    const budget = req.fuel ?? this.#cfg.policy.limits.fuel
    if (this.#fuel !== undefined) this.#fuel.value = BigInt(budget ?? Number.MAX_SAFE_INTEGER)
    let outcome: CallOutcome
    let exited = false
    this.#inCall = true
    try {
      this.#kernel?.beginCall(req.input)
      const status = fn()
      if (this.#ended !== undefined) throw this.#ended
      outcome = this.#success(typeof status === 'number' ? status : 0)
    } catch (e) {
      const end = this.#ended ?? e
      exited = end instanceof ProcExit
      outcome = end instanceof ProcExit && end.code === 0 ? this.#success(0) : this.#failure(end)
    } finally {
      this.#inCall = false
    }
    if (outcome.ok && this.#fuel !== undefined && budget !== undefined) {
      const left = this.#fuel.value as bigint
      outcome.fuelUsed = budget - Number(left > 0n ? left : 0n)
    }
    if (this.#errSize > 0) {
      try {
        this.#services.log('stderr', lossy.decode(concatBytes(this.#err)))
      } catch {
        /* a logger's failure is not the call's */
      }
    }
    this.#ended = undefined
    this.#input = new Uint8Array(0)
    this.#out = []
    if (this.#cfg.state === 'fresh') {
      this.#resetPending = true
      if (!deferReset) this.reset()
    } else if (!outcome.ok && (outcome.failure === 'trap' || outcome.failure === 'limit' || exited)) {
      this.#unusable = `the plugin (state: 'keep') is unusable after a failed call: ${outcome.message}`
      outcome.unusable = true
    }
    return outcome
  }

  /** Restores the snapshot after a fresh call (see `call`). */
  reset(): void {
    if (!this.#resetPending) return
    this.#resetPending = false
    try {
      this.#restore()
    } catch (e) {
      this.#unusable = `the plugin could not be reset: ${e instanceof Error ? e.message : String(e)}`
    }
  }

  #success(status: number): CallOutcome {
    const k = this.#kernel
    if (k !== undefined && k.error !== undefined)
      return { ok: false, failure: 'plugin', message: `plugin error: ${k.error}`, status, ...this.#stderr() }
    if (status !== 0) return { ok: false, failure: 'plugin', message: `the plugin returned status ${status}`, status, ...this.#stderr() }
    const output = k?.output ?? concatBytes(this.#out)
    return { ok: true, output }
  }

  #stderr(): { stderr?: string } {
    return this.#errSize > 0 ? { stderr: lossy.decode(concatBytes(this.#err)).slice(0, STDERR_KEPT) } : {}
  }

  #failure(e: unknown): CallOutcome {
    if (e instanceof ProcExit)
      return { ok: false, failure: 'plugin', message: `the plugin exited with code ${e.code}`, status: e.code, ...this.#stderr() }
    if (e instanceof PluginAbort) {
      return {
        ok: false,
        failure: e.failure,
        message: e.message,
        ...(e.hostFunction !== undefined ? { hostFunction: e.hostFunction } : {}),
        ...(e.cause !== undefined ? { cause: e.cause } : {}),
      }
    }
    if (e instanceof LimitExceeded) return { ok: false, failure: 'limit', limit: e.limit, message: `limit exceeded: ${e.detail}` }
    if (this.#fuel !== undefined && (this.#fuel.value as bigint) < 0n)
      return { ok: false, failure: 'limit', limit: 'fuel', message: 'limit exceeded: out of fuel' }
    const trap = classifyTrap(e, this.#host.recentSyscalls()) ?? {
      kind: 'host-fault' as const,
      message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
      recentSyscalls: this.#host.recentSyscalls(),
    }
    return { ok: false, failure: 'trap', trap, message: `the plugin trapped: ${trap.message}`, ...this.#stderr() }
  }

  /** Releases the host (descriptors, mounts). */
  close(): void {
    this.#unusable ??= 'the plugin is closed'
    try {
      this.#host.close()
    } finally {
      this.#mounts?.close()
    }
  }
}

function describe(e: unknown, host: WasiHost): string {
  if (e instanceof ProcExit) return `it exited with code ${e.code}`
  if (e instanceof LimitExceeded) return e.detail
  if (e instanceof PluginAbort) return e.message
  const trap = classifyTrap(e, host.recentSyscalls())
  if (trap) return `${trap.kind}: ${trap.message}`
  if (e instanceof HostInvariantError) return e.message
  return e instanceof Error ? e.message : String(e)
}
