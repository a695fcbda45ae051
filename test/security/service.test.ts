/**
 * Adversarial tests of `caplet serve`: token bypass attempts, path traversal in `files`, huge
 * counts, limits spelled to slip past checks, JSON bombs, slow clients, callbacks to hosts off
 * the allow-list. Each asserts the server refused with a JSON error (no stack, no host path),
 * and that it kept serving.
 */
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningServer } from '../../service/server.js'
import { call, GUEST, serve, type Json } from '../support/service.js'

const ID = createHash('sha256').update(GUEST).digest('hex')
const SECRET = 'sec-token-0123456789abcdef'
const A = { authorization: `Bearer ${SECRET}` }
let s: RunningServer

beforeAll(async () => {
  s = await serve({
    tokens: [
      { name: 'a', token: SECRET, concurrency: 64, ratePerSecond: 10_000 },
      { name: 'b', token: 'other-token-0123456789', concurrency: 64, ratePerSecond: 10_000 },
    ],
    maxBodyBytes: 1024 * 1024,
    maxFiles: 16,
    maxArgs: 64,
    maxEnv: 32,
    callbackOrigins: ['http://127.0.0.1:9'],
    requestTimeout: '1s',
  })
  expect((await call(s.url, 'PUT', '/v1/modules', GUEST, A)).body.id).toBe(ID)
})
afterAll(async () => {
  await s?.close(5000)
})

const run = (body: unknown, h: Record<string, string> = A) => call(s.url, 'POST', '/v1/runs', body, h)
/** A refusal: the status, a JSON error code, and nothing of the host in it. */
function refused(r: { status: number; body: Json }, status: number, code?: string) {
  expect(r.status).toBe(status)
  expect(typeof r.body).toBe('object')
  if (code) expect(r.body.error).toBe(code)
  const text = JSON.stringify(r.body)
  expect(text).not.toMatch(/\n\s+at |\/work\/|node_modules|\/tmp\//)
}
const stillServing = async () => {
  const r = await run({ module: ID, args: ['g', 'echo', 'alive'] })
  expect(r.body.result.stdout).toContain('arg:alive')
}

describe('service security: authentication', () => {
  it('refuses near-miss tokens and other schemes', async () => {
    const tries = [
      // (a trailing space would be the same header: HTTP strips it on the wire)
      `Bearer  ${SECRET}`,
      ` Bearer${SECRET}`,
      `Bearer\t${SECRET}`,
      `bearer${SECRET}`,
      `Bearer ${SECRET.slice(0, -1)}`,
      `Bearer ${SECRET}x`,
      `Bearer ${createHash('sha256').update(SECRET).digest('hex')}`,
      'Bearer ',
      `Basic ${Buffer.from(`a:${SECRET}`).toString('base64')}`,
      `Bearer ${SECRET}, Bearer ${SECRET}`,
      `Bearer ${'x'.repeat(4000)}`,
    ]
    for (const t of tries) {
      const r = await run({ module: ID }, { authorization: t })
      expect({ t, status: r.status }).toEqual({ t, status: 401 })
      refused(r, 401, 'unauthorized')
    }
    refused(await call(s.url, 'POST', `/v1/runs?token=${SECRET}`, { module: ID }), 401)
    refused(await call(s.url, 'PUT', '/v1/modules', GUEST, { 'x-authorization': `Bearer ${SECRET}` }), 401)
    refused(await call(s.url, 'GET', '/v1/runs/00000000-0000-0000-0000-000000000000'), 401)
  })

  it('a run is invisible to another token, and ids are not guessable paths', async () => {
    const mine = await run({ module: ID, args: ['g', 'echo'], wait: false })
    for (const path of [
      `/v1/runs/${mine.body.id}`,
      `/v1/runs/${mine.body.id.toUpperCase()}`,
      `/v1/runs/${mine.body.id}%00`,
      '/v1/runs/..%2F..%2Fhealthz',
      '/v1/runs/%2e%2e',
    ]) {
      const r = await call(s.url, 'GET', path, undefined, { authorization: 'Bearer other-token-0123456789' })
      expect([401, 404]).toContain(r.status)
      expect(JSON.stringify(r.body)).not.toContain('stdout')
    }
  })
})

describe('service security: files', () => {
  it('refuses paths that climb, are absolute or are odd, naming each', async () => {
    const bad = [
      '../escape',
      '/etc/passwd',
      'a/../../x',
      'a/./b',
      '',
      'a//b',
      'a\\..\\b',
      'nul\0byte',
      '.',
      '..',
      `${'d/'.repeat(20)}f`,
      'x'.repeat(300),
    ]
    for (const p of bad) {
      const r = await run({ module: ID, files: { [p]: 'x' } })
      refused(r, 400, 'invalid-request')
      expect(r.body.problems.join('\n')).toContain('files[')
    }
    refused(await run({ module: ID, files: { a: 'file', 'a/b': 'under a file' } }), 400)
  })

  it('a guest cannot leave /input or /output', async () => {
    const up = await run({ module: ID, args: ['g', 'cat', '/input/../../etc/passwd'], files: { 'in.txt': 'x' } })
    expect(up.body.result.exitCode).toBe(1)
    expect(up.body.result.stdout).toBe('')
    const abs = await run({ module: ID, args: ['g', 'write', '/output/../../tmp/caplet-escape', 'x'], output: true })
    expect(abs.body.result.exitCode).toBe(1)
    expect(abs.body.result.files).toEqual({})
  })

  it('huge counts of files, args and env are refused before anything runs', async () => {
    const files = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`f${i}`, '']))
    refused(await run({ module: ID, files }), 400)
    refused(await run({ module: ID, args: Array.from({ length: 20_000 }, () => 'a') }), 400)
    refused(await run({ module: ID, env: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`V${i}`, ''])) }), 400)
    refused(await run({ module: ID, env: { 'A=B': 'x' } }), 400)
    refused(await run({ module: ID, env: { A: 'nul\0' } }), 400)
    refused(await run({ module: ID, stdinBase64: '!!!not base64' }), 400)
    refused(await run({ module: '@@@@' }), 400)
    await stillServing()
  })
})

