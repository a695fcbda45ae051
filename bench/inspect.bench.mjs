// `caplet inspect` on large modules: CRuby's ruby+stdlib.wasm (30 MB, @ruby/3.4-wasm-wasi) and
// ruby.wasm (16 MB). The analysis alone (read bytes, inspectModule, text and JSON rendering), in
// process, median of N; and the CLI end to end (node start-up included), median of a few.
//   node bench/inspect.bench.mjs [--rounds N]
import { execFileSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'
import { BUILD, ROOT } from './lib/paths.mjs'

const argv = process.argv.slice(2)
const i = argv.indexOf('--rounds')
const ROUNDS = i >= 0 ? Number(argv[i + 1]) : 5

const outfile = join(BUILD, 'inspect', 'inspect.js')
await build({
  entryPoints: [join(ROOT, 'runtime/inspect/index.ts')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
})
const { inspectModule, inspectText, inspectJson } = await import(outfile)

const dist = join(ROOT, 'node_modules/@ruby/3.4-wasm-wasi/dist')
const modules = ['ruby+stdlib.wasm', 'ruby.wasm'].map((f) => join(dist, f))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

console.log(`caplet inspect: median of ${ROUNDS} runs, ms`)
console.log(`  ${'module'.padEnd(18)} ${'MB'.padStart(6)} ${'analyse'.padStart(9)} ${'+render'.padStart(9)} ${'CLI'.padStart(9)}`)
for (const path of modules) {
  const analyse = [],
    render = [],
    cli = []
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now()
    const report = inspectModule(readFileSync(path))
    const t1 = performance.now()
    inspectText(report, 'm.wasm')
    JSON.stringify(inspectJson(report))
    const t2 = performance.now()
    if (r > 0) {
      analyse.push(t1 - t0)
      render.push(t2 - t0)
    } // round 0 warms the JIT
  }
  for (let r = 0; r < Math.min(ROUNDS, 3); r++) {
    const t0 = performance.now()
    execFileSync(process.execPath, [join(ROOT, 'bin/caplet.js'), 'inspect', path], { stdio: 'ignore' })
    cli.push(performance.now() - t0)
  }
  const mb = statSync(path).size / 2 ** 20
  console.log(
    `  ${path.split('/').pop().padEnd(18)} ${mb.toFixed(1).padStart(6)} ${median(analyse).toFixed(0).padStart(9)} ${median(render).toFixed(0).padStart(9)} ${median(cli).toFixed(0).padStart(9)}`,
  )
}
