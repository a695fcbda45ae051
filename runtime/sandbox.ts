/**
 * @module run(): one guest, one policy, one precise result. By default the guest runs in a
 * worker thread, so it can be stopped at any instruction (timeout, abort); `in-process` runs
 * it on the caller's thread for the lowest latency, where only fuel can stop it.
 */
import { basename } from 'node:path'
import { executeGuest, LIMIT_EXIT_CODE, TRAP_EXIT_CODE, type ExecutionOutcome, type LimitKind, type RunStats } from './execute.js'
import { ModuleError } from './errors.js'
import { loadModule, type ModuleSource } from './module.js'
import type { OverlayReport } from './mounts.js'
import { capturedBytes, discardSink, fdSink, limitedSink, type Sink } from './output.js'
import { resolvePolicy, type OutputOption, type ResolvedPolicy, type RunOptions } from './policy.js'
import type { TrapInfo } from './trap.js'
import { defaultPool, type CaptureBuffers, type RunningJob } from './worker/pool.js'
import { PROTOCOL_VERSION, type StreamMode, type WorkerJob } from './worker/protocol.js'

export interface RunResult {
  /** The guest's exit code; 134 after a trap, 124 when a limit stopped it. */
  exitCode: number
  /** What the guest wrote, when captured (the default); empty otherwise. */
  stdout: Uint8Array
  stderr: Uint8Array
  trap?: TrapInfo
  /** The limit that stopped the guest. */
  limit?: LimitKind
  /** What each overlay mount changed (and whether it was saved or applied). */
  overlays?: OverlayReport[]
  /** Caveats about this run: its confinement (a host-directory fallback strategy), held file writes that failed once the guest could no longer learn of it. */
  warnings?: string[]
  stats: RunStats
}

const EMPTY = new Uint8Array(0)

/**
 * Runs a WASI command module under a policy. Resolves with a result whatever the guest did;
 * rejects only for what the caller got wrong (`PolicyError`, `ModuleError`) or, when
 * `options.signal` aborts, with the signal's reason.
 */
export async function run(module: ModuleSource, options: RunOptions = {}): Promise<RunResult> {
  const policy = resolvePolicy(options)
  options.signal?.throwIfAborted()
  const mod = loadCommand(module, policy)
  const argv0 = argv0Of(module)
  if (policy.isolation === 'in-process') return runInProcess(mod, policy, options, argv0)
  return runInWorker(mod, policy, options, argv0)
}

/** `run` on the caller's thread, synchronously (isolation is forced to `in-process`). */
export function runSync(module: ModuleSource, options: RunOptions = {}): RunResult {
  const policy = resolvePolicy({ ...options, isolation: 'in-process' })
  return runInProcess(loadCommand(module, policy), policy, options, argv0Of(module))
}

/** Loads a WASI command: a module that exports `_start`. @throws ModuleError */
function loadCommand(module: ModuleSource, policy: ResolvedPolicy): WebAssembly.Module {
  const mod = loadModule(module, {
    memoryPages: memoryCap(module, policy), fuel: policy.limits.fuel !== undefined, syscalls: policy.syscalls, tier: policy.tier,
  })
  if (!WebAssembly.Module.exports(mod).some((e) => e.name === '_start' && e.kind === 'function')) {
    throw new ModuleError('module has no "_start" export: it is not a WASI command (a library or reactor module cannot be run)')
  }
  return mod
}

function argv0Of(module: ModuleSource): string {
  return typeof module === 'string' ? basename(module) : module instanceof URL ? basename(module.pathname) : 'main.wasm'
}

/** The default cap needs the module's bytes; a precompiled module gets only an explicit one (which loadModule refuses). */
function memoryCap(module: ModuleSource, policy: ResolvedPolicy): number | undefined {
  return module instanceof WebAssembly.Module && !policy.limits.memoryExplicit ? undefined : policy.limits.memoryPages
}

function collector(): { sink: Sink; bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = []
  let total = 0
  return {
    sink: (c) => { chunks.push(c.slice()); total += c.byteLength },
    bytes: () => {
      const out = new Uint8Array(total)
      let at = 0
      for (const c of chunks) { out.set(c, at); at += c.byteLength }
      return out
    },
  }
}

