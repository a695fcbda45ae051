/**
 * Soak: many runs, sequential and concurrent, complete with correct results, and the host's
 * memory and descriptors come back to where they were (no leaked workers, memories or fds).
 */
import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { run } from '../../runtime/index.js'
import { defaultPool } from '../../runtime/worker/pool.js'
import { sampleWasm, text } from '../support/guest.js'

const openFds = () => readdirSync('/proc/self/fd').length

describe('soak', () => {
  it('2,000 sequential and 200 concurrent runs, with RSS and fds bounded', async () => {
    const hello = sampleWasm('hello')
    // Warm the pool and the module cache before taking the baseline.
    for (let i = 0; i < 20; i++) await run(hello)
    await defaultPool.close()
    const fdsBefore = openFds()
    const rssBefore = process.memoryUsage().rss
    for (let i = 0; i < 2000; i++) {
      const r = await run(hello)
      if (r.exitCode !== 0 || text(r.stdout) !== 'hello from caplet\n') throw new Error(`run ${i} went wrong: ${JSON.stringify(r)}`)
    }
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => run(sampleWasm('cat'), { stdin: `input ${i}\n` })))
    results.forEach((r, i) => expect(text(r.stdout)).toBe(`input ${i}\n`))
    // Idle workers are kept for reuse; closing the pool must give every descriptor back.
    await defaultPool.close()
    // Terminated threads give their descriptors back asynchronously: wait for it (bounded), so a
    // loaded machine does not fail the check while a real leak still does.
    for (let waited = 0; openFds() > fdsBefore && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50))
    const grownMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20
    expect(grownMiB).toBeLessThan(96)
    expect(openFds()).toBeLessThanOrEqual(fdsBefore)
  }, 120_000)
})
