/**
 * `caplet serve` over real HTTP: `source: { language, files }` compiled by the real toolchain
 * (WAT through wabt; errors as 422 with the diagnostics; one compile per distinct source, also
 * for concurrent requests), a compile result that is not a module refused, and `/metrics`
 * behind its own token.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { moduleOf, toolchainCompiler } from '../../service/compile-source.js'
import { ApiError } from '../../service/errors.js'
import type { RunningServer } from '../../service/server.js'
import { repoRoot } from '../support/guest.js'
import { call, GUEST, serve, silent } from '../support/service.js'

const GREET = readFileSync(join(repoRoot, 'samples/greet.wat'), 'utf8')
const METRICS = 'metrics-0123456789abcdef'
const TOKEN = { authorization: 'Bearer token-a-0123456789abcdef' }

let s: RunningServer
let compiles = 0

beforeAll(async () => {
  const { startServer } = await import('../../service/server.js')
  const { resolveConfig } = await import('../../service/config.js')
  const real = toolchainCompiler({ maxModuleBytes: 1 << 20, diskCache: false })
  s = await startServer({
    config: resolveConfig({
      tokens: [{ name: 'a', token: 'token-a-0123456789abcdef', ratePerSecond: 1000 }],
      metricsToken: METRICS,
      maxModuleBytes: 1 << 20,
    }),
    port: 0,
    log: silent,
    compile: async (src) => {
      compiles++
      return real(src)
    },
  })
}, 60_000)
afterAll(async () => {
  await s?.close(5000)
})

const run = (body: unknown) => call(s.url, 'POST', '/v1/runs', body, TOKEN)

describe('caplet serve: source compiled by the toolchain', () => {
  it('a WAT command compiles and runs; the same source, even asked for 5 times at once, compiles once', async () => {
    const source = { language: 'wat', files: { 'greet.wat': GREET } }
    const first = await run({ source, args: ['greet', 'ann'] })
    expect(first.status).toBe(200)
    expect(first.body.result).toMatchObject({ exitCode: 1, stdout: 'hello, ann!\n' })
    const again = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => run({ source, args: ['greet', n] })))
    again.forEach((r, i) => expect(r.body.result.stdout).toBe(`hello, ${'abcde'[i]}!\n`))
    expect(new Set([first, ...again].map((r) => r.body.module)).size).toBe(1)
    expect(compiles).toBe(1)
    // Another source (one more space) compiles anew; concurrent requests for it share one compile.
    const other = { language: 'wat', files: { 'greet.wat': `${GREET} ` } }
    const both = await Promise.all([run({ source: other, args: ['g', 'x'] }), run({ source: other, args: ['g', 'y'] })])
    expect(both.map((r) => r.body.result.stdout)).toEqual(['hello, x!\n', 'hello, y!\n'])
    expect(compiles).toBe(2)
  }, 60_000)

  it('a C program compiles in the jailed clang and runs; a C include of a host file is a 422, never its content', async () => {
    const ok = await run({
      source: { language: 'c', files: { 'main.c': '#include <stdio.h>\nint main(void){puts("hi from C");return 0;}\n' } },
    })
    expect(ok.status).toBe(200)
    expect(ok.body.result).toMatchObject({ exitCode: 0, stdout: 'hi from C\n' })
    const esc = await run({ source: { language: 'c', files: { 'main.c': '#include "/etc/passwd"\nint main(void){return 0;}\n' } } })
    expect(esc.status).toBe(422)
    expect(esc.body.error).toBe('compile-error')
    expect(JSON.stringify(esc.body)).not.toContain('root:')
  }, 120_000)

  it('a compile error is 422 with the diagnostics (file, line, column), in one reply without a stack', async () => {
    const r = await run({ source: { language: 'wat', files: { 'p.wat': '(module\n  (func $f\n    (i32.bogus)))\n' } } })
    expect(r.status).toBe(422)
    expect(r.body.error).toBe('compile-error')
    expect(r.body.message).toMatch(/^the source did not compile: p\.wat:3:6: error: unexpected token/)
    expect(r.body.problems[0]).toMatch(/^p\.wat:3:6: error: /)
    expect(r.body.diagnostics[0]).toMatchObject({ severity: 'error', file: 'p.wat', line: 3, column: 6 })
    expect(JSON.stringify(r.body)).not.toMatch(/\s+at \S+ \(|node_modules|\/tmp\//)
    // Failures are not cached: the same bad source is compiled (and refused) again.
    const before = compiles
    expect((await run({ source: { language: 'wat', files: { 'p.wat': '(module\n  (func $f\n    (i32.bogus)))\n' } } })).status).toBe(422)
    expect(compiles).toBe(before + 1)
  })

  it('an unknown language and a hostile file name are 422; a module without _start is 422 invalid-module', async () => {
    const lang = await run({ source: { language: 'cobol', files: { 'a.cob': 'x' } } })
    expect(lang.status).toBe(422)
    expect(lang.body.message).toContain('unknown language')
    const escape = await run({ source: { language: 'wat', files: { '../../etc/x.wat': '(module)' } } })
    expect(escape.status).toBe(422)
    expect(escape.body.error).toBe('compile-error')
    const lib = await run({ source: { language: 'wat', files: { 'lib.wat': '(module (func (export "f")))' } } })
    expect(lib.status).toBe(422)
    expect(lib.body.error).toBe('invalid-module')
    // And the server keeps serving.
    expect((await run({ module: Buffer.from(GUEST).toString('base64'), args: ['g', 'echo', 'ok'] })).body.result.stdout).toContain('arg:ok')
  })

  it('a compile result that is not a WebAssembly module (a script) is refused with a 422', () => {
    const bytes = new Uint8Array([0, 97, 115, 109])
    expect(moduleOf({ module: bytes, diagnostics: [] }, 'wat')).toBe(bytes)
    expect(moduleOf({ kind: 'wasm', module: bytes }, 'wat')).toBe(bytes)
    for (const bad of [{ kind: 'script', script: 'print(1)' }, { kind: 'script', module: bytes }, { kind: 'wasm' }, null]) {
      let e: unknown
      try {
        moduleOf(bad, 'js')
      } catch (x) {
        e = x
      }
      expect(e).toBeInstanceOf(ApiError)
      expect((e as ApiError).status).toBe(422)
    }
    expect(() => moduleOf({ kind: 'script' }, 'js')).toThrow('js compiles to a script, not a WebAssembly module')
  })
})

describe('caplet serve: /metrics access', () => {
  it('with a metrics token, /metrics takes that token only: none, an API token or a wrong one get 401', async () => {
    for (const h of [{}, TOKEN, { authorization: 'Bearer metrics-0123456789abcdeX' }, { authorization: `Basic ${METRICS}` }]) {
      const r = await call(s.url, 'GET', '/metrics', undefined, h)
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('unauthorized')
      expect(typeof r.body.message).toBe('string')
    }
    const ok = await call(s.url, 'GET', '/metrics', undefined, { authorization: `Bearer ${METRICS}` })
    expect(ok.status).toBe(200)
    expect(ok.body).toContain('caplet_runs_total')
    // The metrics token is not an API token.
    expect((await call(s.url, 'POST', '/v1/runs', { module: 'ab'.repeat(32) }, { authorization: `Bearer ${METRICS}` })).status).toBe(401)
  })

  it('without tokens (a loopback-only server) /metrics is open', async () => {
    const open = await serve()
    try {
      expect((await call(open.url, 'GET', '/metrics')).status).toBe(200)
    } finally {
      await open.close(5000)
    }
  })

  it('caplet serve --metrics-token refuses a short token in one line', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/caplet.js'), 'serve', '--port', '0', '--metrics-token', 'short'], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(r.status).toBe(125)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain('--metrics-token')
  })
})
