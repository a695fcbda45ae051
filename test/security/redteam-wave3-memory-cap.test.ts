/**
 * Red team, wave 3: the memory cap (runtime/instrument/memory.ts; rewritten in place for a module
 * read from a path). Crafted modules try to get more memory than `limits.memory`: a declared
 * maximum far above the cap or none at all, limits spelled with overlong LEB128, `memory.grow`
 * by huge and negative deltas, a shared memory, a memory64 or a second memory (where the engine
 * accepts them), an imported memory (including caplet's own `caplet.memory` name), data segments
 * and a minimum past the cap, `memory.init`/`memory.fill` past it. Each either runs with exactly
 * the cap (never a page more) or is refused with the documented error; the caller's bytes and
 * the file on disk are unchanged, and the host runs an ordinary module right after.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import wabtInit from 'wabt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModuleError, runSync, TRAP_EXIT_CODE, type RunResult } from '../../runtime/index.js'
import { encodeSections, parseSections, putSection, SectionId } from '../../runtime/instrument/sections.js'
import { repoRoot } from '../support/guest.js'

const dir = mkdtempSync(join(tmpdir(), 'caplet-redteam-memcap-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let wabt: Awaited<ReturnType<typeof wabtInit>>
beforeAll(async () => {
  wabt = await wabtInit()
})

/** Assembles WAT (the features the engine may or may not accept are the test's business). */
function wat(src: string): Uint8Array {
  // multi_memory is one of wabt's features its typings do not list.
  const features = { memory64: true, multi_memory: true, threads: true, bulk_memory: true } as Parameters<typeof wabt.parseWat>[2]
  const m = wabt.parseWat('t.wat', src, features)
  try {
    return new Uint8Array(m.toBinary({}).buffer)
  } finally {
    m.destroy()
  }
}

const EXIT = '(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))'

/**
 * Tries to grow by 2^31-1, 2^32-1 (-1), 65536, 32768 and 4096 pages (each must fail under a
 * small cap), then by one page until it fails, writes the last byte it has, and exits with its
 * size in pages (+200 if any huge grow succeeded).
 */
function grower(memory: string, mem = '', size32 = true): string {
  const grow = (n: string) => (size32 ? `(memory.grow ${mem} (i32.const ${n}))` : `(i32.wrap_i64 (memory.grow ${mem} (i64.const ${n})))`)
  const size = size32 ? `(memory.size ${mem})` : `(i32.wrap_i64 (memory.size ${mem}))`
  const huge = ['0x7fffffff', '-1', '0x10000', '0x8000', '0x1000']
    .map((n) => `(if (i32.ne ${grow(n)} (i32.const -1)) (then (local.set $bad (i32.const 200))))`)
    .join('\n')
  const addr = size32
    ? `(i32.sub (i32.mul ${size} (i32.const 65536)) (i32.const 1))`
    : `(i64.sub (i64.mul (memory.size ${mem}) (i64.const 65536)) (i64.const 1))`
  const store = size32 ? `(i32.store8 ${mem} ${addr} (i32.const 7))` : `(i32.store8 ${mem} ${addr} (i32.const 7))`
  return `(module ${EXIT}
    ${memory}
    (func (export "_start") (local $bad i32)
      ${huge}
      (block $done (loop $l (br_if $done (i32.eq ${grow('1')} (i32.const -1))) (br $l)))
      ${store}
      (call $exit (i32.add ${size} (local.get $bad)))))`
}

const PAGES = 16 // limits.memory 1MiB
const CAP = { limits: { memory: '1MiB' } }

/** Runs from bytes (copy rewritten) and from a path (rewritten in place); both results. */
function both(name: string, bytes: Uint8Array, options = CAP): RunResult[] {
  const path = join(dir, `${name}.wasm`)
  writeFileSync(path, bytes)
  const mine = new Uint8Array(bytes)
  const out = [mine, path].map((source) => runSync(source, options))
  // Neither the caller's bytes nor the file changed.
  expect(Buffer.compare(mine, bytes)).toBe(0)
  expect(Buffer.compare(readFileSync(path), bytes)).toBe(0)
  return out
}

function refusedOrRuns(name: string, bytes: Uint8Array, want: number): 'refused' | 'capped' {
  let results: RunResult[]
  try {
    results = both(name, bytes)
  } catch (e) {
    expect(e).toBeInstanceOf(ModuleError)
    expect((e as Error).message).not.toMatch(/\n\s+at /)
    return 'refused'
  }
  for (const r of results) {
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(want)
  }
  return 'capped'
}

