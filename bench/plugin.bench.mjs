// Plugin calls: per-call latency and throughput of one C plugin on Extism's ABI
// (samples/plugins/extism-vowels.wasm, `count_vowels`) under caplet (in-process and worker,
// fresh and keep state) and under @extism/extism (the Extism JS SDK, same module, same input),
// in one run, as ratios to Extism's own calls (which keep state). Also caplet's reset cost
// (fresh minus keep) against re-instantiating per call (`reset: 'instantiate'`).
//
//   npm run build && node --expose-gc bench/plugin.bench.mjs [--quick]
//
// Prints figures; asserts nothing. Rounds alternate the contenders; the median round counts.
// Each contender's timing starts after a full collection, so none pays for another's garbage
// (re-instantiating leaves a thousand memories behind per round).
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import createPlugin from '@extism/extism'
import { plugin } from '../dist/index.js'

const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 3 : 5
const wasm = readFileSync(new URL('../samples/plugins/extism-vowels.wasm', import.meta.url))
const input = new TextEncoder().encode('The quick brown fox jumps over the lazy dog, again and again.')
const EXPECT = [...new TextDecoder().decode(input)].filter((c) => 'aeiouAEIOU'.includes(c)).length

/** Contenders: name, calls per round, and a factory returning an async or sync call function. */
const contenders = [
  ['caplet in-process fresh', 20_000, async () => sync(await plugin(wasm, { isolation: 'in-process' }))],
  ['caplet in-process keep', 20_000, async () => sync(await plugin(wasm, { isolation: 'in-process', state: 'keep' }))],
  ['caplet in-process re-instantiate', 1_000, async () => sync(await plugin(wasm, { isolation: 'in-process', reset: 'instantiate' }))],
  ['caplet worker fresh', 3_000, async () => asyncCall(await plugin(wasm))],
  ['caplet worker keep', 3_000, async () => asyncCall(await plugin(wasm, { state: 'keep' }))],
  // Extism's JS SDK (1.0.3) fails every call after its 8,191st on one plugin ("cannot assign to
  // this block"): its plugins are made anew for each round, untimed, and stay under that count.
  ['extism foreground (keeps state)', 4_000, async () => extism(false), true],
  ['extism worker (keeps state)', 2_000, async () => extism(true), true],
]

function check(out) {
  const { count } = JSON.parse(new TextDecoder().decode(out))
  if (count !== EXPECT) throw new Error(`wrong answer: ${count}`)
}
function sync(p) {
  return { call: () => p.callSync('count_vowels', input), close: () => p.close(), sync: true }
}
function asyncCall(p) {
  return { call: () => p.call('count_vowels', input), close: () => p.close(), sync: false }
}
async function extism(runInWorker) {
  const p = await createPlugin({ wasm: [{ data: wasm }] }, { useWasi: true, runInWorker })
  return { call: async () => (await p.call('count_vowels', input)).bytes(), close: () => p.close(), sync: false }
}

const results = new Map(contenders.map(([name]) => [name, []]))
const made = new Map()
for (const [name, , make] of contenders) made.set(name, await make())
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, n, make, remake] of contenders) {
    if (remake && round > 0) {
      await made.get(name).close()
      made.set(name, await make())
    }
    const c = made.get(name)
    const calls = quick ? Math.ceil(n / 4) : n
    check(await c.call())
    for (let i = 0; i < Math.min(500, calls); i++) await c.call() // warm-up
    globalThis.gc?.()
    const t = performance.now()
    if (c.sync) for (let i = 0; i < calls; i++) c.call()
    else for (let i = 0; i < calls; i++) await c.call()
    results.get(name).push(((performance.now() - t) * 1000) / calls)
  }
}
for (const c of made.values()) await c.close()

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const us = new Map([...results].map(([k, v]) => [k, median(v)]))
const base = us.get('extism foreground (keeps state)')
console.log(
  `plugin calls (${ROUNDS} rounds, median; Node ${process.versions.node}; load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}): ${wasm.byteLength}-byte module, count_vowels on ${input.byteLength} bytes`,
)
console.log('| contender | µs/call | calls/s | × extism foreground |')
console.log('| --- | ---: | ---: | ---: |')
for (const [name, v] of us)
  console.log(`| ${name} | ${v.toFixed(1)} | ${Math.round(1e6 / v).toLocaleString('en')} | ${(v / base).toFixed(2)} |`)
const reset = us.get('caplet in-process fresh') - us.get('caplet in-process keep')
const reinst = us.get('caplet in-process re-instantiate') - us.get('caplet in-process keep')
console.log(
  `\nreset by snapshot: ${reset.toFixed(1)} µs per call; by re-instantiation: ${reinst.toFixed(1)} µs per call (${(reinst / Math.max(reset, 0.1)).toFixed(1)}×)`,
)
