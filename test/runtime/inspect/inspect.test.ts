import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ModuleError } from '../../../runtime/errors.js'
import { inspectJson, inspectModule, inspectText } from '../../../runtime/inspect/index.js'
import { buildModule, I32, op, ROOT, u32 } from '../instrument/wasm.js'

const FIXTURES = join(ROOT, 'test/fixtures/inspect')
const GOLDEN = join(FIXTURES, 'golden')
const UPDATE = process.env.UPDATE_GOLDEN === '1'
const bin = join(ROOT, 'bin/caplet.js')

/** Compares with the golden file (written instead when UPDATE_GOLDEN=1, so changes are deliberate). */
function golden(file: string, actual: string): void {
  const path = join(GOLDEN, file)
  if (UPDATE || !existsSync(path)) {
    if (!UPDATE) throw new Error(`no golden file ${file}: run with UPDATE_GOLDEN=1 and review it`)
    mkdirSync(GOLDEN, { recursive: true })
    writeFileSync(path, actual)
  }
  expect(actual).toBe(readFileSync(path, 'utf8'))
}

const fixture = (name: string) => readFileSync(join(FIXTURES, `${name}.wasm`))

describe('caplet inspect: golden output', () => {
  for (const name of ['no_imports', 'indirect_import', 'reactor', 'simd_eh', 'libc_program']) {
    it(`${name}: text and JSON`, () => {
      const r = inspectModule(fixture(name))
      golden(`${name}.txt`, inspectText(r, `${name}.wasm`))
      golden(`${name}.json`, JSON.stringify(inspectJson(r), null, 2) + '\n')
    })
  }

  it('a malformed module: one line naming the byte offset', () => {
    const bytes = fixture('libc_program')
    const cut = bytes.subarray(0, 2000)
    let err: unknown
    try {
      inspectModule(cut)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ModuleError)
    golden('malformed.txt', (err as Error).message + '\n')
    expect((err as Error).message).toMatch(/at byte \d+/)
    expect((err as Error).message).not.toMatch(/\n/)
  })
})

