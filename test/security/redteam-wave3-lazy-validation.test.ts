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
import { ROOT } from '../runtime/instrument/wasm.js'
import { BAD, bodiesModule, write, type BodiesSpec } from '../support/invalid-body-module.js'

const bin = join(ROOT, 'bin/caplet.js')
const module = (spec: BodiesSpec) => bodiesModule(spec, BASELINE_CODE_BYTES + 4096)

/** The invalid body, after a valid write of "during\n": none of it may run. */
const BAD_AFTER_WRITE = [...write(48), ...BAD]

const CASES: [string, BodiesSpec, string, RegExp][] = [
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
