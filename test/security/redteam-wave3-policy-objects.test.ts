/**
 * Red team, wave 3: hostile policy objects given to the API (`resolvePolicy`, `prepare`, `run`).
 * Getters that answer differently on each read, Proxies whose keys or values change, accessor
 * array elements, `__proto__` and `toJSON` keys, Symbol keys, frozen and sealed objects, huge
 * arrays. The policy checked must be the policy applied: each field of the caller's object is
 * read once, and what runs is what was validated (no time-of-check/time-of-use gap between the
 * schema's reading and the resolution's). The host keeps serving ordinary policies after.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { plugin, PolicyError, prepareSync, resolvePolicy, runSync, type RunOptions } from '../../runtime/index.js'
import { fixtureWasm } from '../support/guest.js'

const dir = mkdtempSync(join(tmpdir(), 'caplet-redteam-policy-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** An object whose `key` gives `first` on its first read and `then` on every later one; counts reads. */
function flipping<T extends object>(base: T, key: string, first: unknown, then: unknown): { obj: T; reads: () => number } {
  let n = 0
  Object.defineProperty(base, key, {
    enumerable: true,
    configurable: true,
    get: () => (n++ === 0 ? first : then),
  })
  return { obj: base, reads: () => n }
}

function problems(options: unknown): string[] | undefined {
  try {
    resolvePolicy(options as RunOptions)
    return undefined
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError)
    return (e as PolicyError).problems
  }
}

const stillServing = () => {
  const p = resolvePolicy({ args: ['a'], env: { A: '1' }, limits: { fds: 10, fuel: 5, memory: '1MiB' } })
  expect(p.limits).toMatchObject({ maxFds: 10, fuel: 5, memoryPages: 16 })
  expect(p.args).toEqual(['a'])
}

describe('a value that changes between reads: the value checked is the value applied', () => {
  it.each([
    ['limits.fds', 'fds', 64, 1e12, (p: ReturnType<typeof resolvePolicy>) => p.limits.maxFds, 64],
    ['limits.fds (NaN later)', 'fds', 64, Number.NaN, (p: ReturnType<typeof resolvePolicy>) => p.limits.maxFds, 64],
    ['limits.fuel', 'fuel', 1000, -1, (p: ReturnType<typeof resolvePolicy>) => p.limits.fuel, 1000],
    ['limits.inodes', 'inodes', 10, -5, (p: ReturnType<typeof resolvePolicy>) => p.limits.inodes, 10],
    ['limits.memory', 'memory', '1MiB', '8GiB', (p: ReturnType<typeof resolvePolicy>) => p.limits.memoryPages, 16],
    ['limits.disk', 'disk', '1KiB', 'lots', (p: ReturnType<typeof resolvePolicy>) => p.limits.diskBytes, 1024],
  ])('%s', (_, key, first, then, pick, want) => {
    const { obj: limits, reads } = flipping({}, key, first, then)
    const p = resolvePolicy({ limits } as RunOptions)
    expect(pick(p)).toBe(want)
    expect(reads()).toBe(1)
    stillServing()
  })

  it('an args element that is an accessor (valid when checked, NUL after)', () => {
    const args: string[] = ['ok']
    let n = 0
    Object.defineProperty(args, 0, { enumerable: true, configurable: true, get: () => (n++ === 0 ? 'ok' : 'a\0b') })
    const p = resolvePolicy({ args })
    expect(p.args).toEqual(['ok'])
    expect(n).toBe(1)
    stillServing()
  })

  it('an env Proxy whose keys and values change between reads', () => {
    let keysRead = 0
    const env = new Proxy({ A: '1' } as Record<string, string>, {
      ownKeys: () => (keysRead++ === 0 ? ['A'] : ['A=B', 'A']),
      getOwnPropertyDescriptor: (_, k) => ({ value: k === 'A' ? '1' : 'x\0', enumerable: true, configurable: true, writable: true }),
      get: (_, k) => (k === 'A' ? '1' : 'x\0'),
    })
    const p = resolvePolicy({ env })
    expect(p.env).toEqual({ A: '1' })
    stillServing()
  })

  it('a Proxy for the whole options: each field read once, the resolved policy is what was checked', () => {
    const reads = new Map<string, number>()
    const limitsSeen: unknown[] = [{ fds: 8 }, { fds: 1e9 }]
    const target = { limits: {}, denySyscalls: ['path_open'], args: ['x'] }
    const options = new Proxy(target, {
      get: (t, k) => {
        if (typeof k !== 'string') return Reflect.get(t, k)
        const n = reads.get(k) ?? 0
        reads.set(k, n + 1)
        if (k === 'limits') return limitsSeen[Math.min(n, 1)]
        if (k === 'denySyscalls') return n === 0 ? ['path_open'] : []
        return Reflect.get(t, k)
      },
    })
    const p = resolvePolicy(options as RunOptions)
    expect(p.limits.maxFds).toBe(8)
    expect(p.denySyscalls).toEqual(['path_open'])
    for (const [k, n] of reads) expect(n, k).toBeLessThanOrEqual(1)
    stillServing()
  })

  it('a mount checked read-only is applied read-only (the guest cannot write through it)', () => {
    const out = mkdtempSync(join(dir, 'ro-'))
    const mount = { guest: '/out', host: out } as { guest: string; host: string; mode?: 'ro' | 'rw' }
    const { reads } = flipping(mount, 'mode', 'ro', 'rw')
    const r = runSync(fixtureWasm('svc_guest'), { args: ['g', 'write', '/out/x', 'data'], mounts: [mount] })
    expect(r.exitCode).not.toBe(0)
    expect(existsSync(join(out, 'x'))).toBe(false)
    expect(reads()).toBe(1)
    // An honest read-write mount still works.
    const ok = runSync(fixtureWasm('svc_guest'), { args: ['g', 'write', '/out/y', 'data'], mounts: [{ guest: '/out', host: out }] })
    expect(ok.exitCode).toBe(0)
    expect(existsSync(join(out, 'y'))).toBe(true)
  })
})

