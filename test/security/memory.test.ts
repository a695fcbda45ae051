/**
 * @module Memory-abuse corpus, driven by the `memory` guest (test/fixtures/src/memory.c): one
 * bad pointer or length per run, on both backends.
 *
 * docs/security.md invariant 2 and docs/decisions.md 6: an out-of-range, wrapping or
 * misaligned pointer, or an iovec or subscription array past the end of memory, TRAPS. The
 * result says `trap.kind === 'memory-fault'` and names the syscall; the guest printed `before`
 * and nothing else (no partial write reached stdout); no side effect happened (no file or
 * directory created, /data unchanged); and the host keeps working (invariant 8). The `ok-*`
 * scenarios are valid edge cases at the very end of memory and after `memory.grow`: no trap.
 */
import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { runSync, TRAP_EXIT_CODE, type RunResult } from '../../runtime/index.js'
import { fixtureWasm, GUEST_ENV, text } from '../support/guest.js'
import { assertHostAlive, fsDigest, hostTreeDigest, makeCanaryLayout, openFdCount, runInMemory, watchOutside } from '../support/security.js'

/** Each trapping scenario and the syscall the trap must name. */
const TRAPS: Record<string, string> = {
  'iovs-past-end': 'fd_write',
  'iovs-at-end': 'fd_write',
  // 2^28 iovecs from a valid pointer: the array runs 2 GiB past the end of memory
  'iovs-len-huge': 'fd_write',
  // iovs_len * 8 wraps 2^32 to 8: the array still runs past the end
  'iovs-len-wrap': 'fd_write',
  'buf-past-end': 'fd_write',
  'buf-wrap': 'fd_write',
  'second-iov-bad': 'fd_write',
  'nwritten-past-end': 'fd_write',
  'ptr-negative': 'fd_write',
  'path-past-end': 'path_open',
  'path-len-wrap': 'path_open',
  'open-retptr-past-end': 'path_open',
  'read-wrap': 'fd_read',
  'read-past-end': 'fd_read',
  'args-get-bad': 'args_get',
  'args-buf-bad': 'args_get',
  'environ-buf-bad': 'environ_get',
  'misaligned-fdstat': 'fd_fdstat_get',
  'misaligned-clock': 'clock_time_get',
  'clock-past-end': 'clock_time_get',
  'filestat-past-end': 'fd_filestat_get',
  'random-past-end': 'random_get',
  'poll-in-past-end': 'poll_oneoff',
  // 2^31-1 subscriptions of 48 bytes from a valid pointer: far past the end of memory
  'poll-nsubs-huge': 'poll_oneoff',
  'readdir-past-end': 'fd_readdir',
  'prestat-name-past-end': 'fd_prestat_dir_name',
  'path-filestat-past-end': 'path_filestat_get',
  'mkdir-path-past-end': 'path_create_directory',
}

/** Each valid edge case, its whole stdout, and what it leaves in /sandbox. */
const VALID: Record<string, { stdout: string; sandbox: string[] }> = {
  'ok-zero-len-at-end': { stdout: 'before\nafter: ok\n', sandbox: [] },
  'ok-last-bytes': { stdout: 'before\ntail\nafter: ok\n', sandbox: [] },
  'ok-iovs-at-last-slot': { stdout: 'before\nlast slot\nafter: ok\n', sandbox: [] },
  'ok-zero-iovs-at-end': { stdout: 'before\nafter: ok\n', sandbox: [] },
  'ok-after-grow': { stdout: 'before\nfrom the grown page\nafter: ok\nafter: ok\n', sandbox: ['grown'] },
  'ok-path-at-end': { stdout: 'before\nafter: ok\n', sandbox: ['edge'] },
}

const wasm = fixtureWasm('memory')

/** Runs one scenario; returns the result and the names left in /sandbox. Checks /data and outside. */
function runScenario(backend: 'host' | 'memory', scenario: string): { r: RunResult; sandbox: string[] } {
  const args = ['memory', scenario]
  if (backend === 'memory') {
    const r = runInMemory(wasm, { args })
    expect(fsDigest(r.data), '/data changed').toEqual(r.dataBefore)
    const sandbox = Object.keys(fsDigest(r.sandbox)).filter((k) => k !== '.')
    return { r, sandbox }
  }
  const layout = makeCanaryLayout()
  try {
    const outside = watchOutside(layout)
    const data0 = hostTreeDigest(layout.data)
    const r = runSync(wasm, { args, env: GUEST_ENV, mounts: layout.mounts })
    outside.assertUnchanged(`memory ${scenario}`)
    expect(hostTreeDigest(layout.data), '/data changed').toEqual(data0)
    return { r, sandbox: readdirSync(layout.sandbox).sort() }
  } finally {
    layout.cleanup()
  }
}

describe.each(['host', 'memory'] as const)('memory.c on the %s backend', (backend) => {
  it.each(Object.entries(TRAPS))('%s traps in %s, with no side effect', (scenario, syscall) => {
    const { r, sandbox } = runScenario(backend, scenario)
    // one comparison, so a failure also shows what the guest printed instead of trapping
    expect({ trap: r.trap?.kind, syscall: r.trap?.syscall, exitCode: r.exitCode, limit: r.limit, stdout: text(r.stdout) }).toEqual({
      trap: 'memory-fault',
      syscall,
      exitCode: TRAP_EXIT_CODE,
      limit: undefined,
      stdout: 'before\n',
    })
    expect(r.trap?.recentSyscalls.at(-1), 'the last syscall before the trap').toBe(syscall)
    // nothing after "before": no FIRST-IOVEC / NWRITTEN text, no partial write
    expect(text(r.stdout)).toBe('before\n')
    expect(text(r.stderr)).toBe('')
    // no /sandbox/leak (open-retptr-past-end), no /sandbox/dir (mkdir-path-past-end), nothing at all
    expect(sandbox).toEqual([])
    assertHostAlive()
  })

  it.each(Object.keys(VALID))('%s is valid and does not trap', (scenario) => {
    const { r, sandbox } = runScenario(backend, scenario)
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(0)
    expect(text(r.stdout)).toBe(VALID[scenario]!.stdout)
    expect(sandbox).toEqual(VALID[scenario]!.sandbox)
  })
})

describe('memory.c: the host survives (invariant 8)', () => {
  it('leaks no host descriptor over a batch of faulting runs, and an ordinary guest still runs', () => {
    runScenario('host', 'open-retptr-past-end')
    const before = openFdCount()
    for (const scenario of [...Object.keys(TRAPS), ...Object.keys(VALID)]) runScenario('host', scenario)
    expect(openFdCount()).toBeLessThanOrEqual(before)
    assertHostAlive()
  })
})
