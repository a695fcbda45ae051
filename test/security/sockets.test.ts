/**
 * Sockets as an attack surface: a guest gets exactly the sockets granted and cannot widen them,
 * forge them, fault the host through them, or make the host buffer or hold connections without
 * bound. Real guests (the net_probe fixture, the echo sample), real clients on 127.0.0.1.
 */
import { connect, createServer, type Server } from 'node:net'
import { describe, expect, it } from 'vitest'
import { CONNECTION_RIGHTS, LISTENER_RIGHTS, REDIAL_CONNECTION_RIGHTS } from '../../wasi-host/rights.js'
import { run, type RunOptions, type RunResult } from '../../runtime/index.js'
import { fixtureWasm, repoRoot } from '../support/guest.js'
import { echoRoundTrip, eventually, openFds } from '../support/net-clients.js'

const PROBE = fixtureWasm('net_probe')
const ECHO = `${repoRoot}/samples/echo-server.wasm`
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const hex = (n: number) => `0x${n.toString(16)}`

async function serve(wasm: string, options: RunOptions): Promise<{ port: number; result: Promise<RunResult> }> {
  let listening!: (p: number) => void
  const port = new Promise<number>((r) => {
    listening = r
  })
  const result = run(wasm, {
    sockets: [{ listen: '127.0.0.1:0' }],
    onListen: (s) => listening(Number(s[0]!.address.split(':').pop())),
    ...options,
  })
  return {
    port: await Promise.race([
      port,
      result.then((r) => {
        throw new Error(`ended early: ${text(r.stderr)}`)
      }),
    ]),
    result,
  }
}

/** Opens a connection and resolves once the host ends it (or `ms` pass): whether it was closed. */
function closedByHost(port: number, send?: string, ms = 20_000): Promise<{ closed: boolean; data: string }> {
  return new Promise((resolve) => {
    let data = ''
    const s = connect({ port, host: '127.0.0.1' }, () => {
      if (send !== undefined) s.write(send)
    })
    const t = setTimeout(() => {
      s.destroy()
      resolve({ closed: false, data })
    }, ms)
    s.on('data', (d) => {
      data += d
    })
    s.on('error', () => {})
    s.on('close', () => {
      clearTimeout(t)
      resolve({ closed: true, data })
    })
  })
}

describe('no grant, no socket', () => {
  it('gives a guest without --listen nothing to accept on: sock_* is NOTSOCK on stdio, BADF elsewhere', async () => {
    const r = await run(PROBE, { args: ['probe', 'probe'] })
    const out = text(r.stdout)
    for (const fd of [0, 1, 2]) expect(out).toContain(`fd ${fd}: accept NOTSOCK recv NOTSOCK send NOTSOCK shutdown NOTSOCK`)
    for (const fd of [3, 99, -1, 1 << 30]) expect(out).toContain(`fd ${fd}: accept BADF recv BADF send BADF shutdown BADF`)
    expect(out).toContain('listener: -1')
  })

  it('is NOTSOCK on a directory; forged numbers are BADF beside real sockets; rights are exact', async () => {
    const r = await run(PROBE, { args: ['probe', 'probe'], mounts: [{ guest: '/tmp', tmp: true }], sockets: [{ listen: '127.0.0.1:0' }] })
    const out = text(r.stdout)
    expect(out).toContain('fd 3: accept NOTSOCK recv NOTSOCK send NOTSOCK shutdown NOTSOCK')
    for (const fd of [99, -1, 1 << 30]) expect(out).toContain(`fd ${fd}: accept BADF recv BADF send BADF shutdown BADF`)
    expect(out).toContain(`socket fd 4: stream base=${hex(LISTENER_RIGHTS)} inheriting=${hex(CONNECTION_RIGHTS)} flags=0`)
    expect(out).toContain('listener: 4')
  })
})

describe('an accepted connection', () => {
  it('gets the listener inheriting rights and cannot widen them or accept on itself', async () => {
    const { port, result } = await serve(PROBE, { args: ['probe', 'rights'] })
    expect((await echoRoundTrip(port, Buffer.from('still works'))).toString()).toBe('still works')
    const out = text((await result).stdout)
    expect(out).toContain(`accepted fd 4: stream base=${hex(CONNECTION_RIGHTS)} inheriting=0 flags=0`)
    expect(out).toContain('widen to accept: NOTCAPABLE')
    expect(out).toContain('widen inheriting: NOTCAPABLE')
    expect(out).toContain('accept on it: NOTCAPABLE')
  })
})

/** A server that answers one exchange per connection and counts them (at once, and in all). */
async function countingServer(): Promise<{ server: Server; port: number; stats: { total: number; open: number; peak: number } }> {
  const stats = { total: 0, open: 0, peak: 0 }
  const server = createServer({ allowHalfOpen: true }, (s) => {
    stats.total++
    stats.peak = Math.max(stats.peak, ++stats.open)
    s.on('close', () => stats.open--)
    s.on('error', () => {})
    s.on('data', () => {})
    s.on('end', () => s.end('ok'))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as { port: number }).port, stats }
}

