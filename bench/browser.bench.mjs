// caplet in Chromium vs caplet in Node, on this machine, in one run: the CPU kernels of
// bench/workloads/cpu.c (timed inside the guest, by its monotonic clock, the same on both sides)
// and a warm hello (a prepared program's run(), timed by the embedder, worker dispatch included).
// Node runs in a worker with its default tier (`auto`: the looping start functions compiled
// optimised up front) and with `baseline` (V8's own tiering), which is what a page gets: a web
// page cannot set V8's compilation-hints flag. Prints ratios (Chromium / Node) and writes
// bench/results/browser.md. Also: a first prepare() of the kernels' module from a URL on a
// fresh page, streamed (compileStreaming, bytes the pipeline leaves unchanged) against read whole,
// rewritten and compiled in a worker.
//
//   node bench/browser.bench.mjs [--rounds N]     (npm run bench:browser; about a minute)
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { cpus, loadavg } from 'node:os'
import { join, normalize } from 'node:path'
import { chromium } from 'playwright-core'
import { buildWorkloads } from './lib/build-workloads.mjs'
import { BUILD, RESULTS, ROOT } from './lib/paths.mjs'

const ROUNDS = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 3
const KERNELS = [
  ['nbody', '1000000'],
  ['fannkuch', '9'],
  ['spectral', '600'],
  ['hash', '2'],
  ['matmul', '220'],
  ['sort', '2000000'],
]
const HELLO_RUNS = 30

if (!existsSync(join(ROOT, 'dist/browser.js'))) throw new Error('run `npm run build` first')
const built = await buildWorkloads(['cpu'], (m) => console.error(m))
// The kernels' module with the default caps already written in (so the pipeline leaves it unchanged and it streams).
const { build } = await import('esbuild')
const pipeline = await build({
  entryPoints: [join(ROOT, 'runtime/module-pipeline.ts')],
  bundle: true,
  format: 'esm',
  platform: 'node',
  write: false,
  logLevel: 'error',
})
const { instrumentModule } = await import(`data:text/javascript;base64,${Buffer.from(pipeline.outputFiles[0].text).toString('base64')}`)
const DEFAULT_MEMORY_PAGES = 16384 // the default memory limit, 1 GiB (checked below: the page must report 'stream')
const cappedCpu = instrumentModule(readFileSync(built.cpu.wasm), { memoryPages: DEFAULT_MEMORY_PAGES })
const { prepare: prepareNode } = await import(join(ROOT, 'dist/index.js'))

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
const resultMs = (stderr) => {
  const m = /RESULT \S+ ns=(\d+)/.exec(new TextDecoder().decode(stderr))
  if (!m) throw new Error(`no RESULT line in: ${new TextDecoder().decode(stderr)}`)
  return Number(m[1]) / 1e6
}

// A static server for the page: dist/ and the built workloads, nothing else.
const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname
  const file =
    path === '/'
      ? null
      : path.startsWith('/dist/')
        ? normalize(join(ROOT, path))
        : path.startsWith('/w/')
          ? normalize(join(BUILD, path.slice(3)))
          : null
  if (path === '/w/cpu-capped.wasm') {
    res.writeHead(200, { 'content-type': 'application/wasm' }).end(cappedCpu)
    return
  }
  if (file === null && path === '/') {
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<!doctype html><title>bench</title><script type=module>import * as c from "/dist/browser.js"; window.caplet = c</script>')
    return
  }
  if (!file || !(file.startsWith(join(ROOT, 'dist')) || file.startsWith(BUILD)) || !existsSync(file)) {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, { 'content-type': file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript' }).end(readFileSync(file))
})
await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
const origin = `http://127.0.0.1:${server.address().port}`
const asRoot = process.getuid?.() === 0
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: asRoot ? ['--no-sandbox'] : [] })
const page = await browser.newPage()
await page.goto(origin + '/')
await page.waitForFunction(() => window.caplet !== undefined)

