// Where caplet's time goes on each host call the bench measures: runs the syscall workload on
// caplet (in-process, host directory) under `node --cpu-prof` and prints the functions with the
// most self time (JS, wasm and V8/Node builtins), so each optimisation can start from a profile.
//
//   node bench/profile.mjs [op …] [--count N] [--top N] [--host caplet|node-wasi]
//   ops: write16 filewrite16 clock stat openclose fileserve readdir random fileio (default: all)
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildCaplet } from './lib/build-caplet.mjs'
import { buildWorkloads } from './lib/build-workloads.mjs'
import { BENCH } from './lib/paths.mjs'

const argv = process.argv.slice(2)
const opt = (name, d) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : d
}
const TOP = Number(opt('--top', 12))
const HOST = opt('--host', 'caplet')
const COUNTS = {
  write16: 2e6,
  filewrite16: 1e6,
  clock: 3e6,
  stat: 2e5,
  openclose: 1e5,
  fileserve: 1e5,
  readdir: 5000,
  random: 262144,
  fileio: 512,
}
const ops = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'))
const caplet = await buildCaplet()
const built = await buildWorkloads([])

/** Self time per function from a .cpuprofile (sampled node hit counts). */
function summarise(file) {
  const prof = JSON.parse(readFileSync(file, 'utf8'))
  const self = new Map()
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const counts = new Map()
  for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1)
  let total = 0
  for (const [id, c] of counts) {
    const n = byId.get(id)
    const f = n.callFrame
    const where = f.url ? `${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}` : ''
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim()
    self.set(key, (self.get(key) ?? 0) + c)
    total += c
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([k, c]) => `${((100 * c) / total).toFixed(1).padStart(5)}%  ${k}`)
}

for (const op of ops.length ? ops : Object.keys(COUNTS)) {
  const dir = mkdtempSync(join(tmpdir(), 'caplet-prof-'))
  const profDir = mkdtempSync(join(tmpdir(), 'caplet-cpuprof-'))
  const count = String(opt('--count', COUNTS[op]))
  const spec = { host: HOST, wasm: built.sys.wasm, args: ['sys', op, count, '/data'], dir, caplet }
  const r = spawnSync(
    process.execPath,
    ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=100', join(BENCH, 'lib/host-run.mjs'), JSON.stringify(spec)],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  )
  const line = r.stdout.split('\n').find((l) => l.startsWith('@@RESULT '))
  const res = line ? JSON.parse(line.slice(9)) : { ok: false, error: r.stderr.slice(-300) }
  const figures = res.ok
    ? Object.entries(res.results)
        .map(([k, v]) => `${k} ${(v.ns / v.ops / 1000).toFixed(3)} µs/op`)
        .join(', ')
    : res.error
  console.log(`\n== ${op} on ${HOST}: ${figures}`)
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
  if (file) for (const l of summarise(join(profDir, file))) console.log(l)
  rmSync(dir, { recursive: true, force: true })
  rmSync(profDir, { recursive: true, force: true })
}
