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
import { name, ROOT, section, u32, vec } from './instrument/wasm.js'

const bin = join(ROOT, 'bin/caplet.js')

/**
 * A command that writes "before\n", then calls a function whose body is invalid (`i32.add` on
 * an empty stack), then writes "after\n"; `filler` nops in a third function set the code size.
 */
function module(filler: number): Uint8Array {
  const i32 = 0x7f
  const types = section(
    1,
    vec([
      [0x60, ...vec([[i32], [i32], [i32], [i32]]), ...vec([[i32]])],
      [0x60, 0, 0],
    ]),
  )
  const imports = section(2, vec([[...name('wasi_snapshot_preview1'), ...name('fd_write'), 0x00, 0]]))
  const funcs = section(3, vec([[1], [1], [1]]))
  const memory = section(5, vec([[0x00, 1]]))
  const exports = section(
    7,
    vec([
      [...name('_start'), 0x00, 1],
      [...name('memory'), 0x02, 0],
    ]),
  )
  // fd_write(1, iovec at `at`, 1, n at 64); drop
  const write = (at: number) => [0x41, 1, 0x41, at, 0x41, 1, 0x41, 0xc0, 0x00, 0x10, 0, 0x1a]
  const start = [0, ...write(0), 0x10, 2, ...write(8), 0x0b]
  const bad = [0, 0x6a, 0x0b]
  const head = [...u32(3), ...u32(start.length), ...start, ...u32(bad.length), ...bad, ...u32(filler + 2)]
  const code = new Uint8Array(head.length + filler + 2)
  code.set(head)
  code.fill(0x01, head.length + 1, head.length + 1 + filler) // locals 0, nops, end
  code[code.length - 1] = 0x0b
  // iovecs at 0 and 8: "before\n" at 16, "after\n" at 32.
  const bytes = new Uint8Array(48)
  new DataView(bytes.buffer).setUint32(0, 16, true)
  new DataView(bytes.buffer).setUint32(4, 7, true)
  new DataView(bytes.buffer).setUint32(8, 32, true)
  new DataView(bytes.buffer).setUint32(12, 6, true)
  bytes.set(new TextEncoder().encode('before\n'), 16)
  bytes.set(new TextEncoder().encode('after\n'), 32)
  const data = section(11, vec([[0x00, 0x41, 0, 0x0b, ...u32(bytes.length), ...bytes]]))
  const codeHeader = [10, ...u32(code.length)]
  const parts = [[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0], types, imports, funcs, memory, exports, codeHeader]
  const size = parts.reduce((n, p) => n + p.length, 0) + code.length + data.length
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  out.set(code, at)
  out.set(data, at + code.length)
  return out
}

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
