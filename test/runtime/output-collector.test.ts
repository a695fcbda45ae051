/**
 * The one collector of captured output (in-process runs and the browser runtime): the sink keeps
 * a copy (its writer reuses the buffer), `keep` takes a posted buffer as is, bytes join in order.
 */
import { describe, expect, it } from 'vitest'
import { OutputCollector } from '../../runtime/output-collector.js'
import { run } from '../../runtime/index.js'
import { repoRoot } from '../support/guest.js'
import { join } from 'node:path'

describe('OutputCollector', () => {
  it('the sink copies: a writer that reuses its buffer does not change what was collected', () => {
    const c = new OutputCollector()
    const buf = new Uint8Array([1, 2, 3])
    c.sink(buf)
    buf.fill(9)
    c.sink(buf.subarray(0, 2))
    expect([...c.bytes()]).toEqual([1, 2, 3, 9, 9])
    expect(c.total).toBe(5)
  })

  it('keep takes the buffer itself, and chunks join in the order given', () => {
    const c = new OutputCollector()
    expect(c.bytes().byteLength).toBe(0)
    const a = new Uint8Array([104, 105])
    c.keep(a)
    expect(c.bytes()).toBe(a)
    c.keep(new Uint8Array(0))
    c.keep(new Uint8Array([33]))
    expect(new TextDecoder().decode(c.bytes())).toBe('hi!')
    expect(c.total).toBe(3)
  })

  it('an in-process run captures through it, byte for byte', async () => {
    const input = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff)
    const r = await run(join(repoRoot, 'samples/cat.wasm'), { isolation: 'in-process', stdin: input })
    expect(r.exitCode).toBe(0)
    expect(Buffer.from(r.stdout).equals(Buffer.from(input))).toBe(true)
  })
})
