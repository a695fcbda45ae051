// JavaScript/TypeScript guests: what the QuickJS-in-wasm engine costs.
//
//   npm run build && node bench/js.bench.mjs [--rounds N]
//
// 1. Compile (compileScript: esbuild over the submitted files): the first compile in a process
//    (starts esbuild's service) and later compiles of the same sample.
// 2. Engine start: the first run in a process (load + instrument + compile the 620 KB engine,
//    initialise QuickJS and the prelude, snapshot), then each later fresh VM (an instance reset
//    to the snapshot, or a new one from it), and a whole warm in-process run of a one-line script.
// 3. CPU: a prime sieve and a JSON round-trip, timed inside the script (performance.now()),
//    under caplet's QuickJS (in-process, warm engine) and the same bundle in this process's V8
//    (node:vm), alternately, median of N rounds: the ratio is the interpreter's cost.
//
// Not a test: it asserts only that both engines print the same checksum.
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import vm from 'node:vm'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const roundsAt = args.indexOf('--rounds')
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 5
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
const fmt = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`)

// The engine internals are TypeScript: bundle them beside the bench (so `quickjs-wasi` resolves from node_modules).
const outDir = join(root, 'bench', '.build')
mkdirSync(outDir, { recursive: true })
await build({
  stdin: {
    contents: `export { ScriptEngine, EngineSlot, engineBytes, ENGINE_HOST_IMPORTS } from './runtime/script-engine.ts'; export { loadModule } from './runtime/module.ts'`,
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  outfile: join(outDir, 'js-engine.mjs'),
  external: ['esbuild'],
  logLevel: 'warning',
})
const t0 = performance.now()
const internals = await import(pathToFileURL(join(outDir, 'js-engine.mjs')).href)
const api = await import(pathToFileURL(join(root, 'dist', 'index.js')).href)
const importMs = performance.now() - t0
const { compileScript, runScript } = api
const text = (b) => new TextDecoder().decode(b)

// ---- 1. compile -------------------------------------------------------------------------------
const { readFileSync } = await import('node:fs')
const sample = readFileSync(join(root, 'samples', 'json-transform.ts'), 'utf8')
let t = performance.now()
const first = await compileScript({ files: { 'json-transform.ts': sample }, entry: 'json-transform.ts' })
const compileCold = performance.now() - t
const compileWarm = []
for (let i = 0; i < 20; i++) {
  t = performance.now()
  await compileScript({ files: { 'json-transform.ts': sample }, entry: 'json-transform.ts' })
  compileWarm.push(performance.now() - t)
}
if (!first.program) throw new Error('the sample did not compile')

// ---- 2. engine start ------------------------------------------------------------------------------
const hostImports = internals.ENGINE_HOST_IMPORTS.map((n) => `env.${n}`)
t = performance.now()
const mod = internals.loadModule(internals.engineBytes(), { hostImports })
const loadMs = performance.now() - t
t = performance.now()
const engine = new internals.ScriptEngine(mod)
const slot0 = engine.acquire()
const initMs = performance.now() - t
engine.release(slot0, true)
const reuse = []
for (let i = 0; i < 200; i++) {
  t = performance.now()
  const s = engine.acquire()
  engine.release(s, true)
  reuse.push(performance.now() - t)
}
const fresh = []
for (let i = 0; i < 20; i++) {
  t = performance.now()
  const s = engine.acquire()
  engine.release(s, false) // discarded: the next acquire makes a new instance from the snapshot
  fresh.push(performance.now() - t)
}
const hello = (await compileScript({ files: { 'hello.ts': 'console.log("hello")' }, entry: 'hello.ts' })).program
t = performance.now()
await runScript(hello, { isolation: 'in-process' })
const firstRun = performance.now() - t
const warmRuns = []
for (let i = 0; i < 100; i++) {
  t = performance.now()
  await runScript(hello, { isolation: 'in-process' })
  warmRuns.push(performance.now() - t)
}

// ---- 3. CPU: QuickJS in caplet vs V8 ------------------------------------------------------------
const workloads = {
  sieve: `
    const N = 1_000_000
    const t0 = performance.now()
    const sieve = new Uint8Array(N + 1)
    let count = 0
    for (let i = 2; i <= N; i++) {
      if (sieve[i] === 0) { count++; for (let j = i * i; j <= N; j += i) sieve[j] = 1 }
    }
    console.log(JSON.stringify({ ms: performance.now() - t0, check: count }))`,
  'json round-trip': `
    const rows = []
    for (let i = 0; i < 5000; i++) rows.push({ id: i, name: 'item-' + i, tags: ['a', 'b', String(i % 7)], price: i * 1.25, ok: i % 3 === 0 })
    const t0 = performance.now()
    let check = 0
    for (let k = 0; k < 5; k++) {
      const s = JSON.stringify(rows)
      const back = JSON.parse(s)
      check += back.length + s.length
    }
    console.log(JSON.stringify({ ms: performance.now() - t0, check }))`,
}
const cpu = {}
for (const [name, src] of Object.entries(workloads)) {
  const program = (await compileScript({ files: { 'w.ts': src }, entry: 'w.ts' })).program
  const inV8 = () => {
    let out = ''
    // Wrapped in a function, as the bundle's top level is module scope in QuickJS (a vm context's
    // global lookups go through interceptors and would make V8 look slower than it is).
    vm.runInNewContext(`(function () {\n${program.code}\n})()`, {
      console: {
        log: (s) => {
          out += s
        },
      },
      performance,
      JSON,
      Uint8Array,
    })
    return JSON.parse(out)
  }
  const inCaplet = async () => {
    const r = await runScript(program, { isolation: 'in-process' })
    if (r.exitCode !== 0) throw new Error(`${name}: ${text(r.stderr)}`)
    return JSON.parse(text(r.stdout))
  }
  await inCaplet()
  inV8() // warm-up
  const q = [],
    v = []
  for (let i = 0; i < ROUNDS; i++) {
    const a = await inCaplet()
    const b = inV8()
    if (a.check !== b.check) throw new Error(`${name}: checksums differ (${a.check} vs ${b.check})`)
    q.push(a.ms)
    v.push(b.ms)
  }
  cpu[name] = { quickjs: median(q), v8: median(v) }
}

console.log(`JavaScript guests (node ${process.version}, ${ROUNDS} rounds; import of caplet + engine driver ${fmt(importMs)})`)
console.log('')
console.log('| what | figure |')
console.log('| --- | --- |')
console.log(`| compileScript, first in the process (esbuild service start) | ${fmt(compileCold)} |`)
console.log(`| compileScript, later (median of 20) | ${fmt(median(compileWarm))} |`)
console.log(`| engine load (validate, cap, compile 620 KB) | ${fmt(loadMs)} |`)
console.log(`| engine initialise + prelude + snapshot (first VM) | ${fmt(initMs)} |`)
console.log(`| fresh VM, reset instance (median of 200) | ${fmt(median(reuse))} |`)
console.log(`| fresh VM, new instance from the snapshot (median of 20) | ${fmt(median(fresh))} |`)
console.log(`| first runScript in-process (hello; engine already loaded above) | ${fmt(firstRun)} |`)
console.log(`| warm runScript in-process (hello, whole run, median of 100) | ${fmt(median(warmRuns))} |`)
console.log('')
console.log('| workload | caplet QuickJS | host V8 | ratio |')
console.log('| --- | --- | --- | --- |')
for (const [name, { quickjs, v8 }] of Object.entries(cpu)) {
  console.log(`| ${name} | ${fmt(quickjs)} | ${fmt(v8)} | ${(quickjs / v8).toFixed(1)}× |`)
}