function runInProcess(mod: WebAssembly.Module, policy: ResolvedPolicy, options: RunOptions, argv0: string): RunResult {
  const streams = (['stdout', 'stderr'] as const).map((name) => {
    const opt: OutputOption = options[name] ?? 'capture'
    const c = collector()
    const base: Sink = typeof opt === 'function' ? opt : opt === 'inherit' ? fdSink(name === 'stdout' ? 1 : 2) : opt === 'discard' ? discardSink : c.sink
    return { sink: limitedSink(base, name === 'stdout' ? policy.limits.stdoutBytes : policy.limits.stderrBytes, name), bytes: c.bytes }
  })
  const outcome = executeGuest(mod, policy, { stdout: streams[0]!.sink, stderr: streams[1]!.sink }, argv0, (options.mounts ?? []).map((m) => m.fs))
  return { ...outcome, stdout: streams[0]!.bytes(), stderr: streams[1]!.bytes() }
}

function streamMode(opt: OutputOption | undefined, limit: number | undefined, buffer: (capacity: number) => SharedArrayBuffer): StreamMode {
  if (opt === undefined || opt === 'capture') return { kind: 'capture', buffer: buffer(limit ?? 0) }
  if (typeof opt === 'function') return { kind: 'callback' }
  return { kind: opt }
}

function runInWorker(mod: WebAssembly.Module, policy: ResolvedPolicy, options: RunOptions, argv0: string): Promise<RunResult> {
  let stdout: StreamMode = { kind: 'discard' }
  let stderr: StreamMode = { kind: 'discard' }
  const build = (buffers: CaptureBuffers): WorkerJob => {
    stdout = streamMode(options.stdout, policy.limits.stdoutBytes, (n) => buffers.get('stdout', n))
    stderr = streamMode(options.stderr, policy.limits.stderrBytes, (n) => buffers.get('stderr', n))
    return { v: PROTOCOL_VERSION, type: 'run', module: mod, policy, argv0, stdout, stderr }
  }
  return new Promise<RunResult>((resolve, reject) => {
    let settled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let running: RunningJob | undefined
    let started = performance.now()
    const bytes = (mode: StreamMode) => (mode.kind === 'capture' ? capturedBytes(mode.buffer) : EMPTY)
    const settle = (reuse: boolean) => {
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      if (reuse) running?.release()
      // NOTE: terminating stops the guest mid-instruction, before its host can write out the
      // file writes it still holds (wasi-host/write-behind.ts): those few bytes are lost, as the
      // README says; every other ending flushes them in executeGuest.
      else running?.terminate()
    }
    const finish = (outcome: ExecutionOutcome, reuse: boolean) => {
      if (settled) return
      // Copy the output out before the worker (and its reusable buffers) goes back to the pool.
      const out = bytes(stdout)
      const err = bytes(stderr)
      settle(reuse)
      resolve({ ...outcome, stdout: out, stderr: err })
    }
    const blankStats = (): RunStats => ({ wallMs: performance.now() - started, peakMemory: 0, syscalls: {}, bytesRead: 0, bytesWritten: 0 })
    const onAbort = () => {
      if (settled) return
      settle(false)
      reject(options.signal!.reason)
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    void defaultPool.submit(build, {
      message: (m) => {
        if (m.type === 'chunk') {
          const cb = options[m.stream]
          if (typeof cb === 'function') cb(m.bytes)
        } else if (m.type === 'done') finish(m.outcome, true)
        else finish({ exitCode: TRAP_EXIT_CODE, trap: { kind: 'host-fault', message: m.message, recentSyscalls: [] }, stats: blankStats() }, false)
      },
      failed: (reason) => finish({ exitCode: TRAP_EXIT_CODE, trap: { kind: 'host-fault', message: reason, recentSyscalls: [] }, stats: blankStats() }, false),
    }).then((job) => {
      running = job
      if (settled) { job.terminate(); return }
      // The time limit counts from dispatch, not from the wait for a free worker.
      started = performance.now()
      if (policy.limits.timeoutMs !== undefined) {
        timer = setTimeout(() => finish({ exitCode: LIMIT_EXIT_CODE, limit: 'timeout', stats: blankStats() }, false), policy.limits.timeoutMs)
      }
    })
  })
}

export { TRAP_EXIT_CODE, LIMIT_EXIT_CODE }
