// caplet benchmarks: caplet against node:wasi, @bjorn3/browser_wasi_shim, @wasmer/wasi and the
// same C compiled natively, on the same work in the same run. Every sample is a fresh child
// process; hosts are interleaved round by round (A B C … A B C …), and each figure is the median
// over rounds with its min–max. Writes bench/results/results.md, results.json and chart.svg.
//
//   npm run bench            full run (< 15 min on 2 cores)
//   npm run bench:quick      smaller sizes, fewer rounds and hosts (< 2 min)
//   node bench/run.mjs [--quick] [--rounds N] [--only cpu,sys,startup,sqlite,ruby] [--hosts a,b] [--out DIR]
//   node bench/run.mjs --render results.json [--out DIR]     re-render the report from saved samples
//
// Not a test: nothing here asserts a timing. Numbers from a busy machine are noisy; the ratios
// (measured alternately) are what to read.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir, totalmem, loadavg } from 'node:os'
import { join } from 'node:path'
import { buildCaplet } from './lib/build-caplet.mjs'
import { buildWorkloads, RUBY_PACKAGE, SQLITE_PACKAGE } from './lib/build-workloads.mjs'
import { BENCH, RESULTS } from './lib/paths.mjs'
import { writeReport } from './lib/report.mjs'

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const opt = (name) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const QUICK = flag('--quick')
const ROUNDS = Number(opt('--rounds') ?? (QUICK ? 2 : 3))
const ALL_GROUPS = QUICK ? ['cpu', 'sys', 'startup'] : ['cpu', 'sys', 'startup', 'sqlite', 'ruby']
const GROUPS = opt('--only')?.split(',') ?? ALL_GROUPS
const OUT = opt('--out') ?? RESULTS
/** Only these hosts (and always the reference of each workload). */
const HOST_FILTER = opt('--hosts')?.split(',')
const TIMEOUT_MS = QUICK ? 30_000 : 90_000
/** Host-call loops take seconds on any sane host; a quadratic one is cut short sooner. */
const SYS_TIMEOUT_MS = QUICK ? 15_000 : 30_000
const started = Date.now()
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`)

// ---- hosts -------------------------------------------------------------------------------------
// runner: host-run.mjs host name; env / node flags select the variant.
const HOSTS = {
  native: { label: 'native (gcc -O2)', native: true },
  caplet: { label: 'caplet', runner: 'caplet' },
  'caplet-baseline': { label: 'caplet tier=baseline', runner: 'caplet', env: { CAPLET_TIER: 'baseline' } },
  'caplet-optimized': { label: 'caplet tier=optimized', runner: 'caplet', env: { CAPLET_TIER: 'optimized' } },
  'caplet-fuel': { label: 'caplet + fuel', runner: 'caplet-fuel' },
  'caplet-worker': { label: 'caplet worker', runner: 'caplet-worker' },
  'caplet-prepared': { label: 'caplet prepared', runner: 'caplet-prepared' },
  'caplet-worker-prepared': { label: 'caplet worker prepared', runner: 'caplet-worker-prepared' },
  'caplet-memfs': { label: 'caplet (mem fs)', runner: 'caplet-memfs' },
  'node-wasi': { label: 'node:wasi', runner: 'node-wasi' },
  'node-wasi-nofast': { label: 'node:wasi --no-turbo-fast-api-calls', runner: 'node-wasi', nodeFlags: ['--no-turbo-fast-api-calls'] },
  bjorn3: { label: '@bjorn3/browser_wasi_shim (mem fs)', runner: 'bjorn3' },
  wasmer: { label: '@wasmer/wasi (mem fs)', runner: 'wasmer' },
}

// ---- workloads ---------------------------------------------------------------------------------
const S = QUICK ? 0.15 : 1
const cpuHosts = QUICK
  ? ['native', 'caplet', 'caplet-baseline', 'node-wasi', 'node-wasi-nofast']
  : [
      'native',
      'caplet',
      'caplet-baseline',
      'caplet-optimized',
      'caplet-fuel',
      'caplet-worker',
      'node-wasi',
      'node-wasi-nofast',
      'bjorn3',
      'wasmer',
    ]
const sysHosts = QUICK
  ? ['native', 'caplet', 'node-wasi', 'bjorn3']
  : ['native', 'caplet', 'caplet-memfs', 'node-wasi', 'node-wasi-nofast', 'bjorn3', 'wasmer']
const n = (x) => String(Math.max(1, Math.round(x * S)))

function workloads(built) {
  const list = []
  const cpu = [
    ['nbody', 5_000_000],
    ['fannkuch', QUICK ? 9 : 10],
    ['spectral', Math.round(1500 * (QUICK ? 0.4 : 1))],
    ['hash', QUICK ? 2 : 10],
    ['matmul', QUICK ? 220 : 400],
    ['sort', 10_000_000],
  ]
  if (GROUPS.includes('cpu')) {
    for (const [k, size] of cpu) {
      const arg = k === 'fannkuch' || k === 'spectral' || k === 'matmul' || k === 'hash' ? String(size) : n(size)
      list.push({
        group: 'cpu',
        id: `cpu:${k}`,
        title: k,
        bin: built.cpu,
        args: [k, arg],
        result: k,
        unit: 'ms',
        hosts: cpuHosts,
        ref: 'native',
      })
    }
  }
  if (GROUPS.includes('sys')) {
    const ops = [
      ['write16', 1_000_000, 'fd_write 16 B, stdout discarded', false],
      ['filewrite16', 1_000_000, 'fd_write 16 B to a file', true],
      ['clock', 1_000_000, 'clock_time_get', false],
      ['stat', 100_000, 'path_filestat_get', true],
      ['openclose', 100_000, 'path_open + fd_close', true],
      ['readdir', 10_000, 'fd_readdir, per entry (10 k entries)', true],
      ['random', 65_536, 'random_get 64 KiB', false],
      ['fileio', 256, '64 KiB file I/O (256 MiB)', true],
    ]
    for (const [op, count, title, fs] of ops) {
      const nocheck = op === 'clock' || op === 'random' // readings differ from run to run
      const c =
        op === 'readdir'
          ? QUICK
            ? '2000'
            : '10000'
          : op === 'fileio'
            ? QUICK
              ? '32'
              : '256'
            : op === 'random'
              ? QUICK
                ? '8192'
                : '65536'
              : n(count)
      const hosts = sysHosts.filter((h) => fs || h !== 'caplet-memfs')
      const base = { group: 'sys', bin: built.sys, fs, hosts, ref: 'native', nocheck }
      if (op === 'fileio') {
        list.push({
          ...base,
          id: 'sys:filewrite64k',
          title: '64 KiB writes',
          args: [op, c],
          result: 'filewrite64k',
          also: 'fileread64k',
          unit: 'MB/s',
          perOpBytes: 65536,
        })
      } else {
        list.push({ ...base, id: `sys:${op}`, title, args: [op, c], result: op, unit: op === 'random' ? 'µs/64 KiB' : 'µs/call' })
      }
    }
  }
  if (GROUPS.includes('startup')) {
    list.push({
      group: 'startup',
      id: 'startup:cold',
      title: 'cold process: hello',
      bin: built.hello,
      kind: 'cold',
      unit: 'ms',
      hosts: QUICK ? ['native', 'caplet', 'node-wasi'] : ['native', 'caplet', 'node-wasi', 'bjorn3', 'wasmer'],
      ref: 'node-wasi',
    })
    // caplet: runSync(bytes, options) per run; caplet prepared: prepareSync once, program.runSync() per run.
    list.push({
      group: 'startup',
      id: 'startup:warm',
      title: 'warm in-process: hello',
      bin: built.hello,
      kind: 'warm',
      unit: 'ms',
      hosts: QUICK ? ['caplet', 'caplet-prepared', 'node-wasi', 'bjorn3'] : ['caplet', 'caplet-prepared', 'node-wasi', 'bjorn3', 'wasmer'],
      ref: 'node-wasi',
      repeat: QUICK ? 100 : 300,
    })
    list.push({
      group: 'startup',
      id: 'startup:worker',
      title: 'warm worker: hello',
      bin: built.hello,
      kind: 'warm',
      unit: 'ms',
      hosts: ['caplet-worker', 'caplet-worker-prepared'],
      ref: 'caplet-worker',
      repeat: QUICK ? 30 : 100,
    })
  }
  if (GROUPS.includes('sqlite') && built.sqlite) {
    list.push({
      group: 'sqlite',
      id: 'sqlite:short',
      title: 'SQLite, 20 k rows (short run)',
      bin: built.sqlite,
      args: ['20000'],
      dirArg: true,
      result: 'sqlite',
      unit: 'ms',
      fs: true,
      hosts: [
        'native',
        'caplet',
        'caplet-baseline',
        'caplet-optimized',
        'caplet-memfs',
        'node-wasi',
        'node-wasi-nofast',
        'bjorn3',
        'wasmer',
      ],
      ref: 'native',
    })
    list.push({
      group: 'sqlite',
      id: 'sqlite:long',
      title: 'SQLite, 200 k rows',
      bin: built.sqlite,
      args: ['200000'],
      dirArg: true,
      result: 'sqlite',
      unit: 'ms',
      fs: true,
      hosts: ['native', 'caplet', 'caplet-baseline', 'caplet-optimized', 'node-wasi', 'bjorn3', 'wasmer'],
      ref: 'native',
    })
  }
  if (GROUPS.includes('ruby') && built.ruby) {
    list.push({
      group: 'ruby',
      id: 'ruby:start',
      title: 'CRuby 3.3 start + require "json"',
      bin: built.ruby,
      kind: 'ruby',
      unit: 'ms',
      hosts: ['caplet', 'caplet-baseline', 'caplet-optimized', 'node-wasi', 'node-wasi-nofast'],
      ref: 'node-wasi',
    })
  }
  return list
}

// ---- one sample ----------------------------------------------------------------------------------
function spawnCollect(cmd, args, env, timeoutMs, { discardStdout = false } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now()
    // A native guest's stdout goes to /dev/null, as the JS hosts discard theirs.
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', discardStdout ? 'ignore' : 'pipe', 'pipe'] })
    let stdout = '',
      stderr = ''
    child.stdout?.on('data', (d) => {
      if (stdout.length < 1 << 20) stdout += d
    })
    child.stderr.on('data', (d) => {
      if (stderr.length < 1 << 20) stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - t0, timedOut: signal === 'SIGKILL' })
    })
  })
}

const timeoutOf = (w) => (w.group === 'sys' ? SYS_TIMEOUT_MS : TIMEOUT_MS)

const RESULT_RE = /^RESULT (\S+) ns=(\d+) ops=(\d+) check=(\d+)$/gm

async function sample(w, hostId, caplet) {
  const host = HOSTS[hostId]
  const dir = w.fs || w.dirArg ? mkdtempSync(join(tmpdir(), 'caplet-bench-')) : undefined
  try {
    if (host.native) {
      const args = w.kind === 'cold' ? [] : [...w.args, ...(dir ? [dir] : w.group === 'sys' ? ['.'] : [])]
      const r = await spawnCollect(w.bin.native, args, {}, timeoutOf(w), { discardStdout: true })
      if (r.timedOut) return { error: 'timeout' }
      if (r.code !== 0) return { error: `exit ${r.code} ${r.stderr.slice(-200)}` }
      if (w.kind === 'cold') return { value: r.wallMs, raw: r.wallMs }
      return fromResults(w, parse(r.stderr))
    }
    const guestDir = dir ? '/data' : undefined
    let script = join(BENCH, 'lib/host-run.mjs')
    let spec
    if (w.kind === 'ruby') {
      script = join(BENCH, 'lib/ruby-start.mjs')
      spec = { host: host.runner === 'node-wasi' ? 'node-wasi' : 'caplet', tier: host.env?.CAPLET_TIER ?? 'auto', wasm: w.bin.wasm, caplet }
    } else {
      const args =
        w.kind === 'cold' || w.kind === 'warm'
          ? ['hello']
          : [w.bin.wasm.split('/').pop(), ...w.args, ...(guestDir ? [guestDir] : w.group === 'sys' ? ['.'] : [])]
      spec = {
        host: host.runner,
        wasm: w.bin.wasm,
        args,
        dir,
        caplet,
        kind: w.kind === 'cold' ? 'guest' : (w.kind ?? 'guest'),
        repeat: w.repeat,
      }
    }
    const r = await spawnCollect(process.execPath, [...(host.nodeFlags ?? []), script, JSON.stringify(spec)], host.env ?? {}, timeoutOf(w))
    if (r.timedOut) return { error: 'timeout' }
    if (r.signal) return { error: `crashed (${r.signal})`, crashed: true }
    const line = r.stdout.split('\n').find((l) => l.startsWith('@@RESULT '))
    if (!line) return { error: `no result (exit ${r.code}): ${r.stderr.slice(-300)}`, crashed: r.code !== 0 }
    const out = JSON.parse(line.slice(9))
    if (!out.ok) return { error: out.error }
    if (w.kind === 'cold') return { value: r.wallMs, raw: r.wallMs }
    if (w.kind === 'warm') return { value: out.results.warm.ns / 1e6, raw: out.results.warm.ns / 1e6 }
    if (w.kind === 'ruby')
      return { value: out.results['ruby-start'].ns / 1e6, raw: out.results['ruby-start'].ns / 1e6, extra: { compileMs: out.compileMs } }
    return fromResults(w, out.results)
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
}

function parse(text) {
  const out = {}
  for (const m of text.matchAll(RESULT_RE)) out[m[1]] = { ns: Number(m[2]), ops: Number(m[3]), check: m[4] }
  return out
}

/** The figure in the workload's unit, plus the checksum (every host must agree). */
function fromResults(w, results) {
  const r = results[w.result]
  if (!r) return { error: `no RESULT ${w.result}` }
  const value = (x) => (w.unit === 'ms' ? x.ns / 1e6 : w.unit === 'MB/s' ? (x.ops * w.perOpBytes) / 1e6 / (x.ns / 1e9) : x.ns / x.ops / 1e3)
  const out = { value: value(r), check: r.check }
  if (w.also && results[w.also]) out.also = value(results[w.also])
  return out
}

// ---- main ----------------------------------------------------------------------------------------
async function main() {
  log(`${QUICK ? 'quick' : 'full'} run: groups ${GROUPS.join(', ')}, ${ROUNDS} rounds, Node ${process.version}, V8 ${process.versions.v8}`)
  const [caplet, built] = await Promise.all([buildCaplet(), buildWorkloads(GROUPS, log)])
  const list = workloads(built)
  if (HOST_FILTER) for (const w of list) w.hosts = w.hosts.filter((h) => h === w.ref || HOST_FILTER.includes(h))
  const samples = {} // id -> host -> [{value, …}]
  const notes = {}
  for (const w of list) {
    samples[w.id] = {}
    for (const h of w.hosts) samples[w.id][h] = []
  }
  const dead = new Set() // "id|host" that timed out: not retried
  for (let round = 0; round < ROUNDS; round++) {
    for (const w of list) {
      const t = Date.now()
      // Rotate the order each round, so no host always runs first (A B C, B C A, …).
      const order = w.hosts.map((_, i) => w.hosts[(i + round) % w.hosts.length])
      for (const h of order) {
        const key = `${w.id}|${h}`
        if (dead.has(key)) continue
        const s = await sample(w, h, caplet)
        if (s.error === 'timeout') {
          dead.add(key)
          notes[key] = `did not finish within ${timeoutOf(w) / 1000} s`
        } else if (s.error && !s.crashed) {
          notes[key] = s.error.split('\n')[0].slice(0, 160)
          if (!/crash/.test(s.error)) dead.add(key)
        }
        samples[w.id][h].push(s)
      }
      log(`round ${round + 1}/${ROUNDS} ${w.id} (${((Date.now() - t) / 1000).toFixed(1)} s)`)
    }
  }
  // Checksums: every host must compute what native computed.
  for (const w of list) {
    if (w.nocheck) continue
    const ref = samples[w.id].native?.find((s) => s.check !== undefined)?.check
    if (ref === undefined) continue
    for (const h of w.hosts) {
      if (samples[w.id][h].some((s) => s.check !== undefined && s.check !== ref))
        notes[`${w.id}|${h}`] = 'WRONG RESULT (checksum differs from native)'
    }
  }
  const meta = {
    date: new Date().toISOString(),
    quick: QUICK,
    rounds: ROUNDS,
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    load: loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    platform: `${process.platform} ${process.arch}`,
    elapsedS: Math.round((Date.now() - started) / 1000),
    sqlite: SQLITE_PACKAGE,
    ruby: RUBY_PACKAGE,
  }
  mkdirSync(OUT, { recursive: true })
  const files = writeReport(OUT, { meta, list, samples, notes, hosts: HOSTS })
  log(`wrote ${files.join(', ')} in ${meta.elapsedS} s`)
}

if (opt('--render')) {
  // Re-renders results.md and chart.svg from a results.json (e.g. after changing the report).
  const data = JSON.parse(readFileSync(opt('--render'), 'utf8'))
  mkdirSync(OUT, { recursive: true })
  log(`wrote ${writeReport(OUT, data).join(', ')}`)
} else await main()
process.exit(0)