describe('caplet inspect: what it finds', () => {
  it('a module without imports can ask for nothing', () => {
    const r = inspectModule(fixture('no_imports'))
    expect(r.imports).toEqual([])
    expect(r.unknownImports).toEqual([])
    expect(inspectJson(r).policy.advice[0]).toMatch(/needs no mounts/)
  })

  it('flags an import placed in a table (reachable by any call_indirect), not one only called directly', () => {
    const r = inspectModule(fixture('indirect_import'))
    const all = r.imports.flatMap((g) => g.imports)
    const log = all.find((i) => i.name === 'host_log')!
    const rnd = all.find((i) => i.name === 'random_get')!
    expect(log).toMatchObject({ module: 'env', provided: false, reachableViaTable: true, callSites: 1 })
    expect(log.callers).toEqual([{ index: 2, name: 'run', sites: 1 }])
    expect(rnd).toMatchObject({ provided: true, reachableViaTable: false, callSites: 1, description: 'read random bytes' })
    expect(r.unknownImports).toEqual(['env.host_log'])
  })

  it('counts every call site per caller, a re-exported import, ref.func and tail calls', () => {
    const bytes = buildModule({
      imports: [{ module: 'wasi_snapshot_preview1', name: 'sched_yield', desc: [0x00, 0x00] }],
      types: [{ params: [], results: [I32] }],
      funcs: [{ body: [op.call, 0, op.call, 0, op.call, 0], export: 'three' }, { body: [op.ref_func, 0, op.drop, op.return_call, 0] }],
      exports: [{ name: 'again', kind: 0, index: 0 }],
    })
    // ref.func needs the function declared: add a declarative element segment (flags 3).
    const r = inspectModule(withDeclaredElem(bytes))
    const y = r.imports[0]!.imports[0]!
    expect(y.callSites).toBe(4)
    expect(y.callers).toEqual([
      { index: 1, name: null, sites: 3 },
      { index: 2, name: null, sites: 1 },
    ])
    expect(y).toMatchObject({ exported: true, reachableViaTable: true })
    expect(r.features).toContain('tail-calls')
    expect(r.features).toContain('reference-types')
  })

  it('reads SIMD and exception handling, a reactor, and a start function', () => {
    expect(inspectModule(fixture('simd_eh')).features).toEqual(expect.arrayContaining(['simd', 'exception-handling']))
    const reactor = inspectModule(fixture('reactor'))
    expect(reactor.kind).toBe('reactor')
    expect(reactor.exports.map((e) => e.name)).toContain('_initialize')
    expect(inspectModule(fixture('libc_program')).kind).toBe('command')
    const withStart = buildModule({ funcs: [{ body: [] }], start: 0 })
    expect(inspectModule(withStart).start).toEqual({ index: 0, name: null })
  })

  it('shared memory is threads; memory64 and several memories are flagged; imported memory is not capped', () => {
    const shared = buildModule({ memory: [0x03, 1, 2] })
    expect(inspectModule(shared).features).toContain('threads')
    const m64 = buildModule({ memory: [0x04, 1] })
    expect(inspectModule(m64)).toMatchObject({ features: ['memory64'], memories: [{ memory64: true, capped: true }] })
    const imported = buildModule({
      imports: [{ module: 'env', name: 'mem', desc: [0x02, 0x00, 1] }],
      memory: [0x00, 1],
      exportMemory: false,
    })
    const r = inspectModule(imported)
    expect(r.memories).toEqual([
      { index: 0, imported: true, min: 1, max: null, shared: false, memory64: false, capped: false },
      { index: 1, imported: false, min: 1, max: null, shared: false, memory64: false, capped: true },
    ])
    expect(r.features).toContain('multi-memory')
  })

  it('names a bad byte: bad magic, a truncated body, an unknown opcode', () => {
    expect(() => inspectModule(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(/not a WebAssembly module/)
    const bad = buildModule({ funcs: [{ body: [0xff] }] })
    expect(() => inspectModule(bad)).toThrow(/unknown opcode 0xff.*at byte \d+|at byte \d+.*unknown opcode 0xff/)
    const lying = buildModule({ funcs: [{ body: [op.i32_const, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80] }] })
    expect(() => inspectModule(lying)).toThrow(ModuleError)
  })
})

describe('caplet inspect: hostile names', () => {
  const ESC = '\x1b[2J\x1b[31m'
  const hostile = buildModule({
    imports: [
      { module: `env${ESC}`, name: 'ok\u202eevil\u200b', desc: [0x00, 0x00] },
      { module: 'wasi_snapshot_preview1', name: 'fd_write\nforged: line', desc: [0x00, 0x00] },
    ],
    funcs: [{ body: [op.call, 0, op.call, 1], export: `run\x07${ESC}` }],
    custom: [{ name: 'name', bytes: [1, ...u32(5), 1, 2, 2, 0xc2, 0x9b] }],
  })

  it('escapes control, bidi and zero-width characters in text output', () => {
    const text = inspectText(inspectModule(hostile), 'hostile.wasm')
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\u202e]/)
    expect(text).toContain('env\\x1b[2J\\x1b[31m')
    expect(text).toContain('ok\\u{202e}evil\\u{200b}')
    expect(text).toContain('fd_write\\nforged: line')
    expect(text).toContain('run\\x07\\x1b[2J')
    expect(text).toContain('in \\x9b')
    // A WASI-looking name that is not one of the 46 is not provided.
    expect(inspectModule(hostile).unknownImports).toHaveLength(2)
  })

  it('the CLI prints the report, and JSON keeps names exact (JSON escapes them itself)', () => {
    const dir = join(ROOT, 'node_modules/.cache/caplet-inspect-test')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, 'hostile.wasm')
    writeFileSync(file, hostile)
    const text = spawnSync(process.execPath, [bin, 'inspect', file], { encoding: 'utf8' })
    expect(text.status).toBe(0)
    expect(text.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\u202e]/)
    const json = spawnSync(process.execPath, [bin, 'inspect', '--json', file], { encoding: 'utf8' })
    expect(json.status).toBe(0)
    expect(JSON.parse(json.stdout).imports[0].module).toBe(`env${ESC}`)
  })

  it('the CLI refuses a malformed module in one line with exit 126, and a missing one', () => {
    const dir = join(ROOT, 'node_modules/.cache/caplet-inspect-test')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, 'cut.wasm')
    writeFileSync(file, fixture('reactor').subarray(0, 500))
    const r = spawnSync(process.execPath, [bin, 'inspect', file], { encoding: 'utf8' })
    expect(r.status).toBe(126)
    expect(r.stderr).toMatch(/^caplet: malformed module at byte \d+: .*\n$/)
    expect(spawnSync(process.execPath, [bin, 'inspect', join(dir, 'none.wasm')], { encoding: 'utf8' }).status).toBe(126)
    expect(spawnSync(process.execPath, [bin, 'inspect'], { encoding: 'utf8' }).status).toBe(125)
  })
})

describe('caplet inspect: CRuby (30 MB)', () => {
  const ruby = join(ROOT, 'node_modules/@ruby/3.4-wasm-wasi/dist/ruby+stdlib.wasm')
  it('lists its JS-interop imports as not provided, and its WASI imports with call sites', () => {
    const r = inspectModule(readFileSync(ruby))
    expect(r.size).toBeGreaterThan(25 * 1024 * 1024)
    expect(r.kind).toBe('reactor')
    expect(r.unknownImports.length).toBe(24)
    expect(r.unknownImports).toContain('canonical_abi.resource_new_rb-abi-value')
    const wasi = r.imports.find((g) => g.wasi)!
    expect(wasi.imports.every((i) => i.provided && i.callSites > 0)).toBe(true)
    expect(r.complete).toBe(true)
  })
})

/** Adds `(elem declare func 1 2)` so that ref.func of function 0's neighbours validates (the builder has no declarative segments). */
function withDeclaredElem(bytes: Uint8Array): Uint8Array {
  const payload = [1, 3, 0x00, 1, 0]
  const elem = [9, payload.length, ...payload]
  // Insert before the code section (id 10).
  let pos = 8
  while (pos < bytes.length && bytes[pos] !== 10) {
    let size = 0,
      shift = 0,
      p = pos + 1
    for (;;) {
      const b = bytes[p++]!
      size |= (b & 0x7f) << shift
      shift += 7
      if ((b & 0x80) === 0) break
    }
    pos = p + size
  }
  return new Uint8Array([...bytes.subarray(0, pos), ...elem, ...bytes.subarray(pos)])
}