/** The host is still fine: an ordinary module grows to exactly its cap. */
function stillServing(): void {
  const [a, b] = both('ordinary', wat(grower('(memory (export "memory") 1)')), { limits: { memory: '2MiB' } })
  expect(a!.exitCode).toBe(32)
  expect(b!.exitCode).toBe(32)
}

/** Replaces the memory section's payload with raw bytes (limits spelled by hand). */
function withMemorySection(bytes: Uint8Array, payload: number[]): Uint8Array {
  const m = parseSections(bytes)
  putSection(m, SectionId.Memory, new Uint8Array(payload))
  return encodeSections(m)
}

describe('memory.grow cannot pass the cap', () => {
  it.each([
    ['no maximum', '(memory (export "memory") 1)', PAGES],
    ['the largest wasm32 maximum', '(memory (export "memory") 1 65536)', PAGES],
    ['a maximum just above the cap', '(memory (export "memory") 1 17)', PAGES],
    ['a maximum below the cap (kept)', '(memory (export "memory") 1 9)', 9],
    ['a minimum equal to the cap', '(memory (export "memory") 16 65536)', PAGES],
    ['a shared memory', '(memory (export "memory") 1 65536 shared)', PAGES],
  ])('%s: huge deltas fail, one page at a time stops at the cap', (name, memory, want) => {
    for (const r of both(name.replace(/\W+/g, '-'), wat(grower(memory)))) {
      expect(r.trap).toBeUndefined()
      expect(r.exitCode).toBe(want)
    }
    stillServing()
  })

  it('limits spelled with overlong LEB128 (5-byte minimum and maximum) are capped the same', () => {
    const base = wat(grower('(memory (export "memory") 1 2)'))
    // count 1, flags 0x01, min 1 as 81 80 80 80 00, max 65536 as 80 80 84 80 00
    const overlong = withMemorySection(base, [0x01, 0x01, 0x81, 0x80, 0x80, 0x80, 0x00, 0x80, 0x80, 0x84, 0x80, 0x00])
    new WebAssembly.Module(overlong as Uint8Array<ArrayBuffer>) // the engine accepts it as it is
    for (const r of both('overlong', overlong)) expect(r.exitCode).toBe(PAGES)
    // Without a maximum, min spelled long.
    const noMax = withMemorySection(base, [0x01, 0x00, 0x81, 0x80, 0x80, 0x80, 0x00])
    for (const r of both('overlong-nomax', noMax)) expect(r.exitCode).toBe(PAGES)
    stillServing()
  })

  it('limits with flags caplet does not know (custom page sizes) or trailing bytes are refused, not run uncapped', () => {
    const base = wat(grower('(memory (export "memory") 1 2)'))
    for (const payload of [
      [0x01, 0x08, 0x01, 0x00], // custom-page-sizes flag, page size 2^0
      [0x01, 0x09, 0x01, 0x80, 0x80, 0x04, 0x00],
      [0x01, 0x01, 0x01, 0x02, 0x00], // a trailing byte after the limits
    ]) {
      const bytes = withMemorySection(base, payload)
      expect(() => both(`flags-${payload[1]}-${payload.length}`, bytes)).toThrow(ModuleError)
    }
    stillServing()
  })

  // This file runs in its own process (vitest's forks pool): the engine's proposals can be on,
  // so that the engine accepts these modules and the cap itself is what stops them.
  it('a memory64 memory is capped or refused, never run past the cap', () => {
    let engineHasIt = true
    try {
      setFlagsFromString('--experimental-wasm-memory64')
    } catch {
      engineHasIt = false // an engine where memory64 is on by default, or absent
    }
    let bytes: Uint8Array
    try {
      bytes = wat(grower('(memory (export "memory") i64 1 65536)', '', false))
    } catch (e) {
      throw new Error(`wabt could not assemble memory64: ${(e as Error).message}`)
    }
    const outcome = refusedOrRuns('memory64', bytes, PAGES)
    if (engineHasIt) expect(outcome).toBe('capped')
    stillServing()
  })

  it('a second memory (multi-memory) is capped too, or the module refused', () => {
    const src = grower('(memory $a (export "memory") 1) (memory $b 1 65536)', '$b')
    // Node 20's engine has no multi-memory (refused as invalid); a newer one must cap both.
    const outcome = refusedOrRuns('multi-memory', wat(src), PAGES)
    expect(['refused', 'capped']).toContain(outcome)
    stillServing()
  })
})

