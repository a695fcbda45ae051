// Fuel metering: what it costs at run time and at load time.
//
//   node bench/fuel.bench.mjs [--rounds N] [--quick] [extra.wasm ...]
//
// 1. Instrumentation speed: meterFuel and capMemory over every fixture, any extra .wasm given
//    on the command line, and a synthetic module of about 5 MB; cold (first calls in the process)
//    and warm, printed as ms and MB/s.
// 2. Run-time overhead: CPU-bound guests (test/fixtures/wasm/fuel_kernels.wasm, fuel_spin.wasm)
//    run unmetered (A) and metered (B) alternately in this one process, A B A B …, after
//    warm-up runs (V8 tiers a wasm function up to its optimising compiler only on a later call,
//    so the first runs execute baseline code). Prints the medians and the ratio B/A.
//    Target (issue 5): metered <= 1.15x unmetered.
//
// Not a test: it asserts nothing but that both variants print the same output.
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const roundsAt = args.indexOf('--rounds')
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 5
const extra = args.filter((a, i) => a.endsWith('.wasm') && args[i - 1] !== '--rounds')

// The sources are TypeScript: bundle what the bench needs in memory and import it.
const bundled = await build({
  stdin: {
    contents: `export * from './runtime/instrument/index.ts'; export { WasiHost } from './wasi-host/index.ts'`,
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  write: false,
  logLevel: 'warning',
})
const lib = await import(`data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString('base64')}`)
const { meterFuel, capMemory, setFuel, remainingFuel, WasiHost } = lib

const BUDGET = 2n ** 62n
const decoder = new TextDecoder()

function runOnce(module, argv, metered) {
  let out = ''
  const host = new WasiHost({
    args: argv,
    stdout: (c) => {
      out += decoder.decode(c)
    },
  })
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const instance = new WebAssembly.Instance(module, host.imports)
  if (metered) setFuel(instance, BUDGET)
  const code = host.start(instance)
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, out, code, fuel: metered ? BUDGET - remainingFuel(instance) : undefined }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const fixtures = join(root, 'test/fixtures/wasm')

// ---- Instrumentation speed. ----

/**
 * A valid module of about `target` bytes: many functions of loops, blocks, branches, a br_table,
 * calls, loads and stores, i32/i64 arithmetic, so the scanner sees the usual mix.
 */
function syntheticModule(target) {
  const bytes = []
  const u32 = (out, n) => {
    do {
      let b = n & 0x7f
      n >>>= 7
      if (n) b |= 0x80
      out.push(b)
    } while (n)
  }
  const section = (id, payload) => {
    bytes.push(id)
    u32(bytes, payload.length)
    for (const b of payload) bytes.push(b)
  }
  const chunk = (self) => {
    const c = []
    c.push(0x02, 0x40) // block
    c.push(0x03, 0x40) //   loop
    c.push(0x20, 0x00, 0x28, 0x02, 0x04, 0x20, 0x01, 0x6a, 0x21, 0x01) // l1 += load(l0+4)
    c.push(0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00) // l0 -= 1; br_if loop
    c.push(0x0b) //   end
    c.push(0x20, 0x01, 0x41, 0xff, 0x00, 0x71, 0x04, 0x40) // if (l1 & 127)
    if (self > 0) {
      c.push(0x20, 0x00, 0x20, 0x01, 0x10)
      u32(c, self - 1)
      c.push(0x1a)
    } // call f(self-1); drop
    c.push(0x05, 0x42, 0xb9, 0x60, 0x21, 0x02) // else l2 = i64 12345
    c.push(0x0b) // end
    c.push(0x20, 0x02, 0x42, 0x03, 0x7e, 0x42, 0x07, 0x7c, 0x21, 0x02) // l2 = l2 * 3 + 7
    c.push(0x20, 0x00, 0x20, 0x01, 0x36, 0x02, 0x08) // store(l0+8, l1)
    c.push(0x20, 0x01, 0x0e, 0x02, 0x00, 0x00, 0x00) // br_table 0 0 0 (out of the block)
    c.push(0x0b) // end block
    return c
  }
  const perFunction = 40
  const funcs = Math.max(1, Math.ceil(target / (chunk(1000).length * perFunction + 8)))
  bytes.push(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00)
  section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]) // (i32 i32) -> i32
  const fsec = []
  u32(fsec, funcs)
  for (let i = 0; i < funcs; i++) fsec.push(0x00)
  section(3, fsec)
  section(5, [0x01, 0x00, 0x01]) // one page
  const code = []
  u32(code, funcs)
  for (let f = 0; f < funcs; f++) {
    const body = [0x01, 0x01, 0x7e] // (local i64) -> locals: 0,1 params; 2 i64
    for (let k = 0; k < perFunction; k++) body.push(...chunk(f))
    body.push(0x20, 0x01, 0x0b)
    u32(code, body.length)
    for (const b of body) code.push(b)
  }
  section(10, code)
  return new Uint8Array(bytes)
}

function timeIt(fn, minMs = 300) {
  const times = []
  const start = performance.now()
  do {
    const t0 = performance.now()
    fn()
    times.push(performance.now() - t0)
  } while (performance.now() - start < minMs || times.length < 3)
  return median(times)
}

