/**
 * @module Helpers for the service tests: a real `redis-server` on a free loopback port (its own
 * temp dir, no persistence), `caplet worker` processes, a server in this process with logs
 * silenced, and a small JSON client.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { resolveConfig, type ServiceConfigFile } from '../../service/config.js'
import { startServer, type RunningServer } from '../../service/server.js'
import { fixtureWasm, repoRoot } from './guest.js'

export const GUEST = readFileSync(fixtureWasm('svc_guest'))
export const silent = pino({ level: 'silent' })

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface RedisInstance {
  url: string
  port: number
  /** Kills it (SIGKILL: what it held is lost, as no persistence is configured). */
  kill(): Promise<void>
  /** Starts it again on the same port. */
  restart(): Promise<void>
  stop(): Promise<void>
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()))
}

/** A real redis-server on 127.0.0.1 and a free port. */
export async function startRedis(): Promise<RedisInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'caplet-redis-'))
  const port = await freePort()
  let proc: ChildProcess
  const launch = async () => {
    proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    proc.stdout!.on('data', (d) => {
      out += d
    })
    for (let i = 0; i < 200; i++) {
      if (out.includes('Ready to accept connections')) return
      if (proc.exitCode !== null) throw new Error(`redis-server exited: ${out.slice(-500)}`)
      await sleep(25)
    }
    throw new Error('redis-server did not start')
  }
  await launch()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async kill() {
      proc.kill('SIGKILL')
      await exited(proc)
    },
    async restart() {
      await launch()
    },
    async stop() {
      proc.kill('SIGKILL')
      await exited(proc)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface WorkerProcess {
  proc: ChildProcess
  log: () => string
  /** Sends a signal and waits for the exit; resolves with the exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>
}

/** A `caplet worker` process (from dist/: `npm run build` first, as `npm test` does). */
export async function startWorker(queue: string, args: string[] = []): Promise<WorkerProcess> {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/caplet.js'), 'worker', '--queue', queue, '--log-level', 'info', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (d) => {
    out += d
  })
  proc.stderr!.on('data', (d) => {
    out += d
  })
  for (let i = 0; i < 2400 && !out.includes('caplet worker ready'); i++) {
    if (proc.exitCode !== null) throw new Error(`worker exited: ${out}`)
    await sleep(25)
  }
  if (!out.includes('caplet worker ready')) throw new Error(`worker did not start: ${out}`)
  return {
    proc,
    log: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      await exited(proc)
      return proc.exitCode ?? proc.signalCode
    },
  }
}

export async function serve(config: ServiceConfigFile = {}, extra: { queue?: string; queueName?: string } = {}): Promise<RunningServer> {
  return startServer({ config: resolveConfig(config), port: 0, log: silent, ...extra })
}

/** A reply's JSON as `JSON.parse` types it: the tests read replies loosely. */
export type Json = ReturnType<typeof JSON.parse>

export interface Reply {
  status: number
  headers: Headers
  body: Json
}

export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body instanceof Uint8Array) init.body = body as Uint8Array<ArrayBuffer>
  else if (typeof body === 'string') init.body = body
  else if (body !== undefined) {
    init.body = JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const r = await fetch(base + path, init)
  const text = await r.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    /* text */
  }
  return { status: r.status, headers: r.headers, body: parsed }
}

export const GUEST_B64 = GUEST.toString('base64')
