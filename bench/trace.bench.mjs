// Tracing cost on syscall-heavy guests: the same workload with tracing off, on (lines written to
// /dev/null and to a file), and in summary mode, as ratios against "off" in the same run; and the
// same against caplet as it is at another revision (`git archive main`, or `--base REV`): "off"
// there shows the feature costs nothing when off, "to a file" there is the before of a change.
//   node bench/trace.bench.mjs [--rounds N] [--calls N] [--base REV]
// Builds bench/workloads/sys.c to wasm and bundles both caplets into bench/.build/. Seconds, not minutes.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { buildCaplet } from './lib/build-caplet.mjs'
import { BENCH, BUILD, ROOT } from './lib/paths.mjs'

const argv = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = argv.indexOf(name)
  return i >= 0 ? Number(argv[i + 1]) : dflt
}
const ROUNDS = opt('--rounds', 5)
const CALLS = opt('--calls', 100000)
// The revision to compare "off" with (a commit without the feature being measured; default main).
const BASE = argv.includes('--base') ? argv[argv.indexOf('--base') + 1] : 'main'

const out = join(BUILD, 'trace')
mkdirSync(out, { recursive: true })
const wasm = join(out, 'sys.wasm')
execFileSync(process.env.CLANG ?? 'clang-19', [
  '--target=wasm32-wasi',
  `--sysroot=${process.env.WASI_SYSROOT ?? '/usr'}`,
  '-O2',
  '-Wl,--strip-debug',
  '-o',
  wasm,
  join(BENCH, 'workloads/sys.c'),
])

const current = await import(await buildCaplet('caplet-trace'))
let baseline
try {
  const src = join(out, 'main-src')
  rmSync(src, { recursive: true, force: true })
  mkdirSync(src, { recursive: true })
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${BASE} runtime wasi-host toolchain | tar -x -C "${src}"`])
  await build({
    entryPoints: [join(src, 'runtime/index.ts')],
    outfile: join(out, 'caplet-main.js'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    nodePaths: [join(ROOT, 'node_modules')],
  })
  baseline = await import(join(out, 'caplet-main.js'))
} catch (e) {
  console.log(`(no baseline from ${BASE}: ${e.message.split('\n')[0]})`)
}

// A real file: truncated before each run, so a round never appends to a large file.
const traceFile = join(out, 'trace.out')
const configs = [
  ...(baseline
    ? [
        [`${BASE}, no tracing`, baseline, undefined],
        [`${BASE}, to a file`, baseline, { file: traceFile }],
      ]
    : []),
  ['off', current, undefined],
  ['on, to /dev/null', current, { file: '/dev/null' }],
  ['on, to a file', current, { file: traceFile }],
  ['on, json to /dev/null', current, { file: '/dev/null', format: 'json' }],
  ['summary', current, { summary: true }],
]
const ops = ['write16', 'clock']
const dec = new TextDecoder()
/** ns per call for one run, from the workload's own RESULT line. */
function once(api, op, trace) {
  if (trace?.file === traceFile) rmSync(traceFile, { force: true })
  const r = api.runSync(wasm, {
    args: ['sys', op, String(CALLS), '/tmp'],
    stdout: 'discard',
    stderr: 'capture',
    ...(trace ? { trace } : {}),
  })
  const m = /RESULT \S+ ns=(\d+) ops=(\d+)/.exec(dec.decode(r.stderr))
  if (!m) throw new Error(`no RESULT line: ${dec.decode(r.stderr).slice(0, 200)}`)
  // Every traced call reached the file (the warm-up's tenth included): a trace that lost lines would be cheap.
  if (trace?.file === traceFile) {
    const lines = readFileSync(traceFile).reduce((n, b) => n + (b === 10 ? 1 : 0), 0)
    if (lines < CALLS + CALLS / 10) throw new Error(`${traceFile} has ${lines} lines for ${CALLS} calls and a warm-up`)
  }
  return Number(m[1]) / Number(m[2])
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const results = {}
// Ratios are taken within each round (against that round's "off"), then their median: a round
// slowed by the machine's other load slows its "off" too.
const ratios = {}
for (const op of ops) {
  for (const [name, api, trace] of configs) once(api, op, trace) // warm
  const samples = Object.fromEntries(configs.map(([n]) => [n, []]))
  for (let r = 0; r < ROUNDS; r++) for (const [name, api, trace] of configs) samples[name].push(once(api, op, trace))
  results[op] = Object.fromEntries(configs.map(([n]) => [n, median(samples[n])]))
  ratios[op] = Object.fromEntries(configs.map(([n]) => [n, median(samples[n].map((x, r) => x / samples.off[r]))]))
}
console.log(
  `load average: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
console.log(`tracing cost: ${CALLS} calls per run, ${ROUNDS} interleaved rounds: median ns per call, median of the rounds' ratios to "off"`)
for (const op of ops) {
  console.log(`  ${op}`)
  for (const [name] of configs)
    console.log(`    ${name.padEnd(24)} ${results[op][name].toFixed(1).padStart(9)} ns  ${ratios[op][name].toFixed(2)}x`)
}
