/**
 * Plugin samples written in languages caplet compiles: AssemblyScript (stdio convention, its
 * runtime started by `initialize: '_start'`) and JavaScript/TypeScript (`scriptPlugin`).
 */
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PluginCallError } from '../../../runtime/errors.js'
import { PolicyError } from '../../../runtime/errors.js'
import { compileScript, type ScriptProgram } from '../../../runtime/index.js'
import { plugin, scriptPlugin, type Plugin } from '../../../runtime/plugin/index.js'
import { compile } from '../../../toolchain/index.js'

const SAMPLES = new URL('../../../samples/plugins/', import.meta.url)
const opened: Plugin[] = []
const track = (p: Plugin) => {
  opened.push(p)
  return p
}
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as unknown
let words: Uint8Array
let orders: ScriptProgram
beforeAll(async () => {
  const r = await compileScript({
    files: { 'js-order-total.ts': readFileSync(new URL('js-order-total.ts', SAMPLES), 'utf8') },
    entry: 'js-order-total.ts',
  })
  if (r.program === undefined) throw new Error(JSON.stringify(r.diagnostics))
  orders = r.program
  words = (
    await compile({
      language: 'as',
      files: { 'words.as.ts': readFileSync(new URL('words.as.ts', SAMPLES), 'utf8') },
      options: { cache: false },
    })
  ).module
}, 120_000)
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()))
})

describe('samples/plugins/words.as.ts (AssemblyScript)', () => {
  for (const isolation of ['in-process', 'worker'] as const) {
    it(`counts words, skipping the stop words its top-level code set up (${isolation})`, async () => {
      const p = track(await plugin(words, { isolation, initialize: '_start', limits: { fuel: 1e8 } }))
      expect(p.exports()).toContain('count_words')
      expect(json(await p.call('count_words', 'The cat and the hat. The cat sat!'))).toEqual({
        words: 4,
        distinct: 3,
        top: 'cat',
        topCount: 2,
      })
      // Fresh state: the next call counts only its own input.
      expect(json(await p.call('count_words', 'Dog'))).toEqual({ words: 1, distinct: 1, top: 'dog', topCount: 1 })
      expect(json(await p.call('count_words', ''))).toEqual({ words: 0, distinct: 0, top: '', topCount: 0 })
      const long = 'alpha beta gamma beta '.repeat(2000)
      expect(json(await p.call('count_words', long))).toEqual({ words: 8000, distinct: 3, top: 'beta', topCount: 4000 })
    })
  }

  it('without initialize, its runtime is not started: the call fails (AssemblyScript aborts), the host stays up', async () => {
    const p = track(await plugin(words, { isolation: 'in-process' }))
    await expect(p.call('count_words', 'the cat')).rejects.toThrow(PluginCallError)
    await expect(p.call('count_words', 'the cat')).rejects.toThrow(/exited with code 255/)
  })
})

