/**
 * @module The embedder's side of a worker-isolated plugin: one worker thread holding the plugin
 * instance, a bridge whose server (on this thread) answers the plugin's host-function, HTTP and
 * log calls, and the per-call timeout and abort that terminate the worker mid-instruction. A
 * terminated worker is replaced at the next call (a `keep` plugin becomes unusable instead: its
 * state died with it). The bridge server is closed with its worker, so no host call outlives it.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import { ModuleError } from '../errors.js'
import { BridgeServer, createBridge, type ServedService } from '../worker/bridge.js'
import { builtScript } from '../worker/built-script.js'
import { CallSender, createCallBuffer } from './call-channel.js'
import type { CallOutcome, CallRequest, EngineConfig } from './engine.js'

export type ToPluginWorker = {
  type: 'init'
  cfg: EngineConfig
  channel: import('../worker/bridge.js').BridgeChannel
  log: boolean
  calls: SharedArrayBuffer
  port: MessagePort
}

export type FromPluginWorker = { type: 'ready' } | { type: 'failed'; message: string }

interface Live {
  worker: Worker
  server: BridgeServer
  calls: CallSender
  /** Settles the call in flight, if any, when the worker dies (or the plugin is closed under it). */
  onDeath: ((why: string, closed?: boolean) => void) | undefined
  onResult: ((m: FromPluginWorker) => void) | undefined
  dead: boolean
}

export class PluginWorker {
  readonly #cfg: EngineConfig
  readonly #services: () => Record<string, ServedService>
  readonly #options: { capacity: number; keep: boolean; log: boolean }
  #live: Live | undefined
  #unusable: string | undefined
  #closed = false

  constructor(
    cfg: EngineConfig,
    services: () => Record<string, ServedService>,
    options: { capacity: number; keep: boolean; log: boolean },
  ) {
    this.#cfg = cfg
    this.#services = services
    this.#options = options
  }

  /** Spawns the worker and initialises the plugin there. @throws ModuleError when initialisation fails */
  async start(): Promise<void> {
    const channel = createBridge({ capacity: this.#options.capacity })
    const server = new BridgeServer(channel, this.#services())
    const worker = new Worker(builtScript('plugin-worker.js'), {
      resourceLimits: { stackSizeMb: 8, maxOldGenerationSizeMb: 512 },
      stdout: false,
      stderr: false,
    })
    const calls = createCallBuffer()
    const { port1, port2 } = new MessageChannel()
    const live: Live = { worker, server, calls: new CallSender(calls, port1), onDeath: undefined, onResult: undefined, dead: false }
    const die = (why: string) => {
      if (live.dead) return
      live.dead = true
      // A keep plugin's state died with its worker, in a call or between calls.
      if (this.#options.keep) this.#unusable ??= `the plugin (state: 'keep') is unusable: ${why}`
      live.calls.gone()
      void server.close().catch(() => {})
      void worker.terminate()
      live.onDeath?.(why)
    }
    worker.on('message', (m: FromPluginWorker) => live.onResult?.(m))
    worker.on('error', (e) =>
      die(`the plugin's worker failed: ${(e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'out of memory' : e.message}`),
    )
    worker.on('exit', (code) => die(`the plugin's worker exited (code ${code})`))
    void server.serve()
    this.#live = live
    await new Promise<void>((resolve, reject) => {
      live.onDeath = (why) => reject(new ModuleError(why))
      live.onResult = (m) => {
        if (m.type === 'ready') resolve()
        else if (m.type === 'failed') {
          die(m.message)
          reject(new ModuleError(m.message))
        }
      }
      worker.postMessage({ type: 'init', cfg: this.#cfg, channel, log: this.#options.log, calls, port: port2 } satisfies ToPluginWorker, [
        port2,
      ])
    }).finally(() => {
      live.onDeath = undefined
      live.onResult = undefined
    })
    worker.unref()
  }

  /** Runs one call; resolves with its outcome (a timeout is an outcome); rejects with the signal's reason on abort. */
  async call(req: CallRequest, timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<CallOutcome> {
    if (this.#closed) return { ok: false, failure: 'unusable', message: 'the plugin is closed' }
    if (this.#unusable !== undefined) return { ok: false, failure: 'unusable', message: this.#unusable }
    if (this.#live === undefined || this.#live.dead) await this.start()
    const live = this.#live!
    live.worker.ref()
    try {
      return await new Promise<CallOutcome>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined
        const done = () => {
          if (timer !== undefined) clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          live.onDeath = undefined
          live.onResult = undefined
        }
        const kill = (why: string) => {
          done()
          if (this.#options.keep) this.#unusable = `the plugin (state: 'keep') is unusable: ${why}`
          this.#kill(live)
        }
        const onAbort = () => {
          kill('a call was aborted')
          reject(signal!.reason)
        }
        live.onDeath = (why, closed) => {
          done()
          if (closed) {
            resolve({ ok: false, failure: 'unusable', message: why })
            return
          }
          if (this.#options.keep) this.#unusable = `the plugin (state: 'keep') is unusable: ${why}`
          resolve({ ok: false, failure: 'trap', message: why, trap: { kind: 'host-fault', message: why, recentSyscalls: [] } })
        }
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            kill(`a call took longer than ${timeoutMs} ms`)
            resolve({ ok: false, failure: 'limit', limit: 'timeout', message: `limit exceeded: the call took longer than ${timeoutMs} ms` })
          }, timeoutMs)
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        void live.calls.call(req).then(
          (outcome) => {
            // undefined: the worker went away; its death (or the timeout, or the abort) settles the call.
            if (outcome === undefined || live.dead) return
            done()
            if (!outcome.ok && outcome.unusable) this.#unusable = outcome.message
            resolve(outcome)
          },
          (e: unknown) => {
            done()
            reject(e)
          },
        )
      })
    } finally {
      if (!live.dead) live.worker.unref()
    }
  }

  #kill(live: Live): void {
    if (live.dead) return
    live.dead = true
    live.onDeath = undefined
    live.calls.gone()
    void live.server.close().catch(() => {})
    void live.worker.terminate()
  }

  async close(): Promise<void> {
    this.#closed = true
    const live = this.#live
    if (live === undefined || live.dead) return
    const inFlight = live.onDeath
    live.dead = true
    live.onDeath = undefined
    live.calls.gone()
    inFlight?.('the plugin was closed during the call', true)
    await live.server.close().catch(() => {})
    await live.worker.terminate()
  }
}
