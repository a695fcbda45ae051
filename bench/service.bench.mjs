// Load test of `caplet serve` with autocannon on loopback: hello runs per second and p50/p99
// latency for (1) caplet serve on the local pool, (2) a baseline HTTP server that spawns one
// `node` process running node:wasi per request (what a naive service does), (3) the queue path
// (caplet serve --queue + 1 and 2 `caplet worker`s on a redis-server of our own), with the CPU
// each process used. Then p50/p99 at 50% of the local peak, open loop at a fixed rate, rounds
// alternating with a server that answers at once (the floor), with the server's Server-Timing
// and how long its threads waited for a core (/proc/<pid>/task/*/schedstat).
//
// The open-loop rounds run twice: with the loader in this Node process (fixed-rate.mjs) and with
// the same loader in C (lib/fixed-rate.c), which leaves the server most of the core the Node one
// takes on a 2-core machine (--loader node|c|both; both by default).
//
// --v8-pool-size N starts the servers (caplet serve, caplet worker) with that many V8 helper
// threads (Node's default is 4); on a 2-core machine 1 takes the p99 at 50% of peak under 10 ms
// (bench/service-tail.mjs, bench/results/service.md).
//
//   node bench/service.bench.mjs [--duration S] [--connections N] [--rounds N] [--loader both] [--v8-pool-size N]  (build first)
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { createServer as netServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { fixedRate } from './lib/fixed-rate.mjs'
import { fixedRateNative } from './lib/fixed-rate-native.mjs'

const root = resolve(import.meta.dirname, '..')
const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    loader: { type: 'string', default: 'both' },
    'v8-pool-size': { type: 'string' },
  },
})
const DURATION = Number(opt.duration)
const CONNECTIONS = Number(opt.connections)
const POOL = opt['v8-pool-size']
const SERVER_FLAGS = POOL !== undefined ? [`--v8-pool-size=${POOL}`] : []
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

function child(args, ready, nodeFlags = SERVER_FLAGS) {
  const p = spawn(process.execPath, [...nodeFlags, join(root, 'bin/caplet.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
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
  return { url, body, pid: s.p.pid, stop: () => stop(s.p) }
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

/** A server that answers every POST with a fixed JSON body at once: the floor of HTTP, the loader and the machine. */
function floorServer() {
  const src = `const http = require('node:http'); const body = Buffer.from(process.argv[1]);
http.createServer((q, r) => { q.resume(); q.on('end', () => { r.setHeader('content-type', 'application/json'); r.end(body) }) })
  .listen(0, '127.0.0.1', function () { console.log('floor on http://127.0.0.1:' + this.address().port) })`
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['-e', src, ' '.repeat(620)], { stdio: ['ignore', 'pipe', 'inherit'] })
    p.stdout.once('data', (d) => {
      const m = /on (http:\S+)/.exec(String(d))
      if (m) res({ url: m[1], stop: () => stop(p) })
      else rej(new Error(String(d)))
    })
  })
}

/** CPU seconds used so far by a process (all its threads), from /proc (Linux). */
const cpuOf = (pid) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return NaN
  }
}
/**
 * Each thread of a process: ms on a core and ms waiting for one (runnable, not running), from
 * /proc/<pid>/task/<tid>/schedstat (Linux); keyed by thread id, the process's own id = its main thread.
 */
const threadSched = (pid) => {
  const out = {}
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number)
        out[tid] = { run: run / 1e6, wait: wait / 1e6 }
      } catch {} // the thread ended
    }
  } catch {} // no /proc
  return out
}
/** How long the server's main thread and its other threads waited for a core during `fn`. */
async function withSched(pid, fn) {
  const a = threadSched(pid)
  const r = await fn()
  const b = threadSched(pid)
  const d = (tid) => ({ run: b[tid].run - (a[tid]?.run ?? 0), wait: b[tid].wait - (a[tid]?.wait ?? 0) })
  const main = b[pid] ? d(String(pid)) : undefined
  const others = Object.keys(b)
    .filter((t) => t !== String(pid))
    .map(d)
  const sum = (xs, k) => xs.reduce((n, x) => n + x[k], 0)
  if (main)
    console.log(
      `    waiting for a core (run queue), ms: serve's main thread ${main.wait.toFixed(0)} (it ran ${main.run.toFixed(0)}), its other ${others.length} threads ${sum(others, 'wait').toFixed(0)} (ran ${sum(others, 'run').toFixed(0)})`,
    )
  return r
}
const selfCpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
/** Runs `fn` and reports the CPU each named process used during it, per 1,000 runs. */
async function withCpu(procs, fn) {
  const before = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuOf(pid)]))
  const self0 = selfCpu()
  const t0 = performance.now()
  const r = await fn()
  const wall = (performance.now() - t0) / 1000
  const used = { loader: selfCpu() - self0 }
  for (const [k, pid] of Object.entries(procs)) used[k] = cpuOf(pid) - before[k]
  const total = Object.values(used).reduce((a, b) => a + b, 0)
  const per1k = Object.entries(used)
    .map(([k, v]) => `${k} ${((v * 1000) / r.total).toFixed(2)}`)
    .join(', ')
  console.log(`    CPU s per 1,000 runs: ${per1k}; all ${(total / wall).toFixed(2)} of 2 cores busy (${wall.toFixed(1)} s)`)
  return r
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const rows = []
const report = (name, m) => {
  rows.push({ name, ...m })
  console.log(
    `${name.padEnd(52)} ${m.rps.toFixed(1).padStart(8)} runs/s  p50 ${m.p50.toFixed(1).padStart(6)} ms  p99 ${m.p99.toFixed(1).padStart(6)} ms  (${m.total} runs, ${m.bad} failed)`,
  )
}
const ROUNDS = Number(opt.rounds)

