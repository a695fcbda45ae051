// Whole-process start-up of `caplet run` against a 10-line node:wasi runner (bench/lib/node-wasi-run.mjs):
// samples/hello.wasm, and `yosys -V` (a 30 MB module from @yowasp/yosys) cold (empty cache) and
// warm (cache filled by an earlier run) on each tier. Every sample is a fresh process; rows are
// interleaved round by round; cells are medians of wall time and of CPU time (user+sys).
//
//   node bench/startup.bench.mjs [--rounds 5] [--only hello,yosys]
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ROOT } from './lib/paths.mjs'

const argv = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : dflt
}
const rounds = Number(opt('--rounds', '5'))
const only = opt('--only', 'hello,yosys').split(',')
const CLI = join(ROOT, 'bin/caplet.js')
const NODE_WASI = join(ROOT, 'bench/lib/node-wasi-run.mjs')
const HELLO = join(ROOT, 'samples/hello.wasm')
if (!existsSync(join(ROOT, 'dist/cli.js'))) spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' })

let yosys
try {
  // The package's entry is gen/bundle.js; the core module sits beside it.
  yosys = join(dirname(createRequire(import.meta.url).resolve('@yowasp/yosys')), 'yosys.core.wasm')
} catch {
  /* not installed */
}

const timeFile = join(tmpdir(), `caplet-startup-time-${process.pid}`)
/** One fresh process: { wall, cpu } in ms, or throws when it fails. */
function sample(args, env = {}) {
  const t0 = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, process.execPath, '--no-warnings', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  const wall = performance.now() - t0
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr}`)
  const [u, s] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number)
  return { wall, cpu: (u + s) * 1000, out: r.stdout.toString() }
}

const rows = []
const cacheDirs = []
const freshCache = () => {
  const d = mkdtempSync(join(tmpdir(), 'caplet-startup-cache-'))
  cacheDirs.push(d)
  return d
}
function row(group, name, run, reference = false) {
  rows.push({ group, name, run, reference, wall: [], cpu: [] })
}

if (only.includes('hello')) {
  row('hello', 'node:wasi', () => sample([NODE_WASI, HELLO]), true)
  row('hello', 'node -e 0 (floor)', () => sample(['-e', '0']))
  row('hello', 'caplet run', () => sample([CLI, 'run', HELLO]))
  row('hello', 'caplet run --in-process', () => sample([CLI, 'run', '--in-process', HELLO]))
}
if (only.includes('yosys')) {
  if (yosys === undefined || !existsSync(yosys)) console.error('skipping yosys: npm install (devDependency @yowasp/yosys)')
  else {
    const warm = { default: freshCache(), auto: freshCache() }
    sample([CLI, 'run', yosys, '-V'], { CAPLET_CACHE_DIR: warm.default })
    sample([CLI, 'run', '--tier', 'auto', yosys, '-V'], { CAPLET_CACHE_DIR: warm.auto })
    row('yosys -V', 'node:wasi', () => sample([NODE_WASI, yosys, '-V']), true)
    row('yosys -V', 'caplet run (default tier), cold', () => sample([CLI, 'run', yosys, '-V'], { CAPLET_CACHE_DIR: freshCache() }))
    row('yosys -V', 'caplet run (default tier), warm', () => sample([CLI, 'run', yosys, '-V'], { CAPLET_CACHE_DIR: warm.default }))
    row('yosys -V', 'caplet run --tier baseline', () => sample([CLI, 'run', '--tier', 'baseline', '--no-cache', yosys, '-V']))
    row('yosys -V', 'caplet run --tier auto, cold', () =>
      sample([CLI, 'run', '--tier', 'auto', yosys, '-V'], { CAPLET_CACHE_DIR: freshCache() }),
    )
    row('yosys -V', 'caplet run --tier auto, warm', () =>
      sample([CLI, 'run', '--tier', 'auto', yosys, '-V'], { CAPLET_CACHE_DIR: warm.auto }),
    )
    row('yosys -V', 'caplet run --in-process (default tier)', () =>
      sample([CLI, 'run', '--in-process', yosys, '-V'], { CAPLET_CACHE_DIR: warm.default }),
    )
  }
}

try {
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round so no row always runs first.
    for (let i = 0; i < rows.length; i++) {
      const x = rows[(i + r) % rows.length]
      const s = x.run()
      x.wall.push(s.wall)
      x.cpu.push(s.cpu)
    }
  }
} finally {
  for (const d of cacheDirs) rmSync(d, { recursive: true, force: true })
  rmSync(timeFile, { force: true })
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const load = (await import('node:os')).loadavg()[0].toFixed(1)
console.log(
  `start-up, whole process, median of ${rounds} alternating rounds (load average ${load}, ${(await import('node:os')).cpus().length} cores)\n`,
)
console.log('| workload | host | wall ms | × node:wasi | CPU ms | × node:wasi |')
console.log('| --- | --- | ---: | ---: | ---: | ---: |')
for (const x of rows) {
  const ref = rows.find((y) => y.group === x.group && y.reference)
  const w = median(x.wall),
    c = median(x.cpu)
  console.log(
    `| ${x.group} | ${x.name} | ${w.toFixed(0)} | ${(w / median(ref.wall)).toFixed(2)} | ${c.toFixed(0)} | ${(c / median(ref.cpu)).toFixed(2)} |`,
  )
}
