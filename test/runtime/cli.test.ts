import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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

  it('prints help that names every flag and exit code', () => {
    const r = caplet(['--help'])
    expect(r.code).toBe(0)
    for (const s of ['--dir', '--tmp', '--env', '--stdin', '125', '126', '134']) expect(r.stdout).toContain(s)
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
  ])('%j fails with %i and one clear line', (args, code, message) => {
    const r = caplet((args as string[]).map((a) => (a === '__NOTWASM__' ? join(tmp, 'not-wasm.wasm') : a.replace('__TMP__', tmp))))
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message as RegExp)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
