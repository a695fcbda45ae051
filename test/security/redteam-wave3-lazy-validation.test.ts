/**
 * Red team, wave 3: lazy validation (runtime/module.ts, `validateBigModulesLazily`). A one-shot
 * CLI run of a module with over 2 MiB of code validates each function body when it is first
 * compiled. Hostile placements of the invalid body: reached only through `call_indirect`, the
 * exported `_start` itself, the module's start function (run during instantiation), and a body
 * whose first instructions are valid and write output before the invalid one. In every case no
 * instruction of the invalid body runs (its "during" output never appears), nothing after the
 * call runs, the run ends with the documented error (one line, exit 126; `--json`: trap kind
 * `invalid-code`), in a worker and in-process; and the next run of a valid module is correct.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BASELINE_CODE_BYTES } from '../../runtime/module.js'
import { name, ROOT, section, u32, vec } from '../runtime/instrument/wasm.js'

const bin = join(ROOT, 'bin/caplet.js')
const I32 = 0x7f

/** fd_write(1, iovec at `at`, 1, n at 64); drop. Iovecs: 0 "before\n", 8 "after\n", 48 "during\n". */
const write = (at: number) => [0x41, 1, 0x41, at, 0x41, 1, 0x41, 0xc0, 0x00, 0x10, 0, 0x1a]
const BAD = [0x6a] // i32.add on an empty stack
const body = (ops: number[]) => [0, ...ops, 0x0b]

interface Spec {
  /** Bodies of functions 1 (`_start`) and 2; function 3 is the filler. */
  start: number[]
  second: number[]
  /** A table holding function 2 (for call_indirect). */
  table?: boolean
  /** The module's start function. */
  startFunction?: number
}

function module(spec: Spec, filler = BASELINE_CODE_BYTES + 4096): Uint8Array {
  const types = section(
    1,
    vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([[I32]])],
      [0x60, 0, 0],
    ]),
  )
  const imports = section(2, vec([[...name('wasi_snapshot_preview1'), ...name('fd_write'), 0x00, 0]]))
  const funcs = section(3, vec([[1], [1], [1]]))
  const table = spec.table ? section(4, vec([[0x70, 0x00, 1]])) : []
  const memory = section(5, vec([[0x00, 1]]))
  const exports = section(
    7,
    vec([
      [...name('_start'), 0x00, 1],
      [...name('memory'), 0x02, 0],
    ]),
  )
  const start = spec.startFunction !== undefined ? section(8, u32(spec.startFunction)) : []
  const elems = spec.table ? section(9, vec([[0x00, 0x41, 0, 0x0b, ...vec([[2]])]])) : []
  const a = body(spec.start)
  const b = body(spec.second)
  const head = [...u32(3), ...u32(a.length), ...a, ...u32(b.length), ...b, ...u32(filler + 2)]
  const code = new Uint8Array(head.length + filler + 2)
  code.set(head)
  code.fill(0x01, head.length + 1, head.length + 1 + filler) // no locals, nops, end
  code[code.length - 1] = 0x0b
  const mem = new Uint8Array(64)
  const dv = new DataView(mem.buffer)
  for (const [at, ptr, s] of [
    [0, 16, 'before\n'],
    [8, 32, 'after\n'],
    [48, 56, 'during\n'],
  ] as const) {
    dv.setUint32(at, ptr, true)
    dv.setUint32(at + 4, s.length, true)
    mem.set(new TextEncoder().encode(s), ptr)
  }
  const data = section(11, vec([[0x00, 0x41, 0, 0x0b, ...u32(mem.length), ...mem]]))
  const parts = [[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0], types, imports, funcs, table, memory, exports, start, elems, [10, ...u32(code.length)]]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + code.length + data.length)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  out.set(code, at)
  out.set(data, at + code.length)
  return out
}

/** The invalid body, after a valid write of "during\n": none of it may run. */
const BAD_AFTER_WRITE = [...write(48), ...BAD]

const CASES: [string, Spec, string, RegExp][] = [
  [
    'reached only through call_indirect',
    { start: [...write(0), 0x41, 0, 0x11, 1, 0, ...write(8)], second: BAD_AFTER_WRITE, table: true },
    'before\n',
    /function #2/,
  ],
  ['the exported _start itself', { start: BAD_AFTER_WRITE, second: [] }, '', /function #1/],
  ['the start function, run while instantiating', { start: [...write(0)], second: BAD_AFTER_WRITE, startFunction: 2 }, '', /function #2/],
  [
    'called directly, after a valid prefix',
    { start: [...write(0), 0x10, 2, ...write(8)], second: BAD_AFTER_WRITE },
    'before\n',
    /function #2/,
  ],
]

let dir: string
const paths = new Map<string, string>()
let good = ''
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'caplet-redteam-lazy-'))
  for (const [what, spec] of CASES) {
    const path = join(dir, `${paths.size}.wasm`)
    writeFileSync(path, module(spec))
    paths.set(what, path)
  }
  good = join(dir, 'good.wasm')
  writeFileSync(good, module({ start: [...write(0), 0x10, 2, ...write(8)], second: [] }))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: '', timeout: 60_000 })

describe('lazy validation: an invalid body never runs, wherever it is', () => {
  it.each(CASES)('%s: exit 126, one line, nothing of or after the invalid body ran', (what, _spec, before, fn) => {
    for (const flags of [[], ['--in-process']]) {
      const r = cli('run', ...flags, paths.get(what)!)
      const where = `${what} ${flags.join(' ')}`
      expect(r.stdout, where).toBe(before)
      expect(r.stdout, where).not.toMatch(/during|after/)
      expect(r.status, `${where}: ${r.stderr}`).toBe(126)
      expect(r.stderr.trim().split('\n'), where).toHaveLength(1)
      expect(r.stderr, where).toMatch(/^caplet: invalid WebAssembly module: .*i32\.add/)
      expect(r.stderr, where).toMatch(fn)
    }
  })

  it('--json names the trap invalid-code for the call_indirect case; --fuel refuses or stops it the same way', () => {
    const path = paths.get('reached only through call_indirect')!
    const j = cli('run', '--json', path)
    expect(j.status).toBe(126)
    const parsed = JSON.parse(j.stdout) as { trap: { kind: string }; stdout: string }
    expect(parsed.trap.kind).toBe('invalid-code')
    expect(parsed.stdout).toBe('before\n')
    // Fuel metering rewrites every body: the invalid one must still never run.
    const f = cli('run', '--fuel', '1e9', path)
    expect(f.status).toBe(126)
    expect(f.stdout).not.toMatch(/during|after/)
    expect(f.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('the same module with a valid body runs to the end (the host is fine)', () => {
    const r = cli('run', good)
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe('before\nafter\n')
    expect(r.status).toBe(0)
  })
})
