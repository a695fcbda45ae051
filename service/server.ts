/**
 * @module `caplet serve` as a library: builds the backend (the local pool, or BullMQ on Redis),
 * the app and a Node HTTP server with bounded request time (slow clients are cut off) and
 * closes them all in order. Binding a non-loopback address without tokens is refused.
 */
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { pino, type Logger } from 'pino'
import { PolicyError } from '../runtime/errors.js'
import { createApp } from './app.js'
import { DEFAULT_CONFIG, type ServiceConfig } from './config.js'
import { LocalBackend } from './local-backend.js'
import { ServiceMetrics } from './metrics.js'
import { MemoryModuleStore, type CompileSource } from './modules.js'
import type { RunBackend } from './runs.js'
import { warmPool } from './warm.js'

export interface ServeOptions {
  config?: ServiceConfig
  host?: string
  /** 0 picks a free port. */
  port?: number
  /** `redis://HOST:PORT`: put runs on the BullMQ queue instead of the local pool. */
  queue?: string
  /** Queue and key prefix in Redis. */
  queueName?: string
  log?: Logger
  compile?: CompileSource
  /** Allow a non-loopback address without tokens. */
  insecureNoAuth?: boolean
}

export interface RunningServer {
  url: string
  port: number
  backend: RunBackend
  /** Stops accepting, lets runs in flight finish (within `graceMs`), closes the backend. */
  close(graceMs?: number): Promise<void>
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const config = options.config ?? DEFAULT_CONFIG
  const host = options.host ?? '127.0.0.1'
  const log = options.log ?? pino({ name: 'caplet-serve' })
  if (config.tokens.length === 0 && !LOOPBACK.test(host) && !options.insecureNoAuth) {
    throw new PolicyError([
      `--host ${host}: no tokens are configured, so only a loopback address may be served (add tokens to --config, or pass --insecure-no-auth)`,
    ])
  }
  let backend: RunBackend
  if (options.queue !== undefined) {
    const { QueueBackend } = await import('./queue-backend.js')
    backend = await QueueBackend.connect(options.queue, config, log, options.queueName)
  } else {
    await warmPool(Math.min(config.maxConcurrent, 64))
    backend = new LocalBackend(new MemoryModuleStore(config.maxModuleBytes, config.maxStoredModuleBytes), config, log)
  }
  const metrics = new ServiceMetrics(backend)
  const app = createApp({ config, backend, metrics, log, ...(options.compile ? { compile: options.compile } : {}) })
  const server = createAdaptorServer({
    fetch: app.fetch,
    // @hono/node-server's own Request/Response (process-wide): a handler's Response then carries
    // its body string as is and goes straight to `res.end`, where the global (undici) one built a
    // ReadableStream, its controller and a reader for every answer (~10% of a run's allocation).
    overrideGlobalObjects: true,
    serverOptions: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(config.requestTimeoutMs, 10_000),
      connectionsCheckingInterval: Math.max(100, Math.min(1000, config.requestTimeoutMs / 4)),
      keepAliveTimeout: 5_000,
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  log.info({ url, mode: backend.mode, auth: config.tokens.length > 0 }, 'caplet serve listening')
  let closing: Promise<void> | undefined
  return {
    url,
    port,
    backend,
    close(graceMs = 30_000) {
      return (closing ??= (async () => {
        const stopped = new Promise<void>((r) => server.close(() => r()))
        ;(server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.()
        await backend.close(graceMs)
        ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
        await stopped
      })())
    },
  }
}