describe('odd keys and shapes', () => {
  it('"__proto__" as an own key (as JSON.parse makes it) never supplies fields', () => {
    const viaJson = JSON.parse('{"limits":{"__proto__":{"fds":100000000,"fuel":-1}}}') as RunOptions
    const bad = problems(viaJson)
    if (bad === undefined) {
      const p = resolvePolicy(viaJson)
      expect(p.limits.maxFds).toBe(1024)
      expect(p.limits.fuel).toBeUndefined()
    } else expect(bad.join()).toMatch(/__proto__/)
    // As the real prototype: inherited limits are not the caller's own and are not trusted past the check.
    const inherited = { limits: Object.create({ fds: 1e9 }) as object } as RunOptions
    const q = problems(inherited)
    if (q === undefined) expect(resolvePolicy(inherited).limits.maxFds).not.toBe(1e9)
    stillServing()
  })

  it('toJSON and Symbol keys: toJSON is refused as an unknown field, Symbol keys are ignored', () => {
    expect(problems({ toJSON: () => ({}) })?.join()).toMatch(/toJSON/)
    const p = resolvePolicy({ limits: { fds: 10 }, [Symbol('x')]: { fds: 1e9 } } as RunOptions)
    expect(p.limits.maxFds).toBe(10)
    stillServing()
  })

  it('frozen and sealed options resolve as plain ones', () => {
    const frozen = Object.freeze({ args: Object.freeze(['a']), limits: Object.freeze({ fds: 12 }) })
    expect(resolvePolicy(frozen as RunOptions).limits.maxFds).toBe(12)
    const sealed = Object.seal({ args: ['a'], env: Object.seal({ A: '1' }) })
    expect(resolvePolicy(sealed).env).toEqual({ A: '1' })
    stillServing()
  })

  it('huge arrays resolve (or are refused) in bounded time, exactly as given', () => {
    const args = Array.from({ length: 200_000 }, (_, i) => `a${i}`)
    const t0 = performance.now()
    const p = resolvePolicy({ args })
    expect(p.args).toEqual(args)
    expect(p.args).not.toBe(args)
    const deny = new Array<string>(100_000).fill('path_open')
    expect(resolvePolicy({ denySyscalls: deny }).denySyscalls).toHaveLength(100_000)
    expect(problems({ syscalls: new Array<string>(50_000).fill('nope') })?.join()).toMatch(/not wasi_snapshot_preview1 functions/)
    expect(performance.now() - t0).toBeLessThan(10_000)
    stillServing()
  })
})

describe('a prepared program run with hostile input', () => {
  it('a stdin { file } whose name changes after the check reads the file checked', () => {
    const checked = join(dir, 'checked.txt')
    const other = join(dir, 'other.txt')
    writeFileSync(checked, 'CHECKED')
    writeFileSync(other, 'OTHER')
    const { obj: stdin, reads } = flipping({} as { file: string }, 'file', checked, other)
    const program = prepareSync(fixtureWasm('svc_guest'), { isolation: 'in-process' })
    const r = program.runSync({ args: ['g', 'echo'], stdin })
    expect(Buffer.from(r.stdout).toString()).toContain('stdin:CHECKED')
    expect(reads()).toBe(1)
    // An ordinary run after.
    expect(Buffer.from(program.runSync({ args: ['g', 'echo'], stdin: 'plain' }).stdout).toString()).toContain('stdin:plain')
  })
})

describe('plugin options read once', () => {
  it('an isolation getter ("in-process" for the policy, "worker" after) cannot get an async host function past the in-process check', async () => {
    let n = 0
    const options = {
      host: { 'env.fetch_it': async () => new Uint8Array(0) },
      get isolation() {
        return n++ === 0 ? 'in-process' : 'worker'
      },
    }
    Object.defineProperty(options, 'isolation', { enumerable: true })
    await expect(plugin(fixtureWasm('svc_guest'), options as never)).rejects.toThrow(
      /host\.env\.fetch_it: an async host function needs isolation "worker"/,
    )
    expect(n).toBe(1)
    stillServing()
  })
})
