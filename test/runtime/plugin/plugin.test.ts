import { afterAll, describe, expect, it } from 'vitest'
import { ModuleError, PluginCallError, PluginUnusableError, PolicyError } from '../../../runtime/errors.js'
import { HostInput, plugin, pluginSync, type Plugin } from '../../../runtime/plugin/index.js'

const FIX = new URL('../../fixtures/plugins/', import.meta.url)
const STDIO = new URL('plugin-stdio.wasm', FIX)
const EXTISM = new URL('plugin-extism.wasm', FIX)
const HOST = new URL('plugin-host.wasm', FIX)
const EXTISM_HOST = new URL('plugin-extism-host.wasm', FIX)
const SAMPLES = new URL('../../../samples/plugins/', import.meta.url)
const td = new TextDecoder()
const text = (b: Uint8Array) => td.decode(b)

const open: Plugin[] = []
const track = <T extends Plugin>(p: T): T => {
  open.push(p)
  return p
}
afterAll(async () => {
  await Promise.all(open.map((p) => p.close()))
})

/** The stdio fixture's `transform`: the input reversed, ":" and the sum of its bytes. */
function expectedTransform(input: Uint8Array): string {
  let sum = 0
  for (const b of input) sum += b
  return td.decode(input.slice().reverse()) + `:${sum}`
}

async function failure(p: Promise<unknown> | (() => unknown)): Promise<PluginCallError> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    expect(e).toBeInstanceOf(PluginCallError)
    return e as PluginCallError
  }
  throw new Error('the call did not fail')
}

