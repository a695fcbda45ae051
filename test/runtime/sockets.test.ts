/**
 * Sockets end to end: the sample servers under caplet (in a worker, and in-process with the
 * sockets served by a helper thread), hit by real clients on 127.0.0.1 (port 0 everywhere).
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { createServer, connect, type Server } from 'node:net'
import { request, Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { NetworkError, PolicyError, run, runSync, type RunOptions, type RunResult } from '../../runtime/index.js'
import { CONNECTION_RIGHTS } from '../../wasi-host/rights.js'
import { fixtureWasm, repoRoot } from '../support/guest.js'
import { clientThread, echoRoundTrip, eventually, exchangeServerThread, openFds, pattern } from '../support/net-clients.js'

const ECHO = join(repoRoot, 'samples/echo-server.wasm')
const HTTP = join(repoRoot, 'samples/http-server.wasm')
const PROBE = fixtureWasm('net_probe')
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const hex = (n: number) => `0x${n.toString(16)}`

const site = mkdtempSync(join(tmpdir(), 'caplet-site-'))
const BIG = pattern(3 * 1024 * 1024 + 17, 3)
writeFileSync(join(site, 'index.html'), '<h1>caplet</h1>\n')
writeFileSync(join(site, 'big.bin'), BIG)
afterAll(() => rmSync(site, { recursive: true, force: true }))

/** Starts a server run; resolves with its port once it listens, and the run's result. */
async function serve(
  wasm: string,
  options: RunOptions = {},
): Promise<{ port: number; address: string; fd: number; result: Promise<RunResult> }> {
  let listening!: (s: { address: string; fd: number }) => void
  const opened = new Promise<{ address: string; fd: number }>((r) => {
    listening = r
  })
  const result = run(wasm, { sockets: [{ listen: '127.0.0.1:0' }], onListen: (s) => listening(s[0]!), ...options })
  const s = await Promise.race([
    opened,
    result.then((r) => {
      throw new Error(`run ended before listening: ${r.exitCode} ${text(r.stderr)}`)
    }),
  ])
  return { port: Number(s.address.split(':').pop()), address: s.address, fd: s.fd, result }
}

