import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  BridgeCallError,
  BridgeClient,
  BridgeClosedError,
  BridgeFault,
  BridgeServer,
  borrowsBytes,
  createBridge,
  type BridgeChannel,
  type ServedService,
} from '../../../runtime/worker/bridge.js'
import { startBridgeHelper, startBridgeHelperSync } from '../../../runtime/worker/bridge-helper.js'

// The guest side runs on a worker thread, as in a real run: it loads the bridge module bundled
// from source, performs the calls the test names, and posts what it saw.
let dir: string
let bridgeUrl: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'caplet-bridge-'))
  const out = join(dir, 'bridge.mjs')
  await build({
    entryPoints: ['runtime/worker/bridge.ts'],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    outfile: out,
    logLevel: 'silent',
  })
  bridgeUrl = pathToFileURL(out).href
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs `body` (the source of an async function of `(client, channel)`) on a worker thread. */
function guestThread(channel: BridgeChannel, body: string): { result: Promise<unknown>; worker: Worker } {
  const src = `
    import { workerData, parentPort } from 'node:worker_threads'
    const { BridgeClient, BridgeCallError, BridgeClosedError } = await import(workerData.bridgeUrl)
    const client = new BridgeClient(workerData.channel)
    const run = async (client, channel) => { ${body} }
    try { parentPort.postMessage({ ok: await run(client, workerData.channel) }) }
    catch (e) { parentPort.postMessage({ err: { name: e.name, message: e.message, errno: e.errno, remoteName: e.remoteName } }) }
  `
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: { channel, bridgeUrl } })
  const result = new Promise<unknown>((resolve, reject) => {
    worker.once('message', (m: { ok?: unknown; err?: unknown }) => ('err' in m ? resolve({ thrown: m.err }) : resolve(m.ok)))
    worker.once('error', reject)
  })
  return { result, worker }
}

function echoService(log: string[] = []): ServedService {
  return {
    echo: (args, bytes) => ({ value: { got: args }, bytes }),
    later: (args: { ms: number; n: number }) => new Promise((r) => setTimeout(() => r({ value: args.n }), args.ms)),
    refuse: () => {
      throw new BridgeFault('connection reset by peer', 54)
    },
    crash: () => {
      throw new TypeError('host bug')
    },
    big: (args: { n: number }) => ({ bytes: new Uint8Array(args.n) }),
    cyclic: () => {
      const o: Record<string, unknown> = {}
      o.self = o
      return { value: o }
    },
    dispose: () => {
      log.push('disposed')
    },
  }
}

