/**
 * Plugin samples written in languages caplet compiles: AssemblyScript (stdio convention, its
 * runtime started by `initialize: '_start'`).
 */
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PluginCallError } from '../../../runtime/errors.js'
import { plugin, type Plugin } from '../../../runtime/plugin/index.js'
import { compile } from '../../../toolchain/index.js'

const SAMPLES = new URL('../../../samples/plugins/', import.meta.url)
const opened: Plugin[] = []
const track = (p: Plugin) => { opened.push(p); return p }
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as unknown
let words: Uint8Array
beforeAll(async () => {
  words = (await compile({ language: 'as', files: { 'words.as.ts': readFileSync(new URL('words.as.ts', SAMPLES), 'utf8') }, options: { cache: false } })).module
}, 120_000)
afterAll(async () => { await Promise.all(opened.map((p) => p.close())) })

describe('samples/plugins/words.as.ts (AssemblyScript)', () => {
  for (const isolation of ['in-process', 'worker'] as const) {
    it(`counts words, skipping the stop words its top-level code set up (${isolation})`, async () => {
      const p = track(await plugin(words, { isolation, initialize: '_start', limits: { fuel: 1e8 } }))
      expect(p.exports()).toContain('count_words')
      expect(json(await p.call('count_words', 'The cat and the hat. The cat sat!'))).toEqual({ words: 4, distinct: 3, top: 'cat', topCount: 2 })
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
