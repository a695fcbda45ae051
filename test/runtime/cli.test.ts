import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const bin = join(root, 'bin/caplet.js')
const sample = (n: string) => join(root, 'samples', `${n}.wasm`)
const fixture = (n: string) => join(root, 'test/fixtures/wasm', `${n}.wasm`)

function caplet(args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    input: opts.input ?? '', cwd: opts.cwd ?? root, encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...opts.env },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

let tmp: string
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'caplet-cli-'))
  mkdirSync(join(tmp, 'data'))
  writeFileSync(join(tmp, 'data', 'f.txt'), 'line1\nline2\n')
  writeFileSync(join(tmp, 'canary.txt'), 'CANARY')
  writeFileSync(join(tmp, 'input.txt'), 'from a file\n')
  writeFileSync(join(tmp, 'not-wasm.wasm'), 'hello')
  // The layout the differential fixtures expect at /data.
  mkdirSync(join(tmp, 'fx', 'sub'), { recursive: true })
  mkdirSync(join(tmp, 'fx', 'empty'))
  writeFileSync(join(tmp, 'fx', 'a.txt'), 'alpha\n')
  writeFileSync(join(tmp, 'fx', 'sub', 'b.txt'), 'bravo bravo\n')
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('caplet run', () => {
  it('runs the hello sample with nothing granted', () => {
    const r = caplet(['run', sample('hello')])
    expect(r).toMatchObject({ code: 0, stdout: 'hello from caplet\n', stderr: '' })
  })

  it('accepts the module without the run verb', () => {
    expect(caplet([sample('hello')]).stdout).toBe('hello from caplet\n')
  })

  it('grants a read-only host directory and nothing beside it', () => {
    const ok = caplet(['run', '--dir', `${tmp}/data:/data:ro`, sample('cat'), '/data/f.txt'])
    expect(ok).toMatchObject({ code: 0, stdout: 'line1\nline2\n' })
    const escape = caplet(['run', '--dir', `${tmp}/data:/data:ro`, sample('cat'), '/data/../canary.txt'])
    expect(escape.code).toBe(1)
    expect(escape.stdout).not.toContain('CANARY')
    expect(escape.stderr).toMatch(/not permitted/i)
  })

  it('refuses writes through a read-only mount and allows them in --tmp', () => {
    const r = caplet(['run', '--dir', `${tmp}/fx:/data:ro`, '--tmp', '/sandbox', fixture('diff_fileio')])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('read /data/a.txt: "alpha\\n"')
    expect(readFileSync(join(tmp, 'fx', 'a.txt'), 'utf8')).toBe('alpha\n')
  })

  it('passes stdin through, or from --stdin FILE', () => {
    expect(caplet(['run', sample('cat')], { input: 'piped\n' }).stdout).toBe('piped\n')
    expect(caplet(['run', '--stdin', join(tmp, 'input.txt'), sample('cat')]).stdout).toBe('from a file\n')
  })

  it('passes only the environment it is given', () => {
    const r = caplet(['run', '--env', 'CAPLET_TEST=1', '--env', 'A=1', '--env', 'FROM_HOST', fixture('diff_argsenv'), 'x'], { env: { FROM_HOST: 'yes', SECRET: 'no' } })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('A=1')
    expect(r.stdout).toContain('FROM_HOST=yes')
    expect(r.stdout).not.toContain('SECRET')
  })

  it("returns the guest's exit code", () => {
    const r = caplet(['run', fixture('diff_exit'), '7'])
    expect(r.code).toBe(7)
  })

  it('keeps an overlay private, then saves it with --overlay-out', () => {
    const site = join(tmp, 'site')
    mkdirSync(site, { recursive: true })
    writeFileSync(join(site, 'keep.txt'), 'keep')
    const r = caplet(['run', '--overlay', `${site}:/sandbox`, '--dir', `${tmp}/fx:/data:ro`, '--overlay-out', join(tmp, 'saved'), fixture('diff_fileio')])
    expect(r.code).toBe(0)
    expect(readdirSync(site)).toEqual(['keep.txt'])
    expect(r.stderr).toMatch(/overlay \/sandbox: \d+ added, 0 modified, 0 deleted; saved to/)
    expect(readdirSync(join(tmp, 'saved'))).toContain('.caplet-overlay.json')
  })

  it('enforces --tmp GUEST:SIZE, --disk and --max-files with EDQUOT', () => {
    expect(caplet(['run', '--tmp', '/sandbox:1MiB', '--tmp', '/data', fixture('flood'), 'big-write']).stdout).toMatch(/1048576 bytes.*DQUOT/)
    expect(caplet(['run', '--tmp', '/sandbox', '--tmp', '/data', '--disk', '2MiB', fixture('flood'), 'big-write']).stdout).toMatch(/2097152 bytes.*DQUOT/)
    expect(caplet(['run', '--tmp', '/sandbox', '--tmp', '/data', '--max-files', '5', fixture('flood'), 'files']).stdout).toBe('files: 5 DQUOT\n')
  })

  it('stops a runaway guest with --timeout and --fuel (exit 124), and traps with 134', () => {
    const t = caplet(['run', '--timeout', '200ms', fixture('flood'), 'loop'])
    expect(t.code).toBe(124)
    expect(t.stderr).toMatch(/--timeout/)
    expect(caplet(['run', '--fuel', '1000000', fixture('flood'), 'loop']).code).toBe(124)
    const trap = caplet(['run', fixture('rt_trap'), 'unreachable'])
    expect(trap.code).toBe(134)
    expect(trap.stderr).toMatch(/guest trapped: unreachable/)
  })

  it('prints the result as JSON with --json', () => {
    const r = caplet(['run', '--json', '--fuel', '100000000', sample('hello')])
    const j = JSON.parse(r.stdout) as { exitCode: number; stdout: string; stats: { fuelUsed: number } }
    expect(j.exitCode).toBe(0)
    expect(j.stdout).toBe('hello from caplet\n')
    expect(j.stats.fuelUsed).toBeGreaterThan(0)
  })

  it('reads a policy file, and --deterministic gives identical output', () => {
    const policy = join(tmp, 'policy.json')
    writeFileSync(policy, JSON.stringify({ env: { FROM_POLICY: 'yes', CAPLET_TEST: '1' }, limits: { memory: '64MiB' } }))
    expect(caplet(['run', '--policy', policy, fixture('diff_argsenv')]).stdout).toContain('FROM_POLICY=yes')
    const a = caplet(['run', '--deterministic', fixture('rt_entropy')])
    const b = caplet(['run', '--deterministic', fixture('rt_entropy')])
    expect(a.stdout).toBe(b.stdout)
  })

  it('prints help that names every flag and exit code', () => {
    const r = caplet(['--help'])
    expect(r.code).toBe(0)
    for (const s of ['--dir', '--tmp', '--overlay', '--env', '--stdin', '--memory', '--timeout', '--fuel', '--max-output', '--max-fds', '--disk', '--max-files', '--json', '--policy', '--deterministic', '124', '125', '126', '134']) expect(r.stdout).toContain(s)
  })

  it.each([
    [['run'], 125, /no module given/],
    [['run', '--bogus', 'x.wasm'], 125, /unknown flag --bogus/],
    [['run', '--dir', 'nowhere:/x', sample('hello')], 125, /not an existing directory/],
    [['run', '--dir', '__TMP__/data', sample('hello')], 125, /HOST:GUEST/],
    [['run', '--dir', '__TMP__/data:rel', sample('hello')], 125, /must be absolute/],
    [['run', '--env', 'UNSET_VAR_X', sample('hello')], 125, /not set/],
    [['run', '--stdin', '/nonexistent/file', sample('hello')], 125, /cannot read/],
    [['run', 'missing.wasm'], 126, /no such file/],
    [['run', '__NOTWASM__'], 126, /not a WebAssembly module/],
    [['run', '--overlay-out', '/tmp/x', sample('hello')], 125, /needs an --overlay mount/],
    [['run', '--memory', 'lots', sample('hello')], 125, /invalid policy: limits\.memory/],
    [['run', '--fuel', '-3', sample('hello')], 125, /positive whole number/],
    [['run', '--tier', 'fast', sample('hello')], 125, /expected auto, optimized or baseline/],
  ])('%j fails with %i and one clear line', (args, code, message) => {
    const r = caplet((args as string[]).map((a) => (a === '__NOTWASM__' ? join(tmp, 'not-wasm.wasm') : a.replace('__TMP__', tmp))))
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message as RegExp)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
