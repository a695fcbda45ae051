/**
 * @module `caplet/browser`: the same sandbox in a web page. `run(module, options)` and
 * `prepare(module, options)` take the Node policy's browser-sensible fields, resolve them with
 * the shared `resolvePolicy`, load the module through the shared pipeline, and run each guest in
 * a dedicated module Web Worker (pooled) that `limits.timeout` and `signal` terminate at any
 * instruction. Needs no cross-origin isolation: nothing here uses `SharedArrayBuffer`; output
 * is streamed by `postMessage` as the guest writes it. Mounts are in memory in the worker,
 * copied in from a tree, dropped files, an OPFS directory or a memfs volume, and written back
 * (OPFS, volume) when the run ends. It must never grant what the options did not name.
 */
import { CallbackFaults } from '../callback-faults.js'
import { OutputCollector } from '../output-collector.js'
import { LIMIT_EXIT_CODE, TRAP_EXIT_CODE, type ExecutionOutcome, type LimitKind, type RunStats } from '../execute.js'
import { ModuleError, PolicyError } from '../errors.js'
import { parseSize } from '../units.js'
import { preparePolicy, resolveRunInput, type PreparedPolicy, type TraceSink } from '../policy.js'
import { importedFunctions } from '../module-pipeline.js'
import type { TrapInfo } from '../trap.js'
import type { TraceSummaryRow } from '../trace-output.js'
import { argv0Of, loadBrowserModule, type BrowserModuleSource, type CompiledFrom } from './load-module.js'
import { browserDenials, explainDenials, type Denial } from './denials.js'
import { isVolume, readVolume, writeBackVolume, type VolumeLike } from './memfs-volume.js'
import {
  browserProblems,
  refuse,
  RUN_INPUT_KEYS,
  toRunOptions,
  type BrowserMountSpec,
  type BrowserRunInput,
  type BrowserRunOptions,
  type BrowserTree,
} from './options.js'
import {
  BROWSER_PROTOCOL_VERSION as V,
  type BrowserJob,
  type BrowserWorkerMessage,
  type CompileJob,
  type MountJob,
  type MountSource,
} from './protocol.js'
import { entriesFromTree, entryComponents, type FileEntry } from './snapshot.js'
import { BrowserWorkerPool } from './worker-pool.js'

export type {
  BrowserModuleSource,
  BrowserMountSpec,
  CompiledFrom,
  Denial,
  TraceSummaryRow,
  BrowserRunInput,
  BrowserRunOptions,
  BrowserTree,
  FileEntry,
  LimitKind,
  RunStats,
  TrapInfo,
  VolumeLike,
}
export { ModuleError, PolicyError, SandboxError } from '../errors.js'
export { parseDuration, parseSize } from '../units.js'
export { LIMIT_EXIT_CODE, TRAP_EXIT_CODE, explainDenials }

export interface BrowserRunResult {
  /** The guest's exit code; 134 after a trap, 124 when a limit stopped it. */
  exitCode: number
  stdout: Uint8Array
  stderr: Uint8Array
  trap?: TrapInfo
  /** The limit that stopped the guest (`timeout` and `aborted` terminate its worker). */
  limit?: LimitKind
  warnings?: string[]
  /** Calls the policy refused (capped at 64), each with the option that would grant it; `explainDenials(result)` words them. */
  denials?: Denial[]
  /** How many calls the policy refused in all (present with `denials`). */
  denialCount?: number
  /** With `trace: { summary: true }`: calls, errors and microseconds per function. */
  traceSummary?: TraceSummaryRow[]
  stats: RunStats
  /** The final tree of each mount with `keep: true`, by guest path. */
  files?: Record<string, FileEntry[]>
}

/** A module prepared under a policy, to be run many times (each run: fresh worker state, mounts, instance). */
export interface BrowserProgram {
  /** How the module was compiled (`stream`: by `compileStreaming` as it arrived). */
  readonly compiledFrom: CompiledFrom
  run(input?: BrowserRunInput): Promise<BrowserRunResult>
}

const pools = new Map<string, BrowserWorkerPool>()

function poolFor(url: URL): BrowserWorkerPool {
  let pool = pools.get(url.href)
  if (pool === undefined) {
    const cores = typeof navigator !== 'undefined' && navigator.hardwareConcurrency > 0 ? navigator.hardwareConcurrency : 2
    pool = new BrowserWorkerPool(url, Math.max(2, cores), 2)
    pools.set(url.href, pool)
  }
  return pool
}

/** A mount as prepared: where its contents come from each run. */
interface PreparedMount {
  spec: BrowserMountSpec
  /** Entries copied at prepare (tree, files). */
  entries?: FileEntry[]
}