describe('the synchronous bridge between a guest thread and an async service', () => {
  it('carries args and raw bytes both ways, in order, for many calls', async () => {
    const channel = createBridge({ capacity: 4096 })
    const server = new BridgeServer(channel, { svc: echoService() })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      let sum = 0
      for (let i = 0; i < 2000; i++) {
        const bytes = new Uint8Array([i & 255, (i >> 8) & 255, 7])
        const r = client.call('svc', 'echo', { i, s: 'é\\u202e' }, bytes)
        if (r.value.got.i !== i || r.value.got.s !== 'é\\u202e' || r.bytes[0] !== (i & 255) || r.bytes[1] !== ((i >> 8) & 255) || r.bytes.length !== 3) throw new Error('mismatch at ' + i)
        sum += r.value.got.i
      }
      const none = client.call('svc', 'echo')
      return { sum, noneBytes: none.bytes === undefined, noneArgs: none.value.got }
    `,
    )
    expect(await result).toEqual({ sum: (1999 * 2000) / 2, noneBytes: true, noneArgs: null })
    await server.close()
  })

  it('blocks the guest thread while an async handler works, then delivers its answer', async () => {
    const channel = createBridge()
    const server = new BridgeServer(channel, { svc: echoService() })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      const t0 = Date.now()
      const r = client.call('svc', 'later', { ms: 50, n: 42 })
      return { n: r.value, waited: Date.now() - t0 >= 40 }
    `,
    )
    expect(await result).toEqual({ n: 42, waited: true })
    await server.close()
  })

  it('answers a guest that pauses between calls (the server stops waiting for it) and several guests served by one thread', async () => {
    // One guest alone: it sleeps 0–3 ms between some calls, so the server's brief wait for the
    // next request misses and backs off; every answer still comes, in order.
    const lone = createBridge({ capacity: 4096 })
    const loneServer = new BridgeServer(lone, { svc: echoService() })
    void loneServer.serve()
    const paused = guestThread(
      lone,
      `
      const nap = new Int32Array(new SharedArrayBuffer(4))
      for (let i = 0; i < 300; i++) {
        if (i % 7 === 0) Atomics.wait(nap, 0, 0, i % 4)
        const r = i % 5 === 0 ? client.call('svc', 'later', { ms: 0, n: i }) : client.call('svc', 'echo', i)
        if ((i % 5 === 0 ? r.value : r.value.got) !== i) throw new Error('mismatch at ' + i)
      }
      return 'ok'
    `,
    )
    expect(await paused.result).toBe('ok')
    await loneServer.close()
    // Three guests at once, each with its own channel, all served by this thread.
    const channels = [0, 1, 2].map(() => createBridge({ capacity: 4096 }))
    const servers = channels.map((c) => new BridgeServer(c, { svc: echoService() }))
    for (const s of servers) void s.serve()
    const guests = channels.map((c, g) =>
      guestThread(
        c,
        `
        for (let i = 0; i < 500; i++) {
          const r = i % 9 === 0 ? client.call('svc', 'later', { ms: 0, n: i }) : client.call('svc', 'echo', { g: ${g}, i }, new Uint8Array([i & 255]))
          if (i % 9 === 0 ? r.value !== i : r.value.got.g !== ${g} || r.value.got.i !== i || r.bytes[0] !== (i & 255)) throw new Error('mismatch at ' + i)
        }
        return ${g}
      `,
      ),
    )
    expect(await Promise.all(guests.map((x) => x.result))).toEqual([0, 1, 2])
    await Promise.all(servers.map((s) => s.close()))
  })

  it("gives the serving thread's event loop turns while a guest calls back to back (its timers still fire)", async () => {
    const channel = createBridge({ capacity: 4096 })
    let fired = false
    const server = new BridgeServer(channel, { svc: { tick: () => ({ value: fired }) } })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      const t0 = Date.now()
      let calls = 0
      while (Date.now() - t0 < 5000) {
        calls++
        if (client.call('svc', 'tick').value === true) return { saw: true, calls }
      }
      return { saw: false, calls }
    `,
    )
    // Armed once the guest is calling: it must fire while the calls go on.
    setTimeout(() => setTimeout(() => (fired = true), 20), 50)
    expect(await result).toMatchObject({ saw: true })
    await server.close()
  })

  it('delivers a handler failure as BridgeCallError with the errno the service chose, and keeps serving', async () => {
    const channel = createBridge()
    const server = new BridgeServer(channel, { svc: echoService() })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      const out = []
      for (const m of ['refuse', 'crash', 'cyclic', 'nope', '__proto__', 'constructor', 'hasOwnProperty', 'dispose']) {
        try { client.call('svc', m); out.push([m, 'returned']) } catch (e) { out.push([m, e.name, e.message, e.errno ?? null]) }
      }
      try { client.call('toString', 'call') } catch (e) { out.push(['toString', e.message]) }
      out.push(client.call('svc', 'echo', 1).value.got)
      return out
    `,
    )
    expect(await result).toEqual([
      ['refuse', 'BridgeCallError', 'connection reset by peer', 54],
      ['crash', 'BridgeCallError', 'host bug', null],
      ['cyclic', 'BridgeCallError', expect.stringMatching(/^reply not serialisable/), null],
      ['nope', 'BridgeCallError', 'no such bridge method: svc.nope', null],
      ['__proto__', 'BridgeCallError', 'no such bridge method: svc.__proto__', null],
      ['constructor', 'BridgeCallError', 'no such bridge method: svc.constructor', null],
      ['hasOwnProperty', 'BridgeCallError', 'no such bridge method: svc.hasOwnProperty', null],
      ['dispose', 'BridgeCallError', 'no such bridge method: svc.dispose', null],
      ['toString', 'no such bridge method: toString.call'],
      1,
    ])
    await server.close()
  })

  it('bounds requests and replies by the capacity: too large a request fails at the caller, too large a reply becomes an error', async () => {
    const channel = createBridge({ capacity: 1024 })
    const server = new BridgeServer(channel, { svc: echoService() })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      const out = { maxBytes: client.maxBytes }
      try { client.call('svc', 'echo', null, new Uint8Array(2000)) } catch (e) { out.request = e.message }
      out.fits = client.call('svc', 'echo', null, new Uint8Array(client.maxBytes)).bytes.length
      try { client.call('svc', 'big', { n: 5000 }) } catch (e) { out.reply = e.message }
      out.after = client.call('svc', 'big', { n: 100 }).bytes.length
      return out
    `,
    )
    expect(await result).toEqual({
      maxBytes: 768,
      request: expect.stringMatching(/^payload too large/),
      fits: 768,
      reply: 'reply too large for the bridge (1024 bytes)',
      after: 100,
    })
    await server.close()
  })

  it('wakes a caller blocked in a call when the server closes, and disposes every service', async () => {
    const channel = createBridge()
    const log: string[] = []
    const server = new BridgeServer(channel, {
      svc: echoService(log),
      other: {
        dispose: () => {
          log.push('other')
        },
      },
    })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      try { client.call('svc', 'later', { ms: 60_000, n: 1 }); return 'returned' } catch (e) {
        let again
        try { client.call('svc', 'echo') } catch (e2) { again = e2.name }
        return [e.name, again]
      }
    `,
    )
    await new Promise((r) => setTimeout(r, 100))
    await server.close()
    expect(await result).toEqual(['BridgeClosedError', 'BridgeClosedError'])
    expect(log).toEqual(['disposed', 'other'])
  })

  it('survives the guest thread being terminated in the middle of a call', async () => {
    const channel = createBridge()
    const log: string[] = []
    const server = new BridgeServer(channel, { svc: echoService(log) })
    const serving = server.serve()
    const { worker } = guestThread(channel, `client.call('svc', 'later', { ms: 300, n: 1 }); return 'done'`)
    await new Promise((r) => setTimeout(r, 100))
    await worker.terminate()
    await server.close()
    await serving
    expect(log).toEqual(['disposed'])
  })

  it('rejects a channel of absurd capacity', () => {
    expect(() => createBridge({ capacity: 10 })).toThrow(RangeError)
    expect(() => createBridge({ capacity: 2 ** 40 })).toThrow(RangeError)
    expect(() => createBridge({ capacity: 1.5e3 + 0.5 })).toThrow(RangeError)
  })
})

