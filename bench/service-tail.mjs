// Where the p99 of `caplet serve` at a fixed rate comes from: runs the C open-loop loader
// (lib/fixed-rate.c) against `caplet serve` with a per-request trace (FIXED_RATE_TRACE: when each
// request was due, its latency, the server's Server-Timing) while every thread of the server logs
// its garbage collections (lib/gc-log.cjs, on the loader's clock). Then, for the requests over
// the threshold, which collections overlapped them (a pause of 1 ms or more in the main thread,
// in a pool worker, in both, or none), and the episodes they came in.
//
//   node bench/service-tail.mjs [--rate 1800] [--duration 5] [--rounds 3] [--over 10] [--v8-pool-size N]  (build first)
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fixedRateNative } from './lib/fixed-rate-native.mjs'

const root = resolve(import.meta.dirname, '..')
const { values: opt } = parseArgs({
  options: {
    rate: { type: 'string', default: '1800' },
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    over: { type: 'string', default: '10' },
    // V8's helper threads in the server (Node's default is 4): fewer compete less with its own threads on a small machine.
    'v8-pool-size': { type: 'string' },
  },
})
const RATE = Number(opt.rate)
const DURATION = Number(opt.duration)
const ROUNDS = Number(opt.rounds)
const OVER = Number(opt.over)
const POOL = opt['v8-pool-size']

const dir = mkdtempSync(join(tmpdir(), 'caplet-tail-'))
const gcDir = join(dir, 'gc')
mkdirSync(gcDir)
const serve = spawn(
  process.execPath,
  [
    ...(POOL !== undefined ? [`--v8-pool-size=${POOL}`] : []),
    '--require',
    join(import.meta.dirname, 'lib/gc-log.cjs'),
    join(root, 'bin/caplet.js'),
    'serve',
    '--port',
    '0',
    '--log-level',
    'warn',
  ],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CAPLET_GC_LOG: gcDir } },
)
let out = ''
serve.stdout.on('data', (d) => (out += d))
serve.stderr.on('data', (d) => (out += d))
let url
while (!(url = /listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1])) {
  if (serve.exitCode !== null) throw new Error(out)
  await new Promise((r) => setTimeout(r, 20))
}
const put = await fetch(`${url}/v1/modules`, { method: 'PUT', body: readFileSync(join(root, 'samples/hello.wasm')) }).then((r) => r.json())
const body = JSON.stringify({ module: put.id })
await fixedRateNative(`${url}/v1/runs`, body, { rate: RATE, duration: 2 }) // warm-up

const traces = []
console.log(
  `caplet serve${POOL !== undefined ? ` --v8-pool-size=${POOL}` : ''}, hello at ${RATE}/s, ${ROUNDS} rounds of ${DURATION} s, C loader; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
)
for (let i = 0; i < ROUNDS; i++) {
  const file = join(dir, `trace-${i}.txt`)
  process.env.FIXED_RATE_TRACE = file
  const h = await fixedRateNative(`${url}/v1/runs`, body, { rate: RATE, duration: DURATION })
  const server = Object.entries(h.server)
    .map(([n, v]) => `${n} ${v.p50}/${v.p99}`)
    .join(', ')
  console.log(
    `round ${i}: p50 ${h.p50.toFixed(2)} ms, p99 ${h.p99.toFixed(1)} ms, max ${h.max.toFixed(1)} ms; server p50/p99 ms: ${server}`,
  )
  traces.push(file)
}
delete process.env.FIXED_RATE_TRACE
serve.kill('SIGTERM')
await new Promise((r) => serve.on('exit', r))

const gcs = []
for (const f of readdirSync(gcDir))
  for (const line of readFileSync(join(gcDir, f), 'utf8').split('\n')) {
    if (!line) continue
    const [t, d, kind, thread] = line.split(' ')
    gcs.push({ t: Number(t), d: Number(d), kind, thread })
  }
const requests = []
for (const file of traces) {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n')
  const names = head.split(' ')
  for (const l of lines) requests.push(Object.fromEntries(l.split(' ').map((v, i) => [names[i], Number(v)])))
}
const slow = requests.filter((r) => r.latency > OVER)
const by = {}
for (const r of slow) {
  // a pause of 1 ms or more from 10 ms before the request was due until it was answered
  const over = gcs.filter((g) => g.d >= 1 && g.t < r.due + r.latency && g.t + g.d > r.due - 10)
  const main = over.some((g) => g.thread === 'main')
  const worker = over.some((g) => g.thread !== 'main')
  const k = main && worker ? 'main thread and a worker' : main ? 'main thread' : worker ? 'a worker' : 'none of 1 ms or more'
  by[k] = (by[k] ?? 0) + 1
}
const pauses = {}
for (const g of gcs) {
  const k = `${g.thread === 'main' ? 'main' : 'workers'} ${g.kind}`
  const p = (pauses[k] ??= { n: 0, sum: 0, max: 0 })
  p.n++
  p.sum += g.d
  p.max = Math.max(p.max, g.d)
}
const episodes = []
for (const r of slow.sort((a, b) => a.due - b.due)) {
  const e = episodes.at(-1)
  if (e && r.due - e.end < 3) e.end = r.due
  else episodes.push({ start: r.due, end: r.due })
}
console.log(
  `\n${slow.length} of ${requests.length} requests over ${OVER} ms (${((100 * slow.length) / requests.length).toFixed(2)}%), in ${episodes.length} episodes; a collection overlapping them, in:`,
)
for (const [k, n] of Object.entries(by).sort((a, b) => b[1] - a[1]))
  console.log(`  ${k.padEnd(26)} ${String(n).padStart(5)} (${((100 * n) / slow.length).toFixed(0)}%)`)
console.log('collections over the whole run (count, total ms, longest ms):')
for (const [k, p] of Object.entries(pauses).sort())
  console.log(`  ${k.padEnd(20)} ${String(p.n).padStart(5)} ${p.sum.toFixed(1).padStart(8)} ${p.max.toFixed(2).padStart(7)}`)
rmSync(dir, { recursive: true, force: true })