async function entriesFromFiles(files: FileList | readonly File[]): Promise<FileEntry[]> {
  const out: FileEntry[] = []
  const dirs = new Set<string>()
  for (const f of Array.from(files as ArrayLike<File>)) {
    const rel = ((f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name).replace(/^\/+/, '')
    // SECURITY: a name is the user's (or a drag source's) string: one beneath the mount, or refused here.
    let parts: string[]
    try {
      parts = entryComponents(rel)
    } catch {
      throw new TypeError(`${JSON.stringify(rel)} is not a relative path beneath the mount`)
    }
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/')
      if (!dirs.has(d)) {
        dirs.add(d)
        out.push({ path: d, kind: 'dir' })
      }
    }
    out.push({ path: rel, kind: 'file', data: new Uint8Array(await f.arrayBuffer()) })
  }
  return out
}

const isFileList = (t: unknown): t is FileList | readonly File[] =>
  (typeof FileList !== 'undefined' && t instanceof FileList) ||
  (Array.isArray(t) && t.every((f) => typeof File !== 'undefined' && f instanceof File))

class PreparedBrowserProgram implements BrowserProgram {
  constructor(
    readonly module: WebAssembly.Module,
    readonly functions: readonly string[],
    readonly argv0: string,
    readonly prepared: PreparedPolicy,
    readonly mounts: readonly PreparedMount[],
    readonly pool: BrowserWorkerPool,
    readonly onStdout: ((c: Uint8Array) => void) | undefined,
    readonly onStderr: ((c: Uint8Array) => void) | undefined,
    readonly compiledFrom: CompiledFrom,
  ) {}

  async run(input: BrowserRunInput = {}): Promise<BrowserRunResult> {
    const problems = browserProblems(input as Record<string, unknown>, RUN_INPUT_KEYS)
    const { onStdout, onStderr, ...shared } = input
    let r: PreparedPolicy
    try {
      r = resolveRunInput(this.prepared, Object.keys(shared).length > 0 ? shared : undefined)
    } catch (e) {
      if (e instanceof PolicyError) refuse(problems, e)
      throw e
    }
    if (problems.length > 0) throw new PolicyError(problems)
    r.signal?.throwIfAborted()
    // Volumes are read now, so a run sees the app's files as they are when it starts.
    const volumes: (FileEntry[] | undefined)[] = []
    const jobs: MountJob[] = this.mounts.map((m, i) => {
      const rw = m.spec.mode !== 'ro'
      let source: MountSource = { kind: 'empty' }
      if (m.entries !== undefined) source = { kind: 'entries', entries: m.entries }
      else if (m.spec.volume !== undefined) {
        const entries = readVolume(m.spec.volume, m.spec.path ?? '/', r.policy.mounts[i]?.bytes ?? Number.MAX_SAFE_INTEGER)
        volumes[i] = entries
        source = { kind: 'entries', entries }
      } else if (m.spec.opfs !== undefined) source = { kind: 'opfs', dir: m.spec.opfs }
      return {
        source,
        collect: m.spec.keep === true || (rw && m.spec.volume !== undefined),
        writeBack: rw && m.spec.opfs !== undefined,
        noLinks: m.spec.opfs !== undefined,
        hostVisible: m.spec.volume !== undefined,
      }
    })
    const job: BrowserJob = {
      v: V,
      type: 'run',
      module: this.module,
      functions: this.functions,
      policy: r.policy,
      argv0: this.argv0,
      mounts: jobs,
    }
    const sinks: OutputSinks = { stdout: onStdout ?? this.onStdout, stderr: onStderr ?? this.onStderr, trace: this.prepared.traceSink }
    let result = await dispatch(this.pool, job, r.signal, sinks)
    // A worker whose address space is still held by dead instances cannot reserve a new memory;
    // the guest never started, so it runs again, once, on a fresh worker.
    if (result.starved) result = await dispatch(this.pool, job, r.signal, sinks)
    const trees = result.trees
    const files: Record<string, FileEntry[]> = {}
    this.mounts.forEach((m, i) => {
      const after = trees?.[i]
      if (after === undefined) return
      if (m.spec.keep) files[m.spec.guest] = after
      if (m.spec.volume !== undefined && m.spec.mode !== 'ro') {
        try {
          writeBackVolume(m.spec.volume, m.spec.path ?? '/', volumes[i] ?? [], after)
        } catch (e) {
          ;(result.outcome.warnings ??= []).push(
            `${m.spec.guest}: writing back to the volume failed: ${e instanceof Error ? e.message : String(e)}`,
          )
        }
      }
    })
    const out: BrowserRunResult = { ...result.outcome, stdout: result.stdout, stderr: result.stderr }
    if (out.denials !== undefined)
      out.denials = browserDenials(
        out.denials,
        this.mounts.map((m) => m.spec.guest),
      )
    if (Object.keys(files).length > 0) out.files = files
    return out
  }
}

