/**
 * Prepared programs (`prepare`, `prepareSync`): the policy and the module are checked once, and
 * every run still gets fresh state. Each limit is shown through the prepared path next to
 * `run()`/`runSync()` with the same options, and on a second run of the same program.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  ModuleError,
  PolicyError,
  prepare,
  prepareSync,
  run,
  runSync,
  type RunInput,
  type RunOptions,
  type RunResult,
} from '../../runtime/index.js'
import { createMemFs } from '../../wasi-host/index.js'
import { fixtureWasm, makeHostLayout, sampleWasm, text, type HostLayout } from '../support/guest.js'
import { buildModule, op, u32 } from './instrument/wasm.js'

const layouts: HostLayout[] = []
afterEach(() => {
  for (const l of layouts.splice(0)) l.cleanup()
})
function layout(): HostLayout {
  const l = makeHostLayout()
  layouts.push(l)
  return l
}

/** What must agree between two runs of the same guest under the same policy and input. */
function summary(r: RunResult) {
  return {
    exitCode: r.exitCode,
    limit: r.limit,
    trap: r.trap?.kind,
    stdout: text(r.stdout),
    stderr: text(r.stderr),
    fuelUsed: r.stats.fuelUsed,
    overlays: r.overlays?.map((o) => o.changes),
  }
}

/** A command whose `_start` grows its table by 9 M entries and exits 7 if that fails (the cap is 8 × 2^20). */
const tableGrower = buildModule({
  imports: [{ module: 'wasi_snapshot_preview1', name: 'proc_exit', desc: [0x00, 0] }],
  types: [{ params: [0x7f], results: [] }],
  memory: [0x00, 1],
  table: [0x70, 0x00, ...u32(1)],
  funcs: [
    {
      export: '_start',
      body: [
        op.ref_null,
        0x70,
        op.i32_const,
        ...u32(9_000_000),
        0xfc,
        ...u32(15),
        0, // table.grow 0
        op.i32_const,
        0x7f,
        op.i32_eq, // == -1
        op.if,
        op.void,
        op.i32_const,
        7,
        op.call,
        0,
        op.end,
      ],
    },
  ],
})

interface LimitCase {
  name: string
  module: () => string | Uint8Array
  options: () => RunOptions
  input?: RunInput
  check: (r: RunResult) => void
  /** A time limit needs a worker. */
  workerOnly?: boolean
}

const flood = () => fixtureWasm('flood')
const LIMITS: LimitCase[] = [
  {
    name: 'memory',
    module: flood,
    options: () => ({ limits: { memory: '32MiB' } }),
    input: { args: ['flood', 'alloc'] },
    check: (r) => {
      expect(text(r.stdout)).toMatch(/^alloc: 31 MiB/)
      expect(r.stats.peakMemory).toBeLessThanOrEqual(32 << 20)
    },
  },
  {
    name: 'tables',
    module: () => tableGrower,
    options: () => ({}),
    check: (r) => expect(r.exitCode).toBe(7),
  },
  {
    name: 'fuel (stops a loop)',
    module: flood,
    options: () => ({ limits: { fuel: 10_000_000 } }),
    input: { args: ['flood', 'loop'] },
    check: (r) => {
      expect(r.limit).toBe('fuel')
      expect(r.exitCode).toBe(124)
    },
  },
  {
    name: 'fuel (counts the same)',
    module: () => sampleWasm('cat'),
    options: () => ({ limits: { fuel: 1e9 } }),
    input: { stdin: 'some input\n'.repeat(100) },
    check: (r) => {
      expect(r.exitCode).toBe(0)
      expect(r.stats.fuelUsed).toBeGreaterThan(0)
    },
  },
  {
    name: 'timeout',
    module: flood,
    options: () => ({ limits: { timeout: '1s' } }),
    input: { args: ['flood', 'loop'] },
    workerOnly: true,
    check: (r) => {
      expect(r.limit).toBe('timeout')
      expect(text(r.stdout)).toContain('loop: start')
    },
  },
  {
    name: 'output bytes',
    module: () => sampleWasm('cat'),
    options: () => ({ limits: { stdout: 100 } }),
    input: { stdin: 'x'.repeat(10_000) },
    check: (r) => {
      expect(r.limit).toBe('stdout')
      expect(r.stdout.byteLength).toBe(100)
    },
  },
  {
    name: 'descriptors',
    module: flood,
    options: () => {
      const l = layout()
      return {
        limits: { fds: 16 },
        mounts: [
          { guest: '/sandbox', host: l.sandbox },
          { guest: '/data', host: l.data, mode: 'ro' },
        ],
      }
    },
    input: { args: ['flood', 'fds'] },
    check: (r) => expect(text(r.stdout)).toBe('fds: 11 MFILE\n'),
  },
  {
    name: 'disk quota',
    module: flood,
    options: () => ({ limits: { disk: '2MiB' }, mounts: [{ guest: '/sandbox', tmp: true }] }),
    input: { args: ['flood', 'big-write'] },
    check: (r) => expect(text(r.stdout)).toMatch(/^big-write: 2097152 bytes \(2 MiB\) DQUOT/),
  },
  {
    name: 'mount size',
    module: flood,
    options: () => ({ mounts: [{ guest: '/sandbox', tmp: true, size: '3MiB' }] }),
    input: { args: ['flood', 'big-write'] },
    check: (r) => expect(text(r.stdout)).toMatch(/^big-write: 3145728 bytes \(3 MiB\) DQUOT/),
  },
  {
    name: 'inode quota',
    module: flood,
    options: () => ({ limits: { inodes: 5 }, mounts: [{ guest: '/sandbox', tmp: true }] }),
    input: { args: ['flood', 'files'] },
    check: (r) => expect(text(r.stdout)).toBe('files: 5 DQUOT\n'),
  },
  {
    name: 'mount files',
    module: flood,
    options: () => ({ mounts: [{ guest: '/sandbox', tmp: true, inodes: 7 }] }),
    input: { args: ['flood', 'files'] },
    check: (r) => expect(text(r.stdout)).toBe('files: 7 DQUOT\n'),
  },
]