describe('plugin: loading', () => {
  it('lists the callable exports (no parameters; no result or an i32)', async () => {
    const p = track(await plugin(STDIO, { isolation: 'in-process' }))
    expect(p.exports()).toEqual(expect.arrayContaining(['transform', 'remember', 'trap', 'spin']))
    expect(p.exports()).not.toContain('takes_args')
    expect(p.exports()).not.toContain('_initialize')
    await expect(p.call('takes_args')).rejects.toBeInstanceOf(PolicyError)
    await expect(p.call('nope')).rejects.toThrow(/no callable export "nope"/)
  })

  it('loads a WASI command too: its _start is a stdio export (exit 0 is success)', async () => {
    const p = track(await plugin(new URL('../../../samples/cat.wasm', import.meta.url), { isolation: 'in-process' }))
    expect(p.exports()).toContain('_start')
    expect(text(await p.call('_start', 'one'))).toBe('one')
    expect(text(await p.call('_start', 'two'))).toBe('two')
  })

  it('refuses an ungranted host function import at load, by name', async () => {
    await expect(plugin(HOST, { isolation: 'in-process' })).rejects.toThrow(ModuleError)
    await expect(plugin(HOST, { isolation: 'in-process' })).rejects.toThrow(/app\.lookup \(not granted/)
    // Granting app.lookup is not enough: caplet:http.request needs the HTTP grant.
    await expect(plugin(HOST, { isolation: 'in-process', host: { 'app.lookup': () => 'x' } })).rejects.toThrow(
      /caplet:http\.request \(HTTP is not granted/,
    )
  })

  it('refuses bad options with every problem named', async () => {
    const e = await plugin(STDIO, {
      state: 'sometimes' as never,
      host: { nodot: () => 1 } as never,
      config: { a: 1 as never },
      limits: { fuel: -1 },
    }).catch((x) => x)
    expect(e).toBeInstanceOf(PolicyError)
    expect((e as PolicyError).problems.join('\n')).toMatch(/state/)
    expect((e as PolicyError).problems.join('\n')).toMatch(/host\.nodot/)
    expect((e as PolicyError).problems.join('\n')).toMatch(/config\.a/)
    expect((e as PolicyError).problems.join('\n')).toMatch(/limits\.fuel/)
  })

  it('refuses an async host function in-process with a PolicyError', async () => {
    await expect(
      plugin(HOST, {
        isolation: 'in-process',
        host: { app: { lookup: async () => 'x' } },
        http: { allowedHosts: [] },
      }),
    ).rejects.toThrow(/async host function needs isolation "worker"/)
  })
})

describe('plugin: calls', () => {
  it('answers 10,000 calls with different inputs, each correct (in-process, fresh state)', async () => {
    const p = track(await plugin(STDIO, { isolation: 'in-process', limits: { fuel: 1e7 } }))
    let seed = 12345
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0)
    for (let i = 0; i < 10_000; i++) {
      const input = new Uint8Array(rand() % 200)
      for (let k = 0; k < input.length; k++) input[k] = 32 + (rand() % 95)
      const out = p.callSync('transform', input)
      if (text(out) !== expectedTransform(input)) expect(text(out)).toBe(expectedTransform(input))
    }
  })

  it('inputs past 64 KiB reach the stdio plugin whole (its buffer grows), in-process and in a worker, call after call', async () => {
    const inProcess = track(await plugin(STDIO, { isolation: 'in-process', limits: { memory: '64MiB' } }))
    const worker = track(await plugin(STDIO, { limits: { memory: '64MiB' } }))
    // Growing, then smaller again (the kept buffer is larger than the input), then at the old edge.
    for (const n of [64 * 1024 + 1, 300 * 1024 + 17, 1 << 20, 70_000, 64 * 1024]) {
      const input = new Uint8Array(n)
      for (let k = 0; k < n; k++) input[k] = 33 + ((k * 31 + (k >> 9)) % 90)
      const want = expectedTransform(input)
      expect(text(inProcess.callSync('transform', input)) === want, `${n} bytes in-process`).toBe(true)
      expect(text(await worker.call('transform', input)) === want, `${n} bytes in a worker`).toBe(true)
    }
  })

  it('worker: 1,000 calls with different inputs, and inputs and outputs past the call channel (2 MiB), each correct', async () => {
    const p = track(await plugin(STDIO, { limits: { fuel: 1e9, memory: '64MiB' } }))
    let seed = 777
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0)
    for (let i = 0; i < 1_000; i++) {
      const input = new Uint8Array(rand() % 200)
      for (let k = 0; k < input.length; k++) input[k] = 32 + (rand() % 95)
      const out = await p.call('transform', input, i % 2 === 0 ? { fuel: 1e7 } : undefined)
      if (text(out) !== expectedTransform(input)) expect(text(out)).toBe(expectedTransform(input))
    }
    const cat = track(await plugin(new URL('../../../samples/cat.wasm', import.meta.url), { limits: { memory: '64MiB' } }))
    for (const n of [256 * 1024 - 7, 256 * 1024, 2 << 20]) {
      const big = new Uint8Array(n)
      for (let k = 0; k < n; k++) big[k] = 97 + (k % 26)
      expect(Buffer.from(await cat.call('_start', big)).equals(big)).toBe(true)
    }
    // A per-call fuel above 2^32 crosses intact; a tiny one runs out.
    expect(text(await p.call('transform', 'abc', { fuel: 2 ** 33 + 5 }))).toBe(expectedTransform(new TextEncoder().encode('abc')))
    const e = await failure(p.call('transform', 'abc', { fuel: 1 }))
    expect([e.failure, e.limit]).toEqual(['limit', 'fuel'])
  })

  it('runs the Extism ABI: input, output, config, status, error_set', async () => {
    const p = track(await plugin(EXTISM, { isolation: 'in-process', config: { greeting: 'hello' } }))
    expect(text(await p.call('shift', 'abc'))).toBe('bcd#3')
    expect(text(await p.call('config', 'greeting'))).toBe('hello')
    expect(text(await p.call('config', 'missing'))).toBe('(none)')
    expect(text(await p.call('config', '__proto__'))).toBe('(none)')
    expect(text(await p.call('input_offset_read', 'via offset'))).toBe('via offset')
    const e = await failure(p.call('fail'))
    expect(e.failure).toBe('plugin')
    expect(e.message).toMatch(/the rule rejected the order/)
    expect((await failure(p.call('status3'))).status).toBe(3)
    for (let i = 0; i < 200; i++)
      expect(text(p.callSync('shift', `x${i}`))).toBe(
        `y${String(i)
          .split('')
          .map((c) => String.fromCharCode(c.charCodeAt(0) + 1))
          .join('')}#${1 + String(i).length}`,
      )
  })

  it('runs the samples: stdio upper-casing and Extism vowel counting', async () => {
    const upper = track(await plugin(new URL('stdio-upper.wasm', SAMPLES), { isolation: 'in-process' }))
    expect(text(await upper.call('upper', 'Hello, plugin'))).toBe('HELLO, PLUGIN')
    const vowels = track(await plugin(new URL('extism-vowels.wasm', SAMPLES), { isolation: 'in-process', state: 'keep' }))
    expect(JSON.parse(text(await vowels.call('count_vowels', 'Hello world')))).toEqual({ count: 3, total: 3 })
    expect(JSON.parse(text(await vowels.call('count_vowels', 'aeiou')))).toEqual({ count: 5, total: 8 })
  })

  it('reports a non-zero status and proc_exit code with the plugin stderr', async () => {
    const p = track(await plugin(STDIO, { isolation: 'in-process' }))
    const s = await failure(p.call('status7'))
    expect(s.failure).toBe('plugin')
    expect(s.status).toBe(7)
    expect(s.details.stderr).toMatch(/something went wrong/)
    const x = await failure(p.call('exit3'))
    expect(x.status).toBe(3)
    expect(text(await p.call('transform', 'ok'))).toBe(expectedTransform(new TextEncoder().encode('ok')))
  })

  it('sends logs and stderr to the log option', async () => {
    const logs: string[] = []
    const p = track(await plugin(EXTISM, { isolation: 'in-process', log: (level, m) => logs.push(`${level}:${m}`) }))
    await p.call('log')
    expect(logs).toEqual(['info:hello from the plugin'])
    const w = track(await plugin(EXTISM, { log: (level, m) => logs.push(`${level}:${m}`) }))
    await w.call('log')
    expect(logs).toEqual(['info:hello from the plugin', 'info:hello from the plugin'])
  })
})

