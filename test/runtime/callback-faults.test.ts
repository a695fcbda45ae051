/**
 * An embedder's stdout/stderr/trace callback that throws: never an uncaught exception in the
 * embedder's process, never a broken run; the result warns once per callback, in a worker and
 * in-process alike.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { run } from '../../runtime/index.js'
import { repoRoot } from '../support/guest.js'
import { join } from 'node:path'

const HELLO = join(repoRoot, 'samples/hello.wasm')
const CAT = join(repoRoot, 'samples/cat.wasm')

let uncaught: unknown[] = []
const onUncaught = (e: unknown) => uncaught.push(e)
beforeEach(() => {
  uncaught = []
  process.on('uncaughtException', onUncaught)
})
afterEach(() => {
  process.off('uncaughtException', onUncaught)
})

describe.each(['worker', 'in-process'] as const)('a throwing callback (%s)', (isolation) => {
  it('stdout and trace callbacks that throw: the run ends normally, one warning each, nothing uncaught', async () => {
    let calls = 0
    const r = await run(HELLO, {
      isolation,
      stdout: () => {
        calls++
        throw new Error('embedder bug')
      },
      trace: () => {
        throw new Error('trace bug')
      },
    })
    await new Promise((res) => setTimeout(res, 50))
    expect(uncaught).toEqual([])
    expect(r.exitCode).toBe(0)
    expect(r.trap).toBeUndefined()
    expect(calls).toBeGreaterThan(0)
    expect(r.warnings).toEqual([
      expect.stringMatching(/^the (stdout|trace) callback threw (once|\d+ times) \(first: (embedder|trace) bug\); the run went on$/),
      expect.stringMatching(/^the (stdout|trace) callback threw (once|\d+ times) \(first: (embedder|trace) bug\); the run went on$/),
    ])
    expect(new Set(r.warnings!.map((w) => w.split(' ')[1]))).toEqual(new Set(['stdout', 'trace']))
  })

  it('a stderr callback that throws leaves the guest exit code and the captured stdout intact', async () => {
    const r = await run(CAT, {
      isolation,
      args: ['cat', '/no/such/file'],
      stderr: () => {
        throw 'not even an Error'
      },
    })
    expect(uncaught).toEqual([])
    expect(r.exitCode).not.toBe(0)
    expect(r.trap).toBeUndefined()
    expect(r.warnings).toEqual([
      expect.stringMatching(/^the stderr callback threw (once|\d+ times) \(first: not even an Error\); the run went on$/),
    ])
  })
})
