/**
 * @module Resource-exhaustion corpus, driven by the `flood` guest (test/fixtures/src/flood.c).
 *
 * docs/security.md invariant 7 (every resource is bounded) and invariant 8 (the host survives the guest:
 * the caller gets an exit code, a trap, or the limit that was hit; the process stays up and keeps
 * no descriptor). Descriptors stop at `limits.fds` with MFILE; over-long paths are NAMETOOLONG;
 * an endless loop is stopped by `limits.timeout` (worker) or `limits.fuel` (in-process); unbounded
 * recursion is a `stack-overflow` trap; `limits.memory` makes `memory.grow` fail inside the guest;
 * huge iovec and subscription counts are capped with INVAL. Disk quotas come later: a big write
 * either completes or fails with an errno.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { run, runSync, LIMIT_EXIT_CODE, TRAP_EXIT_CODE, type RunOptions, type RunResult } from '../../runtime/index.js'
import { fixtureWasm, GUEST_ENV, text } from '../support/guest.js'
import { assertHostAlive, fsDigest, hostTreeDigest, makeCanaryLayout, openFdCount, runInMemory, watchOutside } from '../support/security.js'

const wasm = fixtureWasm('flood')

/** One in-process run on the host layout (with the outside and /data checks), or in memory. */
function flood(backend: 'host' | 'memory', args: string[], options: RunOptions = {}, inspect?: (sandbox: string) => void): RunResult {
  const all = ['flood', ...args]
  if (backend === 'memory') {
    const r = runInMemory(wasm, { ...options, args: all })
    expect(fsDigest(r.data), '/data changed').toEqual(r.dataBefore)
    return r
  }
  const layout = makeCanaryLayout()
  try {
    const outside = watchOutside(layout)
    const data0 = hostTreeDigest(layout.data)
    const r = runSync(wasm, { ...options, args: all, env: GUEST_ENV, mounts: layout.mounts })
    outside.assertUnchanged(all.join(' '))
    expect(hostTreeDigest(layout.data), '/data changed').toEqual(data0)
    inspect?.(layout.sandbox)
    return r
  } finally {
    layout.cleanup()
  }
}

function expectClean(r: RunResult, stdout: string | RegExp): void {
  expect({ trap: r.trap, limit: r.limit, exitCode: r.exitCode }).toEqual({ trap: undefined, limit: undefined, exitCode: 0 })
  if (typeof stdout === 'string') expect(text(r.stdout)).toBe(stdout)
  else expect(text(r.stdout)).toMatch(stdout)
}

