// Sockets: requests/s and MB/s through the C echo and HTTP samples under caplet, against the same
// C built natively (clang-19 -O2 for this machine), with a Node load generator on loopback.
//
//   npm run build && node bench/sockets.bench.mjs [--rounds N] [--seconds S] [--only echo,http]
//
// Each server is its own process: `caplet run --listen 127.0.0.1:0 …` (a worker run, and
// `--in-process`), and the native binary listening on 127.0.0.1:0. Every round measures every
// server on every workload, in an order rotated from round to round; a cell is the median over
// rounds, and the ratio is that median over native's. Beside each rate, the server process's CPU
// time (all its threads, from /proc) per request or per MB: on a loaded machine a steadier
// measure of cost than the rate. Workloads:
//   echo 64B x1      one connection, ping-pong of 64-byte messages (latency-bound requests/s)
//   echo 64B x8      eight connections doing the same at once
//   echo 1MiB        one connection streaming 1 MiB writes, echo read back (MB/s each way)
//   http small x8    eight keep-alive connections, GET of a 16-byte file (requests/s)
//   http 1MiB        one keep-alive connection, GET of a 1 MiB file (MB/s)
// Not a test: it asserts only that every reply is what the server must send.
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const ROUNDS = Number(opt('--rounds', '3'))
const SECONDS = Number(opt('--seconds', '1.5'))
const ONLY = opt('--only', 'echo,http').split(',')

// ---- servers -------------------------------------------------------------------------------

const build = join(ROOT, 'bench/.build/sockets')
mkdirSync(build, { recursive: true })
for (const name of ['echo-server', 'http-server']) {
  execFileSync('clang-19', ['-O2', '-w', '-o', join(build, name), join(ROOT, 'samples', `${name}.c`)])
}
const site = mkdtempSync(join(tmpdir(), 'caplet-bench-site-'))
writeFileSync(join(site, 'small.txt'), 'hello, sockets!\n')
const BIG = Buffer.alloc(1 << 20, 7)
writeFileSync(join(site, 'big.bin'), BIG)

/** Starts a server process; resolves with its port (from "listening on …" or native's "port N"). */
function start(cmd, argv, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (d) => {
      err += d
      const m = /listening on 127\.0\.0\.1:(\d+)|^port (\d+)/m.exec(err)
      if (m) resolve({ port: Number(m[1] ?? m[2]), pid: p.pid, stop: () => p.kill('SIGKILL') })
    })
    p.once('exit', (c) => reject(new Error(`${cmd} exited (${c}): ${err}`)))
  })
}

const caplet = join(ROOT, 'bin/caplet.js')
const SERVERS = {
  echo: {
    native: () => start(join(build, 'echo-server'), []),
    'caplet (worker)': () => start(process.execPath, [caplet, 'run', '--listen', '127.0.0.1:0', join(ROOT, 'samples/echo-server.wasm')]),
    'caplet (in-process)': () =>
      start(process.execPath, [caplet, 'run', '--in-process', '--listen', '127.0.0.1:0', join(ROOT, 'samples/echo-server.wasm')]),
  },
  http: {
    native: () => start(join(build, 'http-server'), [site]),
    'caplet (worker)': () =>
      start(process.execPath, [
        caplet,
        'run',
        '--listen',
        '127.0.0.1:0',
        '--dir',
        `${site}:/www:ro`,
        join(ROOT, 'samples/http-server.wasm'),
      ]),
    'caplet (in-process)': () =>
      start(process.execPath, [
        caplet,
        'run',
        '--in-process',
        '--listen',
        '127.0.0.1:0',
        '--dir',
        `${site}:/www:ro`,
        join(ROOT, 'samples/http-server.wasm'),
      ]),
  },
}

// ---- load generators -----------------------------------------------------------------------

const open = (port) =>
  new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(s))
    s.once('error', reject)
  })

/** `conns` connections ping-pong `size`-byte messages for SECONDS; returns requests/s. */
async function echoPingPong(port, size, conns) {
  const msg = Buffer.alloc(size, 0x61)
  const end = performance.now() + SECONDS * 1000
  let count = 0
  const one = async () => {
    const s = await open(port)
    await new Promise((resolve, reject) => {
      let got = 0
      s.on('data', (d) => {
        got += d.byteLength
        if (got < size) return
        if (got > size) reject(new Error('echo: more bytes than sent'))
        count++
        got = 0
        if (performance.now() < end) s.write(msg)
        else resolve()
      })
      s.on('error', reject)
      s.write(msg)
    })
    s.destroy()
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: conns }, one))
  return count / ((performance.now() - t0) / 1000)
}

/** One connection streams 1 MiB writes for SECONDS while reading the echo; returns MB/s echoed. */
async function echoStream(port) {
  const s = await open(port)
  const chunk = Buffer.alloc(1 << 20, 0x62)
  let sent = 0,
    got = 0
  const t0 = performance.now()
  const end = t0 + SECONDS * 1000
  await new Promise((resolve, reject) => {
    s.on('data', (d) => {
      for (let i = 0; i < d.byteLength; i += 4096) if (d[i] !== 0x62) reject(new Error('echo: wrong byte'))
      got += d.byteLength
      if (got === sent && performance.now() >= end) resolve()
    })
    s.on('error', reject)
    const pump = () => {
      while (performance.now() < end) {
        sent += chunk.byteLength
        if (!s.write(chunk)) {
          s.once('drain', pump)
          return
        }
      }
    }
    pump()
  })
  s.destroy()
  return got / 1e6 / ((performance.now() - t0) / 1000)
}

