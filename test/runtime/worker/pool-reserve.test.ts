/**
 * The worker pool's reserve (runtime/worker/pool.ts), as `caplet serve` and `caplet worker` use
 * it: that many runs at once without ending a worker afterwards, and a worker killed by a run's
 * timeout replaced in the background rather than by the next run.
 */
import { describe, expect, it } from 'vitest'
import { prepare } from '../../../runtime/index.js'
import { defaultPool } from '../../../runtime/worker/pool.js'
import { fixtureWasm, sampleWasm, text } from '../../support/guest.js'

describe('WorkerPool.reserve', () => {
  it('keeps more workers than its default idle count between runs, and replaces one a timeout killed', async () => {
    const n = defaultPool.maxIdle + 2
    defaultPool.reserve(n)
    expect(defaultPool.size).toBe(n)
    const hello = await prepare(sampleWasm('hello'))
    const all = await Promise.all(Array.from({ length: n }, () => hello.run()))
    expect(all.map((r) => text(r.stdout))).toEqual(Array(n).fill('hello from caplet\n'))
    // Before reserve, the workers above maxIdle were ended after each burst of runs.
    expect(defaultPool.size).toBe(n)
    const spin = await prepare(fixtureWasm('fuel_spin'), { args: ['fuel_spin', 'forever'], limits: { timeout: 100 } })
    const killed = await spin.run()
    expect(killed.limit).toBe('timeout')
    // The killed worker was discarded and a fresh one started at once, before any run asks.
    expect(defaultPool.size).toBe(n)
    expect(text((await hello.run()).stdout)).toBe('hello from caplet\n')
    await defaultPool.close()
    expect(defaultPool.size).toBe(0)
  })
})