describe('the echo sample in a worker', () => {
  it('echoes every byte, in order, for payloads from 1 B to 16 MiB', async () => {
    const sizes = [1, 100, 65_537, 1 << 20, 16 << 20]
    const { port, result } = await serve(ECHO, { args: ['echo', String(sizes.length)] })
    for (const [i, n] of sizes.entries()) {
      const payload = pattern(n, i)
      const got = await echoRoundTrip(port, payload)
      expect(got.byteLength).toBe(n)
      expect(Buffer.compare(got, payload)).toBe(0)
    }
    const r = await result
    expect(r.exitCode).toBe(0)
    expect(text(r.stderr)).toContain(`served ${sizes.length} connections`)
    const total = sizes.reduce((a, b) => a + b, 0)
    expect(r.stats.sockets).toEqual({ connections: sizes.length, refused: 0, dialed: 0, bytesIn: total, bytesOut: total })
  }, 120_000)

  it('serves 1,000 sequential connections', async () => {
    const { port, result } = await serve(ECHO, { args: ['echo', '1000'] })
    for (let i = 0; i < 1000; i++) {
      const msg = Buffer.from(`message ${i}`)
      expect((await echoRoundTrip(port, msg)).toString()).toBe(`message ${i}`)
    }
    const r = await result
    expect(r.exitCode).toBe(0)
    expect(r.stats.sockets!.connections).toBe(1000)
  }, 180_000)

  it('serves 50 concurrent connections from one event loop (poll)', async () => {
    const { port, result } = await serve(ECHO, { args: ['echo', '50'] })
    const payloads = Array.from({ length: 50 }, (_, i) => pattern(20_000 + i * 997, i))
    const got = await Promise.all(payloads.map((p) => echoRoundTrip(port, p)))
    got.forEach((g, i) => expect(Buffer.compare(g, payloads[i]!)).toBe(0))
    expect((await result).exitCode).toBe(0)
  }, 120_000)

  it('bounds what the host buffers for a client that does not read (back-pressure), and loses nothing', async () => {
    const { port, result } = await serve(ECHO, { args: ['echo', '1'] })
    const s = connect({ port, host: '127.0.0.1' })
    await new Promise((r) => s.once('connect', r))
    s.pause()
    // Write until the path is full: the guest blocks sending to a peer that does not read, stops
    // reading, the host pauses the socket, and the kernel's buffers fill up.
    let written = 0
    const chunk = pattern(64 * 1024, 9)
    const stalled = await new Promise<boolean>((resolve) => {
      const pump = () => {
        while (written < 256 << 20) {
          written += chunk.byteLength
          if (!s.write(chunk)) {
            const t = setTimeout(() => resolve(true), 1500)
            s.once('drain', () => {
              clearTimeout(t)
              pump()
            })
            return
          }
        }
        resolve(false)
      }
      pump()
    })
    expect(stalled).toBe(true)
    // Socket buffers of the kernel (both ends, both ways) plus caplet's bounded per-socket queues.
    expect(written).toBeLessThan(48 << 20)
    let received = 0
    let mismatch = -1
    s.on('data', (d: Buffer) => {
      for (let i = 0; i < d.byteLength && mismatch < 0; i++) if (d[i] !== chunk[(received + i) % chunk.byteLength]) mismatch = received + i
      received += d.byteLength
    })
    s.end()
    s.resume()
    await new Promise((r) => s.once('end', r))
    expect(mismatch).toBe(-1)
    expect(received).toBe(written)
    expect((await result).exitCode).toBe(0)
  }, 120_000)

  it('survives a client that resets mid-transfer, and serves the next one', async () => {
    const { port, result } = await serve(ECHO, { args: ['echo', '2'] })
    const s = connect({ port, host: '127.0.0.1' })
    await new Promise((r) => s.once('connect', r))
    s.write(pattern(4 << 20))
    await new Promise((r) => s.once('data', r))
    s.resetAndDestroy()
    const msg = pattern(300_000, 5)
    expect(Buffer.compare(await echoRoundTrip(port, msg), msg)).toBe(0)
    const r = await result
    expect(r.exitCode).toBe(0)
    expect(r.trap).toBeUndefined()
  }, 60_000)

  it('reports a reset under write-behind sends on a later send (EPIPE or ECONNRESET)', async () => {
    for (let round = 0; round < 2; round++) {
      const { port, result } = await serve(PROBE, { args: ['probe', 'flood'] })
      const s = connect({ port, host: '127.0.0.1' })
      let got = 0
      await new Promise<void>((r) =>
        s.on('data', (d: Buffer) => {
          got += d.byteLength
          if (got > 200_000) r()
        }),
      )
      s.resetAndDestroy()
      const r = await result
      expect(r.trap).toBeUndefined()
      expect(r.exitCode).toBe(0)
      expect(text(r.stdout)).toMatch(/^send failed: (EPIPE|ECONNRESET) after some blocks; again: (EPIPE|ECONNRESET)\n$/)
      // Sends are queued, not buffered without bound: the host sent at most what the socket took.
      expect(r.stats.sockets!.bytesOut).toBeLessThan(64 << 20)
    }
  }, 60_000)

  it('keeps sending after the client half-closes', async () => {
    const { port, result } = await serve(ECHO, { args: ['echo', '1'] })
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    await new Promise((r) => s.once('connect', r))
    s.end('the last words')
    await new Promise((r) => s.once('end', r))
    expect(Buffer.concat(chunks).toString()).toBe('the last words')
    s.destroy()
    expect((await result).exitCode).toBe(0)
  })

  it('releases every host socket when --timeout stops a guest blocked in sock_recv', async () => {
    // Warm the worker pool and the bridge first, so only this run's descriptors differ.
    await run(PROBE, { args: ['probe', 'probe'] })
    const before = await openFds()
    // The probe accepts, then blocks in recv (sock_recv) on a client that sends nothing.
    const { port, result } = await serve(PROBE, { args: ['probe', 'rights'], limits: { timeout: '1s' } })
    const s = connect({ port, host: '127.0.0.1' })
    await new Promise((r) => s.once('connect', r))
    const closed = new Promise((r) => s.once('close', r))
    s.on('error', () => {})
    s.on('data', () => {})
    const r = await result
    expect(r.limit).toBe('timeout')
    expect(r.stats.sockets!.connections).toBe(1)
    expect(r.stats.sockets!.bytesIn).toBe(0)
    await closed
    expect(await eventually(async () => (await openFds()) <= before)).toBe(true)
  }, 30_000)

  it('releases every host socket when --timeout stops a guest held by back-pressure under write-behind sends', async () => {
    await run(PROBE, { args: ['probe', 'probe'] })
    const before = await openFds()
    // The probe sends without end to a client that never reads: its posted sends fill the
    // socket's cap, and the guest waits at the next batch until the timeout ends the run.
    const { port, result } = await serve(PROBE, { args: ['probe', 'flood'], limits: { timeout: '1s' } })
    const s = connect({ port, host: '127.0.0.1' })
    await new Promise((r) => s.once('connect', r))
    s.pause()
    const closed = new Promise((r) => s.once('close', r))
    s.on('error', () => {})
    const r = await result
    expect(r.limit).toBe('timeout')
    expect(r.stdout.byteLength).toBe(0)
    s.destroy()
    await closed
    expect(await eventually(async () => (await openFds()) <= before)).toBe(true)
  }, 30_000)
})