describe('limits hold through a prepared program as through run()', () => {
  it.each(LIMITS)('$name, in a worker, on every run', async (c) => {
    const options = c.options()
    const reference = await run(c.module(), { ...options, ...c.input })
    c.check(reference)
    const program = await prepare(c.module(), options)
    for (let i = 0; i < 2; i++) {
      const r = await program.run(c.input)
      c.check(r)
      expect(summary(r)).toEqual(summary(reference))
    }
  })

  it.each(LIMITS.filter((c) => !c.workerOnly))('$name, in-process, on every run', (c) => {
    const options = c.options()
    const reference = runSync(c.module(), { ...options, ...c.input })
    c.check(reference)
    const program = prepareSync(c.module(), options)
    for (let i = 0; i < 2; i++) {
      const r = program.runSync(c.input)
      c.check(r)
      expect(summary(r)).toEqual(summary(reference))
    }
  })

  it('keeps an explicit output limit when a run delivers output elsewhere', async () => {
    const program = await prepare(sampleWasm('cat'), { limits: { stdout: 100 } })
    let seen = 0
    const r = await program.run({
      stdin: 'x'.repeat(10_000),
      stdout: (c) => {
        seen += c.byteLength
      },
    })
    expect(r.limit).toBe('stdout')
    expect(seen).toBe(100)
    expect(program.runSync({ stdin: 'x'.repeat(10_000), stdout: 'discard' }).limit).toBe('stdout')
  })

  it('refuses runSync of a program with a timeout (only a worker can stop it), and runs it in a worker', async () => {
    const program = prepareSync(sampleWasm('hello'), { limits: { timeout: '5s' } })
    expect(() => program.runSync()).toThrow(PolicyError)
    expect(() => program.runSync()).toThrow(/limits\.timeout: needs isolation 'worker'/)
    expect(text((await program.run()).stdout)).toBe('hello from caplet\n')
  })

  it('keeps the policy it was prepared with when the caller changes the options afterwards', async () => {
    const options = { limits: { stdout: 100 as number | string }, args: ['cat'] }
    const program = await prepare(sampleWasm('cat'), options)
    options.limits.stdout = '1MiB'
    options.args.push('/nonexistent')
    const r = await program.run({ stdin: 'x'.repeat(10_000) })
    expect(r.limit).toBe('stdout')
    expect(r.stdout.byteLength).toBe(100)
  })
})