describe('plugin: state', () => {
  for (const isolation of ['in-process', 'worker'] as const) {
    it(`fresh: a call cannot see the previous call's data (${isolation})`, async () => {
      const p = track(await plugin(STDIO, { isolation }))
      expect(text(await p.call('remember', 'secret of customer A'))).toBe('|1')
      expect(text(await p.call('remember', 'B'))).toBe('|1')
      const e = track(await plugin(EXTISM, { isolation }))
      expect(text(await e.call('remember', 'secret'))).toBe('')
      expect(text(await e.call('remember', 'x'))).toBe('')
      expect(text(await e.call('counter'))).toBe('1')
      expect(text(await e.call('counter'))).toBe('1')
    })

    it(`keep: calls share state (${isolation})`, async () => {
      const p = track(await plugin(STDIO, { isolation, state: 'keep' }))
      expect(text(await p.call('remember', 'first'))).toBe('|1')
      expect(text(await p.call('remember', 'second'))).toBe('first|2')
      const e = track(await plugin(EXTISM, { isolation, state: 'keep' }))
      expect(text(await e.call('remember', 'kept'))).toBe('')
      expect(text(await e.call('remember', 'x'))).toBe('kept')
      expect(text(await e.call('counter'))).toBe('1')
      expect(text(await e.call('counter'))).toBe('2')
    })
  }

  it('fresh: a call that grew memory is followed by a fresh instance', async () => {
    const p = track(await plugin(STDIO, { isolation: 'in-process' }))
    await p.call('remember', 'left behind')
    expect(text(await p.call('grow'))).toBe('grown')
    expect(text(await p.call('remember', 'y'))).toBe('|1')
  })

  it('fresh: files a call wrote to a tmp mount are gone at the next call; keep sees them', async () => {
    const fresh = track(await plugin(STDIO, { isolation: 'in-process', mounts: [{ guest: '/tmp', tmp: true }] }))
    expect(text(await fresh.call('tmpfile', 'note of A'))).toBe('')
    expect(text(await fresh.call('tmpfile', 'note of B'))).toBe('')
    const keep = track(await plugin(STDIO, { isolation: 'in-process', state: 'keep', mounts: [{ guest: '/tmp', tmp: true }] }))
    expect(text(await keep.call('tmpfile', 'note of A'))).toBe('')
    expect(text(await keep.call('tmpfile', 'note of B'))).toBe('note of A')
  })
})