describe('memory the cap cannot see is refused', () => {
  it.each([
    ['env.memory', '(import "env" "memory" (memory 1 65536))'],
    ["caplet's own caplet.memory name", '(import "caplet" "memory" (memory 1 65536))'],
    ['an imported memory without a maximum', '(import "env" "m" (memory 1))'],
  ])('%s is refused (whatever the unknown-imports mode), naming the import', (_, imp) => {
    const bytes = wat(`(module ${EXIT} ${imp} (export "memory" (memory 0))
      (func (export "_start") (call $exit (memory.grow (i32.const 100)))))`)
    for (const unknownImports of ['reject', 'trap', 'default'] as const) {
      let err: unknown
      try {
        both('imported', bytes, { ...CAP, unknownImports } as typeof CAP)
      } catch (e) {
        err = e
      }
      expect(err, unknownImports).toBeInstanceOf(ModuleError)
      expect((err as Error).message).toMatch(/memory/)
      expect((err as Error).message).not.toMatch(/\n\s+at /)
    }
    stillServing()
  })
})

describe('data and minimums past the cap', () => {
  it('a minimum above the cap is refused with the documented message (library and CLI, exit 126)', () => {
    const bytes = wat(`(module ${EXIT} (memory (export "memory") 20 65536) (data (i32.const 0x130000) "x")
      (func (export "_start") (call $exit (i32.const 42))))`)
    expect(() => both('min-above', bytes)).toThrow(
      'the module needs 1.25 MiB of memory to start, more than the memory limit of 1 MiB; raise limits.memory (--memory)',
    )
    const path = join(dir, 'min-above.wasm')
    const cli = spawnSync(process.execPath, [join(repoRoot, 'bin/caplet.js'), 'run', '--memory', '1MiB', path], { encoding: 'utf8' })
    expect(cli.status).toBe(126)
    expect(cli.stderr.trim().split('\n')).toHaveLength(1)
    expect(cli.stderr).toMatch(/^caplet: .*needs 1\.25 MiB of memory to start.*--memory/)
    // Under a cap that fits, it runs.
    for (const r of both('min-above', bytes, { limits: { memory: '2MiB' } })) expect(r.exitCode).toBe(42)
  })

  it('an active data segment past the initial memory never lets _start run', () => {
    const bytes = wat(`(module ${EXIT} (memory (export "memory") 1 65536) (data (i32.const 0x100000) "x")
      (func (export "_start") (call $exit (i32.const 42))))`)
    for (const source of [new Uint8Array(bytes)]) {
      let r: RunResult | undefined
      try {
        r = runSync(source, { limits: { memory: '4MiB' } })
      } catch (e) {
        expect(e).toBeInstanceOf(ModuleError)
      }
      if (r) {
        expect(r.exitCode).not.toBe(42)
        expect(r.trap).toBeDefined()
      }
    }
    stillServing()
  })

  it('memory.init, memory.fill and memory.copy past the cap trap; nothing is written past it', () => {
    for (const [what, op] of [
      ['memory.init', '(memory.init $d (i32.sub (local.get $end) (i32.const 1)) (i32.const 0) (i32.const 2))'],
      ['memory.fill', '(memory.fill (i32.sub (local.get $end) (i32.const 1)) (i32.const 9) (i32.const 2))'],
      ['memory.copy', '(memory.copy (i32.sub (local.get $end) (i32.const 1)) (i32.const 0) (i32.const 2))'],
    ] as const) {
      const bytes = wat(`(module ${EXIT} (memory (export "memory") 1 65536) (data $d "ab")
        (func (export "_start") (local $end i32)
          (drop (memory.grow (i32.const 0x7fffffff)))
          (block $done (loop $l (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $l)))
          (local.set $end (i32.mul (memory.size) (i32.const 65536)))
          ${op}
          (call $exit (i32.const 42))))`)
      for (const r of both(what.replace('.', '-'), bytes)) {
        expect(r.exitCode, what).toBe(TRAP_EXIT_CODE)
        expect(r.trap?.kind, what).toMatch(/out-of-bounds|memory/)
        expect(r.stats.peakMemory, what).toBeLessThanOrEqual(PAGES * 65536)
      }
    }
    stillServing()
  })
})
