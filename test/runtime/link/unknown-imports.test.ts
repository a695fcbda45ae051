import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ModuleError, UnknownImportsError } from '../../../runtime/errors.js'
import { stubFunctions, unknownImportsMessage, UnknownImportCalled } from '../../../runtime/link/imports.js'
import { loadLinked } from '../../../runtime/module.js'
import { run, runSync } from '../../../runtime/sandbox.js'
import { WasiHost } from '../../../wasi-host/index.js'
import { buildModule, I32, I64, op, ROOT } from '../instrument/wasm.js'

const WASI = 'wasi_snapshot_preview1'

/**
 * A command importing `proc_exit` (func 0), `fd_write` (func 1) and `env.missing` (func 2,
 * `() -> i64`). `_start` calls `missing` and exits with its value + 40 only if `callMissing`;
 * with `withStartWrite`, a start function writes "started" to stdout at instantiation.
 */
function command(callMissing: boolean, withStartWrite = false): Uint8Array {
  const types = [
    { params: [I32], results: [] }, // 0: proc_exit
    { params: [I32, I32, I32, I32], results: [I32] }, // 1: fd_write
    { params: [], results: [I64] }, // 2: env.missing
  ]
  const body: number[] = []
  if (callMissing) body.push(op.call, 2, 0xa7 /* i32.wrap_i64 */, op.i32_const, 40, op.i32_add, op.call, 0)
  return buildModule({
    types,
    imports: [
      { module: WASI, name: 'proc_exit', desc: [0x00, 0x00] },
      { module: WASI, name: 'fd_write', desc: [0x00, 0x01] },
      { module: 'env', name: 'missing', desc: [0x00, 0x02] },
    ],
    memory: [0x00, 1],
    funcs: [
      { body, export: '_start' },
      // start: fd_write(1, iov@16 -> "started" @0, 1, nwritten@32)
      {
        body: withStartWrite
          ? [
              op.i32_const,
              16,
              op.i32_const,
              0,
              op.i32_store,
              2,
              0,
              op.i32_const,
              20,
              op.i32_const,
              7,
              op.i32_store,
              2,
              0,
              op.i32_const,
              1,
              op.i32_const,
              16,
              op.i32_const,
              1,
              op.i32_const,
              32,
              op.call,
              1,
              op.drop,
            ]
          : [],
      },
    ],
    ...(withStartWrite ? { start: 4, data: [[0x00, op.i32_const, 0, op.end, 7, ...new TextEncoder().encode('started')]] } : {}),
  })
}