const modules = []
for (const dir of [fixtures, join(root, 'samples')]) {
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith('.wasm'))
    .sort())
    modules.push([f, readFileSync(join(dir, f))])
}
for (const path of extra) modules.push([path, readFileSync(path)])
const synthetic = syntheticModule(quick ? 1_000_000 : 5_000_000)
if (!WebAssembly.validate(synthetic)) throw new Error('synthetic module is invalid')
modules.push(['synthetic', synthetic])

// Cold: the first calls in this process, before the JIT has seen the rewriter (what one CLI run pays).
console.log('instrumentation, cold (first calls in a fresh process)')
for (const [name, bytes] of [...modules].sort((a, b) => b[1].length - a[1].length).slice(0, 2)) {
  const t0 = performance.now()
  meterFuel(bytes)
  const ms = performance.now() - t0
  console.log(`  meterFuel ${name.slice(-40)}: ${(bytes.length / 1e6).toFixed(2)} MB in ${ms.toFixed(1)} ms`)
}

console.log('instrumentation, warm (median of repeated runs)')
console.log('module                          bytes    meterFuel ms    MB/s   capMemory ms   size after')
let totalBytes = 0
let totalMs = 0
for (const [name, bytes] of modules) {
  const metered = meterFuel(bytes).bytes
  if (!WebAssembly.validate(metered)) throw new Error(`${name}: metered module does not validate`)
  const ms = timeIt(() => meterFuel(bytes))
  const capMs = timeIt(() => capMemory(bytes, 256), 100)
  totalBytes += bytes.length
  totalMs += ms
  const big = bytes.length > 200_000 || name === 'synthetic' || extra.includes(name)
  if (big || modules.length < 30) {
    console.log(
      `${name.slice(-30).padEnd(30)} ${String(bytes.length).padStart(8)} ${ms.toFixed(2).padStart(14)} ${(bytes.length / 1e6 / (ms / 1e3)).toFixed(0).padStart(7)} ${capMs.toFixed(3).padStart(14)} ${('+' + ((metered.length / bytes.length - 1) * 100).toFixed(0) + '%').padStart(12)}`,
    )
  }
}
console.log(
  `all ${modules.length} modules: ${(totalBytes / 1e6).toFixed(2)} MB in ${totalMs.toFixed(1)} ms = ${(totalMs / (totalBytes / 1e6)).toFixed(1)} ms per MB`,
)

const kernelsBytes = readFileSync(join(fixtures, 'fuel_kernels.wasm'))
const spinBytes = readFileSync(join(fixtures, 'fuel_spin.wasm'))
const scale = quick ? 0.2 : 1
const workloads = [
  ['sieve', kernelsBytes, ['fuel_kernels', 'sieve', String(Math.round(30_000_000 * scale))]],
  ['matmul', kernelsBytes, ['fuel_kernels', 'matmul', String(Math.round(600 * Math.cbrt(scale)))]],
  ['hash', kernelsBytes, ['fuel_kernels', 'hash', String(Math.round(400_000 * scale))]],
  ['calls', kernelsBytes, ['fuel_kernels', 'calls', String(Math.round(100_000_000 * scale))]],
  ['spin', spinBytes, ['fuel_spin', String(Math.round(100_000_000 * scale))]],
]

console.log(`\nfuel metering overhead: ${ROUNDS} rounds A B A B (A unmetered, B metered), medians, ${process.version}`)
console.log('wall-clock ms, and CPU ms (less disturbed by other processes on a shared machine)')
console.log('kernel    unmetered ms   metered ms   ratio | cpu unmetered  cpu metered   ratio |  fuel used  fuel/ns')
const compiled = new Map()
for (const [name, bytes, argv] of workloads) {
  if (!compiled.has(bytes)) compiled.set(bytes, [new WebAssembly.Module(bytes), new WebAssembly.Module(meterFuel(bytes).bytes)])
  const [plain, metered] = compiled.get(bytes)
  // Warm-up: get every hot function tiered up in both variants.
  for (let i = 0; i < 2; i++) {
    runOnce(plain, argv, false)
    runOnce(metered, argv, true)
  }
  const a = []
  const b = []
  const ca = []
  const cb = []
  let fuel
  for (let r = 0; r < ROUNDS; r++) {
    const ra = runOnce(plain, argv, false)
    const rb = runOnce(metered, argv, true)
    if (ra.out !== rb.out || ra.code !== rb.code)
      throw new Error(`${name}: metered output differs: ${JSON.stringify(ra.out)} vs ${JSON.stringify(rb.out)}`)
    if (fuel !== undefined && fuel !== rb.fuel) throw new Error(`${name}: fuel differs between runs: ${fuel} vs ${rb.fuel}`)
    fuel = rb.fuel
    a.push(ra.ms)
    b.push(rb.ms)
    ca.push(ra.cpuMs)
    cb.push(rb.cpuMs)
  }
  const [ma, mb, mca, mcb] = [median(a), median(b), median(ca), median(cb)]
  console.log(
    `${name.padEnd(9)} ${ma.toFixed(1).padStart(12)} ${mb.toFixed(1).padStart(12)} ${(mb / ma).toFixed(3).padStart(7)}x | ${mca.toFixed(1).padStart(13)} ${mcb.toFixed(1).padStart(12)} ${(mcb / mca).toFixed(3).padStart(7)}x | ${String(fuel).padStart(10)} ${(Number(fuel) / (mcb * 1e6)).toFixed(2).padStart(8)}`,
  )
}
