/**
 * A one-shot CLI run of a module with over 2 MiB of code lets the engine validate each function
 * body when it is first compiled (module.ts, validateBigModulesLazily): an invalid body is still
 * never run, it is reported when called (exit 126, what ran before it kept); a small module, a
 * `--dry-run` and the API still refuse the whole module up front.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run } from '../../runtime/index.js'
import { BASELINE_CODE_BYTES } from '../../runtime/module.js'
import { invalidBodyModule as module } from '../support/invalid-body-module.js'
import { ROOT } from './instrument/wasm.js'

const bin = join(ROOT, 'bin/caplet.js')

let dir: string
let big: string
let small: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'caplet-lazy-'))
  big = join(dir, 'big.wasm')
  small = join(dir, 'small.wasm')
  writeFileSync(big, module(BASELINE_CODE_BYTES + 4096))
  writeFileSync(small, module(16))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: '' })

describe('function bodies of a big module validated when first called (one-shot CLI)', () => {
  it('the invalid body never runs: exit 126 when it is called, the output before it kept (worker and in-process)', () => {
    for (const flags of [[], ['--in-process']]) {
      const r = cli('run', ...flags, big)
      expect(r.stdout, flags.join()).toBe('before\n')
      expect(r.stderr, flags.join()).toMatch(/^caplet: invalid WebAssembly module: .*function #2.*i32\.add/m)
      expect(r.stderr).not.toMatch(/\n\s+at /) // no stack trace
      expect(r.status, flags.join()).toBe(126)
    }
  })

  it('--json says so as the trap kind invalid-code', () => {
    const r = cli('run', '--json', big)
    expect(r.status).toBe(126)
    const j = JSON.parse(r.stdout) as { trap: { kind: string; message: string }; stdout: string }
    expect(j.trap.kind).toBe('invalid-code')
    expect(j.stdout).toBe('before\n')
  })

  it('a small module, a --dry-run of the big one and the API refuse the module before anything runs', async () => {
    for (const args of [
      ['run', small],
      ['run', '--dry-run', big],
    ]) {
      const r = cli(...args)
      expect(r.stdout, args.join(' ')).toBe('')
      expect(r.stderr, args.join(' ')).toMatch(/invalid WebAssembly module/)
      expect(r.status, args.join(' ')).toBe(126)
    }
    await expect(run(big)).rejects.toThrow(/invalid WebAssembly module/)
  })
})