describe('unknown imports', () => {
  it('are refused by default, before any guest code runs (not even a start function)', async () => {
    const out: Uint8Array[] = []
    const err = await run(command(false, true), { stdout: (c) => out.push(c.slice()) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnknownImportsError)
    expect((err as UnknownImportsError).imports).toEqual(['env.missing'])
    expect((err as Error).message).toMatch(/--trap-unknown-imports/)
    expect(out).toEqual([])
  })

  it('trap mode: a module that never calls the import runs to the end', () => {
    const r = runSync(command(false), { unknownImports: 'trap' })
    expect(r).toMatchObject({ exitCode: 0 })
    expect(r.trap).toBeUndefined()
  })

  it('trap mode: calling the import traps, naming it', async () => {
    const r = await run(command(true), { unknownImports: 'trap' })
    expect(r.trap).toMatchObject({ kind: 'unknown-import', syscall: 'env.missing' })
    expect(r.trap!.message).toMatch(/called env\.missing, an import caplet does not provide/)
    expect(r.exitCode).toBe(134)
  })

  it('default mode: the import returns zero of its type (an i64 here)', async () => {
    const r = await run(command(true), { unknownImports: 'default' })
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(40) // proc_exit(0 + 40)
  })

  it('a refusal message stays short: count, three names, the flags; every name in the error', () => {
    const names = Array.from(
      { length: 24 },
      (_, i) => `rb-js-abi-host.f${i}: func(value: handle<js-abi-value>) -> variant { success(handle<js-abi-value>) }`,
    )
    const short = unknownImportsMessage(names, false)
    expect(short.length).toBeLessThan(400)
    expect(short).toMatch(/^module imports 24 functions caplet does not provide: .* and 21 more; run with --trap-unknown-imports/)
    expect(unknownImportsMessage(names, true)).toContain(names[23])
    // Hostile names are escaped in both.
    const hostile = unknownImportsMessage(['env.\x1b[31mred\u202e'], true)
    expect(hostile).toContain('env.\\x1b[31mred\\u{202e}')
  })

  it('non-function imports are never stubbed', () => {
    const bytes = buildModule({
      imports: [{ module: 'env', name: 'g', desc: [0x03, I32, 0x00] }],
      memory: [0x00, 1],
      funcs: [{ body: [], export: '_start' }],
    })
    expect(() => runSync(bytes, { unknownImports: 'default' })).toThrow(/non-function caplet does not provide: env\.g \(global\)/)
  })

  it('a guest that catches the trap (exception handling) still ends trapped', () => {
    let trapped: UnknownImportCalled | undefined
    const stubs = stubFunctions(
      [{ module: 'env', name: 'x', action: 'trap', results: [] }],
      () => {},
      (e) => {
        trapped = e
      },
    )
    expect(() => stubs.env!.x!()).toThrow(UnknownImportCalled)
    expect(trapped?.importName).toBe('env.x')
  })
})

describe('syscall allow-list and deny-list', () => {
  const rnd = () =>
    buildModule({
      types: [
        { params: [I32], results: [] },
        { params: [I32, I32], results: [I32] },
      ],
      imports: [
        { module: WASI, name: 'proc_exit', desc: [0x00, 0x00] },
        { module: WASI, name: 'random_get', desc: [0x00, 0x01] },
      ],
      memory: [0x00, 1],
      funcs: [{ body: [op.i32_const, 0, op.i32_const, 8, op.call, 1, op.call, 0], export: '_start' }],
    })

  it('a denied WASI import refuses the module, naming the flag that allows it', () => {
    expect(() => runSync(rnd(), { denySyscalls: ['random_get'] })).toThrow(
      /denies: random_get \(allow them with --allow-syscalls random_get, or stub them to return ENOSYS with --stub-denied-syscalls\)/,
    )
    expect(() => runSync(rnd(), { syscalls: ['proc_exit'] })).toThrow(ModuleError)
  })

  it('stubbed with ENOSYS, the call fails with ENOSYS (52) and the module runs', () => {
    expect(runSync(rnd(), { denySyscalls: ['random_get'], deniedSyscalls: 'enosys' }).exitCode).toBe(52)
    expect(runSync(rnd(), { syscalls: ['proc_exit'], deniedSyscalls: 'enosys' }).exitCode).toBe(52)
    expect(runSync(rnd()).exitCode).toBe(0)
  })

  it('names that are not preview1 functions are a policy error', () => {
    expect(() => runSync(rnd(), { syscalls: ['proc_exit', 'fork'] })).toThrow(/syscalls: not wasi_snapshot_preview1 functions: "fork"/)
  })
})

describe('CRuby (@ruby/3.4-wasm-wasi) with trapping unknown imports', () => {
  const wasm = join(ROOT, 'node_modules/@ruby/3.4-wasm-wasi/dist/ruby.wasm')

  /** Drives the reactor as its JS package does: ruby-init, ruby-init-loadpath, then eval a script. */
  function evalRuby(mode: 'trap' | 'default', script: string): { out: string; error?: unknown; state?: number } {
    const { module, plan } = loadLinked(readFileSync(wasm), { unknownImports: mode })
    expect(plan.stubs.length).toBe(24)
    let out = ''
    const dec = new TextDecoder()
    const host = new WasiHost({
      args: ['ruby'],
      stdout: (c) => {
        out += dec.decode(c)
      },
      stderr: () => {},
      functions: plan.functions,
    })
    const imports: Record<string, Record<string, unknown>> = { ...host.imports }
    for (const [m, f] of Object.entries(
      stubFunctions(
        plan.stubs,
        () => {},
        () => {},
      ),
    ))
      imports[m] = { ...imports[m], ...f }
    const inst = new WebAssembly.Instance(module, imports as WebAssembly.Imports)
    host.initialize(inst)
    const x = inst.exports as Record<string, (...a: number[]) => number> & { memory: WebAssembly.Memory }
    const str = (s: string): [number, number] => {
      const b = new TextEncoder().encode(s)
      const p = x.cabi_realloc!(0, 0, 1, b.length + 1)
      new Uint8Array(x.memory.buffer).set(b, p)
      return [p, b.length]
    }
    const argv = ['ruby', '-e_=0'].map(str)
    const arr = x.cabi_realloc!(0, 0, 4, argv.length * 8)
    const view = new DataView(x.memory.buffer)
    argv.forEach(([p, l], i) => {
      view.setUint32(arr + i * 8, p, true)
      view.setUint32(arr + i * 8 + 4, l, true)
    })
    x['ruby-init: func(args: list<string>) -> ()']!(arr, argv.length)
    x['ruby-init-loadpath: func() -> ()']!()
    const [sp, sl] = str(script)
    try {
      const ret = x['rb-eval-string-protect: func(str: string) -> tuple<handle<rb-abi-value>, s32>']!(sp, sl)
      return { out, state: new DataView(x.memory.buffer).getInt32(ret + 4, true) }
    } catch (error) {
      return { out, error }
    } finally {
      host.close()
    }
  }

  it('runs a script; the JS-interop import it reaches traps, naming it', () => {
    const r = evalRuby('trap', 'puts 1+1; $stdout.flush')
    expect(r.out).toBe('2\n')
    expect(r.error).toBeInstanceOf(UnknownImportCalled)
    expect((r.error as UnknownImportCalled).importName).toBe('canonical_abi.resource_new_rb-abi-value')
  }, 60_000)

  it('from the CLI, the reactor is refused in one line that points to plugin(), whatever the import flags', () => {
    const bin = join(ROOT, 'bin/caplet.js')
    for (const flags of [['--trap-unknown-imports'], []]) {
      const r = spawnSync(
        process.execPath,
        [bin, 'run', ...flags, join(ROOT, 'node_modules/@ruby/3.4-wasm-wasi/dist/ruby+stdlib.wasm'), '-e', 'puts 1+1'],
        { encoding: 'utf8' },
      )
      expect(r.status).toBe(126)
      expect(r.stdout).toBe('')
      expect(r.stderr).toBe(
        'caplet: module is a WASI reactor (it exports _initialize, not _start): a library to call, not a program to run; ' +
          "load it with plugin() from 'caplet' and call its exports (caplet inspect MODULE lists them)\n",
      )
    }
  }, 60_000)

  it('with default imports the same script completes', () => {
    const r = evalRuby('default', 'puts 6*7; $stdout.flush')
    expect(r).toMatchObject({ out: '42\n', state: 0 })
    expect(r.error).toBeUndefined()
  }, 60_000)
})

describe('hostile import module names', () => {
  it('an import module named "__proto__" or "constructor" is stubbed like any other', () => {
    const bytes = buildModule({
      types: [{ params: [], results: [I32] }],
      imports: [
        { module: '__proto__', name: 'x', desc: [0x00, 0x00] },
        { module: 'constructor', name: 'toString', desc: [0x00, 0x00] },
        { module: WASI, name: 'proc_exit', desc: [0x00, 0x01] },
      ],
      memory: [0x00, 1],
      funcs: [{ params: [I32], body: [op.call, 0, op.call, 1, op.i32_add, op.i32_const, 7, op.i32_add, op.call, 2], export: '_start' }],
    })
    // proc_exit's type: (i32) -> () is type 1 (params [I32], results []), built from the func spec.
    const r = runSync(bytes, { unknownImports: 'default' })
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(7)
  })
})