interface Dispatched {
  outcome: ExecutionOutcome
  stdout: Uint8Array
  stderr: Uint8Array
  trees?: (FileEntry[] | undefined)[]
  /** The instance could not get its memory (address space exhausted) before the guest started. */
  starved?: boolean
}

/** Whether a run failed for want of address space before the guest made any call or wrote anything. */
function starvedOf(outcome: ExecutionOutcome): boolean {
  return (
    outcome.trap?.kind === 'host-fault' &&
    /Cannot allocate Wasm memory/i.test(outcome.trap.message) &&
    Object.keys(outcome.stats.syscalls).length === 0
  )
}

/** Where a run's output and trace lines go as they arrive. */
interface OutputSinks {
  stdout: ((c: Uint8Array) => void) | undefined
  stderr: ((c: Uint8Array) => void) | undefined
  trace: TraceSink | undefined
}

/** Runs one job on a pooled worker; the time limit and the signal terminate it. */
async function dispatch(
  pool: BrowserWorkerPool,
  job: BrowserJob,
  signal: AbortSignal | undefined,
  sinks: OutputSinks,
): Promise<Dispatched> {
  const worker = await pool.acquire()
  if (signal?.aborted) {
    pool.release(worker)
    signal.throwIfAborted()
  }
  const out = new OutputCollector()
  const err = new OutputCollector()
  const started = performance.now()
  const blankStats = (): RunStats => ({ wallMs: performance.now() - started, peakMemory: 0, syscalls: {}, bytesRead: 0, bytesWritten: 0 })
  // A callback of the embedder's that throws must not break the page's message handler: the run
  // goes on (the output is still captured) and the result warns, once per callback.
  const faults = new CallbackFaults('the run went on and the result holds all the output')
  const deliver = <T>(name: string, fn: ((v: T) => void) | undefined, v: T) => faults.deliver(name, fn, v)
  return new Promise<Dispatched>((resolve) => {
    let settled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const settle = (d: Omit<Dispatched, 'stdout' | 'stderr'>, reuse: boolean) => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (reuse) pool.release(worker)
      else pool.discard(worker)
      const warnings = faults.warnings()
      if (warnings.length > 0) (d.outcome.warnings ??= []).push(...warnings)
      resolve({ ...d, stdout: out.bytes(), stderr: err.bytes() })
    }
    const stop = (limit: LimitKind) => {
      if (settled) return
      // The worker posted each chunk as the guest wrote it; the ones already queued for this
      // thread are delivered before this task ends the run (terminate() stops the worker, not
      // the delivery of what it sent).
      worker.terminate()
      setTimeout(() => settle({ outcome: { exitCode: LIMIT_EXIT_CODE, limit, stats: blankStats() } }, false), 0)
    }
    const onAbort = () => stop('aborted')
    signal?.addEventListener('abort', onAbort, { once: true })
    const fault = (message: string) =>
      settle(
        { outcome: { exitCode: TRAP_EXIT_CODE, trap: { kind: 'host-fault', message, recentSyscalls: [] }, stats: blankStats() } },
        false,
      )
    worker.onmessage = (e: MessageEvent<BrowserWorkerMessage>) => {
      const m = e.data
      if (m.type === 'chunk') {
        if (m.stream === 'stdout') {
          out.keep(m.bytes)
          deliver('onStdout', sinks.stdout, m.bytes)
        } else {
          err.keep(m.bytes)
          deliver('onStderr', sinks.stderr, m.bytes)
        }
      } else if (m.type === 'trace') {
        deliver('trace', sinks.trace, m.line)
      } else if (m.type === 'ran') {
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
      } else if (m.type === 'done') {
        const outcome = m.outcome
        if (m.writeBackError !== undefined) (outcome.warnings ??= []).push(m.writeBackError)
        const starved = starvedOf(outcome) && out.total === 0 && err.total === 0
        settle({ outcome, trees: m.trees, ...(starved ? { starved } : {}) }, !starved)
      } else if (m.type === 'failed') fault(m.message)
    }
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault()
      fault(`the guest's worker failed: ${e.message || 'it could not start (is browser-worker.js served?)'}`)
    }
    worker.onmessageerror = () => fault("a message from the guest's worker could not be read")
    if (job.policy.limits.timeoutMs !== undefined) timer = setTimeout(() => stop('timeout'), job.policy.limits.timeoutMs)
    worker.postMessage(job)
  })
}

