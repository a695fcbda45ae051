/**
 * Red-team: prepared programs (runtime/sandbox.ts `prepare`/`prepareSync`, runtime/policy.ts
 * `resolveRunInput`, runtime/module.ts's bytes cache). Attacks on what a run gets: input that
 * changes after it was given (a reused buffer, a getter, a Proxy), policy fields smuggled in a
 * run's input, state left by an earlier run (output buffers, clocks, fuel), and module bytes
 * that change under the cache (shared memory, views over a larger buffer, detached buffers).
 */
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { ModuleError, PolicyError, prepare, prepareSync, run, runSync, type RunInput } from '../../runtime/index.js'
import { defaultPool } from '../../runtime/worker/pool.js'
import { fixtureWasm, sampleWasm, text } from '../support/guest.js'

const CAT = sampleWasm('cat')
const ARGSENV = fixtureWasm('diff_argsenv')
const hello = new Uint8Array(readFileSync(sampleWasm('hello')))
const GREETING = Buffer.from(hello).indexOf('hello from caplet')
const argvOf = (stdout: Uint8Array) =>
  text(stdout)
    .split('\n')
    .filter((l) => l.startsWith('argv[') && !l.startsWith('argv[argc]'))

describe('findings', () => {
  it("stdin bytes given to prepare() are the program's: changing the buffer afterwards changes no run", () => {
    const stdin = new TextEncoder().encode('prepared\n')
    const program = prepareSync(CAT, { stdin, isolation: 'in-process' })
    stdin.set(new TextEncoder().encode('changed!\n'))
    expect(text(program.runSync().stdout)).toBe('prepared\n')
    // A Node Buffer too (whose slice() is a view).
    const buffer = Buffer.from('a buffer\n')
    const fromBuffer = prepareSync(CAT, { stdin: buffer, isolation: 'in-process' })
    buffer.fill(0x21)
    expect(text(fromBuffer.runSync().stdout)).toBe('a buffer\n')
  })

  it('a run waiting for a free worker runs the stdin it was given, not what its buffer holds later', async () => {
    const program = await prepare(CAT)
    // One buffer, refilled for each run (as a loop reading records would do); more runs than
    // workers, so some wait in the pool's queue while the buffer changes.
    const buf = new Uint8Array(8)
    const n = defaultPool.maxWorkers + 3
    const runs: Promise<{ stdout: Uint8Array }>[] = []
    for (let i = 0; i < n; i++) {
      buf.set(new TextEncoder().encode(`run ${String(i).padStart(3, '0')}\n`))
      runs.push(program.run({ stdin: buf }))
    }
    const got = (await Promise.all(runs)).map((r) => text(r.stdout))
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `run ${String(i).padStart(3, '0')}\n`))
  })

  it('a detached buffer is refused as a ModuleError, as other unusable bytes are', async () => {
    const ab = hello.slice().buffer
    structuredClone(ab, { transfer: [ab] })
    expect(() => runSync(ab)).toThrow(ModuleError)
    const view = hello.slice()
    expect(text(runSync(view).stdout)).toBe('hello from caplet\n')
    structuredClone(view.buffer, { transfer: [view.buffer] })
    expect(() => prepareSync(view)).toThrow(ModuleError)
    await expect(run(view)).rejects.toBeInstanceOf(ModuleError)
  })
})

describe('attacks that held: per-run input', () => {
  const program = prepareSync(ARGSENV, { isolation: 'in-process', env: { K: 'prepared' }, limits: { fuel: 1e8 } })

  it('policy fields on the input\'s prototype are not read; a JSON "__proto__" is refused', () => {
    const inherited = Object.create({
      limits: { fuel: 1e12 },
      mounts: [{ guest: '/etc', host: '/etc' }],
      args: ['x', 'inherited'],
    }) as RunInput
    const r = program.runSync(inherited)
    expect(argvOf(r.stdout)).toEqual(['argv[0]: "diff_argsenv.wasm" (17 bytes)'])
    expect(r.stats.fuelUsed).toBeLessThanOrEqual(1e8)
    expect(() => program.runSync(JSON.parse('{"__proto__": {"limits": {}}, "args": ["j"]}') as RunInput)).toThrow(PolicyError)
  })

  it('a getter or a Proxy is read once: what was checked is what runs', () => {
    let reads = 0
    const flipping = {
      get args() {
        return reads++ === 0 ? ['a', 'checked'] : ['a', 'NOT\0CHECKED']
      },
    }
    expect(argvOf(program.runSync(flipping).stdout)).toEqual(['argv[0]: "a" (1 bytes)', 'argv[1]: "checked" (7 bytes)'])
    expect(reads).toBe(1)
    let gets = 0
    const env = new Proxy({ A: 'x' }, { get: (t, k) => (gets++ === 0 ? t[k as 'A'] : 'y\0z') })
    expect(text(program.runSync({ env }).stdout)).toContain('"A=x"')
    const args = new Proxy(['p', 'ok'], { get: (t, k) => (k === '1' && gets++ > 1 ? 'late\0' : Reflect.get(t, k)) })
    expect(argvOf(program.runSync({ args }).stdout)).toEqual(['argv[0]: "p" (1 bytes)', 'argv[1]: "ok" (2 bytes)'])
  })

  it('frozen input, and values that are no input at all, run with the prepared policy', () => {
    expect(argvOf(program.runSync(Object.freeze({ args: Object.freeze(['f', 'frozen']) })).stdout)[1]).toBe('argv[1]: "frozen" (6 bytes)')
    for (const none of [null, [], 0]) {
      const r = program.runSync(none as unknown as RunInput)
      expect(text(r.stdout)).toContain('"K=prepared"')
      expect(r.stats.fuelUsed).toBeLessThanOrEqual(1e8)
    }
    expect(() => program.runSync('args' as unknown as RunInput)).toThrow(PolicyError)
  })
})