describe('the bridge helper thread (in-process runs)', () => {
  const echoFactory = new URL('../../support/bridge-echo-service.mjs', import.meta.url).href
  const brokenFactory = new URL('../../support/bridge-broken-service.mjs', import.meta.url).href

  it('serves blocking calls from this very thread, synchronously started', async () => {
    const helper = startBridgeHelperSync([{ name: 'svc', factory: echoFactory, config: { prefix: 'p' } }])
    const client = new BridgeClient(helper.channel)
    const r = client.call('svc', 'echo', { a: 1 }, new Uint8Array([1, 2, 3]))
    expect(r.value).toEqual({ got: { a: 1 }, prefix: 'p' })
    expect([...r.bytes!]).toEqual([1, 2, 3])
    // An async handler on the helper thread answers while this thread is blocked.
    expect(client.call('svc', 'later', { ms: 20, n: 9 }).value).toEqual({ ms: 20, n: 9 })
    expect(() => client.call('svc', 'fail')).toThrow(BridgeCallError)
    expect(client.call('svc', 'disposedYet').value).toBe(false)
    await helper.close()
    expect(() => client.call('svc', 'echo')).toThrow(BridgeClosedError)
  })

  it('starts asynchronously too, and reports a service that cannot be built', async () => {
    const helper = await startBridgeHelper([{ name: 'svc', factory: echoFactory }])
    expect(new BridgeClient(helper.channel).call('svc', 'echo', 5).value).toEqual({ got: 5, prefix: '' })
    await helper.close()
    await expect(startBridgeHelper([{ name: 'x', factory: brokenFactory }])).rejects.toThrow('cannot open the listener')
    expect(() => startBridgeHelperSync([{ name: 'x', factory: 'no-such-service' }])).toThrow(
      'unknown bridge service factory: no-such-service',
    )
  })
})