describe('samples/plugins/js-order-total.ts (JavaScript, scriptPlugin)', () => {
  const order = {
    customer: 'ada',
    lines: [
      { item: 'pen', quantity: 3, price: 1.25 },
      { item: 'ink', quantity: 1, price: 4 },
    ],
    coupon: 'TENOFF',
  }
  for (const isolation of ['in-process', 'worker'] as const) {
    it(`totals an order, validates one, call after call (${isolation})`, async () => {
      const p = track(await scriptPlugin(orders, { isolation, exports: ['total', 'validate'], limits: { fuel: 1e9 } }))
      expect(p.exports()).toEqual(['total', 'validate'])
      expect(json(await p.call('total', JSON.stringify(order)))).toEqual({ items: 4, subtotal: 7.75, discount: 0.78, total: 6.97 })
      expect(json(await p.call('validate', JSON.stringify(order)))).toEqual({ ok: true })
      expect(
        json(await p.call('validate', JSON.stringify({ customer: '', lines: [{ item: 'x', quantity: 0, price: -1 }], coupon: 'FREE' }))),
      ).toEqual({
        ok: false,
        problems: [
          'customer: missing',
          'lines[0].quantity: a positive integer',
          'lines[0].price: a non-negative number',
          'coupon: unknown "FREE"',
        ],
      })
      // A throw in the plugin fails that call with its message; the next call is unaffected.
      const e = (await p.call('total', JSON.stringify({ customer: 'x', lines: [] })).catch((x: unknown) => x)) as PluginCallError
      expect(e).toBeInstanceOf(PluginCallError)
      expect(e.failure).toBe('plugin')
      expect(e.details.stderr).toMatch(/invalid order: lines: at least one/)
      expect(json(await p.call('total', JSON.stringify({ customer: 'b', lines: [{ item: 'y', quantity: 2, price: 0.5 }] })))).toEqual({
        items: 2,
        subtotal: 1,
        discount: 0,
        total: 1,
      })
    }, 60_000)
  }

  it('limits apply per call (fuel), and only the declared exports are callable', async () => {
    const p = track(await scriptPlugin(orders, { isolation: 'in-process', exports: ['total'], limits: { fuel: 1e9 } }))
    const e = (await p.call('total', JSON.stringify(order), { fuel: 1000 }).catch((x: unknown) => x)) as PluginCallError
    expect([e.failure, e.limit]).toEqual(['limit', 'fuel'])
    await expect(p.call('validate', '{}')).rejects.toThrow(/no callable export "validate"/)
    expect(json(await p.call('total', JSON.stringify(order)))).toMatchObject({ total: 6.97 })
  }, 60_000)

  it('refuses what a JavaScript plugin cannot honour, naming each', async () => {
    const e = await scriptPlugin(orders, { host: { app: 1 }, state: 'keep', stdin: 'x', exports: ['bad name'] } as never).catch(
      (x: unknown) => x,
    )
    expect(e).toBeInstanceOf(PolicyError)
    expect((e as Error).message).toMatch(/host\.app: must be a function or an object of functions/)
    expect((e as Error).message).toMatch(/state:/)
    expect((e as Error).message).toMatch(/stdin: not a plugin option/)
    expect((e as Error).message).toMatch(/exports: "bad name" is not a name/)
  })
})

describe('samples/plugins/js-order-rules.ts (JavaScript, exported functions)', () => {
  let rules: ScriptProgram
  beforeAll(async () => {
    const r = await compileScript({
      files: { 'js-order-rules.ts': readFileSync(new URL('js-order-rules.ts', SAMPLES), 'utf8') },
      entry: 'js-order-rules.ts',
    })
    if (r.program === undefined) throw new Error(JSON.stringify(r.diagnostics))
    rules = r.program
  }, 60_000)
  const order = { customer: 'ada', lines: [{ item: 'pen', quantity: 3, price: 1.25 }], coupon: 'HALF' }
  for (const [isolation, state] of [
    ['in-process', 'fresh'],
    ['in-process', 'keep'],
    ['worker', 'fresh'],
  ] as const) {
    it(`lists its exports and answers the same as the top-level sample (${isolation}, ${state})`, async () => {
      const p = track(await scriptPlugin(rules, { isolation, state, limits: { fuel: 1e8 } }))
      const top = track(await scriptPlugin(orders, { isolation, state, exports: ['total', 'validate'], limits: { fuel: 1e8 } }))
      expect(p.exports().sort()).toEqual(['total', 'validate'])
      for (let i = 1; i <= 20; i++) {
        const o = JSON.stringify({ ...order, lines: [{ item: 'pen', quantity: i, price: 1.25 }] })
        expect(json(await p.call('total', o))).toEqual(json(await top.call('total', o)))
      }
      expect(json(await p.call('validate', '{"customer":"","lines":[]}'))).toEqual({
        ok: false,
        problems: ['customer: missing', 'lines: at least one'],
      })
      const e = (await p.call('total', '{"customer":"x","lines":[]}').catch((x: unknown) => x)) as PluginCallError
      expect([e.failure, e.message]).toEqual(['plugin', expect.stringMatching(/invalid order: lines: at least one/)])
      expect(json(await p.call('total', JSON.stringify(order)))).toEqual({ items: 3, subtotal: 3.75, discount: 1.88, total: 1.87 })
    }, 60_000)
  }
})
