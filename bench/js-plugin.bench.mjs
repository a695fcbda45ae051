// JavaScript plugin calls: per-call latency of a small TypeScript plugin, `total` on a 3-line
// order, under scriptPlugin(), in-process (callSync) and worker (call), fresh and keep state, in
// both conventions: the top level per call (samples/plugins/js-order-total.ts) and exported
// functions (samples/plugins/js-order-rules.ts, the module evaluated once); beside the C Extism
// sample's in-process fresh call (the peer the ratio is taken against), in one run.
//
//   npm run bench:js-plugin  (or: node scripts/build.mjs && node --expose-gc bench/js-plugin.bench.mjs [--quick])
//
// Prints figures; asserts nothing but each call's answer. Rounds alternate the contenders; the
// median round counts. Each contender's timing starts after a full collection.
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { compileScript, plugin, scriptPlugin } from '../dist/index.js'

const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 3 : 5
const src = readFileSync(new URL('../samples/plugins/js-order-total.ts', import.meta.url), 'utf8')
const compiled = await compileScript({ files: { 'js-order-total.ts': src }, entry: 'js-order-total.ts' })
if (compiled.program === undefined) throw new Error(JSON.stringify(compiled.diagnostics))
const program = compiled.program
const rulesSrc = readFileSync(new URL('../samples/plugins/js-order-rules.ts', import.meta.url), 'utf8')
const rules = (await compileScript({ files: { 'js-order-rules.ts': rulesSrc }, entry: 'js-order-rules.ts' })).program
const order = JSON.stringify({
  customer: 'ada',
  coupon: 'TENOFF',
  lines: [
    { item: 'pen', quantity: 3, price: 1.25 },
    { item: 'ink', quantity: 1, price: 4 },
    { item: 'pad', quantity: 2, price: 2.5 },
  ],
})
const EXPECT = '{"items":6,"subtotal":12.75,"discount":1.28,"total":11.47}\n'
const wasm = readFileSync(new URL('../samples/plugins/extism-vowels.wasm', import.meta.url))
const vowels = new TextEncoder().encode('The quick brown fox jumps over the lazy dog, again and again.')
const opts = { exports: ['total', 'validate'], limits: { fuel: 1e8 } }
const fnOpts = { limits: { fuel: 1e8 } }
const EXPECT_FN = EXPECT.trimEnd()

/** Contenders: name, calls per round, and a factory returning a call function. */
const contenders = [
  ['js in-process fresh', 2_000, async () => sync(await scriptPlugin(program, { ...opts, isolation: 'in-process' }))],
  // A keep plugin evaluates the program again in one engine instance per call, and QuickJS keeps
  // every evaluated module: its heap (and each collection's cost) grows call by call, so such a
  // plugin makes at most 1,000 calls. It is made anew for each round (warm-up + 700 calls), untimed.
  ['js in-process keep', 700, async () => sync(await scriptPlugin(program, { ...opts, isolation: 'in-process', state: 'keep' })), true],
  ['js worker fresh', 1_000, async () => asyncCall(await scriptPlugin(program, opts))],
  ['js exports in-process fresh', 4_000, async () => sync(await scriptPlugin(rules, { ...fnOpts, isolation: 'in-process' }), EXPECT_FN)],
  [
    'js exports in-process keep',
    20_000,
    async () => sync(await scriptPlugin(rules, { ...fnOpts, isolation: 'in-process', state: 'keep' }), EXPECT_FN),
  ],
  ['js exports worker fresh', 2_000, async () => asyncCall(await scriptPlugin(rules, fnOpts), EXPECT_FN)],
  ['C (extism-vowels) in-process fresh', 20_000, async () => cPlugin(await plugin(wasm, { isolation: 'in-process' }))],
]
const text = (b) => new TextDecoder().decode(b)
function sync(p, expect = EXPECT) {
  return { call: () => p.callSync('total', order), close: () => p.close(), sync: true, check: (o) => text(o) === expect }
}
function asyncCall(p, expect = EXPECT) {
  return { call: () => p.call('total', order), close: () => p.close(), sync: false, check: (o) => text(o) === expect }
}
function cPlugin(p) {
  return { call: () => p.callSync('count_vowels', vowels), close: () => p.close(), sync: true, check: (o) => text(o).includes('"count"') }
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
    const first = await c.call()
    if (!c.check(first)) throw new Error(`${name}: wrong answer ${text(first)}`)
    for (let i = 0; i < Math.min(200, calls); i++) await c.call() // warm-up
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
const base = us.get('C (extism-vowels) in-process fresh')
console.log(
  `JavaScript plugin calls (${ROUNDS} rounds, median; Node ${process.versions.node}; load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}): 'total' on a ${order.length}-byte order; js = js-order-total.ts (top level per call), js exports = js-order-rules.ts`,
)
console.log('| contender | µs/call | calls/s | × C in-process fresh |')
console.log('| --- | ---: | ---: | ---: |')
for (const [name, v] of us)
  console.log(
    `| ${name} | ${v.toFixed(1)} | ${Math.round(1e6 / v).toLocaleString('en')} | ${v / base >= 10 ? (v / base).toFixed(0) : (v / base).toFixed(1)} |`,
  )