describe('a connect grant', () => {
  it('redials only its own address: another server sees nothing, a closed one is CONNREFUSED', async () => {
    const granted = await countingServer()
    const decoy = await countingServer()
    try {
      const r = await run(PROBE, { args: ['probe', 'reconnect', '2'], sockets: [{ connect: `127.0.0.1:${granted.port}` }] })
      expect(text(r.stdout).match(/^ok$/gm)).toHaveLength(3)
      expect(granted.stats.total).toBe(3)
      expect(decoy.stats.total).toBe(0)
      // The grant's address stops listening after one connection: the redial fails there,
      // and goes nowhere else.
      const once = await countingServer()
      once.server.once('connection', () => once.server.close())
      const out = text((await run(PROBE, { args: ['probe', 'reconnect', '1'], sockets: [{ connect: `127.0.0.1:${once.port}` }] })).stdout)
      expect(out).toContain('redial 1: CONNREFUSED')
      expect(once.stats.total).toBe(1)
      expect(decoy.stats.total).toBe(0)
    } finally {
      granted.server.close()
      decoy.server.close()
    }
  })

  it('has exactly its rights; a flood of redials stops at --max-connections (EMFILE), and frees with close', async () => {
    const peer = await countingServer()
    const before = await openFds()
    try {
      // A mount at fd 3 (the probe's recv there would wait on a connection), the grant at 4.
      const probed = await run(PROBE, {
        args: ['probe', 'probe'],
        mounts: [{ guest: '/tmp', tmp: true }],
        sockets: [{ connect: `127.0.0.1:${peer.port}` }],
      })
      expect(text(probed.stdout)).toContain(
        `socket fd 4: stream base=${hex(REDIAL_CONNECTION_RIGHTS)} inheriting=${hex(CONNECTION_RIGHTS)} flags=0`,
      )
      // Not a listener to a guest that probes for one (SOCK_ACCEPT without FD_READ).
      expect(text(probed.stdout)).toContain('listener: -1')
      expect(await eventually(() => peer.stats.open === 0)).toBe(true)
      peer.stats.peak = 0
      const r = await run(PROBE, {
        args: ['probe', 'redial-flood'],
        sockets: [{ connect: `127.0.0.1:${peer.port}` }],
        limits: { connections: 8 },
      })
      const out = text(r.stdout)
      expect(out).toContain('redialed 8, then MFILE')
      expect(out).toContain('after closing: SUCCESS')
      expect(out).toContain('ok')
      // The grant's own connection, at most 8 redials, and the last one (dialed as the peer
      // may still be seeing the 8 closed ones go) were ever open at once.
      expect(peer.stats.peak).toBeLessThanOrEqual(10)
      expect(r.stats.sockets).toMatchObject({ dialed: 9, refused: 1 })
      expect(await eventually(async () => (await openFds()) <= before)).toBe(true)
    } finally {
      peer.server.close()
    }
  })

  it('charges fuel per redial: an endless redial-and-close loop runs out', async () => {
    const peer = await countingServer()
    try {
      const r = await run(PROBE, {
        args: ['probe', 'reconnect', '100000'],
        sockets: [{ connect: `127.0.0.1:${peer.port}` }],
        limits: { fuel: 1_000_000 },
      })
      expect(r.limit).toBe('fuel')
      // 1,024 units a redial: fewer than 1,000 of them fit in 1,000,000.
      expect(peer.stats.total).toBeGreaterThan(10)
      expect(peer.stats.total).toBeLessThan(1000)
    } finally {
      peer.server.close()
    }
  }, 60_000)
})

describe('bad pointers', () => {
  it.each(['bad-iovec', 'bad-accept'])('%s traps, and the host releases the connection', async (scenario) => {
    const before = await openFds()
    const { port, result } = await serve(PROBE, { args: ['probe', scenario] })
    const client = closedByHost(port, 'data')
    const r = await result
    expect(r.trap?.kind).toBe('memory-fault')
    expect(r.trap?.message).toMatch(/sock_(recv|accept)/)
    expect((await client).closed).toBe(true)
    expect(await eventually(async () => (await openFds()) <= before)).toBe(true)
  })
})

describe('exhaustion', () => {
  it('keeps the backlog bounded for a guest that never accepts', async () => {
    const { port, result } = await serve(PROBE, { args: ['probe', 'idle', '4000'], limits: { connections: 16 } })
    const outcomes = await Promise.all(Array.from({ length: 200 }, () => closedByHost(port, undefined, 3000)))
    // Beyond the bound, connections are closed at once; the rest wait (never accepted) until the run ends.
    const closed = outcomes.filter((o) => o.closed).length
    expect(closed).toBeGreaterThanOrEqual(200 - 16)
    const r = await result
    expect(r.exitCode).toBe(0)
    expect(r.stats.sockets!.connections).toBeLessThanOrEqual(16)
    expect(r.stats.sockets!.refused).toBeGreaterThanOrEqual(200 - 16)
  }, 30_000)

  it('survives a flood of 2,000 connection attempts against --max-connections 8, and still serves', async () => {
    const before = await openFds()
    const heap = process.memoryUsage().heapUsed
    const stop = new AbortController()
    const { port, result } = await serve(ECHO, { limits: { connections: 8 }, args: ['echo', '0'], signal: stop.signal })
    const settled = result.then(
      () => 'resolved',
      (e: unknown) => e,
    )
    let echoed = 0
    let refused = 0
    const attempt = () =>
      new Promise<void>((resolve) => {
        let data = ''
        const s = connect({ port, host: '127.0.0.1' }, () => s.end('flood'))
        s.on('data', (d) => {
          data += d
        })
        s.on('error', () => {})
        s.on('close', () => {
          if (data === 'flood') echoed++
          else refused++
          resolve()
        })
      })
    // 2,000 attempts, 100 at a time.
    for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 100 }, attempt))
    expect(echoed + refused).toBe(2000)
    expect(echoed).toBeGreaterThan(0)
    // The host still serves a well-behaved client after the flood.
    expect((await echoRoundTrip(port, Buffer.from('after'))).toString()).toBe('after')
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(256 << 20)
    // Stop it the way an embedder would: abort. Nothing is left open.
    stop.abort(new Error('enough'))
    expect(((await settled) as Error).message).toBe('enough')
    expect(await eventually(async () => (await openFds()) <= before)).toBe(true)
  }, 120_000)
})