/** Runs the shared module pipeline on a pooled worker and brings the compiled module back. @throws ModuleError */
async function compileInWorker(
  pool: BrowserWorkerPool,
  bytes: Uint8Array,
  memoryPages: number | undefined,
  fuel: boolean,
): Promise<WebAssembly.Module> {
  const worker = await pool.acquire()
  return new Promise<WebAssembly.Module>((resolve, reject) => {
    const done = (reuse: boolean) => {
      if (reuse) pool.release(worker)
      else pool.discard(worker)
    }
    worker.onmessage = (e: MessageEvent<BrowserWorkerMessage>) => {
      const m = e.data
      if (m.type === 'compiled') {
        done(true)
        resolve(m.module)
      } else if (m.type === 'refused') {
        done(true)
        reject(new ModuleError(m.message))
      } else if (m.type === 'failed') {
        done(false)
        reject(new ModuleError(`cannot compile the module: ${m.message}`))
      }
    }
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault()
      done(false)
      reject(new ModuleError(`cannot compile the module: the worker failed (${e.message || 'is browser-worker.js served?'})`))
    }
    worker.onmessageerror = () => {
      done(false)
      reject(new ModuleError('cannot compile the module: the compiled module could not be received'))
    }
    const job: CompileJob = { v: V, type: 'compile', bytes, memoryPages, fuel }
    worker.postMessage(job, [bytes.buffer])
  })
}

/**
 * Validates the options and loads the module for many runs.
 * @throws PolicyError listing every problem, ModuleError
 */
export async function prepare(module: BrowserModuleSource, options: BrowserRunOptions = {}): Promise<BrowserProgram> {
  // The caller's options are read once, here: the policy is checked and the mounts are set up
  // from this copy, so a getter or Proxy cannot answer the check one way and the mounts another.
  options = { ...options }
  if (options.mounts !== undefined) options.mounts = Array.from(options.mounts, (m) => ({ ...m }))
  const problems = browserProblems(options as Record<string, unknown>)
  let prepared: PreparedPolicy | undefined
  try {
    prepared = preparePolicy(toRunOptions(options))
  } catch (e) {
    if (e instanceof PolicyError) refuse(problems, e)
    throw e
  }
  if (problems.length > 0) throw new PolicyError(problems)
  const workerUrl =
    options.workerUrl !== undefined
      ? new URL(options.workerUrl, globalThis.location?.href)
      : new URL('./browser-worker.js', import.meta.url)
  const pool = poolFor(workerUrl)
  const policy = prepared.policy
  const explicit = policy.limits.memoryExplicit
  const loaded = await loadBrowserModule(module, {
    memoryPages: module instanceof WebAssembly.Module && !explicit ? undefined : policy.limits.memoryPages,
    fuel: policy.limits.fuel !== undefined,
    syscalls: policy.syscalls,
    maxModuleBytes: options.maxModuleBytes !== undefined ? parseSize(options.maxModuleBytes) : undefined,
    compile: (bytes, o) => compileInWorker(pool, bytes, o.memoryPages, o.fuel === true),
  })
  const mounts: PreparedMount[] = []
  for (const [i, spec] of (options.mounts ?? []).entries()) {
    const m: PreparedMount = { spec: { ...spec } }
    try {
      if (spec.tree !== undefined)
        m.entries = isFileList(spec.tree) ? await entriesFromFiles(spec.tree) : entriesFromTree(spec.tree as BrowserTree)
      if (spec.volume !== undefined && !isVolume(spec.volume))
        throw new TypeError('must be a memfs volume (readdirSync, lstatSync, readFileSync, writeFileSync, mkdirSync, unlinkSync)')
    } catch (e) {
      throw new PolicyError([`mounts[${i}].${spec.tree !== undefined ? 'tree' : 'volume'}: ${e instanceof Error ? e.message : String(e)}`])
    }
    mounts.push(m)
  }
  const mod = loaded.module
  return new PreparedBrowserProgram(
    mod,
    importedFunctions(mod),
    argv0Of(module),
    prepared,
    mounts,
    pool,
    options.onStdout,
    options.onStderr,
    loaded.compiledFrom,
  )
}

/**
 * Runs a WASI command module in a Web Worker under a policy. Resolves with a result whatever the
 * guest did (a timeout or an abort: `limit`); rejects only for what the caller got wrong
 * (`PolicyError`, `ModuleError`).
 */
export async function run(module: BrowserModuleSource, options: BrowserRunOptions = {}): Promise<BrowserRunResult> {
  options.signal?.throwIfAborted()
  return (await prepare(module, options)).run()
}