console.log(
  `caplet serve load test${POOL !== undefined ? ` (servers with --v8-pool-size=${POOL})` : ''}: hello, ${CONNECTIONS} connections, ${DURATION} s each; ${(
    await import('node:os')
  )
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} load\n`,
)
const base = await baseline()
const b = await load(base.url, '{}', { connections: Math.min(CONNECTIONS, 4) })
report('baseline: node:wasi process per request', b)
await base.stop()

const local = await caplet()
const peak = await load(`${local.url}/v1/runs`, local.body)
report('caplet serve (local pool)', peak)
// 50% of peak, open loop (bench/lib/fixed-rate.mjs), alternating with a server that answers at
// once (the floor: loopback HTTP, this loader and whatever else the machine runs), rounds.
const rate = Math.max(1, Math.floor(peak.rps / 2))
const floor = await floorServer()
const LOADER = opt.loader
const loaders = [
  ['node', fixedRate, 'Node loader'],
  ['c', fixedRateNative, 'C loader'],
].filter(([k]) => LOADER === 'both' || LOADER === k)
const halves = Object.fromEntries(loaders.map(([k]) => [k, []]))
const floors = Object.fromEntries(loaders.map(([k]) => [k, []]))
for (let i = 0; i < ROUNDS; i++) {
  for (const [k, send, label] of loaders) {
    const f = await send(floor.url, local.body, { rate, duration: DURATION })
    report(`  floor, ${label}: a server that answers at once (${rate}/s)`, f)
    floors[k].push(f)
    const h = await withCpu({ serve: local.pid }, () =>
      withSched(local.pid, () => send(`${local.url}/v1/runs`, local.body, { rate, duration: DURATION })),
    )
    report(`  caplet serve at 50% of peak, ${label} (${rate}/s)`, h)
    const t = Object.entries(h.server)
      .map(([n, v]) => `${n} ${v.p50}/${v.p99}`)
      .join(', ')
    const cpu = h.loaderCpu === undefined ? '' : `; the C loader used ${((100 * h.loaderCpu) / DURATION).toFixed(0)}% of a core`
    console.log(`    in the server, p50/p99 ms: ${t}; the loader sent late by p99 ${h.loaderLateP99.toFixed(1)} ms${cpu}`)
    halves[k].push(h)
  }
}
await floor.stop()
// What the first version of this bench reported: autocannon's overallRate sends each
// connection's quota back to back at each second's tick, then idles (bursts at peak rate).
const bursts = await load(`${local.url}/v1/runs`, local.body, { overallRate: rate })
report(`  autocannon overallRate ${rate}/s (bursts each second)`, bursts)
await local.stop()
const half = Object.fromEntries(
  loaders.map(([k]) => [
    k,
    { p50: median(halves[k].map((h) => h.p50)), p99: median(halves[k].map((h) => h.p99)), floorP99: median(floors[k].map((h) => h.p99)) },
  ]),
)
const dir = mkdtempSync(join(tmpdir(), 'caplet-bench-redis-'))
const port = await freePort()
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
  stdio: 'ignore',
})
await sleep(300)
const queue = `redis://127.0.0.1:${port}`
const queued = {}
try {
  const workers = []
  for (const n of [1, 2]) {
    while (workers.length < n) workers.push(await child(['worker', '--queue', queue, '--log-level', 'info'], /caplet worker ready/))
    const q = await caplet(['--queue', queue])
    const procs = { serve: q.pid, redis: redis.pid, ...Object.fromEntries(workers.map((w, i) => [`worker${i + 1}`, w.p.pid])) }
    const r = await withCpu(procs, () => load(`${q.url}/v1/runs`, q.body))
    report(`caplet serve --queue, ${n} worker${n > 1 ? 's' : ''}`, r)
    queued[n] = r.rps
    await q.stop()
  }
  for (const w of workers) await stop(w.p)
} finally {
  redis.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}
console.log(
  `\ncaplet serve / baseline: ${(peak.rps / b.rps).toFixed(1)}x runs/s; at 50% of peak (${ROUNDS} rounds, median): ${loaders.map(([k, , label]) => `${label} p50 ${half[k].p50.toFixed(1)} ms, p99 ${half[k].p99.toFixed(1)} ms (floor p99 ${half[k].floorP99.toFixed(1)} ms)`).join('; ')}; queue 2 workers / 1: ${(queued[2] / queued[1]).toFixed(2)}x; load ${(
    await import('node:os')
  )
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
