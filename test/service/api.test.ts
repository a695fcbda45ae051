/**
 * `caplet serve` with the local pool, over real HTTP on 127.0.0.1: every endpoint, every error
 * answered with a JSON error and the right status, and guests that trap, loop or flood ending
 * as their limits say while the server keeps serving.
 */
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { spawn, spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultPool } from '../../runtime/worker/pool.js'
import { helperThreadAdvice } from '../../service/cli.js'
import type { RunningServer } from '../../service/server.js'
import { repoRoot } from '../support/guest.js'
import { call, GUEST, GUEST_B64, serve, type Json } from '../support/service.js'

const ID = createHash('sha256').update(GUEST).digest('hex')
const A = { authorization: 'Bearer token-a-0123456789abcdef' }
const B = { authorization: 'Bearer token-b-0123456789abcdef' }

let s: RunningServer
let hook: Server
let hookUrl = ''
const delivered: Json[] = []

beforeAll(async () => {
  hook = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => {
      body += d
    })
    req.on('end', () => {
      delivered.push(JSON.parse(body))
      res.end('ok')
    })
  })
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()))
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}`
  s = await serve({
    tokens: [
      { name: 'a', token: 'token-a-0123456789abcdef', concurrency: 8, ratePerSecond: 1000 },
      { name: 'b', token: 'token-b-0123456789abcdef', concurrency: 8, ratePerSecond: 1000 },
    ],
    maxModuleBytes: 64 * 1024,
    maxBodyBytes: 256 * 1024,
    maxBatch: 5,
    limits: { max: { timeout: '5s', stdout: '64KiB', memory: '32MiB' }, defaults: { timeout: '2s', stdout: '16KiB', memory: '16MiB' } },
    callbackOrigins: [hookUrl],
  })
})
afterAll(async () => {
  await s?.close(5000)
  await new Promise((r) => hook.close(r))
})

const run = (body: unknown, h = A) => call(s.url, 'POST', '/v1/runs', body, h)

describe('caplet serve: endpoints', () => {
  it('GET /healthz and /openapi.json answer without a token; /metrics needs one when tokens are configured', async () => {
    const h = await call(s.url, 'GET', '/healthz')
    expect(h.status).toBe(200)
    expect(h.body).toMatchObject({ ok: true, mode: 'local' })
    const doc = await call(s.url, 'GET', '/openapi.json')
    expect(doc.status).toBe(200)
    expect(doc.body.openapi).toBe('3.1.0')
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/modules', '/v1/runs', '/v1/runs/batch', '/v1/runs/{id}']))
    expect(doc.body.components.schemas.RunRequest.properties).toHaveProperty('limits')
    const anon = await call(s.url, 'GET', '/metrics')
    expect(anon.status).toBe(401)
    expect(anon.body.error).toBe('unauthorized')
    expect(anon.headers.get('www-authenticate')).toBe('Bearer')
    expect((await call(s.url, 'GET', '/metrics', undefined, { authorization: 'Bearer wrong-0123456789abcdef' })).status).toBe(401)
    const m = await call(s.url, 'GET', '/metrics', undefined, A)
    expect(m.status).toBe(200)
    expect(m.body).toContain('caplet_queue_depth')
    expect(m.body).toContain('caplet_run_duration_seconds')
    expect(m.body).toContain('caplet_pool_utilisation')
  })

  it('PUT /v1/modules stores a module once under its sha256', async () => {
    const first = await call(s.url, 'PUT', '/v1/modules', GUEST, A)
    expect([200, 201]).toContain(first.status)
    expect(first.body.id).toBe(ID)
    const again = await call(s.url, 'PUT', '/v1/modules', GUEST, B)
    expect(again.status).toBe(200)
    expect(again.body).toEqual({ id: ID, created: false, size: GUEST.byteLength })
  })

  it('PUT /v1/modules refuses what is not a WASI command, empty bodies and modules above the cap', async () => {
    const junk = await call(s.url, 'PUT', '/v1/modules', new TextEncoder().encode('not wasm at all'), A)
    expect(junk.status).toBe(422)
    expect(junk.body.error).toBe('invalid-module')
    const empty = await call(s.url, 'PUT', '/v1/modules', new Uint8Array(0), A)
    expect(empty.status).toBe(400)
    const big = await call(s.url, 'PUT', '/v1/modules', new Uint8Array(65 * 1024), A)
    expect(big.status).toBe(413)
    expect(big.body.error).toBe('module-too-large')
    // A module without _start (a bare header) is not a command.
    const lib = await call(s.url, 'PUT', '/v1/modules', new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), A)
    expect(lib.status).toBe(422)
    expect(lib.body.message).toContain('_start')
  })

  it('POST /v1/runs runs with args, env and stdin, and reports the limits that applied', async () => {
    const r = await run({
      module: ID,
      args: ['g', 'echo', 'one', 'two'],
      env: { GREETING: 'hello' },
      stdin: 'from stdin',
      limits: { timeout: '4s', memory: '8MiB' },
    })
    expect(r.status).toBe(200)
    expect(r.body.status).toBe('done')
    expect(r.body.result.exitCode).toBe(0)
    expect(r.body.result.stdout).toBe('arg:one\narg:two\nenv:hello\nstdin:from stdin')
    expect(r.body.limits).toMatchObject({ timeout: 4000, memory: 8 * 2 ** 20, stdout: 16 * 1024 })
    expect(r.body.result.stats.wallMs).toBeGreaterThan(0)
    // Where the time went in the server: each step, the guest's own time within the run, the whole.
    const timing = Object.fromEntries(
      (r.headers.get('server-timing') ?? '').split(', ').map((e) => {
        const [name, dur] = e.split(';dur=')
        return [name, Number(dur)]
      }),
    )
    expect(Object.keys(timing)).toEqual(['parse', 'admit', 'wait', 'run', 'dispatch', 'return', 'finish', 'guest', 'json', 'total'])
    expect(Object.values(timing).every((v) => Number.isFinite(v) && (v as number) >= 0)).toBe(true)
    expect(timing.run).toBeGreaterThanOrEqual(timing.guest! - 0.01)
    // The hand-offs to and from the worker thread are parts of the run (one clock across threads, to µs).
    expect(timing.run).toBeGreaterThanOrEqual(timing.dispatch! + timing.return! + timing.guest! - 0.05)
    expect(timing.total).toBeGreaterThanOrEqual(timing.run! - 0.01)
  })

  it('takes the module inline as base64, and stdin as base64', async () => {
    const r = await run({ module: GUEST_B64, args: ['g', 'echo'], stdinBase64: Buffer.from([0xff, 0x41]).toString('base64') })
    expect(r.status).toBe(200)
    expect(r.body.module).toBe(ID)
    // Not UTF-8: the exact bytes come back as base64 too.
    expect(Buffer.from(r.body.result.stdoutBase64, 'base64')).toEqual(
      Buffer.concat([Buffer.from('env:(unset)\nstdin:'), Buffer.from([0xff, 0x41])]),
    )
  })

  it('shows files under /input read-only and returns what the guest wrote to /output', async () => {
    const read = await run({
      module: ID,
      args: ['g', 'cat', '/input/dir/in.txt'],
      files: { 'dir/in.txt': 'input text', 'bin.dat': { base64: 'AAEC' } },
    })
    expect(read.body.result.stdout).toBe('input text')
    const ro = await run({ module: ID, args: ['g', 'write', '/input/dir/in.txt', 'x'], files: { 'dir/in.txt': 'input text' } })
    expect(ro.body.result.exitCode).toBe(1)
    const out = await run({ module: ID, args: ['g', 'write', '/output/result.txt', 'written'], output: true })
    expect(out.body.result.exitCode).toBe(0)
    expect(out.body.result.files).toEqual({ 'result.txt': 'written' })
    const none = await run({ module: ID, args: ['g', 'write', '/output/result.txt', 'written'] })
    expect(none.body.result.exitCode).toBe(1)
  })

  it('wait: false answers 202 with the id; GET /v1/runs/:id shows it to its own token only', async () => {
    const r = await run({ module: ID, args: ['g', 'sleep', '50'], wait: false })
    expect(r.status).toBe(202)
    expect(r.headers.get('location')).toBe(`/v1/runs/${r.body.id}`)
    let view: Json
    for (let i = 0; i < 200; i++) {
      view = (await call(s.url, 'GET', `/v1/runs/${r.body.id}`, undefined, A)).body
      if (view.status === 'done') break
      await new Promise((res) => setTimeout(res, 20))
    }
    expect(view.status).toBe('done')
    expect(view.result.stdout).toBe('slept\n')
    const other = await call(s.url, 'GET', `/v1/runs/${r.body.id}`, undefined, B)
    expect(other.status).toBe(404)
    const unknown = await call(s.url, 'GET', '/v1/runs/00000000-0000-0000-0000-000000000000', undefined, A)
    expect(unknown.status).toBe(404)
    expect(unknown.body.error).toBe('not-found')
  })

  it('POST /v1/runs/batch runs all, in order; one bad run refuses the whole batch naming it', async () => {
    const ok = await call(
      s.url,
      'POST',
      '/v1/runs/batch',
      { runs: [1, 2, 3].map((i) => ({ module: ID, args: ['g', 'echo', String(i)] })) },
      A,
    )
    expect(ok.status).toBe(200)
    expect(ok.body.runs.map((v: Json) => v.result.stdout.split('\n')[0])).toEqual(['arg:1', 'arg:2', 'arg:3'])
    const bad = await call(s.url, 'POST', '/v1/runs/batch', { runs: [{ module: ID }, { module: ID, args: 'x' }] }, A)
    expect(bad.status).toBe(400)
    expect(bad.body.problems.join('\n')).toContain('runs[1].args')
    const big = await call(s.url, 'POST', '/v1/runs/batch', { runs: Array.from({ length: 6 }, () => ({ module: ID })) }, A)
    expect(big.status).toBe(400)
    const later = await call(s.url, 'POST', '/v1/runs/batch', { runs: [{ module: ID }], wait: false }, A)
    expect(later.status).toBe(202)
    expect(later.body.runs[0].status).toBe('queued')
  })

  it('POSTs the finished run to an allowed callbackUrl', async () => {
    const r = await run({ module: ID, args: ['g', 'echo', 'cb'], wait: false, callbackUrl: `${hookUrl}/done` })
    expect(r.status).toBe(202)
    for (let i = 0; i < 200 && !delivered.some((d) => d.id === r.body.id); i++) await new Promise((res) => setTimeout(res, 20))
    const got = delivered.find((d) => d.id === r.body.id)
    expect(got.result.stdout).toContain('arg:cb')
  })
})

describe('caplet serve: errors', () => {
  it('bad JSON, unknown fields, unknown module id: 400 / 404 with a JSON error', async () => {
    const bad = await call(s.url, 'POST', '/v1/runs', '{"module": ', A)
    expect(bad.status).toBe(400)
    expect(bad.body.error).toBe('bad-json')
    const extra = await run({ module: ID, isolation: 'in-process' })
    expect(extra.status).toBe(400)
    expect(extra.body.problems.join()).toContain('isolation')
    const unknown = await run({ module: 'a'.repeat(64) })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error).toBe('unknown-module')
    const none = await run({ args: ['x'] })
    expect(none.status).toBe(400)
    const route = await call(s.url, 'GET', '/v2/nothing', undefined, A)
    expect(route.status).toBe(404)
    expect(route.body.error).toBe('not-found')
  })

  it('every refusal, on every endpoint, is one JSON object with a code and a message, never a stack', async () => {
    const garbage = new Uint8Array(4096).fill(0x41)
    const cases: [string, string, unknown, Record<string, string>, number, string][] = [
      ['POST', '/v1/runs', '{"module": ', A, 400, 'bad-json'],
      ['POST', '/v1/runs', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), A, 400, 'bad-json'],
      ['POST', '/v1/runs', '[]', A, 400, 'invalid-request'],
      ['POST', '/v1/runs', 'null', A, 400, 'invalid-request'],
      ['POST', '/v1/runs', '{"__proto__": {"module": "x"}}', A, 400, 'invalid-request'],
      ['POST', '/v1/runs', { module: Buffer.from(garbage).toString('base64') }, A, 422, 'invalid-module'],
      ['POST', '/v1/runs', { module: ID, args: 'not a list' }, A, 400, 'invalid-request'],
      ['POST', '/v1/runs/batch', '{"runs": [', A, 400, 'bad-json'],
      ['POST', '/v1/runs/batch', { runs: 'x' }, A, 400, 'invalid-request'],
      ['POST', '/v1/runs/batch', { runs: Array(6).fill({ module: ID }) }, A, 400, 'invalid-request'],
      ['POST', '/v1/runs/batch', { runs: [{ module: ID }, { module: ID, limits: { timeout: '1h' } }] }, A, 422, 'limit-above-maximum'],
      ['POST', '/v1/runs/batch', { runs: [{ module: ID }] }, {}, 401, 'unauthorized'],
      ['PUT', '/v1/modules', garbage, A, 422, 'invalid-module'],
      ['PUT', '/v1/modules', new Uint8Array(0), A, 400, 'invalid-request'],
      ['PUT', '/v1/modules', new Uint8Array(65 * 1024), A, 413, 'module-too-large'],
      ['PUT', '/v1/modules', GUEST, {}, 401, 'unauthorized'],
      ['GET', '/v1/runs/not-a-run-id', undefined, A, 404, 'not-found'],
      ['GET', `/v1/runs/${'../'.repeat(20)}etc/passwd`, undefined, A, 404, 'not-found'],
      ['GET', '/v1/runs/00000000-0000-0000-0000-000000000000', undefined, {}, 401, 'unauthorized'],
      ['DELETE', '/v1/runs', undefined, A, 404, 'not-found'],
      ['GET', '/metrics', undefined, {}, 401, 'unauthorized'],
    ]
    for (const [method, path, body, headers, status, code] of cases) {
      const r = await call(s.url, method, path, body, headers)
      const what = `${method} ${path} ${typeof body === 'string' ? body : ''}`
      expect(r.status, what).toBe(status)
      expect(r.headers.get('content-type'), what).toMatch(/^application\/json/)
      expect(r.body, what).toMatchObject({ error: code, message: expect.any(String) })
      expect(
        Object.keys(r.body).every((k) => ['error', 'message', 'problems'].includes(k)),
        what,
      ).toBe(true)
      expect(JSON.stringify(r.body), what).not.toMatch(/\bat .*:\d+:\d+|node_modules|\.ts\b|\/work\//)
    }
    // After all that, the server still runs.
    expect((await run({ module: GUEST_B64, args: ['g', 'echo', 'ok'] })).body.result.stdout).toContain('arg:ok')
  })

  it('an oversized body: 413', async () => {
    const r = await run({ module: ID, stdin: 'x'.repeat(300 * 1024) })
    expect(r.status).toBe(413)
    expect(r.body.error).toBe('body-too-large')
    // Without a Content-Length (chunked), the cap counts the bytes as they arrive.
    const chunked = (total: number) => {
      let sent = 0
      return new ReadableStream<Uint8Array>({
        pull(ctl) {
          if (sent >= total) return ctl.close()
          sent += 16 * 1024
          ctl.enqueue(new TextEncoder().encode(' '.repeat(16 * 1024)))
        },
      })
    }
    const send = (path: string, body: ReadableStream<Uint8Array>) =>
      fetch(s.url + path, { method: path === '/v1/modules' ? 'PUT' : 'POST', headers: A, body, duplex: 'half' } as RequestInit)
    const big = await send('/v1/runs', chunked(300 * 1024))
    expect(big.status).toBe(413)
    expect(await big.json()).toMatchObject({ error: 'body-too-large' })
    const bigModule = await send('/v1/modules', chunked(80 * 1024))
    expect(bigModule.status).toBe(413)
    expect(await bigModule.json()).toMatchObject({ error: 'module-too-large' })
    // Under the cap, chunked is read like any body.
    const json = JSON.stringify({ module: GUEST_B64, args: ['g', 'echo', 'chunked'] })
    const small = await send('/v1/runs', new Blob([json]).stream())
    const got = (await small.json()) as Json
    expect(got, JSON.stringify(got)).toHaveProperty('result')
    expect(got.result.stdout).toContain('arg:chunked')
  })

  it('limits above the maxima: 422 naming each; invalid limits: 400', async () => {
    const r = await run({ module: ID, limits: { timeout: '10s', memory: '1GiB', stdout: '32KiB' } })
    expect(r.status).toBe(422)
    expect(r.body.error).toBe('limit-above-maximum')
    expect(r.body.problems).toHaveLength(2)
    expect(r.body.problems.join('\n')).toMatch(/limits\.timeout.*5000 ms/)
    const bad = await run({ module: ID, limits: { fuel: -5, cpu: 1 } })
    expect(bad.status).toBe(400)
    expect(bad.body.problems.join()).toContain('cpu')
  })

  it('no token or a bad one: 401 with WWW-Authenticate', async () => {
    for (const h of [{}, { authorization: 'Bearer nope-nope-nope-nope' }, { authorization: 'Basic dG9rZW4tYQ==' }]) {
      const r = await run({ module: ID }, h as typeof A)
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('unauthorized')
      expect(r.headers.get('www-authenticate')).toBe('Bearer')
    }
  })

  it('source without a compiler: 501; a callbackUrl off the allow-list: 422', async () => {
    const src = await run({ source: { language: 'c', files: { 'main.c': 'int main(){}' } } })
    expect(src.status).toBe(501)
    expect(src.body.error).toBe('source-unsupported')
    const cb = await run({ module: ID, callbackUrl: 'http://169.254.169.254/latest' })
    expect(cb.status).toBe(422)
    expect(cb.body.error).toBe('callback-not-allowed')
  })
})

describe('caplet serve: guests that misbehave', () => {
  it('a trap, an endless loop and an output flood end as their limits say; the server keeps serving', async () => {
    const [trap, loop, flood] = await Promise.all([
      run({ module: ID, args: ['g', 'trap'] }),
      run({ module: ID, args: ['g', 'loop'], limits: { timeout: '300ms' } }),
      run({ module: ID, args: ['g', 'flood'], limits: { stdout: '8KiB' } }),
    ])
    expect(trap.body.result).toMatchObject({ exitCode: 134, trap: { kind: 'unreachable' } })
    expect(loop.body.result).toMatchObject({ exitCode: 124, limit: 'timeout' })
    expect(flood.body.result).toMatchObject({ exitCode: 124, limit: 'stdout' })
    expect(flood.body.result.stdout.length).toBeLessThanOrEqual(8 * 1024)
    const fuel = await run({ module: ID, args: ['g', 'loop'], limits: { fuel: 100000 } })
    expect(fuel.body.result).toMatchObject({ exitCode: 124, limit: 'fuel' })
    // The worker the timeout killed was replaced in the background: the pool is back to its reserve.
    expect(defaultPool.size).toBeGreaterThanOrEqual(s.backend.depth().capacity)
    const after = await run({ module: ID, args: ['g', 'echo', 'still'] })
    expect(after.body.result.stdout).toContain('arg:still')
    const m = await call(s.url, 'GET', '/metrics', undefined, A)
    expect(m.body).toMatch(/caplet_runs_total\{outcome="trap"\} [1-9]/)
    expect(m.body).toMatch(/caplet_runs_total\{outcome="limit"\} [1-9]/)
  })
})

describe('caplet serve: admission', () => {
  it('a full queue answers 429 with Retry-After', async () => {
    const q = await serve({ maxConcurrent: 1, maxQueued: 1 })
    try {
      const first = await call(q.url, 'POST', '/v1/runs', { module: GUEST_B64, args: ['g', 'sleep', '400'], wait: false })
      const second = await call(q.url, 'POST', '/v1/runs', { module: GUEST_B64, args: ['g', 'sleep', '10'], wait: false })
      const third = await call(q.url, 'POST', '/v1/runs', { module: GUEST_B64, args: ['g', 'sleep', '10'], wait: false })
      expect(first.status).toBe(202)
      expect(second.status).toBe(202)
      expect(third.status).toBe(429)
      expect(third.body.error).toBe('queue-full')
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0)
    } finally {
      await q.close(5000)
    }
  })

  it('per-token concurrency and rate: 429 with Retry-After', async () => {
    const q = await serve({
      tokens: [
        { name: 'slow', token: 'slow-token-0123456789', concurrency: 1, ratePerSecond: 100 },
        { name: 'rare', token: 'rare-token-0123456789', concurrency: 10, ratePerSecond: 0.01, burst: 1 },
      ],
    })
    try {
      const slow = { authorization: 'Bearer slow-token-0123456789' }
      const first = await call(q.url, 'POST', '/v1/runs', { module: GUEST_B64, args: ['g', 'sleep', '300'], wait: false }, slow)
      const second = await call(q.url, 'POST', '/v1/runs', { module: GUEST_B64 }, slow)
      expect(first.status).toBe(202)
      expect(second.status).toBe(429)
      expect(second.body.error).toBe('too-many-runs')
      const rare = { authorization: 'Bearer rare-token-0123456789' }
      expect((await call(q.url, 'POST', '/v1/runs', { module: GUEST_B64 }, rare)).status).toBe(200)
      const limited = await call(q.url, 'POST', '/v1/runs', { module: GUEST_B64 }, rare)
      expect(limited.status).toBe(429)
      expect(limited.body.error).toBe('rate-limited')
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    } finally {
      await q.close(5000)
    }
  })
})

describe('caplet serve: the command', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(repoRoot, 'bin/caplet.js'), ...args], { encoding: 'utf8', timeout: 20_000 })

  it('refuses a public address without tokens, and a worker without a queue, in one line', () => {
    const pub = cli('serve', '--host', '0.0.0.0', '--port', '0')
    expect(pub.status).toBe(125)
    expect(pub.stderr.trim().split('\n')).toHaveLength(1)
    expect(pub.stderr).toContain('loopback')
    const w = cli('worker')
    expect(w.status).toBe(125)
    expect(w.stderr).toContain('--queue')
    const bad = cli('serve', '--port', 'x')
    expect(bad.status).toBe(125)
  })

  it('on 1 or 2 cores advises one V8 helper thread, unless the flag was given', () => {
    expect(helperThreadAdvice(2, [], undefined)).toContain('NODE_OPTIONS=--v8-pool-size=1')
    expect(helperThreadAdvice(1, [], '')).toMatch(/^1 core: /)
    expect(helperThreadAdvice(4, [], undefined)).toBeUndefined()
    expect(helperThreadAdvice(2, ['--v8-pool-size=1'], undefined)).toBeUndefined()
    expect(helperThreadAdvice(2, [], '--max-old-space-size=512  --v8-pool-size=2')).toBeUndefined()
  })

  it('`caplet serve` logs that advice at start on this machine only as its cores and flags say', async () => {
    const startLog = (nodeOptions: string) =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, [join(repoRoot, 'bin/caplet.js'), 'serve', '--port', '0'], {
          env: { ...process.env, NODE_OPTIONS: nodeOptions },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let out = ''
        let err = ''
        p.stdout.on('data', (d) => (out += d))
        p.stderr.on('data', (d) => {
          err += d
          if (err.includes('listening on')) p.kill('SIGTERM')
        })
        p.on('error', reject)
        p.on('exit', () => (err.includes('listening on') ? resolve(out) : reject(new Error(err))))
      })
    const advised = (log: string) => log.split('\n').some((l) => l.includes('--v8-pool-size=1') && JSON.parse(l).cores >= 1)
    expect(advised(await startLog(''))).toBe(availableParallelism() <= 2)
    expect(advised(await startLog('--v8-pool-size=1'))).toBe(false)
  })
})

describe('caplet serve: the source hook', () => {
  it('compiles source through the given compile(), once per distinct source', async () => {
    const { startServer } = await import('../../service/server.js')
    const { resolveConfig } = await import('../../service/config.js')
    const { silent } = await import('../support/service.js')
    const seen: string[] = []
    // Stands in for the toolchain's compile(): answers the svc_guest module for any C source.
    const compile = async (src: { language: string; files: Record<string, string> }) => {
      seen.push(src.language)
      if (src.language !== 'c') throw new Error('unsupported')
      return new Uint8Array(GUEST)
    }
    const q = await startServer({ config: resolveConfig({}), port: 0, log: silent, compile })
    try {
      const source = { language: 'c', files: { 'main.c': 'int main(void){return 0;}' } }
      const a = await call(q.url, 'POST', '/v1/runs', { source, args: ['g', 'echo', 'src'] })
      const b = await call(q.url, 'POST', '/v1/runs', { source, args: ['g', 'echo', 'again'] })
      expect(a.body.result.stdout).toContain('arg:src')
      expect(b.body.result.stdout).toContain('arg:again')
      expect(a.body.module).toBe(ID)
      expect(seen).toEqual(['c'])
      const both = await call(q.url, 'POST', '/v1/runs', { source, module: ID })
      expect(both.status).toBe(400)
    } finally {
      await q.close(5000)
    }
  })
})
