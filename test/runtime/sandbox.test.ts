import { describe, expect, it } from 'vitest'
import { ModuleError, PolicyError, run, runSync, type Filesystem } from '../../runtime/index.js'
import { createMemFs, type DirHandle } from '../../wasi-host/index.js'
import { fixtureWasm, makeHostLayout, sampleWasm, text } from '../support/guest.js'

describe('run() in a worker (the default)', () => {
  it('runs a guest and captures its output', async () => {
    const r = await run(sampleWasm('hello'))
    expect(r.exitCode).toBe(0)
    expect(text(r.stdout)).toBe('hello from caplet\n')
    expect(r.stats.syscalls.fd_write).toBeGreaterThan(0)
    expect(r.stats.peakMemory).toBeGreaterThan(0)
  })

  it('stops an infinite loop at the timeout, keeping what it wrote before', async () => {
    const r = await run(fixtureWasm('flood'), { args: ['flood', 'loop'], limits: { timeout: '300ms' } })
    expect(r.limit).toBe('timeout')
    expect(r.exitCode).toBe(124)
    expect(text(r.stdout)).toContain('loop: start')
  })

  it('cancels a run through an AbortSignal', async () => {
    const ac = new AbortController()
    const p = run(fixtureWasm('flood'), { args: ['flood', 'loop'], signal: ac.signal })
    setTimeout(() => ac.abort(new Error('caller gave up')), 100)
    await expect(p).rejects.toThrow('caller gave up')
  })

  it('refuses to start with an already aborted signal', async () => {
    // The signal's own reason, before anything runs: an AbortError when abort() was given none.
    await expect(run(sampleWasm('hello'), { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
    const reason = new Error('not any more')
    await expect(run(sampleWasm('hello'), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })

  it('reports deep recursion as a stack-overflow trap', async () => {
    const r = await run(fixtureWasm('flood'), { args: ['flood', 'recurse'] })
    expect(r.exitCode).toBe(134)
    expect(r.trap?.kind).toBe('stack-overflow')
  })

  it.each([
    ['unreachable', 'unreachable'],
    ['oob', 'out-of-bounds'],
    ['divzero', 'arithmetic'],
    ['indirect', 'indirect-call'],
  ])('classifies the %s trap as %s, with the last syscalls', async (scenario, kind) => {
    const r = await run(fixtureWasm('rt_trap'), { args: ['rt_trap', scenario] })
    expect(r.trap?.kind).toBe(kind)
    expect(r.trap?.recentSyscalls).toContain('fd_write')
    expect(text(r.stdout)).toBe(`${scenario}: before\n`)
  })

  it('traps a bad pointer passed to a syscall, naming the syscall', async () => {
    const r = await run(fixtureWasm('memory'), { args: ['memory', 'iovs-past-end'] })
    expect(r.trap?.kind).toBe('memory-fault')
    expect(r.trap?.syscall).toBe('fd_write')
  })

  it('stops a guest at its output limit with exactly the limit written', async () => {
    const r = await run(sampleWasm('cat'), { stdin: 'x'.repeat(10_000), limits: { stdout: 100 } })
    expect(r.limit).toBe('stdout')
    expect(r.stdout.byteLength).toBe(100)
  })

  it('bounds open descriptors', async () => {
    const layout = makeHostLayout()
    try {
      const r = await run(fixtureWasm('flood'), {
        args: ['flood', 'fds'],
        limits: { fds: 16 },
        mounts: [
          { guest: '/sandbox', host: layout.sandbox },
          { guest: '/data', host: layout.data, mode: 'ro' },
        ],
      })
      expect(r.exitCode).toBe(0)
      // 16 descriptors: stdio, two mounts, then 11 opens.
      expect(text(r.stdout)).toBe('fds: 11 MFILE\n')
    } finally {
      layout.cleanup()
    }
  })

  it('delivers output to a callback, in order', async () => {
    const chunks: string[] = []
    const r = await run(fixtureWasm('diff_exit'), { args: ['diff_exit', '0'], stdout: (c) => chunks.push(text(c)) })
    expect(r.exitCode).toBe(0)
    expect(chunks.join('')).toContain('stdout before exit')
  })
})

describe('host faults', () => {
  it('turns an unexpected host exception into a host-fault trap naming the call, never an errno', () => {
    const base = createMemFs()
    // A backend with a bug: listing a directory throws a plain Error.
    const broken: Filesystem = {
      caps: base.caps,
      root: () => {
        const h = base.root()
        const forward = Object.fromEntries(
          [
            'stat',
            'setTimes',
            'statChild',
            'openDir',
            'openFile',
            'readlink',
            'mkdir',
            'symlink',
            'unlink',
            'rmdir',
            'rename',
            'link',
            'setTimesChild',
            'close',
          ].map((k) => [k, (...a: unknown[]) => (h as unknown as Record<string, (...x: unknown[]) => unknown>)[k]!(...a)]),
        )
        return {
          ...forward,
          kind: 'dir',
          readdir: () => {
            throw new TypeError('backend bug')
          },
        } as unknown as DirHandle
      },
    }
    const r = runSync(sampleWasm('ls'), { args: ['ls', '/d'], mounts: [{ guest: '/d', fs: broken }] })
    expect(r.exitCode).toBe(134)
    expect(r.trap?.kind).toBe('host-fault')
    expect(r.trap?.syscall).toBe('fd_readdir')
    expect(r.trap?.message).toMatch(/backend bug/)
  })
})

describe('fuel and memory limits', () => {
  it('stops an infinite loop when its fuel runs out', async () => {
    const r = await run(fixtureWasm('flood'), { args: ['flood', 'loop'], limits: { fuel: 50_000_000 } })
    expect(r.limit).toBe('fuel')
    expect(r.exitCode).toBe(124)
    expect(text(r.stdout)).toContain('loop: start')
  })

  it('stops a loop by fuel in-process too, where no timeout can', () => {
    const r = runSync(fixtureWasm('flood'), { args: ['flood', 'loop'], limits: { fuel: 10_000_000 } })
    expect(r.limit).toBe('fuel')
  })

  it('uses the same fuel on every run of the same module and input', async () => {
    const runs = await Promise.all(
      [1, 2, 3].map(() => run(sampleWasm('cat'), { stdin: 'some input\n'.repeat(100), limits: { fuel: 1e9 } })),
    )
    const used = runs.map((r) => r.stats.fuelUsed)
    expect(used[0]).toBeGreaterThan(0)
    expect(new Set(used).size).toBe(1)
    expect(runSync(sampleWasm('cat'), { stdin: 'some input\n'.repeat(100), limits: { fuel: 1e9 } }).stats.fuelUsed).toBe(used[0])
  })

  it('charges host calls by the bytes they move (one unit per 64), so fuel bounds I/O too', () => {
    const used = (bytes: number) => runSync(sampleWasm('cat'), { stdin: new Uint8Array(bytes), limits: { fuel: 1e12 } }).stats.fuelUsed!
    // 1 MiB more read and written costs at least 2 x 16,384 more units.
    expect(used(2 << 20) - used(1 << 20)).toBeGreaterThanOrEqual(2 * 16_384)
  })

  it('caps linear memory: malloc fails past the cap and the guest carries on', async () => {
    const r = await run(fixtureWasm('flood'), { args: ['flood', 'alloc'], limits: { memory: '32MiB' } })
    expect(r.exitCode).toBe(0)
    const mib = Number(/alloc: (\d+) MiB/.exec(text(r.stdout))?.[1])
    expect(mib).toBeGreaterThan(16)
    expect(mib).toBeLessThan(32)
    expect(r.stats.peakMemory).toBeLessThanOrEqual(32 * 1024 * 1024)
  })

  it('caps memory at 1 GiB when the policy does not say (every resource is bounded)', () => {
    const r = runSync(fixtureWasm('rt_grow'), { args: ['rt_grow', '16384', '16385'] })
    expect(text(r.stdout)).toBe('grow to 16384 pages: ok\ngrow to 16385 pages: failed\n')
  })

  it('refuses a module whose minimum memory is above the cap, saying so', async () => {
    await expect(run(sampleWasm('hello'), { limits: { memory: '64KiB' } })).rejects.toThrow(
      /needs 128 KiB of memory to start.*limits\.memory/,
    )
  })
})

describe('engine tiers', () => {
  it.each(['auto', 'optimized', 'baseline'] as const)('runs the same program to the same result with tier %s', async (tier) => {
    const r = await run(fixtureWasm('fuel_spin'), { args: ['fuel_spin', '100000'], tier })
    expect(r.exitCode).toBe(0)
    expect(text(r.stdout)).toBe(text((await run(fixtureWasm('fuel_spin'), { args: ['fuel_spin', '100000'] })).stdout))
  })
})

describe('deterministic mode', () => {
  const entropy = (seed?: number) => run(fixtureWasm('rt_entropy'), { deterministic: true, ...(seed !== undefined ? { seed } : {}) })

  it('gives identical output byte for byte on two runs', async () => {
    const [a, b] = await Promise.all([entropy(), entropy()])
    expect(a.exitCode).toBe(0)
    expect(text(a.stdout)).toBe(text(b.stdout))
    expect(text(a.stdout)).toContain('slept at least 5 ms: yes')
  })

  it('changes the random bytes with the seed, and only them', async () => {
    const [a, b] = await Promise.all([entropy(1), entropy(2)])
    const lines = (r: typeof a) => text(r.stdout).split('\n')
    expect(lines(a)[0]).not.toBe(lines(b)[0])
    expect(lines(a).slice(2)).toEqual(lines(b).slice(2))
  })

  it('differs from a real run', async () => {
    const [a, b] = await Promise.all([run(fixtureWasm('rt_entropy')), run(fixtureWasm('rt_entropy'))])
    expect(text(a.stdout).split('\n')[0]).not.toBe(text(b.stdout).split('\n')[0])
  })
})

describe('clocks as a policy', () => {
  it('reports and applies the policy resolution', async () => {
    const r = await run(fixtureWasm('rt_entropy'), { clocks: { resolution: '1ms' } })
    const out = text(r.stdout)
    for (const m of out.matchAll(/clock (\d): time=(\d+) \(errno 0\) res=(\d+)/g)) {
      expect(BigInt(m[3]!)).toBe(1_000_000n)
      expect(BigInt(m[2]!) % 1_000_000n).toBe(0n)
    }
  })

  it("reports the run's own CPU time by default, never the work of the process around it", () => {
    // Burn CPU in this process first: a guest reading the process clock would see it.
    const until = performance.now() + 300
    let x = 0
    while (performance.now() < until) x += Math.sqrt(x + 1)
    expect(x).toBeGreaterThan(0)
    const cpuOf = (out: string, clock: number) => BigInt(new RegExp(`clock ${clock}: time=(\\d+) \\(errno 0\\)`).exec(out)![1]!)
    const own = text(runSync(fixtureWasm('rt_entropy')).stdout)
    const processWide = text(runSync(fixtureWasm('rt_entropy'), { clocks: { cputime: 'process' } }).stdout)
    expect(process.cpuUsage().user * 1000).toBeGreaterThan(300_000_000)
    for (const clock of [2, 3]) {
      expect(cpuOf(own, clock)).toBeLessThan(300_000_000n)
      expect(cpuOf(processWide, clock)).toBeGreaterThanOrEqual(300_000_000n)
    }
  })

  it('hides CPU-time clocks when asked (NOTSUP)', async () => {
    const r = await run(fixtureWasm('rt_entropy'), { clocks: { cputime: false } })
    expect(text(r.stdout)).toMatch(/clock 2: time=0 \(errno 58\)/)
    expect(text(r.stdout)).toMatch(/clock 3: time=0 \(errno 58\)/)
  })
})

describe('policy and module errors', () => {
  it('lists every problem with its field', async () => {
    const err = await run(sampleWasm('hello'), {
      limits: { memory: 'lots', timeout: '2 fortnights', fds: 1 },
      mounts: [
        { guest: 'data', tmp: true },
        { guest: '/x', host: '/tmp', tmp: true },
      ],
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    const problems = (err as PolicyError).problems.join('\n')
    expect(problems).toMatch(/limits\.memory/)
    expect(problems).toMatch(/limits\.timeout/)
    expect(problems).toMatch(/limits\.fds/)
    expect(problems).toMatch(/mounts\[0\]\.guest/)
    expect(problems).toMatch(/mounts\[1\]/)
  })

  it('refuses an fds limit below stdio plus the mounts before the run (it used to end as a host-fault trap)', async () => {
    const mounts = [{ guest: '/t', tmp: true }]
    for (const isolation of ['worker', 'in-process'] as const) {
      const err = await run(sampleWasm('hello'), { mounts, limits: { fds: 3 }, isolation }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PolicyError)
      expect((err as PolicyError).problems).toEqual([
        'limits.fds: 3 leaves no room for stdio, 1 mount(s) and 0 socket(s) (needs at least 4)',
      ])
    }
    const ok = await run(sampleWasm('hello'), { mounts, limits: { fds: 4 }, stdout: 'capture' })
    expect(ok).toMatchObject({ exitCode: 0 })
    expect(ok.trap).toBeUndefined()
  })

  it("names the new field for a renamed one (limits.files -> fds, a mount's files -> inodes)", async () => {
    const err = await run(sampleWasm('hello'), {
      limits: { files: 8, fuel: 1e6 },
      mounts: [{ guest: '/t', tmp: true, files: 3, bogus: 1 }],
    } as never).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems).toEqual([
      'mounts[0].files: renamed; use mounts[0].inodes (files, directories and symlinks created, as --max-files)',
      'mounts[0]: Unrecognized key: "bogus"',
      'limits.files: renamed; use limits.fds (open descriptors, as --max-fds)',
    ])
  })

  it('says what is wrong with a field, not only "Invalid input" (an unknown key, a wrong type, a bad choice)', async () => {
    const err = await run(sampleWasm('hello'), { args: 5, isolation: 'x', deniedSyscall: 'enosys' } as never).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems).toEqual([
      'args: Invalid input: expected array, received number',
      'isolation: Invalid option: expected one of "worker"|"in-process"',
      '(options): Unrecognized key: "deniedSyscall"',
    ])
  })

  it('refuses a memory cap past 4 GiB, a timeout of 0 and a seed without deterministic, naming each field', async () => {
    const err = await run(sampleWasm('hello'), { limits: { memory: '5GiB', timeout: 0 }, seed: 3 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems).toEqual([
      'limits.timeout: 0 must be more than 0',
      'seed: applies only to deterministic runs; set deterministic: true',
    ])
    const mem = await run(sampleWasm('hello'), { limits: { memory: '5GiB' } }).catch((e: unknown) => e)
    expect((mem as PolicyError).problems).toEqual(['limits.memory: "5GiB" is more than wasm32\'s 4 GiB address space'])
    expect((await run(sampleWasm('hello'), { limits: { memory: '4GiB' }, deterministic: true, seed: 3 })).exitCode).toBe(0)
  })

  it('refuses a timeout in-process (only fuel can stop it there)', async () => {
    await expect(run(sampleWasm('hello'), { isolation: 'in-process', limits: { timeout: '1s' } })).rejects.toBeInstanceOf(PolicyError)
  })

  it('refuses a module importing a WASI function outside the allow-list, naming it', async () => {
    const err = await run(sampleWasm('hello'), { syscalls: ['proc_exit'] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModuleError)
    expect((err as Error).message).toMatch(/fd_write/)
  })

  it('rejects a module without _start, saying it is not a command', async () => {
    // (module (memory (export "memory") 1)): a valid module with nothing to run.
    const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1, 7, 10, 1, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0])
    await expect(run(bytes)).rejects.toThrow(/no "_start" export/)
  })

  it('rejects bytes that are not WebAssembly', async () => {
    await expect(run(new TextEncoder().encode('#!/bin/sh\necho hi\n'))).rejects.toBeInstanceOf(ModuleError)
  })

  it("gives an error's reason without the [caplet] prefix its message carries (also for rewriter errors)", async () => {
    const err = await run(new TextEncoder().encode('#!/bin/sh\n')).then(
      () => {
        throw new Error('ran')
      },
      (e: ModuleError) => e,
    )
    expect(err.message).toBe(`[caplet] ${err.reason}`)
    expect(err.reason).toMatch(/^not a WebAssembly module/)
    // (module (func (export "_start") (try))): valid for the engine, refused by fuel metering.
    const eh = new Uint8Array([
      0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 7, 10, 1, 6, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0, 0, 10, 7, 1, 5,
      0, 0x06, 0x40, 0x0b, 0x0b,
    ])
    const refused = await run(eh, { limits: { fuel: 1000 } }).then(
      () => {
        throw new Error('ran')
      },
      (e: ModuleError) => e,
    )
    expect(refused).toBeInstanceOf(ModuleError)
    expect(refused.reason).toMatch(/^cannot meter fuel: unsupported instruction try \(exception handling\)/)
  })
})
