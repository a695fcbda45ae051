import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { denialLines } from '../../runtime/denials.js'
import { runSync, type RunOptions } from '../../runtime/index.js'
import { ROOT } from './instrument/wasm.js'

const probe = join(ROOT, 'test/fixtures/wasm/deny_probe.wasm')
const bin = join(ROOT, 'bin/caplet.js')
let tmp: string
let data: string
let data2: string
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'caplet-denials-'))
  data = join(tmp, 'data')
  data2 = join(tmp, 'data2')
  mkdirSync(data)
  mkdirSync(data2)
  writeFileSync(join(data, 'in.txt'), 'x\n')
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

function probeRun(args: string[], options: RunOptions) {
  return runSync(probe, { args: ['deny_probe', ...args], ...options })
}

describe('denials: each kind, with the flag that grants it', () => {
  it('a write on a read-only mount names --dir HOST:GUEST:rw', () => {
    const r = probeRun(['ro-write'], { mounts: [{ guest: '/data', host: data, mode: 'ro' }] })
    expect(r.denials).toEqual([
      {
        call: 'path_open',
        kind: 'read-only',
        path: '/data/out.txt',
        fd: 3,
        reason: 'mount /data is read-only',
        grant: `--dir ${data}:/data:rw`,
      },
    ])
    expect(denialLines({ denials: r.denials!, count: r.denialCount! })).toEqual([
      `caplet: the guest tried to write /data/out.txt: mount /data is read-only (grant with --dir ${data}:/data:rw)`,
    ])
  })

  it('an escape is a denial no flag grants', () => {
    const r = probeRun(['escape'], { mounts: [{ guest: '/data', host: data, mode: 'ro' }] })
    expect(r.denials).toMatchObject([{ call: 'path_open', kind: 'escape', path: '/data/../../etc/passwd' }])
    expect(r.denials![0]!.grant).toBeUndefined()
    expect(denialLines({ denials: r.denials!, count: 1 })[0]).toMatch(/nothing outside a mount is reachable/)
  })

  it('a rename across mounts', () => {
    const r = probeRun(['cross'], {
      mounts: [
        { guest: '/tmp', tmp: true },
        { guest: '/data2', host: data2 },
      ],
    })
    expect(r.denials).toMatchObject([{ call: 'path_rename', kind: 'cross-domain', path: '/tmp/a.txt' }])
  })

  it('the descriptor limit names --max-fds', () => {
    const r = probeRun(['fds'], { mounts: [{ guest: '/data', host: data, mode: 'ro' }], limits: { fds: 6 } })
    expect(r.denials![0]).toMatchObject({ kind: 'descriptor-limit', grant: '--max-fds 12' })
  })

  it('the disk quota names --disk', () => {
    const r = probeRun(['quota'], { mounts: [{ guest: '/tmp', tmp: true }], limits: { disk: '16KiB' } })
    expect(r.denials![0]).toMatchObject({ kind: 'quota', grant: '--disk SIZE' })
  })

  it("a mount's own size names --tmp GUEST:SIZE; the run's total names --disk", () => {
    const own = probeRun(['quota'], { mounts: [{ guest: '/tmp', tmp: true, size: '16KiB' }] })
    expect(own.denials![0]).toMatchObject({
      kind: 'quota',
      reason: "disk quota exceeded: write (the mount's own limit)",
      grant: '--tmp /tmp:SIZE',
    })
    const total = probeRun(['quota'], { mounts: [{ guest: '/tmp', tmp: true, size: '1MiB' }], limits: { disk: '16KiB' } })
    expect(total.denials![0]).toMatchObject({ kind: 'quota', reason: 'disk quota exceeded: write', grant: '--disk SIZE' })
  })

  it('the file-count quota names --max-files, for a file and for a directory', () => {
    const flood = join(ROOT, 'test/fixtures/wasm/flood.wasm')
    const options = { mounts: [{ guest: '/sandbox', tmp: true as const }], limits: { inodes: 5 } }
    const files = runSync(flood, { args: ['flood', 'files', '10'], ...options })
    expect(files.denials![0]).toMatchObject({
      kind: 'quota',
      reason: expect.stringMatching(/create a file/) as string,
      grant: '--max-files N',
    })
    const dirs = runSync(flood, { args: ['flood', 'mkdir-deep'], ...options })
    expect(dirs.denials![0]).toMatchObject({
      kind: 'quota',
      reason: expect.stringMatching(/for a directory/) as string,
      grant: '--max-files N',
    })
  })

  it('an output limit names --max-output', () => {
    const r = probeRun(['stdout'], { limits: { stdout: 1024 } })
    expect(r.limit).toBe('stdout')
    expect(r.denials).toMatchObject([{ call: 'fd_write', kind: 'limit', grant: '--max-output SIZE' }])
  })

  it('a right the guest dropped itself: no flag grants it back', () => {
    const r = probeRun(['dropped'], { mounts: [{ guest: '/data', host: data, mode: 'ro' }] })
    expect(new TextDecoder().decode(r.stdout)).toBe('dropped: Bad file descriptor\n') // wasi-libc reads NOTCAPABLE as EBADF
    expect(r.denials).toMatchObject([{ call: 'fd_read', kind: 'missing-right', fd: 4 }])
    expect(r.denials![0]!.grant).toBeUndefined()
    expect(denialLines({ denials: r.denials!, count: 1 })[0]).toMatch(
      /^caplet: the guest tried to read fd 4: descriptor 4 lacks the right .*\(no flag grants it\)$/,
    )
  })

  it('a rename across mounts says why, and that no flag grants it', () => {
    const r = probeRun(['cross'], {
      mounts: [
        { guest: '/tmp', tmp: true },
        { guest: '/data2', host: data2 },
      ],
    })
    expect(r.denials![0]!.grant).toBeUndefined()
    expect(denialLines({ denials: r.denials!, count: 1 })[0]).toBe(
      'caplet: the guest tried to rename /tmp/a.txt: it moves a file from one mount to another (no flag grants it)',
    )
  })

  it('a denied import stubbed with ENOSYS names --allow-syscalls', () => {
    const r = probeRun(['cross'], {
      mounts: [
        { guest: '/tmp', tmp: true },
        { guest: '/data2', host: data2 },
      ],
      denySyscalls: ['path_rename'],
      deniedSyscalls: 'enosys',
    })
    expect(new TextDecoder().decode(r.stdout)).toBe('cross: Function not implemented\n')
    expect(r.denials).toEqual([
      {
        call: 'path_rename',
        kind: 'denied-import',
        reason: expect.stringMatching(/allow-list/) as string,
        grant: '--allow-syscalls path_rename',
      },
    ])
  })

  it('fuel and time limits, which stop the guest outside any host call, name --fuel and --timeout', () => {
    const spin = join(ROOT, 'test/fixtures/wasm/fuel_spin.wasm')
    const fuel = runSync(spin, { args: ['fuel_spin', 'forever'], limits: { fuel: 100_000 } })
    expect(fuel.limit).toBe('fuel')
    expect(fuel.denials).toEqual([{ call: 'fuel', kind: 'limit', reason: 'the run used up its fuel (100000)', grant: '--fuel N' }])
    expect(denialLines({ denials: fuel.denials!, count: 1 })).toEqual([
      'caplet: guest stopped: the run used up its fuel (100000) (raise it with --fuel N)',
    ])
  })

  it('the CLI explains a timeout with --timeout', () => {
    const spin = join(ROOT, 'test/fixtures/wasm/fuel_spin.wasm')
    const r = spawnSync(process.execPath, [bin, 'run', '--explain-denials', '--timeout', '300ms', spin, 'forever'], { encoding: 'utf8' })
    expect(r.status).toBe(124)
    // One line for the stop and its explanation, not two.
    expect(r.stderr).toBe('caplet: guest stopped: the run reached its time limit (300 ms) (raise it with --timeout DURATION)\n')
    const plain = spawnSync(process.execPath, [bin, 'run', '--timeout', '300ms', spin, 'forever'], { encoding: 'utf8' })
    expect(plain.stderr).toBe('caplet: guest stopped: it ran past --timeout\n')
  })

  it('an output limit reached in a host call is one line naming the call and --max-output', () => {
    const flood = join(ROOT, 'test/fixtures/wasm/flood.wasm')
    const r = spawnSync(process.execPath, [bin, 'run', '--explain-denials', '--max-output', '100', flood, 'stdout'], { encoding: 'utf8' })
    expect(r.status).toBe(124)
    expect(r.stderr).toBe('caplet: guest stopped in fd_write: stdout exceeded 100 bytes (raise it with --max-output SIZE)\n')
  })

  it('a path under no mount never reaches the host (wasi-libc refuses it), so it cannot be a denial', () => {
    // The documented limitation (README, denial reports): this pins the evidence. If a libc ever
    // asks the host, this fails and the host can start reporting it.
    const lines: string[] = []
    const r = probeRun(['unmounted'], { mounts: [{ guest: '/data', host: data, mode: 'ro' }], trace: (l) => lines.push(l) })
    expect(new TextDecoder().decode(r.stdout)).toBe('unmounted: Capabilities insufficient, Capabilities insufficient\n')
    expect(lines.filter((l) => l.startsWith('path_'))).toEqual([])
    expect(r.denials).toBeUndefined()
  })

  it('a missing file in a granted directory is an ordinary error, not a denial', () => {
    const r = probeRun(['missing'], { mounts: [{ guest: '/data', host: data, mode: 'ro' }] })
    expect(r.exitCode).toBe(0)
    expect(r.denials).toBeUndefined()
  })

  it('the CLI explains denials on request, one line each, and not by default on a pipe', () => {
    const args = ['run', '--dir', `${data}:/data:ro`, probe, 'ro-write', 'escape', 'ro-write']
    const plain = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' })
    expect(plain.stderr).toBe('')
    const explained = spawnSync(process.execPath, [bin, args[0]!, '--explain-denials', ...args.slice(1)], { encoding: 'utf8' })
    const lines = explained.stderr.trimEnd().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toBe(
      `caplet: the guest tried to write /data/out.txt: mount /data is read-only (grant with --dir ${data}:/data:rw) [2 times]`,
    )
  })

  it("a hostile file name from a real guest comes out escaped in the result's line, the CLI and the trace", () => {
    const r = probeRun(['hostile'], { mounts: [{ guest: '/data', host: data, mode: 'ro' }] })
    expect(r.denials![0]!.path).toBe('/data/\x1b[2J\u202eevil\u200b.txt')
    const cli = spawnSync(process.execPath, [bin, 'run', '--explain-denials', '--trace', '--dir', `${data}:/data:ro`, probe, 'hostile'], {
      encoding: 'utf8',
    })
    const lines = cli.stderr.split('\n').filter((l) => l.includes('evil'))
    expect(lines.length).toBeGreaterThanOrEqual(2)
    for (const l of lines) {
      expect(l).not.toMatch(/[\x00-\x1f\u200b\u202e]/)
      expect(l).toContain('\\x1b[2J\\u{202e}evil\\u{200b}.txt')
    }
  })

  it('hostile guest paths are escaped in denial lines', () => {
    const line = denialLines({
      denials: [{ call: 'path_open', kind: 'escape', path: '/data/\x1b[2J\u202e../x', reason: 'r' }],
      count: 1,
    })[0]!
    expect(line).not.toMatch(/[\x00-\x1f\u202e]/)
    expect(line).toContain('/data/\\x1b[2J\\u{202e}../x')
  })
})
