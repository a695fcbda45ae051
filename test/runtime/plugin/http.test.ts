import { Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PluginCallError, PolicyError } from '../../../runtime/errors.js'
import { allowedUrl } from '../../../runtime/plugin/http.js'
import { plugin, type Plugin } from '../../../runtime/plugin/index.js'

const FIX = new URL('../../fixtures/plugins/', import.meta.url)
const EXTISM = new URL('plugin-extism.wasm', FIX)
const HOST = new URL('plugin-host.wasm', FIX)
const td = new TextDecoder()

/** The counting servers, on their own thread (see test/support/plugin-http-servers.mjs). */
let servers: Worker
let ports: { allowed: number; forbidden: number }
const plugins: Plugin[] = []
type Stats = Record<'allowed' | 'forbidden', { connections: number; requests: string[] }>
const stats = () =>
  new Promise<Stats>((resolve) => {
    servers.once('message', (m: { type: string; stats: Stats }) => resolve(m.stats))
    servers.postMessage('stats')
  })
const allowed = {
  get port() {
    return ports.allowed
  },
}
const forbidden = {
  get port() {
    return ports.forbidden
  },
}

beforeAll(async () => {
  servers = new Worker(new URL('../../support/plugin-http-servers.mjs', import.meta.url))
  ports = await new Promise((resolve) => servers.once('message', (m: { ports: typeof ports }) => resolve(m.ports)))
})
afterAll(async () => {
  await Promise.all(plugins.map((p) => p.close()))
  servers.postMessage('close')
  await new Promise((r) => servers.once('exit', r))
})

const httpOptions = () => ({ allowedHosts: [`127.0.0.1:${allowed.port}`], maxResponseBytes: '100KiB', timeout: '1s' })

describe('plugin HTTP: the allow-list', () => {
  it('matches exact host:port, default ports and subdomain wildcards', () => {
    const ok = (u: string, list: string[]) => allowedUrl(new URL(u), list) === undefined
    expect(ok('http://api.example.com/x', ['api.example.com'])).toBe(true)
    expect(ok('http://api.example.com:8080/x', ['api.example.com'])).toBe(false)
    expect(ok('https://api.example.com/x', ['api.example.com:443'])).toBe(true)
    expect(ok('http://a.b.example.com/', ['*.example.com'])).toBe(true)
    expect(ok('http://example.com/', ['*.example.com'])).toBe(false)
    expect(ok('http://evilexample.com/', ['*.example.com'])).toBe(false)
    expect(ok('http://example.com.evil.org/', ['example.com'])).toBe(false)
    expect(ok('http://user:pw@api.example.com/', ['api.example.com'])).toBe(false)
    expect(ok('file:///etc/passwd', ['*.example.com'])).toBe(false)
    expect(ok('http://127.0.0.1:81/', ['127.0.0.1:80'])).toBe(false)
  })

  it('refuses malformed allow-list entries', async () => {
    await expect(plugin(EXTISM, { http: { allowedHosts: ['http://x.com', 'a b', '*'] } })).rejects.toThrow(PolicyError)
  })

  for (const isolation of ['in-process', 'worker'] as const) {
    it(`Extism http_request: allowed hosts answer; others never reach the network (${isolation})`, async () => {
      const p = await plugin(EXTISM, { isolation, http: httpOptions() })
      plugins.push(p)
      const base = `http://127.0.0.1:${allowed.port}`
      expect(td.decode(await p.call('http', `${base}/hello`))).toBe('200 hi there')
      expect((await stats()).allowed.requests.at(-1)).toBe('GET /hello 1')
      expect(td.decode(await p.call('http', `${base}/missing`))).toBe('404 nope')
      expect(td.decode(await p.call('http', `${base}/redirect-in`))).toBe('200 hi there')

      const before = (await stats()).forbidden.connections
      const refused = await p.call('http', `http://127.0.0.1:${forbidden.port}/`).catch((e) => e)
      expect(refused).toBeInstanceOf(PluginCallError)
      expect(refused.message).toMatch(/not in http\.allowedHosts/)
      const viaRedirect = await p.call('http', `${base}/redirect-out`).catch((e) => e)
      expect(viaRedirect.message).toMatch(/redirect refused/)
      const otherName = await p.call('http', `http://localhost:${allowed.port}/hello`).catch((e) => e)
      expect(otherName.message).toMatch(/not in http\.allowedHosts/)
      expect((await stats()).forbidden.connections).toBe(before)

      expect((await p.call('http', `${base}/big`).catch((e) => e)).message).toMatch(/larger than http\.maxResponseBytes/)
      expect((await p.call('http', `${base}/hang`).catch((e) => e)).message).toMatch(/timed out/)
      // The plugin is still usable.
      expect(td.decode(await p.call('http', `${base}/hello`))).toBe('200 hi there')
    })
  }

  it('without http granted, http_request is refused before any connection', async () => {
    const before = (await stats()).allowed.connections
    const p = await plugin(EXTISM, { isolation: 'in-process' })
    plugins.push(p)
    const e = await p.call('http', `http://127.0.0.1:${allowed.port}/hello`).catch((x) => x)
    expect(e.message).toMatch(/HTTP is not granted/)
    expect((await stats()).allowed.connections).toBe(before)
  })

  it('the caplet:http.request host function (stdio plugins) follows the same list', async () => {
    const p = await plugin(HOST, { isolation: 'in-process', http: httpOptions(), host: { 'app.lookup': () => '' } })
    plugins.push(p)
    const res = JSON.parse(td.decode(await p.call('http', JSON.stringify({ url: `http://127.0.0.1:${allowed.port}/hello` }))))
    expect(res).toEqual({ status: 200, body: 'hi there' })
    const before = (await stats()).forbidden.connections
    const e = await p.call('http', JSON.stringify({ url: `http://127.0.0.1:${forbidden.port}/` })).catch((x) => x)
    expect(e.message).toMatch(/not in http\.allowedHosts/)
    expect((await stats()).forbidden.connections).toBe(before)
  })
})