describe('plugin: failures leave the plugin usable', () => {
  const ok = async (p: Plugin) => expect(text(await p.call('transform', 'ab'))).toBe(expectedTransform(new TextEncoder().encode('ab')))

  for (const isolation of ['in-process', 'worker'] as const) {
    it(`trap, fuel, memory and output limits (${isolation})`, async () => {
      const p = track(await plugin(STDIO, { isolation, limits: { fuel: 2e8, memory: '2MiB', stdout: '100KiB' } }))
      const trap = await failure(p.call('trap'))
      expect(trap.failure).toBe('trap')
      expect(trap.trap?.kind).toBe('unreachable')
      await ok(p)
      const fuel = await failure(p.call('spin'))
      expect([fuel.failure, fuel.limit]).toEqual(['limit', 'fuel'])
      await ok(p)
      const hog = await failure(p.call('hog'))
      expect(hog.failure).toBe('trap') // malloc returned NULL under the 2 MiB cap: abort()
      await ok(p)
      const flood = await failure(p.call('flood'))
      expect([flood.failure, flood.limit]).toEqual(['limit', 'stdout'])
      await ok(p)
      // A per-call fuel budget below what the call needs.
      expect((await failure(p.call('transform', 'x'.repeat(1000), { fuel: 100 }))).limit).toBe('fuel')
      await ok(p)
    })
  }

  it('a timeout stops a worker call, and the next call runs on a fresh worker', async () => {
    const p = track(await plugin(STDIO))
    const e = await failure(p.call('spin', '', { timeout: '200ms' }))
    expect([e.failure, e.limit]).toEqual(['limit', 'timeout'])
    await ok(p)
  })

  it('an abort signal stops a worker call', async () => {
    const p = track(await plugin(STDIO))
    const ac = new AbortController()
    const call = p.call('spin', '', { signal: ac.signal })
    setTimeout(() => ac.abort(new Error('stop')), 100)
    await expect(call).rejects.toThrow('stop')
    await ok(p)
  })

  it('keep: a trap or a timeout leaves the plugin unusable, with a clear error', async () => {
    const p = track(await plugin(STDIO, { isolation: 'in-process', state: 'keep' }))
    await failure(p.call('trap'))
    await expect(p.call('transform', 'x')).rejects.toThrow(PluginUnusableError)
    await expect(p.call('transform', 'x')).rejects.toThrow(/unusable after a failed call: the plugin trapped/)
    const w = track(await plugin(STDIO, { state: 'keep' }))
    await failure(w.call('spin', '', { timeout: '150ms' }))
    await expect(w.call('transform', 'x')).rejects.toThrow(PluginUnusableError)
  })

  it('in-process calls refuse a timeout; closed plugins refuse calls', async () => {
    const p = track(await plugin(STDIO, { isolation: 'in-process' }))
    await expect(p.call('transform', 'x', { timeout: '1s' })).rejects.toThrow(PolicyError)
    await p.close()
    await expect(p.call('transform', 'x')).rejects.toThrow(PluginUnusableError)
    const w = track(await plugin(STDIO))
    await w.close()
    await expect(w.call('transform', 'x')).rejects.toThrow(PluginUnusableError)
  })

  it('closing a worker plugin during a call ends that call with PluginUnusableError', async () => {
    const p = track(await plugin(STDIO))
    const call = p.call('spin').then(
      () => undefined,
      (e: unknown) => e,
    )
    await new Promise((r) => setTimeout(r, 100))
    await p.close()
    expect(await call).toBeInstanceOf(PluginUnusableError)
  })

  it('callSync on a worker plugin runs on this thread', async () => {
    const p = track(await plugin(STDIO))
    expect(text(p.callSync('transform', 'ab'))).toBe(expectedTransform(new TextEncoder().encode('ab')))
    const s = pluginSync(STDIO, {})
    expect(text(s.callSync('remember', 'q'))).toBe('|1')
    await s.close()
  })
})