describe('the HTTP sample', () => {
  const get = (port: number, path: string, agent: Agent) =>
    new Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }))
      })
      req.on('error', reject)
      req.end()
    })

  it('serves files from a read-only mount over one keep-alive connection', async () => {
    const { port, fd, result } = await serve(HTTP, { mounts: [{ guest: '/www', host: site, mode: 'ro' }], args: ['http', '/www', '1'] })
    expect(fd).toBe(4)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    for (let i = 0; i < 20; i++) {
      const r = await get(port, '/', agent)
      expect(r.status).toBe(200)
      expect(r.body.toString()).toBe('<h1>caplet</h1>\n')
    }
    const big = await get(port, '/big.bin', agent)
    expect(big.headers['content-length']).toBe(String(BIG.byteLength))
    expect(Buffer.compare(big.body, BIG)).toBe(0)
    expect((await get(port, '/missing', agent)).status).toBe(404)
    expect((await get(port, '/../etc/passwd', agent)).status).toBe(404)
    agent.destroy()
    const r = await result
    expect(r.exitCode).toBe(0)
    expect(r.stats.sockets!.connections).toBe(1)
  }, 60_000)

  it('serves in-process too, its sockets on a helper thread', async () => {
    let port = 0
    const client = clientThread(
      () => port,
      `
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      const get = (path) => new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
          const chunks = []
          res.on('data', (d) => chunks.push(d))
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }))
        }).on('error', reject)
      })
      const a = await get('/')
      const b = await get('/big.bin')
      agent.destroy()
      return { a: a.status + ' ' + a.body.toString(), big: b.body.length, sum: b.body.reduce((s, x) => (s + x) % 65521, 0) }
    `,
    )
    const r = await run(HTTP, {
      isolation: 'in-process',
      mounts: [{ guest: '/www', host: site, mode: 'ro' }],
      args: ['http', '/www', '1'],
      sockets: [{ listen: '127.0.0.1:0' }],
      onListen: (s) => {
        port = Number(s[0]!.address.split(':').pop())
        client.start()
      },
    })
    expect(r.exitCode).toBe(0)
    expect(await client.result).toEqual({ a: '200 <h1>caplet</h1>\n', big: BIG.byteLength, sum: BIG.reduce((s, x) => (s + x) % 65521, 0) })
  }, 60_000)
})

describe('the echo sample in-process', () => {
  it('echoes 1 B to 16 MiB byte-exact to a client on another thread (runSync too)', async () => {
    let port = 0
    const body = `
      const sizes = [1, 65537, 1 << 20, 16 << 20]
      const out = []
      for (const [i, n] of sizes.entries()) {
        const payload = Buffer.alloc(n)
        for (let j = 0; j < n; j++) payload[j] = (j * 7 + i) % 251
        const got = await new Promise((resolve, reject) => {
          const chunks = []
          const s = net.connect({ port, host: '127.0.0.1' }, () => s.end(payload))
          s.on('data', (d) => chunks.push(d))
          s.on('end', () => { s.destroy(); resolve(Buffer.concat(chunks)) })
          s.on('error', reject)
        })
        out.push(got.length === n && got.equals(payload))
      }
      return out
    `
    const client = clientThread(() => port, body)
    const r = runSync(ECHO, {
      args: ['echo', '4'],
      sockets: [{ listen: '127.0.0.1:0' }],
      onListen: (s) => {
        port = Number(s[0]!.address.split(':').pop())
        client.start()
      },
    })
    expect(r.exitCode).toBe(0)
    expect(await client.result).toEqual([true, true, true, true])
    expect(r.stats.sockets!.connections).toBe(4)
  }, 120_000)
})