describe.each(['host', 'memory'] as const)('flood.c on the %s backend (in-process)', (backend) => {
  it('fds: opening until refused stops at the descriptor limit with MFILE', () => {
    // 1024 descriptors by default, stdio and the two preopens included
    expectClean(flood(backend, ['fds']), 'fds: 1019 MFILE\n')
    expectClean(flood(backend, ['fds'], { limits: { fds: 64 } }), 'fds: 59 MFILE\n')
    assertHostAlive()
  })

  it('mkdir-deep: 200 nested directories and a 405-byte path, or NAMETOOLONG', () => {
    const r = flood(backend, ['mkdir-deep'])
    expectClean(
      r,
      /^(mkdir-deep: 200 levels ok|mkdir depth \d+: NAMETOOLONG)\nopen 405-byte path: (ok|NAMETOOLONG)\nstat it: (ok|NAMETOOLONG|NOENT)\n$/,
    )
    assertHostAlive()
  })

  it('long-path: 64 KiB paths and a 256-byte name are NAMETOOLONG, 255 bytes is fine', () => {
    expectClean(
      flood(backend, ['long-path']),
      [
        'open 64 KiB of ./: NAMETOOLONG',
        'open a 64 KiB name: NAMETOOLONG',
        'open a 256-byte name: NAMETOOLONG',
        'open a 255-byte name: ok',
        '',
      ].join('\n'),
    )
    assertHostAlive()
  })

  it('big-write: completes or stops with an errno (no quota yet)', () => {
    const mib = backend === 'host' ? 16 : 64
    let hostSize = -1
    const r = flood(backend, ['big-write', String(mib)], {}, (sandbox) => {
      hostSize = statSync(join(sandbox, 'big')).size
    })
    expectClean(r, /^big-write: \d+ bytes \(\d+ MiB\) (ok|[A-Z0-9]+)\nbig-write: file size \d+\n$/)
    const [, written, , outcome] = /^big-write: (\d+) bytes \((\d+) MiB\) (\S+)/.exec(text(r.stdout))!
    const size = Number(/file size (\d+)/.exec(text(r.stdout))![1])
    expect(size).toBe(Number(written))
    if (outcome === 'ok') expect(size).toBe(mib * 2 ** 20)
    if (backend === 'host') expect(hostSize).toBe(size)
    assertHostAlive()
  })

  it('files and symlinks: hundreds created, counted exactly', () => {
    expectClean(
      flood(backend, ['files', '300'], {}, (sb) => expect(readdirSync(sb)).toHaveLength(300)),
      'files: 300 limit-reached\n',
    )
    expectClean(flood(backend, ['symlinks', '300']), 'symlinks: 300 limit-reached\n')
    assertHostAlive()
  })

  it('iovs-many and poll-many: counts past the caps are INVAL, not allocated', () => {
    expectClean(flood(backend, ['iovs-many']), 'iovs-many: INVAL\n')
    expectClean(flood(backend, ['poll-many']), 'poll-many: INVAL\n')
    assertHostAlive()
  })

  it('random: 1 MiB from random_get in one call', () => {
    expectClean(flood(backend, ['random']), 'random: ok\n')
    assertHostAlive()
  })

  it('recurse: unbounded recursion is a stack-overflow trap', () => {
    const r = flood(backend, ['recurse'])
    expect(r.trap?.kind).toBe('stack-overflow')
    expect(r.exitCode).toBe(TRAP_EXIT_CODE)
    expect(text(r.stdout)).toBe('recurse: start\n')
    assertHostAlive()
  })

  it('loop: an endless loop is stopped by limits.fuel', () => {
    const r = flood(backend, ['loop'], { limits: { fuel: 20_000_000 } })
    expect({ limit: r.limit, exitCode: r.exitCode, trap: r.trap }).toEqual({ limit: 'fuel', exitCode: LIMIT_EXIT_CODE, trap: undefined })
    expect(text(r.stdout)).toBe('loop: start\n')
    assertHostAlive()
  })

  it('alloc: limits.memory 32MiB makes malloc fail inside the guest, below 32 MiB', () => {
    const r = flood(backend, ['alloc'], { limits: { memory: '32MiB' } })
    expectClean(r, /^alloc: \d+ MiB \(memory \d+ pages\)\n$/)
    const [, mib, pages] = /^alloc: (\d+) MiB \(memory (\d+) pages\)/.exec(text(r.stdout))!
    expect(Number(mib)).toBeGreaterThan(0)
    expect(Number(mib)).toBeLessThan(32)
    expect(Number(pages)).toBeLessThanOrEqual(512)
    expect(r.stats.peakMemory).toBeLessThanOrEqual(32 * 2 ** 20)
    assertHostAlive()
  })

  it('stdout: the output limit ends the run', () => {
    const r = flood(backend, ['stdout', '64'], { limits: { stdout: '1MiB' } })
    expect({ limit: r.limit, exitCode: r.exitCode, trap: r.trap }).toEqual({ limit: 'stdout', exitCode: LIMIT_EXIT_CODE, trap: undefined })
    expect(r.stdout.byteLength).toBeLessThanOrEqual(2 ** 20)
    expect(text(r.stderr)).not.toContain('stdout flood ended')
    assertHostAlive()
  })
})

describe('flood.c in a worker', () => {
  it('loop: limits.timeout stops an endless loop, and the caller gets limit "timeout"', async () => {
    const started = performance.now()
    const r = await run(wasm, { args: ['flood', 'loop'], mounts: [{ guest: '/sandbox', tmp: true }], limits: { timeout: '300ms' } })
    expect({ limit: r.limit, exitCode: r.exitCode, trap: r.trap }).toEqual({ limit: 'timeout', exitCode: LIMIT_EXIT_CODE, trap: undefined })
    expect(performance.now() - started).toBeLessThan(10_000)
    assertHostAlive()
  })

  it('recurse: a stack overflow in the worker is a trap, not a crash', async () => {
    const r = await run(wasm, { args: ['flood', 'recurse'], limits: { timeout: '20s' } })
    expect(r.trap?.kind).toBe('stack-overflow')
    expect(r.exitCode).toBe(TRAP_EXIT_CODE)
    assertHostAlive()
  })
})

describe('flood.c: the host survives (invariant 8)', () => {
  it('leaks no host descriptor over a batch of floods, and an ordinary guest still runs', () => {
    flood('host', ['fds', '10'])
    const before = openFdCount()
    flood('host', ['fds']) // 1019 host descriptors opened by the guest, all released
    flood('host', ['fds'], { limits: { fds: 64 } })
    flood('host', ['mkdir-deep'])
    flood('host', ['long-path'])
    flood('host', ['files', '200'])
    flood('host', ['symlinks', '200'])
    flood('host', ['big-write', '4'])
    flood('host', ['recurse'])
    flood('host', ['loop'], { limits: { fuel: 5_000_000 } })
    flood('host', ['iovs-many'])
    flood('host', ['stdout', '8'], { limits: { stdout: '256KiB' } })
    expect(openFdCount()).toBeLessThanOrEqual(before)
    assertHostAlive()
  })
})
