/**
 * compile() for TypeScript and JavaScript: a script program that run() executes in QuickJS; a
 * type error (including a Node or DOM global a script does not have) is a CompileError naming
 * file, line and column, `typeCheck: false` skips the check; type-level bombs are stopped by
 * the compiler worker's heap cap, a WAT compile by its time limit; the cache hands back the same
 * program and refuses an entry that is not one; `caplet run x.ts` type-checks (exit 65,
 * --no-check).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compile, CompileError, run } from '../../runtime/index.js'
import { formatDiagnostics } from '../../toolchain/index.js'
import { CompileCache } from '../../toolchain/cache.js'
import { runCompilerJob } from '../../toolchain/compiler-worker.js'
import { repoRoot, text } from '../support/guest.js'

const T = 240_000
let work: string
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'caplet-script-compile-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

async function failure(p: Promise<unknown>): Promise<CompileError> {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(CompileError)
    return e as CompileError
  }
  throw new Error('expected the compile to fail')
}

const MAIN =
  'import { twice } from "./lib/twice.ts"\n' +
  'const n: number = twice(args.length)\n' +
  'const names: string[] = readdir("/d")\n' +
  'console.log(n, names.length, typeof env.HOME, stdin.trim())\n' +
  'if (n > 100) exit(3)\n'
const LIB = 'export function twice(k: number): number {\n  return k * 2\n}\n'

describe('TypeScript and JavaScript through compile()', () => {
  it(
    'TypeScript type-checks against the script globals, then runs in QuickJS',
    async () => {
      const r = await compile({
        language: 'typescript',
        files: { 'main.ts': MAIN, 'lib/twice.ts': LIB },
        entry: 'main.ts',
        options: { cache: false },
      })
      expect(r.kind).toBe('script')
      expect(r.diagnostics).toEqual([])
      const out = await run(r.program, {
        args: ['main.ts', 'a', 'b'],
        env: { HOME: '/h' },
        stdin: 'in\n',
        mounts: [{ guest: '/d', host: repoRoot + '/samples', mode: 'ro' }],
        stdout: 'capture',
      })
      expect(out.exitCode).toBe(0)
      expect(text(out.stdout)).toMatch(/^4 \d+ string in\n$/)
    },
    T,
  )

  it(
    'a type error is a CompileError with file:line:column; typeCheck: false compiles it anyway',
    async () => {
      const files = {
        'main.ts': 'import { twice } from "./lib/twice.ts"\nconst s: string = twice(2)\nconsole.log(s)\n',
        'lib/twice.ts': LIB,
      }
      const e = await failure(compile({ language: 'ts', files, entry: 'main.ts', options: { cache: false } }))
      expect(e.limit).toBeUndefined()
      expect(e.diagnostics).toEqual([expect.objectContaining({ severity: 'error', file: 'main.ts', line: 2, column: 7 })])
      expect(e.message).toBe("[caplet] main.ts:2:7: error: Type 'number' is not assignable to type 'string'. (TS2322)")
      const unchecked = await compile({ language: 'ts', files, entry: 'main.ts', options: { cache: false, typeCheck: false } })
      expect(unchecked.kind).toBe('script')
      const out = await run(unchecked.program, { stdout: 'capture', isolation: 'in-process' })
      expect(text(out.stdout)).toBe('4\n')
    },
    T,
  )

  it(
    'host globals a script does not have are type errors: process, Buffer, setTimeout, fetch, document',
    async () => {
      const src = 'process.exit(1)\nBuffer.from("x")\nsetTimeout(() => 0, 1)\nfetch("http://x")\ndocument.title\n'
      const e = await failure(compile({ language: 'typescript', files: { 'main.ts': src }, options: { cache: false } }))
      expect(e.diagnostics.map((d) => [d.file, d.line])).toEqual([
        ['main.ts', 1],
        ['main.ts', 2],
        ['main.ts', 3],
        ['main.ts', 4],
        ['main.ts', 5],
      ])
      expect(formatDiagnostics(e.diagnostics)).toMatch(/main\.ts:1:1: error: Cannot find name 'process'/)
    },
    T,
  )

  it(
    'a syntax error and a host import fail in the bundler first, naming the file',
    async () => {
      const syntax = await failure(
        compile({ language: 'typescript', files: { 'main.ts': 'const x: number = \n' }, options: { cache: false } }),
      )
      expect(syntax.diagnostics[0]).toMatchObject({ severity: 'error', file: 'main.ts', line: 2 })
      const host = await failure(
        compile({
          language: 'javascript',
          files: { 'main.js': 'import fs from "node:fs"\nfs.readFileSync("/etc/passwd")\n' },
          options: { cache: false },
        }),
      )
      expect(host.message).toMatch(/"node:fs".*only the submitted files/)
    },
    T,
  )

  it(
    'JavaScript is bundled without a check; the cache returns the same program, and refuses a forged entry',
    async () => {
      const dir = join(work, 'cache')
      const files = { 'main.js': 'const x = 6 * 7\nconsole.log(x)\n' }
      const first = await compile({ language: 'javascript', files, options: { cache: { dir } } })
      const again = await compile({ language: 'js', files, options: { cache: { dir } } })
      expect([first.cached, again.cached]).toEqual([false, true])
      expect(again.program).toEqual(first.program)
      const out = await run(again.program, { stdout: 'capture', isolation: 'in-process' })
      expect(text(out.stdout)).toBe('42\n')
      // An entry whose digest checks out but whose payload is not a program is recompiled.
      const [entry] = readdirSync(dir).filter((n) => n.endsWith('.entry'))
      new CompileCache({ dir }).put(entry!.slice(0, 64), {
        module: new TextEncoder().encode('{"kind":"caplet.script","code":5}'),
        diagnostics: [],
      })
      const third = await compile({ language: 'js', files, options: { cache: { dir } } })
      expect(third.cached).toBe(false)
      expect(third.program).toEqual(first.program)
    },
    T,
  )
})

describe('the compiler worker stops compile-time bombs', () => {
  it(
    'a type-level bomb (two unions of 40,320 and 403,200 tuples compared) is stopped by the heap cap',
    async () => {
      const bomb =
        'type P<T, U = T> = [T] extends [never] ? [] : T extends U ? [T, ...P<Exclude<U, T>>] : never\n' +
        'type X = P<1|2|3|4|5|6|7|8>\ntype Y = P<1|2|3|4|5|6|7|8|9> | X\ndeclare const a: X\nconst b: Y = a\nconsole.log(b)\n'
      const e = await failure(compile({ language: 'typescript', files: { 'bomb.ts': bomb }, options: { cache: false, timeout: '200s' } }))
      expect(e.limit).toBe('memory')
      expect(e.message).toBe('[caplet] compilation stopped: the TypeScript type check ran out of memory (512 MiB heap)')
    },
    T,
  )

  it(
    'a string-doubling type (2^41 characters) ends as the memory limit, not a crash',
    async () => {
      const bomb =
        'type R<S extends string, N extends unknown[] = []> = N["length"] extends 40 ? S : R<`${S}${S}`, [...N, 0]>\n' +
        'const x: R<"ab"> = null!\nconsole.log(x)\n'
      const e = await failure(compile({ language: 'typescript', files: { 'bomb.ts': bomb }, options: { cache: false } }))
      expect(e.limit).toBe('memory')
      expect(e.message).toBe('[caplet] compilation stopped: the TypeScript type check ran out of memory (Invalid string length)')
    },
    T,
  )

  it(
    'a compiler past its heap cap is stopped with the memory limit, and the host survives',
    async () => {
      // The TypeScript compiler alone needs far more than 16 MiB of heap.
      const job = { kind: 'typecheck' as const, files: [['main.ts', 'console.log(1)\n']] as Array<[string, string]>, entry: 'main.ts' }
      const e = await failure(runCompilerJob(job, { timeoutMs: 120_000, heapMb: 16, what: 'the TypeScript type check' }))
      expect(e.limit).toBe('memory')
      expect(e.message).toBe('[caplet] compilation stopped: the TypeScript type check ran out of memory (16 MiB heap)')
      const ok = await compile({ language: 'wat', files: { 'a.wat': '(module (func (export "_start")))' }, options: { cache: false } })
      expect(ok.kind).toBe('wasm')
    },
    T,
  )

  it(
    'WAT compiles in the worker under the same time limit',
    async () => {
      const e = await failure(
        compile({ language: 'wat', files: { 'a.wat': '(module (func (export "_start")))' }, options: { cache: false, timeout: '5ms' } }),
      )
      expect(e.limit).toBe('timeout')
      expect(e.message).toBe('[caplet] compilation stopped: it took longer than 5 ms')
    },
    T,
  )

  it(
    'an abort stops the TypeScript check',
    async () => {
      const ac = new AbortController()
      const p = compile({ language: 'typescript', files: { 'main.ts': 'console.log(1)\n' }, options: { cache: false, signal: ac.signal } })
      setTimeout(() => ac.abort(), 50)
      expect((await failure(p)).limit).toBe('aborted')
    },
    T,
  )
})

describe('caplet run x.ts', () => {
  it(
    'type-checks before running (exit 65, file:line:col), and --no-check runs it anyway',
    () => {
      const file = join(work, 'typed.ts')
      writeFileSync(file, 'const n: number = "seven"\nconsole.log(n)\n')
      const cli = (...a: string[]) =>
        spawnSync(process.execPath, [join(repoRoot, 'bin/caplet.js'), ...a], {
          encoding: 'utf8',
          input: '',
          env: { PATH: process.env.PATH ?? '', CAPLET_CACHE_DIR: join(work, 'cli-cache') },
        })
      const bad = cli('run', file)
      expect(bad.status).toBe(65)
      expect(bad.stderr).toBe(
        "typed.ts:1:7: error: Type 'string' is not assignable to type 'number'. (TS2322)\n" +
          `caplet: ${file}: the script did not type-check (--no-check runs it without the check)\n`,
      )
      expect(cli('run', '--no-check', file)).toMatchObject({ status: 0, stdout: 'seven\n', stderr: '' })

      const build = cli('build', file)
      expect(build.status).toBe(125)
      expect(build.stderr).toMatch(
        /^caplet: .*typed\.ts: TypeScript and JavaScript run inside caplet's JS engine, not as a \.wasm of their own; run it with caplet run\n$/,
      )
    },
    T,
  )
})