describe('service security: limits', () => {
  it('strings, negatives, NaN, Infinity and unknown limits are refused', async () => {
    const bad: unknown[] = [
      { memory: 'NaN' },
      { memory: 'Infinity' },
      { memory: -1 },
      { memory: '-1MiB' },
      { memory: '1e9' },
      { memory: 0.5 },
      { timeout: 'Infinity' },
      { timeout: -5 },
      { timeout: 'forever' },
      { timeout: '1e400' },
      { fuel: '5' },
      { fuel: -1 },
      { fuel: 0 },
      { fuel: 1.5 },
      { fds: 1e308 },
      { fds: '10' },
      { inodes: -1 },
      { stdout: {} },
      { stdout: [] },
      { cpu: 1 },
      JSON.parse('{"__proto__": 1}'),
      'fast',
      [1],
    ]
    for (const limits of bad) {
      const r = await run({ module: ID, limits })
      expect({ limits, status: r.status }).toEqual({ limits, status: r.status === 422 ? 422 : 400 })
      refused(r, r.status)
    }
    // JSON number literals that parse to Infinity.
    for (const raw of [
      `{"module":"${ID}","limits":{"timeout":1e400}}`,
      `{"module":"${ID}","limits":{"memory":1e400}}`,
      `{"module":"${ID}","limits":{"fuel":-1e400}}`,
    ]) {
      refused(await call(s.url, 'POST', '/v1/runs', raw, { ...A, 'content-type': 'application/json' }), 400)
    }
    await stillServing()
  })
})

describe('service security: bodies', () => {
  it('JSON bombs: deep nesting, many keys, prototype keys', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000)
    const r1 = await call(s.url, 'POST', '/v1/runs', `{"module":"${ID}","args":${deep}}`, { ...A, 'content-type': 'application/json' })
    expect([400, 413]).toContain(r1.status)
    refused(r1, r1.status)
    const keys = '{' + Array.from({ length: 40_000 }, (_, i) => `"k${i}":0`).join(',') + '}'
    refused(await call(s.url, 'POST', '/v1/runs', `{"module":"${ID}","limits":${keys}}`, { ...A, 'content-type': 'application/json' }), 400)
    const proto = await call(
      s.url,
      'POST',
      '/v1/runs',
      `{"module":"${ID}","__proto__":{"wait":false,"polluted":1},"env":{"__proto__":"x"}}`,
      { ...A, 'content-type': 'application/json' },
    )
    expect([200, 400]).toContain(proto.status)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    await stillServing()
  })

  it('an oversized body without a length (chunked) is cut off with 413', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024))
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 40) c.enqueue(chunk)
        else c.close()
      },
    })
    const r = await fetch(`${s.url}/v1/runs`, { method: 'POST', body, headers: A, duplex: 'half' } as RequestInit).then(
      async (x) => ({ status: x.status, body: await x.json() }),
      () => ({ status: 413, body: { error: 'body-too-large' } }),
    )
    refused(r, 413, 'body-too-large')
    await stillServing()
  })

  it('slow clients are cut off in bounded time and the server keeps serving', async () => {
    const slow = (payload: string[]) =>
      new Promise<number>((resolve) => {
        const t0 = Date.now()
        const sock = connect(s.port, '127.0.0.1')
        let i = 0
        const timer = setInterval(() => {
          if (i < payload.length) sock.write(payload[i++]!)
        }, 300)
        sock.on('data', () => {})
        sock.on('error', () => {})
        sock.on('close', () => {
          clearInterval(timer)
          resolve(Date.now() - t0)
        })
      })
    const header = [
      'POST /v1/runs HTTP/1.1\r\n',
      'Host: x\r\n',
      `Authorization: Bearer ${SECRET}\r\n`,
      ...Array.from({ length: 100 }, () => 'X-Slow: 1\r\n'),
    ]
    const body = [
      'POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n',
      `Authorization: Bearer ${SECRET}\r\n\r\n`,
      ...Array.from({ length: 100 }, () => '{'),
    ]
    const [a, b] = await Promise.all([slow(header), slow(body)])
    expect(a).toBeLessThan(15_000)
    expect(b).toBeLessThan(15_000)
    await stillServing()
  }, 40_000)
})

describe('service security: callbacks', () => {
  it('refuses callbackUrl to any origin off the allow-list', async () => {
    const bad = [
      'http://127.0.0.1:10/',
      'http://127.0.0.1/',
      'https://127.0.0.1:9/',
      'http://localhost:9/',
      'http://127.0.0.1:9@evil.example/',
      'http://user:pw@127.0.0.1:9/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'http://[::1]:9/',
      'http://2130706433:10/',
      'gopher://127.0.0.1:9/',
    ]
    for (const u of bad) {
      const r = await run({ module: ID, callbackUrl: u, wait: false })
      expect([400, 422]).toContain(r.status)
      refused(r, r.status)
    }
    refused(await run({ module: ID, callbackUrl: 'not a url' }), 400)
    // The allowed origin itself passes (nothing listens there; delivery fails quietly, the run does not).
    const ok = await run({ module: ID, callbackUrl: 'http://127.0.0.1:9/hook?x=1', args: ['g', 'echo'] })
    expect(ok.status).toBe(200)
    expect(ok.body.status).toBe('done')
  })
})
