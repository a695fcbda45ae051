/**
 * Differential tests: ordinary C programs give the same stdout and exit code under caplet
 * (host-directory and in-memory backends) as under node:wasi, the oracle for ordinary
 * behaviour (never for security). node:wasi runs in a child process: it is not a sandbox, and
 * on Node 20 it can crash its process (nodejs/node#53087).
 */
import { spawnSync } from 'node:child_process'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fixtureWasm, repoRoot, runWithLayout, sampleWasm, text, type Backend } from '../support/guest.js'

interface Case {
  wasm: string
  args?: string[]
  stdin?: string
  /**
   * Lines where node:wasi is known to be wrong: excluded from the comparison on both sides,
   * and caplet's must match `caplet`.
   */
  divergence?: { reason: string; lines: RegExp; caplet: RegExp; exitCode: number }
}

const CASES: Record<string, Case> = {
  fileio: { wasm: fixtureWasm('diff_fileio') },
  readdir: { wasm: fixtureWasm('diff_readdir') },
  stat: { wasm: fixtureWasm('diff_stat') },
  seek: { wasm: fixtureWasm('diff_seek') },
  argsenv: { wasm: fixtureWasm('diff_argsenv'), args: ['one', 'two words', 'ünïcødé', ''] },
  clock: { wasm: fixtureWasm('diff_clock') },
  poll: {
    wasm: fixtureWasm('diff_poll'),
    divergence: {
      reason: 'node:wasi (uvwasi) refuses poll subscriptions on regular files with EPERM; the spec says files are always ready',
      lines:
        /^(poll|select)\(file|^regular file|^select reports the file|^file read event fired|poll_oneoff\(5 s clock \+ file read\)|event: userdata 2 type fd_read/,
      caplet: /returned 1|: OK|ok, nevents 1|event: userdata 2 type fd_read error none/,
      // The program exits 1 when any of its checks fails, as they do under node:wasi.
      exitCode: 0,
    },
  },
  exit: { wasm: fixtureWasm('diff_exit'), args: ['7'] },
  cat: { wasm: sampleWasm('cat'), args: ['/data/a.txt', '/data/sub/b.txt'] },
  'cat-stdin': { wasm: sampleWasm('cat'), stdin: 'from stdin\n' },
  ls: { wasm: sampleWasm('ls'), args: ['/data'] },
}

function runNodeWasi(c: Case) {
  const r = spawnSync(process.execPath, ['--no-warnings', join(repoRoot, 'test/fixtures/run-node-wasi.mjs'), c.wasm, ...(c.args ?? [])], {
    input: c.stdin ?? '',
    encoding: 'utf8',
  })
  return { stdout: r.stdout, exitCode: r.status }
}

function comparable(stdout: string, c: Case): string[] {
  const lines = stdout.split('\n')
  return c.divergence ? lines.filter((l) => !c.divergence!.lines.test(l)) : lines
}

describe.each(['host', 'memory'] as Backend[])('caplet (%s backend) matches node:wasi', (backend) => {
  it.each(Object.keys(CASES))('%s', (name) => {
    const c = CASES[name]!
    const oracle = runNodeWasi(c)
    const ours = runWithLayout(c.wasm, backend, {
      args: [basename(c.wasm, '.wasm'), ...(c.args ?? [])],
      stdin: c.stdin ?? '',
    })
    expect(ours.trap).toBeUndefined()
    const stdout = text(ours.stdout)
    expect(comparable(stdout, c)).toEqual(comparable(oracle.stdout, c))
    expect(ours.exitCode).toBe(c.divergence?.exitCode ?? oracle.exitCode)
    if (c.divergence) {
      const diverging = stdout.split('\n').filter((l) => c.divergence!.lines.test(l))
      expect(diverging.length).toBeGreaterThan(0)
      for (const l of diverging) expect(l).toMatch(c.divergence.caplet)
    }
  })
})