/** Keep-alive GETs of `path` on `conns` connections for SECONDS; returns [requests/s, MB/s of bodies]. */
async function httpGets(port, path, conns, expectLength) {
  const req = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`)
  const end = performance.now() + SECONDS * 1000
  let count = 0,
    bytes = 0
  const one = async () => {
    const s = await open(port)
    await new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0)
      s.on('data', (d) => {
        buf = buf.byteLength === 0 ? d : Buffer.concat([buf, d])
        for (;;) {
          const h = buf.indexOf('\r\n\r\n')
          if (h < 0) return
          const m = /Content-Length: (\d+)/i.exec(buf.subarray(0, h).toString())
          if (!m || !buf.subarray(0, 15).toString().startsWith('HTTP/1.1 200')) {
            reject(new Error(`http: bad reply ${buf.subarray(0, 40)}`))
            return
          }
          const len = Number(m[1])
          if (len !== expectLength) {
            reject(new Error('http: wrong length'))
            return
          }
          if (buf.byteLength < h + 4 + len) return
          buf = buf.subarray(h + 4 + len)
          count++
          bytes += len
          if (performance.now() < end) s.write(req)
          else {
            resolve()
            return
          }
        }
      })
      s.on('error', reject)
      s.write(req)
    })
    s.destroy()
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: conns }, one))
  const secs = (performance.now() - t0) / 1000
  return [count / secs, bytes / 1e6 / secs]
}

const WORKLOADS = [
  { kind: 'echo', name: 'echo 64B x1 (req/s)', run: (p) => echoPingPong(p, 64, 1) },
  { kind: 'echo', name: 'echo 64B x8 (req/s)', run: (p) => echoPingPong(p, 64, 8) },
  { kind: 'echo', name: 'echo 1MiB stream (MB/s)', run: (p) => echoStream(p) },
  { kind: 'http', name: 'http small x8 (req/s)', run: async (p) => (await httpGets(p, '/small.txt', 8, 16))[0] },
  { kind: 'http', name: 'http 1MiB (MB/s)', run: async (p) => (await httpGets(p, '/big.bin', 1, BIG.byteLength))[1] },
].filter((w) => ONLY.includes(w.kind))

// ---- rounds --------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
/** CPU seconds (user + system, every thread) the process has used; NaN where /proc is not there. */
function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(f[11]) + Number(f[12])) / 100 // utime, stime (fields 14, 15) in clock ticks
  } catch {
    return NaN
  }
}
const results = {} // workload -> server -> [values]
const costs = {} // workload -> server -> [server CPU µs per request or per MB]
try {
  for (const kind of ['echo', 'http']) {
    if (!ONLY.includes(kind)) continue
    const names = Object.keys(SERVERS[kind])
    const running = {}
    for (const n of names) running[n] = await SERVERS[kind][n]()
    try {
      // Warm-up: V8 tiers the guest and the host code up on first use.
      for (const n of names) for (const w of WORKLOADS.filter((x) => x.kind === kind)) await w.run(running[n].port)
      for (let r = 0; r < ROUNDS; r++) {
        const order = names.map((_, i) => names[(i + r) % names.length])
        for (const w of WORKLOADS.filter((x) => x.kind === kind)) {
          for (const n of order) {
            const c0 = cpuSeconds(running[n].pid)
            const t0 = performance.now()
            const v = await w.run(running[n].port)
            const units = v * ((performance.now() - t0) / 1000)
            ;((results[w.name] ??= {})[n] ??= []).push(v)
            ;((costs[w.name] ??= {})[n] ??= []).push(((cpuSeconds(running[n].pid) - c0) * 1e6) / units)
          }
        }
      }
    } finally {
      for (const n of names) running[n].stop()
    }
  }
} finally {
  rmSync(site, { recursive: true, force: true })
}

const servers = ['native', 'caplet (worker)', 'caplet (in-process)']
const rows = [
  [
    'workload',
    ...servers.map((s) => `${s} median [min–max]`),
    ...servers.slice(1).map((s) => `${s} / native`),
    ...servers.map((s) => `${s} server CPU µs/unit`),
  ],
]
for (const [w, by] of Object.entries(results)) {
  const med = Object.fromEntries(servers.map((s) => [s, median(by[s])]))
  rows.push([
    w,
    ...servers.map((s) => `${med[s].toFixed(0)} [${Math.min(...by[s]).toFixed(0)}–${Math.max(...by[s]).toFixed(0)}]`),
    ...servers.slice(1).map((s) => `${(med[s] / med.native).toFixed(2)}x`),
    ...servers.map((s) => median(costs[w][s]).toFixed(1)),
  ])
}
const { loadavg } = await import('node:os')
console.log(
  `sockets bench: ${ROUNDS} rounds of ${SECONDS}s per cell, loopback, ${new Date().toISOString()}, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
)
console.log(
  rows
    .map((r) => `| ${r.join(' | ')} |`)
    .join('\n')
    .replace(/\n/, `\n|${' --- |'.repeat(rows[0].length)}\n`),
)