describe('attacks that held: state between runs', () => {
  it("a worker's reused capture buffer shows a run only its own output", async () => {
    const program = await prepare(CAT)
    expect((await program.run({ stdin: 'x'.repeat(5000) })).stdout.byteLength).toBe(5000)
    for (let i = 0; i < 3; i++) expect(text((await program.run({ stdin: 'short\n' })).stdout)).toBe('short\n')
    expect((await program.run()).stdout.byteLength).toBe(0)
  })

  it('deterministic runs give the same bytes on every run, in-process and in a worker, and fuel starts full each time', async () => {
    const program = prepareSync(fixtureWasm('rt_entropy'), { deterministic: true, limits: { fuel: 1e8 } })
    const results = [program.runSync(), program.runSync(), await program.run(), await program.run()]
    expect(new Set(results.map((r) => text(r.stdout))).size).toBe(1)
    expect(new Set(results.map((r) => r.stats.fuelUsed)).size).toBe(1)
  })

  it('concurrent runs each keep their own output limit', async () => {
    const program = await prepare(CAT, { limits: { stdout: 100 } })
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => program.run({ stdin: String(i).repeat(1000) })))
    results.forEach((r, i) => {
      expect(r.limit).toBe('stdout')
      expect(text(r.stdout)).toBe(String(i).repeat(100))
    })
  })
})

describe('attacks that held: module bytes', () => {
  it('a view over a larger buffer: bytes outside it change nothing, bytes inside it are what runs', () => {
    const big = new Uint8Array(hello.length + 64)
    big.set(hello, 32)
    const view = big.subarray(32, 32 + hello.length)
    expect(text(runSync(view).stdout)).toBe('hello from caplet\n')
    big.fill(7, 0, 32)
    big.fill(7, 32 + hello.length)
    expect(text(runSync(view).stdout)).toBe('hello from caplet\n')
    view[GREETING] = 'j'.charCodeAt(0)
    expect(text(runSync(view).stdout)).toBe('jello from caplet\n')
  })

  it("bytes in shared memory rewritten by another thread during runs: the cache never names one module by another's bytes", async () => {
    const sab = new SharedArrayBuffer(hello.length)
    const shared = new Uint8Array(sab)
    shared.set(hello)
    const stop = new Int32Array(new SharedArrayBuffer(4))
    const racer = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads')
      const b = new Uint8Array(workerData.sab)
      const stop = new Int32Array(workerData.stop)
      parentPort.postMessage('go')
      for (let i = 0; Atomics.load(stop, 0) === 0; i++) b[workerData.at] = (i & 1) ? 0x6a : 0x68
    `,
      { eval: true, workerData: { sab, stop: stop.buffer, at: GREETING } },
    )
    await new Promise((resolve) => racer.once('message', resolve))
    const seen = new Set<string>()
    try {
      for (let i = 0; i < 40; i++) seen.add(text(runSync(shared).stdout))
    } finally {
      Atomics.store(stop, 0, 1)
      await racer.terminate()
    }
    // Each run ran one whole version of the bytes...
    for (const out of seen) expect(['hello from caplet\n', 'jello from caplet\n']).toContain(out)
    // ...and each version, passed afresh, still runs itself.
    const jello = hello.slice()
    jello[GREETING] = 0x6a
    expect(text(runSync(hello.slice()).stdout)).toBe('hello from caplet\n')
    expect(text(runSync(jello).stdout)).toBe('jello from caplet\n')
  })
})
