// Load test of `caplet serve` with autocannon on loopback: hello runs per second and p50/p99
// latency for (1) caplet serve on the local pool, (2) a baseline HTTP server that spawns one
// `node` process running node:wasi per request (what a naive service does), (3) the queue path
// (caplet serve --queue + 1 and 2 `caplet worker`s on a redis-server of our own). Then p99 at
// 50% of caplet serve's peak rate. Prints ratios against the baseline measured in the same run.
//
//   node bench/service.bench.mjs [--duration S] [--connections N]      (npm run build first)
import { spawn } from 'node:child_process'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { createServer as netServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import autocannon from 'autocannon'

const root = resolve(import.meta.dirname, '..')
const arg = (name, d) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : d
}
const DURATION = arg('--duration', 5)
const CONNECTIONS = arg('--connections', 16)
const HELLO = join(root, 'samples/hello.wasm')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const freePort = () =>
  new Promise((res) => {
    const s = netServer()
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port
      s.close(() => res(p))
    })
  })

function child(args, ready) {
  const p = spawn(process.execPath, [join(root, 'bin/caplet.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (d) => {
    out += d
  })
  p.stderr.on('data', (d) => {
    out += d
  })
  return new Promise((res, rej) => {
    const t = setInterval(() => {
      const m = ready.exec(out)
      if (m) {
        clearInterval(t)
        res({ p, match: m, log: () => out })
      }
      if (p.exitCode !== null) {
        clearInterval(t)
        rej(new Error(out))
      }
    }, 20)
  })
}
const stop = (p) =>
  new Promise((r) => {
    if (p.exitCode !== null) return r()
    p.once('exit', r)
    p.kill('SIGTERM')
  })

async function load(url, body, opts = {}) {
  const r = await autocannon({
    url,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    connections: CONNECTIONS,
    duration: DURATION,
    ...opts,
  })
  const bad = r.non2xx + r.errors + r.timeouts
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, bad }
}

async function caplet(extra = []) {
  const s = await child(['serve', '--port', '0', '--log-level', 'warn', ...extra], /listening on (http:\/\/[0-9.:]+)/)
  const url = s.match[1]
  const put = await fetch(`${url}/v1/modules`, { method: 'PUT', body: readFileSync(HELLO) }).then((r) => r.json())
  const body = JSON.stringify({ module: put.id })
  const check = await fetch(`${url}/v1/runs`, { method: 'POST', body }).then((r) => r.json())
  if (check.result?.stdout !== 'hello from caplet\n') throw new Error(`unexpected: ${JSON.stringify(check)}`)
  await load(`${url}/v1/runs`, body, { duration: 1 }) // warm-up
  return { url, body, stop: () => stop(s.p) }
}

/** The naive service: one `node` process with node:wasi per request. */
function baseline() {
  const script = `const { WASI } = require('node:wasi'); const fs = require('node:fs');
const wasi = new WASI({ version: 'preview1', args: ['hello'], env: {}, stdout: 1 });
WebAssembly.instantiate(fs.readFileSync(process.argv[1]), wasi.getImportObject()).then(({ instance }) => wasi.start(instance));`
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const p = spawn(process.execPath, ['--no-warnings', '-e', script, HELLO], { stdio: ['ignore', 'pipe', 'ignore'] })
      let out = ''
      p.stdout.on('data', (d) => {
        out += d
      })
      p.on('exit', (code) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ exitCode: code, stdout: out }))
      })
    })
  })
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () =>
      r({ url: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((c) => server.close(c)) }),
    ),
  )
}

const rows = []
const report = (name, m) => {
  rows.push({ name, ...m })
  console.log(
    `${name.padEnd(44)} ${m.rps.toFixed(1).padStart(8)} runs/s  p50 ${String(m.p50).padStart(5)} ms  p99 ${String(m.p99).padStart(5)} ms  (${m.total} runs, ${m.bad} failed)`,
  )
}

console.log(`caplet serve load test: hello, ${CONNECTIONS} connections, ${DURATION} s each\n`)
const base = await baseline()
const b = await load(base.url, '{}', { connections: Math.min(CONNECTIONS, 4) })
report('baseline: node:wasi process per request', b)
await base.stop()

const local = await caplet()
const peak = await load(`${local.url}/v1/runs`, local.body)
report('caplet serve (local pool)', peak)
const half = await load(`${local.url}/v1/runs`, local.body, { overallRate: Math.max(1, Math.floor(peak.rps / 2)) })
report(`caplet serve at 50% of peak (${Math.floor(peak.rps / 2)}/s)`, half)
await local.stop()

const dir = mkdtempSync(join(tmpdir(), 'caplet-bench-redis-'))
const port = await freePort()
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
  stdio: 'ignore',
})
await sleep(300)
const queue = `redis://127.0.0.1:${port}`
try {
  const workers = []
  for (const n of [1, 2]) {
    while (workers.length < n) workers.push(await child(['worker', '--queue', queue, '--log-level', 'info'], /caplet worker ready/))
    const q = await caplet(['--queue', queue])
    report(`caplet serve --queue, ${n} worker${n > 1 ? 's' : ''}`, await load(`${q.url}/v1/runs`, q.body))
    await q.stop()
  }
  for (const w of workers) await stop(w.p)
} finally {
  redis.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}
console.log(`\ncaplet serve / baseline: ${(peak.rps / b.rps).toFixed(1)}x runs/s; p99 at 50% of peak: ${half.p99} ms`)