describe('per-run input', () => {
  it('changes args, env and stdin from one run to the next, in a worker and in-process', async () => {
    const program = await prepare(fixtureWasm('diff_argsenv'), { env: { K: 'prepared' } })
    const a = await program.run({ args: ['x', 'first'] })
    const b = program.runSync({ args: ['y', 'second'], env: { K: 'per-run' } })
    expect(text(a.stdout)).toContain('argv[1]: "first"')
    expect(text(a.stdout)).toContain('"K=prepared"')
    expect(text(b.stdout)).toContain('argv[1]: "second"')
    expect(text(b.stdout)).toContain('"K=per-run"')
    expect(text(b.stdout)).not.toContain('prepared')
    const cat = prepareSync(sampleWasm('cat'), { stdin: 'default\n' })
    expect(text(cat.runSync().stdout)).toBe('default\n')
    expect(text(cat.runSync({ stdin: 'per run\n' }).stdout)).toBe('per run\n')
    expect(text((await cat.run({ stdin: new TextEncoder().encode('bytes\n') })).stdout)).toBe('bytes\n')
  })

  it('runs concurrently in workers, each run with its own input and output', async () => {
    const program = await prepare(sampleWasm('cat'))
    const inputs = Array.from({ length: 6 }, (_, i) => `run ${i}\n`.repeat(1000))
    const results = await Promise.all(inputs.map((stdin) => program.run({ stdin })))
    expect(results.map((r) => text(r.stdout))).toEqual(inputs)
  })

  it('is checked with the messages of a whole policy, naming each field; policy fields are refused', async () => {
    const program = await prepare(sampleWasm('hello'))
    const bad = { args: ['ok', 1], env: { 'A=B': 'x' }, limits: { fuel: 5 }, stdout: 'loud', bogus: true } as unknown as RunInput
    const err = await program.run(bad).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    const problems = (err as PolicyError).problems
    expect(problems).toContain('limits: is fixed when the program is prepared; pass it to prepare()')
    expect(problems.some((p) => p.startsWith('args[1]: '))).toBe(true)
    expect(problems.some((p) => p.startsWith('env.A=B: '))).toBe(true)
    expect(problems.some((p) => p.startsWith('stdout: '))).toBe(true)
    expect(problems.some((p) => p.includes('"bogus"'))).toBe(true)
    // The same words as run() for the same field.
    const whole = await run(sampleWasm('hello'), { args: ['ok', 1] } as unknown as RunOptions).catch((e: PolicyError) => e.problems)
    expect(problems).toContain((whole as string[])[0])
    expect(() => program.runSync(bad)).toThrow(PolicyError)
  })

  it('refuses stdin "inherit" in a deterministic program', () => {
    const program = prepareSync(sampleWasm('cat'), { deterministic: true })
    expect(() => program.runSync({ stdin: 'inherit' })).toThrow(/stdin: 'inherit' is not deterministic/)
  })

  it('takes a signal per run: an aborted one refuses, an abort stops the run, and the program runs on', async () => {
    const program = await prepare(fixtureWasm('flood'))
    await expect(program.run({ args: ['flood', 'loop'], signal: AbortSignal.abort(new Error('not now')) })).rejects.toThrow('not now')
    const ac = new AbortController()
    const p = program.run({ args: ['flood', 'loop'], signal: ac.signal })
    setTimeout(() => ac.abort(new Error('caller gave up')), 100)
    await expect(p).rejects.toThrow('caller gave up')
    expect((await program.run({ args: ['flood', 'fds', '1'] })).exitCode).toBe(0)
  })
})

describe('prepare refuses what run() refuses, once', () => {
  it('lists every policy problem with its field', async () => {
    const options = { limits: { memory: 'lots', fds: 1 }, mounts: [{ guest: 'data', tmp: true }] }
    const err = await prepare(sampleWasm('hello'), options).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems).toEqual(await run(sampleWasm('hello'), options).catch((e: PolicyError) => e.problems))
    expect(() => prepareSync(sampleWasm('hello'), options)).toThrow(PolicyError)
  })

  it('rejects a module that is not a command, or not WebAssembly', async () => {
    await expect(prepare(new TextEncoder().encode('#!/bin/sh\n'))).rejects.toBeInstanceOf(ModuleError)
    const reactor = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1, 7, 10, 1, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0])
    expect(() => prepareSync(reactor)).toThrow(/no "_start" export/)
    await expect(prepare(sampleWasm('hello'), { syscalls: ['proc_exit'] })).rejects.toThrow(/fd_write/)
  })
})