describe('plugin: host functions', () => {
  for (const isolation of ['in-process', 'worker'] as const) {
    it(`receive checked copies of the plugin's bytes and return bytes (${isolation})`, async () => {
      const seen: unknown[] = []
      const prices: Record<string, number> = { apple: 3, pear: 5 }
      const p = track(
        await plugin(HOST, {
          isolation,
          http: { allowedHosts: [] },
          host: {
            'app.lookup': (sku: HostInput) => {
              seen.push(sku instanceof HostInput, sku.length)
              return { sku: sku.text(), price: prices[sku.text()] ?? null }
            },
          },
        }),
      )
      expect(JSON.parse(text(await p.call('lookup', 'pear')))).toEqual({ sku: 'pear', price: 5 })
      expect(JSON.parse(text(await p.call('lookup', 'kiwi')))).toEqual({ sku: 'kiwi', price: null })
      expect(seen).toEqual([true, 4, true, 4])
      // Output larger than the plugin's buffer: nothing written, the length returned (as snprintf).
      expect(text(await p.call('lookup_small', 'apple'))).toBe(String(JSON.stringify({ sku: 'apple', price: 3 }).length))
      // Invalid UTF-8 from the plugin: text() refuses, the call fails, the host does not.
      const e = await failure(p.call('lookup', new Uint8Array([0xff, 0xfe])))
      expect(e.failure).toBe('host')
      expect(e.message).toMatch(/not valid UTF-8/)
      expect(e.details.hostFunction).toBe('app.lookup')
      expect(JSON.parse(text(await p.call('lookup', 'apple')))).toEqual({ sku: 'apple', price: 3 })
    })
  }

  it('a host function that throws fails the call with its error, not the host', async () => {
    const boom = new Error('pricing service down')
    const p = track(
      await plugin(HOST, {
        isolation: 'in-process',
        http: { allowedHosts: [] },
        host: {
          'app.lookup': () => {
            throw boom
          },
        },
      }),
    )
    const e = await failure(p.call('lookup', 'x'))
    expect(e.failure).toBe('host')
    expect(e.message).toMatch(/host function app\.lookup failed: pricing service down/)
    expect(e.cause).toBe(boom)
    const w = track(
      await plugin(HOST, {
        http: { allowedHosts: [] },
        host: {
          'app.lookup': async () => {
            throw boom
          },
        },
      }),
    )
    expect((await failure(w.call('lookup', 'x'))).message).toMatch(/pricing service down/)
  })

  it('async host functions run on the embedder thread for worker plugins', async () => {
    const p = track(
      await plugin(HOST, {
        http: { allowedHosts: [] },
        host: {
          app: {
            lookup: async (k: HostInput) => {
              await new Promise((r) => setTimeout(r, 5))
              return `async:${k.text()}`
            },
          },
        },
      }),
    )
    for (let i = 0; i < 20; i++) expect(text(await p.call('lookup', `k${i}`))).toBe(`async:k${i}`)
  })

  it('Extism host functions (extism:host/user) take and return blocks', async () => {
    for (const isolation of ['in-process', 'worker'] as const) {
      const p = track(
        await plugin(EXTISM_HOST, { isolation, host: { 'extism:host/user.lookup': (k: HostInput) => k.text().toUpperCase() } }),
      )
      expect(text(await p.call('lookup', 'sku-1'))).toBe('SKU-1')
      const bad = await failure(p.call('lookup_garbage'))
      expect(bad.trap?.kind).toBe('memory-fault')
      expect(text(await p.call('lookup', 'again'))).toBe('AGAIN')
    }
  })
})