describe('grants and limits', () => {
  it('tells a systemd-style server its sockets (LISTEN_FDS, LISTEN_FDS_START), after the mounts', async () => {
    const { port, fd, result } = await serve(ECHO, { listenEnv: true, mounts: [{ guest: '/tmp', tmp: true }], args: ['echo', '1'] })
    expect(fd).toBe(4)
    expect((await echoRoundTrip(port, Buffer.from('env'))).toString()).toBe('env')
    expect((await result).exitCode).toBe(0)
  })

  it('listens on a Unix-domain socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'caplet-unix-'))
    try {
      const path = join(dir, 'echo.sock')
      const { result } = await serve(ECHO, { sockets: [{ listen: `unix:${path}` }], args: ['echo', '1'] })
      const got = await new Promise<string>((resolve, reject) => {
        let acc = ''
        const s = connect({ path }, () => s.end('over unix'))
        s.on('data', (d) => {
          acc += d
        })
        s.on('end', () => resolve(acc))
        s.on('error', reject)
      })
      expect(got).toBe('over unix')
      expect((await result).exitCode).toBe(0)
      expect(existsSync(path)).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('hands the guest one connection to a granted address', async () => {
    const server: Server = createServer({ allowHalfOpen: true }, (s) => {
      let got = ''
      s.on('data', (d) => {
        got += d
      })
      s.on('end', () => s.end(`server saw: ${got}`))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    try {
      const seen: string[] = []
      const r = await run(PROBE, {
        args: ['probe', 'client', 'hi from the guest'],
        sockets: [{ connect: `127.0.0.1:${port}`, name: 'db' }],
        onListen: (s) => seen.push(`${s[0]!.role} ${s[0]!.name} ${s[0]!.fd}`),
      })
      expect(seen).toEqual(['connection db 3'])
      expect(text(r.stdout)).toBe('server saw: hi from the guest')
    } finally {
      server.close()
    }
  })

  it.each(['worker', 'in-process'] as const)('reconnects to its connect grant after the server closed (%s)', async (isolation) => {
    // The server closes each connection after one exchange; it runs on its own thread, since
    // an in-process guest blocks this one.
    const server = await exchangeServerThread()
    let connections = -1
    try {
      const r = await run(PROBE, {
        args: ['probe', 'reconnect', '3'],
        sockets: [{ connect: `127.0.0.1:${server.port}`, name: 'db' }],
        isolation,
      })
      const out = text(r.stdout)
      for (let i = 0; i <= 3; i++) expect(out).toContain(`server saw: round ${i}\n`)
      // The new connection reads, writes and shuts down; it cannot redial itself.
      expect(out).toContain(`redialed fd 4: stream base=${hex(CONNECTION_RIGHTS)} inheriting=0 flags=0`)
      expect(out).toContain('accept on it: NOTCAPABLE')
      expect(r.stats.sockets).toMatchObject({ connections: 0, dialed: 3, refused: 0 })
    } finally {
      connections = await server.stop()
    }
    expect(connections).toBe(4)
  })

  it('refuses names and bad addresses in the policy, and a deterministic run with sockets', async () => {
    const bad = async (o: RunOptions) => (await run(ECHO, o).catch((e: unknown) => e)) as PolicyError
    const e = await bad({
      sockets: [{ listen: 'localhost:80' }, { connect: '10.0.0.1:0' }, { listen: '1.2.3.4' }, { connect: 'x', name: 'a:b' }],
    })
    expect(e).toBeInstanceOf(PolicyError)
    expect(e.problems.join('\n')).toMatch(
      /sockets\[0\]\.listen: "localhost" is not a literal IP address.*\n.*sockets\[1\]\.connect: port 0 out of range.*\n.*sockets\[2\]\.listen: "1.2.3.4": expected IP:PORT.*\n.*sockets\[3\]\.connect: name "a:b"/,
    )
    expect(await bad({ deterministic: true, sockets: [{ listen: '127.0.0.1:0' }] })).toBeInstanceOf(PolicyError)
  })

  it('fails with a NetworkError when a listen address is taken', async () => {
    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    const port = (blocker.address() as { port: number }).port
    try {
      const e = await run(ECHO, { sockets: [{ listen: `127.0.0.1:${port}` }] }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(NetworkError)
      expect((e as Error).message).toContain('EADDRINUSE')
      const e2 = await run(ECHO, { isolation: 'in-process', sockets: [{ listen: `127.0.0.1:${port}` }] }).catch((x: unknown) => x)
      expect(e2).toBeInstanceOf(NetworkError)
    } finally {
      blocker.close()
    }
  })

  it('stops a guest that receives more than limits.bytesIn', async () => {
    const { port, result } = await serve(ECHO, { limits: { bytesIn: 10_000 } })
    const s = connect({ port, host: '127.0.0.1' })
    s.on('error', () => {})
    s.on('data', () => {})
    s.write(pattern(100_000))
    const r = await result
    expect(r.limit).toBe('network')
    expect(r.exitCode).toBe(124)
    s.destroy()
  })

  it('closes an idle connection (the guest sees it end) and counts bytes moved as fuel', async () => {
    const { port, result } = await serve(ECHO, { limits: { idleTimeout: '300ms' }, args: ['echo', '1'] })
    const s = connect({ port, host: '127.0.0.1' })
    s.on('error', () => {})
    await new Promise((r) => s.once('close', r))
    expect((await result).exitCode).toBe(0)

    const fuelFor = async (n: number) => {
      const srv = await serve(ECHO, { limits: { fuel: 1e10 }, args: ['echo', '1'] })
      await echoRoundTrip(srv.port, pattern(n))
      return (await srv.result).stats.fuelUsed!
    }
    const small = await fuelFor(1)
    const large = await fuelFor(1 << 20)
    // In and out: one unit per 64 bytes each way.
    expect(large - small).toBeGreaterThanOrEqual(2 * ((1 << 20) / 64))
  }, 30_000)
})