const cpuWasm = readFileSync(built.cpu.wasm)
const helloWasm = readFileSync(built.hello.wasm)
const rows = []
const loads = {}
try {
  const nodeAuto = await prepareNode(cpuWasm, { tier: 'auto' })
  const nodeBase = await prepareNode(cpuWasm, { tier: 'baseline' })
  for (const [k, size] of KERNELS) {
    const t = { chromium: [], auto: [], baseline: [] }
    for (let r = 0; r < ROUNDS; r++) {
      t.auto.push(resultMs((await nodeAuto.run({ args: ['cpu', k, size] })).stderr))
      t.baseline.push(resultMs((await nodeBase.run({ args: ['cpu', k, size] })).stderr))
      const stderr = await page.evaluate(
        async ({ k, size }) => {
          const p = await window.caplet.prepare('/w/cpu.wasm')
          return Array.from((await p.run({ args: ['cpu', k, size] })).stderr)
        },
        { k, size },
      )
      t.chromium.push(resultMs(new Uint8Array(stderr)))
    }
    rows.push({ name: `cpu ${k} ${size}`, unit: 'ms', chromium: median(t.chromium), auto: median(t.auto), baseline: median(t.baseline) })
    console.error(
      `${k}: chromium ${median(t.chromium).toFixed(1)} ms, node ${median(t.auto).toFixed(1)} ms (baseline ${median(t.baseline).toFixed(1)} ms)`,
    )
  }
  // Warm hello: one prepared program, HELLO_RUNS runs, the median wall time of run() per side.
  const nodeHello = await prepareNode(helloWasm)
  for (let i = 0; i < 5; i++) await nodeHello.run()
  const nodeTimes = []
  for (let i = 0; i < HELLO_RUNS; i++) {
    const t0 = performance.now()
    await nodeHello.run()
    nodeTimes.push(performance.now() - t0)
  }
  const pageTimes = await page.evaluate(async (n) => {
    const p = await window.caplet.prepare('/w/hello.wasm')
    for (let i = 0; i < 5; i++) await p.run()
    const out = []
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      await p.run()
      out.push(performance.now() - t0)
    }
    return out
  }, HELLO_RUNS)
  rows.push({ name: 'hello, warm prepared run()', unit: 'ms', chromium: median(pageTimes), auto: median(nodeTimes), baseline: undefined })
  // First prepare() from a URL on a fresh page (no module cached): streamed, and rewritten in a worker.
  for (let r = 0; r < ROUNDS; r++) {
    for (const [kind, url] of [
      ['stream', '/w/cpu-capped.wasm'],
      ['worker', '/w/cpu.wasm'],
    ]) {
      await page.reload()
      await page.waitForFunction(() => window.caplet !== undefined)
      const got = await page.evaluate(async (url) => {
        await (await window.caplet.prepare('/w/hello.wasm')).run() // a warm worker, as in a page that ran something before
        const t0 = performance.now()
        const p = await window.caplet.prepare(url)
        return { ms: performance.now() - t0, from: p.compiledFrom }
      }, url)
      if (got.from !== kind) throw new Error(`${url}: compiled from ${got.from}, expected ${kind}`)
      ;(loads[kind] ??= []).push(got.ms)
    }
  }
} finally {
  await browser.close()
  server.close()
}

const version = browser.version?.() ?? ''
const f = (x) => (x === undefined ? '—' : x < 10 ? x.toFixed(2) : x.toFixed(1))
const lines = [
  `# caplet in Chromium vs in Node`,
  '',
  `\`node bench/browser.bench.mjs --rounds ${ROUNDS}\` on ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} cores, load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}), Node ${process.version}, Chromium ${version}; medians of ${ROUNDS} rounds (hello: ${HELLO_RUNS} runs).`,
  'Kernels are timed inside the guest; hello by the embedder (dispatch to a pooled worker and back).',
  '',
  '| workload | Chromium | Node (auto tier) | Node (baseline tier) | Chromium / Node auto | Chromium / Node baseline |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.name} | ${f(r.chromium)} ${r.unit} | ${f(r.auto)} ${r.unit} | ${r.baseline === undefined ? '—' : `${f(r.baseline)} ${r.unit}`} | ${(r.chromium / r.auto).toFixed(2)}× | ${r.baseline === undefined ? '—' : `${(r.chromium / r.baseline).toFixed(2)}×`} |`,
  ),
  '',
]
const cpuRows = rows.filter((r) => r.name.startsWith('cpu'))
const geo = (xs) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length)
lines.push(
  `Geometric mean over the kernels: Chromium / Node auto ${geo(cpuRows.map((r) => r.chromium / r.auto)).toFixed(2)}×, Chromium / Node baseline ${geo(cpuRows.map((r) => r.chromium / r.baseline)).toFixed(2)}×.`,
  '',
)
lines.push(
  `First \`prepare()\` of the kernels' module (${(cappedCpu.byteLength / 1024).toFixed(0)} KiB) from a URL on a fresh page, median of ${ROUNDS}: ${f(median(loads.stream))} ms streamed (\`compiledFrom: 'stream'\`, the bytes already capped), ${f(median(loads.worker))} ms read whole, rewritten and compiled in a worker (\`'worker'\`); ${(median(loads.stream) / median(loads.worker)).toFixed(2)}×. Served from 127.0.0.1, so this measures the compile path, not the network.`,
  '',
)
writeFileSync(join(RESULTS, 'browser.md'), lines.join('\n'))
console.log(lines.join('\n'))
