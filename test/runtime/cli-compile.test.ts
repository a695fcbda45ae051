/**
 * `caplet run SOURCE` and `caplet build`: a source is recognised by its extension (or --lang),
 * compiled through the cache and run under the same flags as a .wasm; compile errors print the
 * diagnostics and exit 65; build flags are an allow-list.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const bin = join(root, 'bin/caplet.js')
const T = 240_000

let tmp: string
function caplet(args: string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    input: opts.input ?? '',
    cwd: tmp,
    encoding: 'utf8',
    timeout: T,
    env: { PATH: process.env.PATH ?? '', CAPLET_CACHE_DIR: join(tmp, 'cache'), ...opts.env },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'caplet-cli-compile-'))
  writeFileSync(
    join(tmp, 'hello.c'),
    '#include <stdio.h>\n#include <stdlib.h>\n#include "greeting.h"\n' +
      'int main(int argc, char **argv) { printf("%s %s %s\\n", GREETING, argc > 1 ? argv[1] : "-", getenv("WHO") ? getenv("WHO") : "nobody"); return 5; }\n',
  )
  writeFileSync(join(tmp, 'greeting.h'), '#ifndef GREETING\n#define GREETING "hello"\n#endif\n')
  writeFileSync(join(tmp, 'bad.c'), 'int main(void) {\n  return undefined_thing;\n}\n')
  writeFileSync(join(tmp, 'prog.txt'), '(module (memory (export "memory") 1) (func (export "_start")))')
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('caplet run SOURCE', () => {
  it(
    'compiles hello.c with its header and runs it with the policy flags; the second run is cached',
    () => {
      const first = caplet(['run', '--env', 'WHO=guest', '--src', 'greeting.h', 'hello.c', 'arg1'])
      expect(first).toMatchObject({ code: 5, stdout: 'hello arg1 guest\n', stderr: '' })
      expect(readdirSync(join(tmp, 'cache')).filter((n) => n.endsWith('.entry'))).toHaveLength(1)
      const again = caplet(['run', '--src', 'greeting.h', '-DGREETING="hi"', 'hello.c'])
      expect(again).toMatchObject({ code: 5, stdout: 'hi - nobody\n' })
      expect(readdirSync(join(tmp, 'cache')).filter((n) => n.endsWith('.entry'))).toHaveLength(2)
      const cached = caplet(['run', '--env', 'WHO=guest', '--src', 'greeting.h', 'hello.c', 'arg1'])
      expect(cached).toMatchObject({ code: 5, stdout: 'hello arg1 guest\n' })
      expect(readdirSync(join(tmp, 'cache')).filter((n) => n.endsWith('.entry'))).toHaveLength(2)
    },
    T,
  )

  it(
    'a compile error prints the diagnostics with the file name and exits 65',
    () => {
      const r = caplet(['run', 'bad.c'])
      expect(r.code).toBe(65)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/^bad\.c:2:10: error: use of undeclared identifier 'undefined_thing'/)
      expect(r.stderr).toMatch(/\ncaplet: compile failed: bad\.c:2:10: error: use of undeclared identifier 'undefined_thing'\n$/)
      expect(r.stderr).not.toMatch(/\s+at .*\.js:\d+/)
    },
    T,
  )

  it(
    '--lang names the language whatever the extension; unknown build flags and values are refused',
    () => {
      expect(caplet(['run', '--lang', 'wat', 'prog.txt'])).toMatchObject({ code: 0, stdout: '' })
      expect(caplet(['run', '--lang', 'fortran', 'prog.txt'])).toMatchObject({ code: 125 })
      expect(caplet(['run', '-fplugin=x.so', 'hello.c']).stderr).toMatch(/unknown flag -fplugin=x\.so/)
      const badStd = caplet(['run', '-std=c++17 -fplugin=x', 'hello.c'])
      expect(badStd.code).toBe(65)
      expect(badStd.stderr).toMatch(/invalid build options: std "c\+\+17 -fplugin=x" is not one of/)
    },
    T,
  )

  it(
    'a .wasm still runs as before, and plain .ts runs as a JavaScript/TypeScript guest',
    () => {
      const built = caplet(['build', '--lang', 'wat', 'prog.txt', '-o', 'prog.wasm'])
      expect(built.code).toBe(0)
      expect(caplet(['run', 'prog.wasm'])).toMatchObject({ code: 0 })
      writeFileSync(join(tmp, 'script.ts'), 'console.log(1)')
      expect(caplet(['run', 'script.ts'])).toMatchObject({ code: 0, stdout: '1\n' }) // the JS engine, not AssemblyScript
    },
    T,
  )
})

describe('caplet build', () => {
  it(
    'writes the module to -o and says so; -q is quiet',
    () => {
      const r = caplet(['build', '-O1', 'hello.c', 'greeting.h', '-o', 'hello.wasm'])
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/^caplet: built hello\.wasm \(\d+ bytes\)\n$/)
      expect(WebAssembly.validate(readFileSync(join(tmp, 'hello.wasm')))).toBe(true)
      const q = caplet(['build', '-q', 'hello.c', 'greeting.h', '-o', 'hello2.wasm'])
      expect(q).toMatchObject({ code: 0, stderr: '' })
      expect(WebAssembly.validate(readFileSync(join(tmp, 'hello2.wasm')))).toBe(true)
      expect(caplet(['run', 'hello.wasm', 'x'])).toMatchObject({ code: 5, stdout: 'hello x nobody\n' })
    },
    T,
  )

  it(
    'CAPLET_NO_CACHE keeps the build out of the cache, as --no-cache does; CAPLET_NO_CACHE=0 does not',
    () => {
      const cache = join(tmp, 'build-cache')
      const entries = () => {
        try {
          return readdirSync(cache).filter((n) => n.endsWith('.entry')).length
        } catch {
          return 0
        }
      }
      const build = (env: Record<string, string>, ...flags: string[]) =>
        caplet(['build', '-q', ...flags, '--lang', 'wat', 'prog.txt', '-o', 'nocache.wasm'], { env: { CAPLET_CACHE_DIR: cache, ...env } })
      expect(build({ CAPLET_NO_CACHE: '1' })).toMatchObject({ code: 0, stderr: '' })
      expect(build({}, '--no-cache')).toMatchObject({ code: 0, stderr: '' })
      expect(entries()).toBe(0)
      expect(WebAssembly.validate(readFileSync(join(tmp, 'nocache.wasm')))).toBe(true)
      expect(build({ CAPLET_NO_CACHE: '0' })).toMatchObject({ code: 0, stderr: '' })
      expect(entries()).toBe(1)
    },
    T,
  )

  it('usage errors are one line with exit 125', () => {
    for (const args of [['build'], ['build', 'nothere.c'], ['build', '--src', 'x.h', 'hello.c'], ['build', 'hello.c', '-o']]) {
      const r = caplet(args)
      expect(r.code, args.join(' ')).toBe(125)
      expect(r.stderr.split('\n').filter(Boolean), args.join(' ')).toHaveLength(1)
    }
    expect(caplet(['build', '--help'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^caplet build/) })
  })
})