describe('posted requests (fire-and-forget, batched, answered in order)', () => {
  function recorder(log: unknown[]): ServedService {
    return {
      note: (args, bytes) => {
        log.push([args, bytes ? [...bytes] : null])
      },
      value: (args: { n: number }) => ({ value: args.n * 2 }),
      slow: (args: { ms: number; n: number }) =>
        new Promise<void>((r) =>
          setTimeout(() => {
            log.push(['slow', args.n])
            r()
          }, args.ms),
        ),
      refuse: (args: { n: number }) => {
        throw new BridgeFault(`refused ${args.n}`, 64)
      },
      count: () => ({ value: log.length }),
    }
  }

  it('runs posted requests before the next call, in order, bytes intact, in one round trip', async () => {
    const channel = createBridge({ capacity: 4096 })
    const log: unknown[] = []
    const server = new BridgeServer(channel, { svc: recorder(log) })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      for (let i = 0; i < 20; i++) client.post('svc', 'note', i, new Uint8Array([i, 255 - i]))
      // Nothing has crossed yet: posting does not wake the server.
      const sab = new Int32Array(new SharedArrayBuffer(4))
      Atomics.wait(sab, 0, 0, 50)
      const before = client.call('svc', 'count').value
      return { before }
    `,
    )
    // The call's own count sees all twenty posted notes: they ran first, in order.
    expect(await result).toEqual({ before: 20 })
    expect(log).toEqual(Array.from({ length: 20 }, (_, i) => [i, [i, 255 - i]]))
    await server.close()
  })

  it('lends the shared buffer only to a borrowing handler, only in a batch the guest waits on', async () => {
    const channel = createBridge({ capacity: 4096 })
    const seen: string[] = []
    const kept: Uint8Array[] = []
    const kind = (b: Uint8Array | undefined) => (b!.buffer instanceof SharedArrayBuffer ? 'view' : 'copy')
    const svc: ServedService = {
      lend: borrowsBytes((args: string, b: Uint8Array | undefined) => {
        seen.push(`lend ${args} ${kind(b)} ${Array.from(b!).join(',')}`)
      }),
      keep: (args: string, b: Uint8Array | undefined) => {
        seen.push(`keep ${args} ${kind(b)}`)
        kept.push(b!)
      },
      done: () => ({ value: seen.length }),
    }
    const server = new BridgeServer(channel, { svc })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      client.post('svc', 'lend', 'called', new Uint8Array([1, 2, 3]))
      client.post('svc', 'keep', 'called', new Uint8Array([4, 5, 6]))
      client.call('svc', 'done')
      client.post('svc', 'lend', 'flushed', new Uint8Array([7, 8, 9]))
      client.flush()
      // The guest refills the buffer while the flushed batch may still be served.
      client.post('svc', 'keep', 'overwrite', new Uint8Array(512).fill(0xee))
      return client.call('svc', 'done').value
    `,
    )
    expect(await result).toBe(4)
    expect(seen).toEqual(['lend called view 1,2,3', 'keep called copy', 'lend flushed copy 7,8,9', 'keep overwrite copy'])
    // What a handler kept is its own: the guest's later requests did not change it.
    expect(Array.from(kept[0]!)).toEqual([4, 5, 6])
    await server.close()
  })

  it('flush hands posted requests over without waiting; settle waits for them', async () => {
    const channel = createBridge()
    const log: unknown[] = []
    const server = new BridgeServer(channel, { svc: recorder(log) })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      client.post('svc', 'slow', { ms: 150, n: 1 })
      client.flush()
      const t0 = Date.now()
      client.post('svc', 'note', 'after')
      const posted = Date.now() - t0
      client.settle()
      return { postedQuickly: posted < 100 }
    `,
    )
    expect(await result).toEqual({ postedQuickly: true })
    expect(log).toEqual([
      ['slow', 1],
      ['after', null],
    ])
    await server.close()
  })

  it('reports a posted failure: to its outcome callback, else thrown by the next call or settle', async () => {
    const channel = createBridge()
    const log: unknown[] = []
    const server = new BridgeServer(channel, { svc: recorder(log) })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      const out = []
      client.post('svc', 'refuse', { n: 1 }, undefined, (v, e) => out.push(['cb', v ?? null, e?.name, e?.message, e?.errno]))
      client.post('svc', 'value', { n: 21 }, undefined, (v, e) => out.push(['value', v, e ?? null]))
      client.post('svc', 'note', 'ok', undefined, () => out.push(['unexpected']))
      out.push(['call', client.call('svc', 'count').value])
      client.post('svc', 'refuse', { n: 2 })
      try { client.call('svc', 'count'); out.push('no throw') } catch (e) { out.push(['thrown', e.name, e.message, e.errno]) }
      client.post('svc', 'refuse', { n: 3 })
      client.flush()
      try { client.settle(); out.push('no throw') } catch (e) { out.push(['settle', e.message]) }
      client.settle()
      out.push(['after', client.call('svc', 'count').value])
      return out
    `,
    )
    expect(await result).toEqual([
      ['cb', null, 'BridgeCallError', 'refused 1', 64],
      ['value', 42, null],
      ['call', 1],
      ['thrown', 'BridgeCallError', 'refused 2', 64],
      ['settle', 'refused 3'],
      ['after', 1],
    ])
    await server.close()
  })

  it('holds the guest when posted work piles up past the channel (back-pressure), losing nothing', async () => {
    const channel = createBridge({ capacity: 1024 })
    const log: unknown[] = []
    const server = new BridgeServer(channel, { svc: recorder(log) })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      const t0 = Date.now()
      // Each request carries 600 bytes: two cannot share one batch, so each post after the
      // first waits for the one before it to be served (20 ms each).
      for (let i = 0; i < 5; i++) { client.post('svc', 'slow', { ms: 20, n: i }, new Uint8Array(600)) }
      const held = Date.now() - t0
      client.settle()
      return { held: held >= 60 }
    `,
    )
    expect(await result).toEqual({ held: true })
    expect(log).toEqual([0, 1, 2, 3, 4].map((n) => ['slow', n]))
    await server.close()
  })

  it('ends cleanly when the server closes with posted work queued or running', async () => {
    const channel = createBridge()
    const log: unknown[] = []
    let started!: () => void
    const running = new Promise<void>((r) => {
      started = r
    })
    const server = new BridgeServer(channel, {
      svc: {
        ...recorder(log),
        hang: () => {
          started()
          return new Promise<void>(() => {})
        },
      },
    })
    void server.serve()
    const { result } = guestThread(
      channel,
      `
      client.post('svc', 'hang')
      client.flush()
      // Closed at any point from here on, the guest gets BridgeClosedError, never a hang.
      try { client.post('svc', 'note', 'queued'); client.settle(); return 'settled' } catch (e) {
        let again
        try { client.post('svc', 'note', 'x'); client.flush() } catch (e2) { again = e2.name }
        return [e.name, again]
      }
    `,
    )
    await running
    await new Promise((r) => setTimeout(r, 50))
    await server.close()
    expect(await result).toEqual(['BridgeClosedError', 'BridgeClosedError'])
    expect(log).toEqual([])
  })
})
