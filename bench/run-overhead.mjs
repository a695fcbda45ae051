// Run overhead: a warm "hello" in caplet's worker mode and in-process mode (each per run and as a
// prepared program) against node:wasi in-process, measured alternately in one process
// (A B C A B C ...), medians and min–max.
// Usage: node bench/run-overhead.mjs [rounds]
import { readFileSync } from 'node:fs'
import { WASI } from 'node:wasi'
import { prepare, prepareSync, run, runSync } from '../dist/index.js'

const rounds = Number(process.argv[2] ?? 30)
const wasmPath = new URL('../samples/hello.wasm', import.meta.url)
const bytes = readFileSync(wasmPath)
const mod = new WebAssembly.Module(bytes)

const program = prepareSync(bytes, { stdout: 'discard', isolation: 'in-process' })
const workerProgram = await prepare(bytes, { stdout: 'discard' })
const hosts = {
  'caplet worker': async () => {
    await run(bytes, { stdout: 'discard' })
  },
  'caplet worker prepared': async () => {
    await workerProgram.run()
  },
  'caplet in-process': async () => {
    runSync(bytes, { stdout: 'discard' })
  },
  'caplet prepared': async () => {
    program.runSync()
  },
  'node:wasi in-process': async () => {
    const wasi = new WASI({ version: 'preview1', args: ['hello'], returnOnExit: true, stdout: 2 })
    // node:wasi writes straight to an fd; /dev/null keeps the terminal quiet.
    const inst = new WebAssembly.Instance(mod, wasi.getImportObject())
    wasi.start(inst)
  },
}
process.removeAllListeners('warning')
const samples = Object.fromEntries(Object.keys(hosts).map((k) => [k, []]))
for (let i = 0; i < 5; i++) for (const f of Object.values(hosts)) await f()
for (let r = 0; r < rounds; r++) {
  for (const [name, f] of Object.entries(hosts)) {
    const t = performance.now()
    await f()
    samples[name].push(performance.now() - t)
  }
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]
}
const base = median(samples['node:wasi in-process'])
console.log(`hello, ${rounds} rounds, ms per run (median, min–max), ratio to node:wasi`)
for (const [name, s] of Object.entries(samples)) {
  console.log(
    `${name.padEnd(24)} ${median(s).toFixed(3).padStart(8)}  (${Math.min(...s).toFixed(3)}–${Math.max(...s).toFixed(3)})  ${(median(s) / base).toFixed(2)}×`,
  )
}