describe('mounts are opened afresh for every run of a prepared program', () => {
  for (const isolation of ['worker', 'in-process'] as const) {
    it(`${isolation}: a file written to a tmp mount in one run is not there in the next`, async () => {
      const program = await prepare(fixtureWasm('rt_state'), { isolation, mounts: [{ guest: '/scratch', tmp: true }] })
      const first = await program.run({ args: ['rt_state', '/scratch', 'one'] })
      const second = await program.run({ args: ['rt_state', '/scratch', 'two'] })
      expect(text(first.stdout)).toBe('/scratch: -\ncreate one: ok\n')
      expect(text(second.stdout)).toBe('/scratch: -\ncreate two: ok\n')
    })

    it(`${isolation}: an overlay's changes stay in their run, and the host directory is untouched`, async () => {
      const l = layout()
      writeFileSync(join(l.sandbox, 'existing.txt'), 'from the host\n')
      const program = await prepare(fixtureWasm('rt_state'), {
        isolation,
        mounts: [{ guest: '/sandbox', host: l.sandbox, mode: 'overlay' }],
      })
      for (const name of ['one', 'two']) {
        const r = await program.run({ args: ['rt_state', '/sandbox', name, 'existing.txt'] })
        expect(text(r.stdout)).toBe(`/sandbox: existing.txt\ncreate ${name}: ok\nremove existing.txt: ok\n`)
        expect(r.overlays?.[0]?.changes.map((c) => `${c.kind} ${c.path}`).sort()).toEqual(['added ' + name, 'deleted existing.txt'])
      }
      expect(readFileSync(join(l.sandbox, 'existing.txt'), 'utf8')).toBe('from the host\n')
      expect(existsSync(join(l.sandbox, 'one'))).toBe(false)
    })
  }

  it("a host directory is the host's: what one run writes there, the next run sees", async () => {
    const l = layout()
    const program = await prepare(fixtureWasm('rt_state'), { mounts: [{ guest: '/sandbox', host: l.sandbox }] })
    await program.run({ args: ['rt_state', '/sandbox', 'one'] })
    expect(text((await program.run({ args: ['rt_state', '/sandbox', 'two'] })).stdout)).toBe('/sandbox: one\ncreate two: ok\n')
    expect(readFileSync(join(l.sandbox, 'one'), 'utf8')).toBe('left by an earlier run\n')
  })

  it("a backend object passed as `fs` is the caller's, shared by every run", () => {
    const program = prepareSync(fixtureWasm('rt_state'), { isolation: 'in-process', mounts: [{ guest: '/mem', fs: createMemFs() }] })
    program.runSync({ args: ['rt_state', '/mem', 'one'] })
    expect(text(program.runSync({ args: ['rt_state', '/mem', 'two'] }).stdout)).toBe('/mem: one\ncreate two: ok\n')
  })
})

describe('run() with the same bytes object', () => {
  it('runs what the bytes hold now, when the caller changed them in place between runs', () => {
    const bytes = new Uint8Array(readFileSync(sampleWasm('hello')))
    expect(text(runSync(bytes).stdout)).toBe('hello from caplet\n')
    const at = Buffer.from(bytes).indexOf('hello from caplet')
    expect(at).toBeGreaterThan(0)
    bytes[at] = 'j'.charCodeAt(0)
    expect(text(runSync(bytes).stdout)).toBe('jello from caplet\n')
    bytes[0] = 1
    expect(() => runSync(bytes)).toThrow(ModuleError)
    bytes[0] = 0
    bytes[at] = 'h'.charCodeAt(0)
    expect(text(runSync(bytes).stdout)).toBe('hello from caplet\n')
  })

  it('a prepared program keeps the module it compiled, whatever happens to the bytes', () => {
    const bytes = new Uint8Array(readFileSync(sampleWasm('hello')))
    const program = prepareSync(bytes)
    bytes.fill(0)
    expect(text(program.runSync().stdout)).toBe('hello from caplet\n')
  })
})
