/**
 * compile(): every sample builds from source and runs; failing sources give readable
 * diagnostics with guest-relative names; compile-time bombs are stopped by the time limit, a
 * run-time memory bomb by the memory cap; the build options are an allow-list; the cache
 * returns what it stored, and recompiles an entry that was tampered with.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compile, CompileError, run } from '../../runtime/index.js'
import { formatDiagnostics, type CompileOptions } from '../../toolchain/index.js'
import { CompileCache, cacheKey } from '../../toolchain/cache.js'
import { repoRoot } from '../support/guest.js'

const T = 240_000
const sample = (n: string) => readFileSync(join(repoRoot, 'samples', n), 'utf8')
const text = (b: Uint8Array) => new TextDecoder().decode(b)

let work: string
let cacheDir: string
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'caplet-compile-test-'))
  cacheDir = join(work, 'cache')
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** The error a compile threw (fails the test when it compiled). */
async function failure(p: Promise<unknown>): Promise<CompileError> {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(CompileError)
    return e as CompileError
  }
  throw new Error('expected the compile to fail')
}

describe('samples compile from source and run', () => {
  it(
    'C: wordcount over a mounted directory',
    async () => {
      const { module, diagnostics } = await compile({
        language: 'c',
        files: { 'wordcount.c': sample('wordcount.c') },
        options: { cache: false },
      })
      expect(diagnostics).toEqual([])
      const dir = join(work, 'docs')
      mkdirSync(join(dir, 'sub'), { recursive: true })
      writeFileSync(join(dir, 'a.txt'), 'one two three\nfour\n')
      writeFileSync(join(dir, 'sub', 'b.txt'), 'five six\n')
      const r = await run(module, { args: ['wordcount', '/docs'], mounts: [{ guest: '/docs', host: dir, mode: 'ro' }], stdout: 'capture' })
      expect(r.exitCode).toBe(0)
      expect(text(r.stdout)).toBe(
        '      2       4       19 /docs/a.txt\n' + '      1       2        9 /docs/sub/b.txt\n' + '      3       6       28 total\n',
      )
    },
    T,
  )

  it(
    'C++: topwords with the standard library',
    async () => {
      const { module } = await compile({ language: 'cpp', files: { 'topwords.cpp': sample('topwords.cpp') }, options: { cache: false } })
      const r = await run(module, { args: ['topwords', '2'], stdin: 'b a b c b a', stdout: 'capture' })
      expect({ code: r.exitCode, out: text(r.stdout) }).toEqual({ code: 0, out: '3 b\n2 a\n' })
    },
    T,
  )

  it(
    'AssemblyScript: the prime sieve is an ordinary WASI command',
    async () => {
      const { module } = await compile({ language: 'as', files: { 'sieve.as.ts': sample('sieve.as.ts') }, options: { cache: false } })
      const imports = WebAssembly.Module.imports(new WebAssembly.Module(module)).map((i) => i.module)
      expect(new Set(imports)).toEqual(new Set(['wasi_snapshot_preview1']))
      const r = await run(module, { args: ['sieve', '100'], stdout: 'capture' })
      expect({ code: r.exitCode, out: text(r.stdout) }).toEqual({ code: 0, out: 'primes below 100: 25\nlargest: 97\n' })
    },
    T,
  )

  it(
    'WAT: greet',
    async () => {
      const { module } = await compile({ language: 'wat', files: { 'greet.wat': sample('greet.wat') }, options: { cache: false } })
      const r = await run(module, { args: ['greet', 'alice', 'bob'], stdout: 'capture', isolation: 'in-process' })
      expect({ code: r.exitCode, out: text(r.stdout) }).toEqual({ code: 2, out: 'hello, alice!\nhello, bob!\n' })
    },
    T,
  )
})

