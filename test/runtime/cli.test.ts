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
    input: opts.input ?? '',
    cwd: opts.cwd ?? root,
    encoding: 'utf8',
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

  it('streams --stdin FILE: 200 MB pass through a worker run and an in-process run in bounded memory', () => {
    const big = join(tmp, 'big.bin')
    const block = Buffer.alloc(1 << 20)
    for (let i = 0; i < block.length; i++) block[i] = (i * 31 + (i >> 10)) & 0xff
    writeFileSync(big, Buffer.alloc(0))
    for (let i = 0; i < 200; i++) writeFileSync(big, block, { flag: 'a' })
    // The CLI's own process, with its peak RSS reported on fd 3 when it exits.
    const wrapper = join(tmp, 'rss.mjs')
    writeFileSync(
      wrapper,
      `import { writeSync } from 'node:fs'
process.on('exit', () => writeSync(3, String(process.resourceUsage().maxRSS)))
process.argv.splice(1, 1)
await import(${JSON.stringify(join(root, 'dist/cli.js'))})
`,
    )
    const piped = spawnSync(
      'bash',
      ['-c', '"$0" "$1" run --stdin "$2" "$3" 3>/dev/null | cksum', process.execPath, wrapper, big, sample('cat')],
      { encoding: 'utf8' },
    )
    const cksum = spawnSync('bash', ['-c', 'cksum < "$0"', big], { encoding: 'utf8' }).stdout
    expect(piped.stdout.split(' ').slice(0, 2)).toEqual(cksum.split(' ').slice(0, 2))
    for (const mode of [[], ['--in-process']]) {
      const rss = spawnSync(process.execPath, [wrapper, 'run', ...mode, '--stdin', big, sample('cat')], {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      })
      expect(rss.status).toBe(0)
      const maxRssKiB = Number(rss.output[3])
      expect(maxRssKiB).toBeGreaterThan(0)
      expect(maxRssKiB).toBeLessThan(100 * 1024)
    }
    rmSync(big)
  })

  describe('inherited stdout and stderr', () => {
    const both = (args: string[]) => spawnSync('bash', ['-c', '"$0" "$@" 2>&1', process.execPath, bin, ...args], { encoding: 'utf8' })
    const expected = (n: number) => Array.from({ length: n }, (_, i) => `${i % 2 ? 'err' : 'out'} ${i}\n`).join('')

    it.each([[[]], [['--in-process']]])('keep the order the guest wrote them in when both go to one pipe %j', (mode) => {
      const r = both(['run', ...mode, fixture('rt_interleave'), '20000'])
      expect(r.status).toBe(0)
      expect(r.stdout).toBe(expected(20000))
    })

    it('lose nothing when the guest traps, exits non-zero or is killed by --timeout', () => {
      const trap = both(['run', fixture('rt_interleave'), '3000', 'trap'])
      expect(trap.status).toBe(134)
      expect(trap.stdout.startsWith(expected(3000))).toBe(true)
      expect(trap.stdout.slice(expected(3000).length)).toMatch(/^caplet: guest trapped: unreachable/)
      const exit = both(['run', fixture('rt_interleave'), '3000', 'exit3'])
      expect(exit).toMatchObject({ status: 3, stdout: expected(3000) })
      const killed = both(['run', '--timeout', '1s', fixture('rt_interleave'), '3000', 'loop'])
      expect(killed.status).toBe(124)
      expect(killed.stdout.startsWith(expected(3000))).toBe(true)
      expect(killed.stdout.slice(expected(3000).length)).toMatch(/^caplet: guest stopped: it ran past --timeout/)
    })
  })

  it('passes stdin through, or from --stdin FILE', () => {
    expect(caplet(['run', sample('cat')], { input: 'piped\n' }).stdout).toBe('piped\n')
    expect(caplet(['run', '--stdin', join(tmp, 'input.txt'), sample('cat')]).stdout).toBe('from a file\n')
  })

  it('passes only the environment it is given', () => {
    const r = caplet(['run', '--env', 'CAPLET_TEST=1', '--env', 'A=1', '--env', 'FROM_HOST', fixture('diff_argsenv'), 'x'], {
      env: { FROM_HOST: 'yes', SECRET: 'no' },
    })
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
    const r = caplet([
      'run',
      '--overlay',
      `${site}:/sandbox`,
      '--dir',
      `${tmp}/fx:/data:ro`,
      '--overlay-out',
      join(tmp, 'saved'),
      fixture('diff_fileio'),
    ])
    expect(r.code).toBe(0)
    expect(readdirSync(site)).toEqual(['keep.txt'])
    expect(r.stderr).toMatch(/overlay \/sandbox: \d+ added, 0 modified, 0 deleted; saved to/)
    expect(readdirSync(join(tmp, 'saved'))).toContain('.caplet-overlay.json')
  })

  it('enforces --tmp GUEST:SIZE, --disk and --max-files with EDQUOT', () => {
    expect(caplet(['run', '--tmp', '/sandbox:1MiB', '--tmp', '/data', fixture('flood'), 'big-write']).stdout).toMatch(
      /1048576 bytes.*DQUOT/,
    )
    expect(caplet(['run', '--tmp', '/sandbox', '--tmp', '/data', '--disk', '2MiB', fixture('flood'), 'big-write']).stdout).toMatch(
      /2097152 bytes.*DQUOT/,
    )
    expect(caplet(['run', '--tmp', '/sandbox', '--tmp', '/data', '--max-files', '5', fixture('flood'), 'files']).stdout).toBe(
      'files: 5 DQUOT\n',
    )
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
    for (const s of [
      '--dir',
      '--tmp',
      '--overlay',
      '--env',
      '--stdin',
      '--memory',
      '--timeout',
      '--fuel',
      '--max-output',
      '--max-fds',
      '--disk',
      '--max-files',
      '--json',
      '--policy',
      '--deterministic',
      '124',
      '125',
      '126',
      '134',
    ])
      expect(r.stdout).toContain(s)
  })

  it('takes numbers in 1e9 form, seeds with --deterministic, and keeps binary output exact with --output-encoding base64', () => {
    expect(caplet(['run', '--fuel', '1e9', sample('hello')])).toMatchObject({ code: 0, stdout: 'hello from caplet\n' })
    expect(caplet(['run', '--fuel', '5_000_000', sample('hello')]).code).toBe(0)
    const a = caplet(['run', '--deterministic', '--seed', '7', fixture('rt_entropy')])
    const b = caplet(['run', '--deterministic', '--seed', '7', fixture('rt_entropy')])
    expect(a.code).toBe(0)
    expect(a.stdout).toBe(b.stdout)
    expect(caplet(['run', '--deterministic', '--seed', '8', fixture('rt_entropy')]).stdout).not.toBe(a.stdout)
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41])
    writeFileSync(join(tmp, 'binary.bin'), binary)
    const j = JSON.parse(caplet(['run', '--json', '--output-encoding', 'base64', '--stdin', join(tmp, 'binary.bin'), sample('cat')]).stdout)
    expect(j.encoding).toBe('base64')
    expect(Buffer.from(j.stdout, 'base64')).toEqual(binary)
    const t = JSON.parse(caplet(['run', '--json', '--stdin', join(tmp, 'binary.bin'), sample('cat')]).stdout)
    expect(t.encoding).toBeUndefined()
    expect(t.stdout).toBe('\ufffd\ufffd\u0000\ufffdA')
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
    [['run', '--memory', 'lots', sample('hello')], 125, /--memory lots: /],
    [['run', '--memory', '5GiB', sample('hello')], 125, /--memory 5GiB: at most 4GiB/],
    [['run', '--fuel', '-3', sample('hello')], 125, /--fuel -3: expected a whole number from 1 to/],
    [['run', '--fuel', '1.5', sample('hello')], 125, /--fuel 1.5: expected a whole number/],
    [['run', '--fuel', '1e400', sample('hello')], 125, /--fuel 1e400: expected a whole number/],
    [['run', '--timeout', '0', sample('hello')], 125, /--timeout 0: must be more than 0/],
    [['run', '--timeout', '0ms', sample('hello')], 125, /--timeout 0ms: must be more than 0/],
    [['run', '--timeout', 'soon', sample('hello')], 125, /--timeout soon: /],
    [['run', '--dir', '__TMP__/data:/x:rx', sample('hello')], 125, /--dir .*: unknown mode "rx": expected ro or rw/],
    [['run', '--seed', '5', sample('hello')], 125, /--seed 5: applies only with --deterministic/],
    [['run', '--deterministic', '--seed', '-1', sample('hello')], 125, /--seed -1: expected a whole number/],
    [['run', '--output-encoding', 'hex', sample('hello')], 125, /--output-encoding hex: expected utf8 or base64/],
    [['run', '--output-encoding', 'base64', sample('hello')], 125, /--output-encoding applies only with --json/],
    [['run', '--tier', 'fast', sample('hello')], 125, /expected auto, optimized or baseline/],
  ])('%j fails with %i and one clear line', (args, code, message) => {
    const r = caplet((args as string[]).map((a) => (a === '__NOTWASM__' ? join(tmp, 'not-wasm.wasm') : a.replace('__TMP__', tmp))))
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message as RegExp)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
