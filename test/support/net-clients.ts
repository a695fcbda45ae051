/**
 * @module Real clients on 127.0.0.1 for the sockets tests: an echo round trip (send, half-close,
 * read to EOF), and a way to run clients on another thread while an in-process guest blocks
 * this one. Every client has a deadline, so a broken server fails a test instead of hanging it.
 */
import { connect, type Socket } from 'node:net'
import { Worker } from 'node:worker_threads'

const DEADLINE_MS = 60_000

/** Connects, sends `payload`, ends its side, and resolves with everything received until EOF. */
export function echoRoundTrip(port: number, payload: Uint8Array, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const s: Socket = connect({ port, host }, () => {
      s.end(payload)
    })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error('echo client: deadline passed'))
    }, DEADLINE_MS)
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('end', () => {
      clearTimeout(timer)
      s.destroy()
      resolve(Buffer.concat(chunks))
    })
    s.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}

/** A deterministic payload of `n` bytes that differs at every position modulo 251. */
export function pattern(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) % 251
  return b
}

/**
 * Runs `body` (the source of an async function of `(port, net)`, returning JSON-able data) on a
 * worker thread: it keeps going while an in-process guest blocks this thread.
 */
export function clientThread(port: () => number, body: string): { result: Promise<unknown>; start(): void } {
  let worker: Worker | undefined
  let settle: { resolve(v: unknown): void; reject(e: unknown): void } | undefined
  const result = new Promise<unknown>((resolve, reject) => {
    settle = { resolve, reject }
  })
  return {
    result,
    start() {
      const src = `
        const { workerData, parentPort } = require('node:worker_threads')
        const net = require('node:net')
        const http = require('node:http')
        const run = async (port) => { ${body} }
        run(workerData.port).then((ok) => parentPort.postMessage({ ok }), (e) => parentPort.postMessage({ err: String(e && e.stack || e) }))
      `
      worker = new Worker(src, { eval: true, workerData: { port: port() } })
      worker.once('message', (m: { ok?: unknown; err?: string }) => {
        void worker!.terminate()
        if (m.err !== undefined) settle!.reject(new Error(m.err))
        else settle!.resolve(m.ok)
      })
      worker.once('error', (e) => settle!.reject(e))
    },
  }
}

/**
 * A server on a worker thread (it answers while an in-process guest blocks this thread): one
 * exchange per connection, replying `server saw: <what came>` when the client ends its side.
 * `stop()` closes it and resolves with the number of connections it took.
 */
export async function exchangeServerThread(): Promise<{ port: number; stop(): Promise<number> }> {
  const src = `
    const { parentPort } = require('node:worker_threads')
    const net = require('node:net')
    let connections = 0
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      connections++
      let got = ''
      s.on('data', (d) => { got += d })
      s.on('error', () => {})
      s.on('end', () => s.end('server saw: ' + got))
    })
    server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }))
    parentPort.on('message', () => server.close(() => parentPort.postMessage({ connections })))
  `
  const worker = new Worker(src, { eval: true })
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port: number }) => resolve(m.port))
    worker.once('error', reject)
  })
  return {
    port,
    stop: () =>
      new Promise<number>((resolve) => {
        worker.once('message', (m: { connections: number }) => {
          void worker.terminate()
          resolve(m.connections)
        })
        worker.postMessage('stop')
      }),
  }
}

/** Open descriptors of this process (Linux), to see that a run left no host socket behind. */
export async function openFds(): Promise<number> {
  const { readdirSync } = await import('node:fs')
  return readdirSync('/proc/self/fd').length
}

/** Waits until `cond()` holds (polling every 20 ms) or `ms` pass; returns whether it held. */
export async function eventually(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await cond()) return true
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, 20))
  }
}