describe('failing sources give readable errors', () => {
  it(
    'C: a syntax error, a missing include and an undefined symbol, each with its file and line',
    async () => {
      const [syntax, include, link] = await Promise.all([
        failure(compile({ language: 'c', files: { 'main.c': 'int main(void) {\n  return 0\n}\n' }, options: { cache: false } })),
        failure(
          compile({
            language: 'c',
            files: { 'src/main.c': '#include "nothere.h"\nint main(void) { return 0; }\n' },
            options: { cache: false },
          }),
        ),
        failure(
          compile({
            language: 'c',
            files: { 'main.c': 'int helper(void);\nint main(void) { return helper(); }\n' },
            options: { cache: false },
          }),
        ),
      ])
      expect(syntax.diagnostics[0]).toMatchObject({ severity: 'error', file: 'main.c', line: 2 })
      expect(syntax.message).toMatch(/main\.c:2:\d+: error: expected ';'/)
      expect(include.diagnostics[0]).toMatchObject({ severity: 'error', file: 'src/main.c', line: 1 })
      expect(include.message).toContain("'nothere.h' file not found")
      expect(formatDiagnostics(link.diagnostics)).toMatch(/undefined symbol: helper/)
      for (const e of [syntax, include, link]) {
        expect(e.limit).toBeUndefined()
        expect(e.message).not.toMatch(/\n\s+at /) // no stack trace in the message
        expect(formatDiagnostics(e.diagnostics)).not.toMatch(/caplet-cc-|\/src\/|\/out\/|\/tmp\//)
      }
    },
    T,
  )

  it(
    'AssemblyScript: a type error names file, line and column',
    async () => {
      const e = await failure(
        compile({ language: 'as', files: { 'main.as.ts': 'let a: i32 = 1\nlet b: i32 = "two"\n' }, options: { cache: false } }),
      )
      expect(e.diagnostics.find((d) => d.severity === 'error')).toMatchObject({ file: 'main.as.ts', line: 2 })
    },
    T,
  )

  it('WAT: a parse error names line and column', async () => {
    const e = await failure(
      compile({ language: 'wat', files: { 'p.wat': '(module\n  (func $f\n    (i32.bogus)))\n' }, options: { cache: false } }),
    )
    expect(e.diagnostics[0]).toMatchObject({ severity: 'error', file: 'p.wat', line: 3, column: 6 })
    expect(e.message).toMatch(/^\[caplet\] p\.wat:3:6: error: unexpected token/)
  })

  it(
    'a macro bomb at compile time is stopped by the time limit (or the memory cap)',
    async () => {
      const bomb =
        '#define A(x) x x\n#define B(x) A(A(A(A(x))))\n#define C(x) B(B(B(B(x))))\n#define D(x) C(C(C(x)))\nint main(void) { D(;) return 0; }\n'
      const e = await failure(compile({ language: 'c', files: { 'bomb.c': bomb }, options: { cache: false, timeout: '3s' } }))
      expect(['timeout', 'memory']).toContain(e.limit)
      expect(e.message).toMatch(/^\[caplet\] compilation stopped: /)
    },
    T,
  )

  it(
    'a template bomb is stopped too',
    async () => {
      const bomb =
        'template <int N, int M> struct B { static constexpr long v = B<N - 1, 2 * M>::v + B<N - 1, 2 * M + 1>::v; };\n' +
        'template <int M> struct B<0, M> { static constexpr long v = 1; };\nint main() { return B<40, 0>::v != 0 ? 0 : 1; }\n'
      const e = await failure(compile({ language: 'cpp', files: { 'bomb.cpp': bomb }, options: { cache: false, timeout: '3s' } }))
      expect(['timeout', 'memory']).toContain(e.limit)
    },
    T,
  )

  it(
    'the AssemblyScript compiler is stopped at its time limit (its worker terminated)',
    async () => {
      const e = await failure(
        compile({ language: 'as', files: { 'main.as.ts': 'console.log("x")\n' }, options: { cache: false, timeout: '20ms' } }),
      )
      expect(e.limit).toBe('timeout')
      expect(e.message).toBe('[caplet] compilation stopped: it took longer than 20 ms')
    },
    T,
  )

  it(
    'a memory bomb at run time is stopped by the memory cap: malloc returns NULL',
    async () => {
      // Each block links to the previous one and the list is walked at the end, so the compiler
      // cannot elide the allocations.
      const src =
        '#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n' +
        'int main(void) { size_t mib = 0; char **head = 0;\n' +
        '  for (;;) { char **p = malloc(1 << 20); if (!p) break; memset(p, 1, 1 << 20); *p = (char *)head; head = p; mib++; }\n' +
        '  size_t n = 0; for (char **q = head; q; q = (char **)*q) n++;\n' +
        '  printf("out of memory after %zu MiB (%zu blocks)\\n", mib, n); return 3; }\n'
      const { module } = await compile({ language: 'c', files: { 'bomb.c': src }, options: { cache: false } })
      const r = await run(module, { limits: { memory: '32MiB', timeout: '60s' }, stdout: 'capture' })
      expect(r.exitCode).toBe(3)
      const mib = Number(/after (\d+) MiB/.exec(text(r.stdout))?.[1])
      expect(mib).toBeGreaterThan(0)
      expect(mib).toBeLessThanOrEqual(32)
    },
    T,
  )
})

describe('build options are an allow-list', () => {
  it('refuses raw flags, bad names and unknown standards before any compiler runs', async () => {
    const files = { 'main.c': 'int main(void) { return 0; }' }
    const bad: CompileOptions[] = [
      { defines: { '-fplugin=/tmp/x.so': true } },
      { defines: { X: 'a\nb' } },
      { std: 'c++17 -fplugin=x' },
      { std: 'c++20' }, // a C++ standard for C
      { optimize: 7 },
    ] as unknown as CompileOptions[]
    for (const options of bad) {
      const e = await failure(compile({ language: 'c', files, options: { ...options, cache: false } }))
      expect(e.message).toMatch(/invalid build options/)
    }
    await expect(compile({ language: 'wat', files: { 'a.wat': '(module)' }, options: { defines: { X: true } } })).rejects.toThrow(
      /wat takes no defines/,
    )
    await expect(compile({ language: 'cobol', files })).rejects.toThrow(/unknown language "cobol"/)
  })

  it(
    'defines, -std and -O reach the compiler',
    async () => {
      const src = '#include <stdio.h>\nint main(void) { printf("%s %ld\\n", GREETING, __STDC_VERSION__); return N; }\n'
      const { module } = await compile({
        language: 'c',
        files: { 'm.c': src },
        options: { cache: false, defines: { GREETING: '"hi"', N: '4' }, std: 'c11', optimize: 0 },
      })
      const r = await run(module, { stdout: 'capture' })
      expect({ code: r.exitCode, out: text(r.stdout) }).toEqual({ code: 4, out: 'hi 201112\n' })
    },
    T,
  )
})

describe('the compile cache', () => {
  const files = { 'm.wat': '(module (memory (export "memory") 1) (func (export "_start")))' }

  it('returns a stored module, then recompiles an entry that was tampered with', async () => {
    const dir = join(cacheDir, 'tamper')
    const first = await compile({ language: 'wat', files, options: { cache: { dir } } })
    expect(first.cached).toBe(false)
    const second = await compile({ language: 'wat', files, options: { cache: { dir } } })
    expect(second.cached).toBe(true)
    expect(second.module).toEqual(first.module)
    const [entry] = readdirSync(dir).filter((n) => n.endsWith('.entry'))
    const path = join(dir, entry!)
    const bytes = readFileSync(path)
    // flip the module's last byte: the digest no longer matches
    bytes.writeUInt8(bytes.at(-1)! ^ 0xff, bytes.length - 1)
    writeFileSync(path, bytes)
    const third = await compile({ language: 'wat', files, options: { cache: { dir } } })
    expect(third.cached).toBe(false)
    expect(third.module).toEqual(first.module)
    // truncated entry: also recompiled
    writeFileSync(path, readFileSync(path).subarray(0, 40))
    expect((await compile({ language: 'wat', files, options: { cache: { dir } } })).cached).toBe(false)
    expect((await compile({ language: 'wat', files, options: { cache: { dir } } })).cached).toBe(true)
  })

  it('a forged entry whose digest matches but whose module is not WebAssembly is not trusted', () => {
    const dir = join(cacheDir, 'forged')
    const cache = new CompileCache({ dir })
    const key = cacheKey({ language: 'wat', compiler: 'x', options: {}, entry: undefined, files: new Map() })
    cache.put(key, { module: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), diagnostics: [] })
    expect(cache.get(key)?.module.byteLength).toBe(8)
    cache.put(key, { module: new TextEncoder().encode('#!/bin/sh\nrm -rf /\n'), diagnostics: [] })
    expect(cache.get(key)).toBeUndefined()
    expect(readdirSync(dir).filter((n) => n.endsWith('.entry'))).toEqual([])
  })

  it('stays under its size bound by evicting the least recently used entries', () => {
    const dir = join(cacheDir, 'bounded')
    const cache = new CompileCache({ dir, maxBytes: 3000 })
    const module = new Uint8Array(1000)
    module.set([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])
    // a custom section pads the module to 1000 bytes and keeps it valid
    module.set([0, 0x80 | ((1000 - 11) & 0x7f), (1000 - 11) >> 7, 0], 8)
    expect(WebAssembly.validate(module)).toBe(true)
    for (let i = 0; i < 10; i++) cache.put(i.toString(16).padStart(64, '0'), { module, diagnostics: [] })
    const sizes = readdirSync(dir)
      .filter((n) => n.endsWith('.entry'))
      .map((n) => statSync(join(dir, n)).size)
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(3000)
    expect(cache.get('9'.padStart(64, '0'))).toBeDefined() // the newest survived
    expect(readdirSync(dir).filter((n) => n.startsWith('.tmp-'))).toEqual([])
  })

  it('is not used when others may write its directory', async () => {
    const dir = join(cacheDir, 'shared')
    mkdirSync(dir, { recursive: true })
    chmodSync(dir, 0o777)
    await compile({ language: 'wat', files, options: { cache: { dir } } })
    const again = await compile({ language: 'wat', files, options: { cache: { dir } } })
    expect(again.cached).toBe(false)
    expect(readdirSync(dir)).toEqual([])
  })
})
