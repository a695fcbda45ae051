/**
 * Adversarial plugins: bad offsets and lengths in every Extism function, huge allocations,
 * floods, invalid UTF-8, host functions returning garbage, modules importing what they may not.
 * Each must fail only the call (a trap or a clear error), leave the host up, and leave the
 * plugin usable for the next call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModuleError, PluginCallError } from '../../runtime/errors.js'
import { plugin, type Plugin } from '../../runtime/plugin/index.js'

const FIX = new URL('../fixtures/plugins/', import.meta.url)
const td = new TextDecoder()
let p: Plugin
const opened: Plugin[] = []

beforeAll(async () => {
  p = await plugin(new URL('plugin-extism.wasm', FIX), {
    isolation: 'in-process',
    limits: { memory: '8MiB', fuel: 1e9 },
    maxVarBytes: '64KiB',
  })
  opened.push(p)
})
afterAll(async () => {
  await Promise.all(opened.map((x) => x.close()))
})

async function fails(name: string, input = ''): Promise<PluginCallError> {
  const e = await p.call(name, input).then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(e, `${name} should fail`).toBeInstanceOf(PluginCallError)
  // And the plugin answers the next call correctly.
  expect(td.decode(await p.call('shift', 'ok'))).toBe('pl#2')
  return e as PluginCallError
}

describe('Extism ABI: every bad offset traps the call as a memory fault', () => {
  const cases: [string, RegExp][] = [
    ['load_unallocated', /load_u8/],
    ['load_negative', /load_u64/],
    ['load_past_block', /load_u64/],
    ['store_freed', /store_u8/],
    ['store_zero', /store_u64/],
    ['input_past_end', /input_load_u64/],
    ['input_negative', /input_load_u8/],
    ['output_oob', /output_set/],
    ['output_unallocated', /output_set/],
    ['error_unallocated', /error_set/],
    ['config_bad_key', /config_get/],
    ['log_bad', /log_info/],
  ]
  for (const [name, fn] of cases) {
    it(name, async () => {
      const e = await fails(name, 'some input')
      expect(e.failure).toBe('trap')
      expect(e.trap?.kind).toBe('memory-fault')
      expect(e.trap?.syscall).toMatch(fn)
    })
  }
})

describe('Extism ABI: resource floods are bounded', () => {
  it('a huge alloc returns 0 (no host allocation)', async () => {
    expect(td.decode(await p.call('huge_alloc'))).toBe('0 0')
  })

  it('allocating until full stops at the memory limit', async () => {
    const blocks = Number(td.decode(await p.call('alloc_until_full')))
    expect(blocks).toBeGreaterThan(0)
    expect(blocks).toBeLessThanOrEqual(8)
  })

  it('an output_set larger than the output limit is a limit, not an allocation', async () => {
    const e = await fails('output_huge')
    expect([e.failure, e.limit]).toEqual(['limit', 'stdout'])
  })

  it('var_set floods stop at maxVarBytes', async () => {
    const e = await fails('var_flood')
    expect([e.failure, e.limit]).toEqual(['limit', 'vars'])
  })

  it('length() of garbage offsets is 0', async () => {
    expect(td.decode(await p.call('length_of_garbage'))).toBe('0 0 0')
  })
})

describe('Extism ABI: strings from the plugin are validated', () => {
  it('error_set with invalid UTF-8 still fails the call, with a safe message', async () => {
    const e = await fails('error_bad_utf8')
    expect(e.failure).toBe('plugin')
    expect(e.message).toMatch(/not valid UTF-8/)
  })

  it('var_set with an invalid UTF-8 key fails the call', async () => {
    const e = await fails('var_bad_utf8')
    expect(e.message).toMatch(/not valid UTF-8/)
  })

  it('http_request with a malformed request fails the call without any request', async () => {
    const e = await fails('http_bad_json')
    expect(e.message).toMatch(/not JSON|not granted/)
  })
})

describe('host functions', () => {
  const HOST = new URL('plugin-host.wasm', FIX)
  const garbage: [string, () => unknown][] = [
    ['a function', () => () => 1],
    ['a symbol', () => Symbol('x')],
    ['a bigint', () => 10n],
    [
      'a cyclic object',
      () => {
        const o: Record<string, unknown> = {}
        o.self = o
        return o
      },
    ],
    ['a Promise (in-process)', () => Promise.reject(new Error('never awaited'))],
    [
      'an object whose toJSON throws',
      () => ({
        toJSON() {
          throw new Error('no')
        },
      }),
    ],
  ]
  for (const [what, make] of garbage) {
    it(`returning ${what} fails the call, not the host`, async () => {
      const h = await plugin(HOST, { isolation: 'in-process', http: { allowedHosts: [] }, host: { 'app.lookup': make as never } })
      opened.push(h)
      const e = await h.call('lookup', 'x').catch((x: unknown) => x)
      expect(e).toBeInstanceOf(PluginCallError)
      expect((e as PluginCallError).failure).toBe('host')
    })
  }

  it('returning garbage from a worker plugin fails the call too', async () => {
    const h = await plugin(HOST, { http: { allowedHosts: [] }, host: { 'app.lookup': (() => Symbol('x')) as never } })
    opened.push(h)
    const e = await h.call('lookup', 'x').catch((x: unknown) => x)
    expect(e).toBeInstanceOf(PluginCallError)
    expect((e as PluginCallError).message).toMatch(/app\.lookup/)
  })

  it('bad pointers and wrapping lengths passed to a host function trap before it runs', async () => {
    let called = 0
    const h = await plugin(HOST, {
      isolation: 'in-process',
      http: { allowedHosts: [] },
      host: {
        'app.lookup': () => {
          called++
          return 'x'
        },
      },
    })
    opened.push(h)
    for (const name of ['lookup_bad_in', 'lookup_bad_out', 'lookup_wrap']) {
      const e = await h.call(name).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(PluginCallError)
      expect((e as PluginCallError).trap?.kind).toBe('memory-fault')
      expect((e as PluginCallError).trap?.syscall).toBe('app.lookup')
    }
    expect(called).toBe(0)
    expect(td.decode(await h.call('lookup', 'k'))).toBe('x')
    expect(called).toBe(1)
  })

  it('a host function gets a copy: changing it changes nothing in the plugin', async () => {
    let kept: Uint8Array | undefined
    const h = await plugin(HOST, {
      isolation: 'in-process',
      http: { allowedHosts: [] },
      host: {
        'app.lookup': (i) => {
          kept = i.bytes
          kept.fill(0)
          return i.text()
        },
      },
    })
    opened.push(h)
    expect(td.decode(await h.call('lookup', 'abc'))).toBe('abc')
    expect(kept).toEqual(new Uint8Array(3))
  })
})

describe('modules that import what they may not', () => {
  /** A module with one import and an exported memory, written by hand. */
  function moduleImporting(mod: string, field: string, kind: 'func' | 'memory' | 'global'): Uint8Array<ArrayBuffer> {
    const enc = new TextEncoder()
    const str = (s: string) => [enc.encode(s).length, ...enc.encode(s)]
    const desc = kind === 'func' ? [0x00, 0x00] : kind === 'memory' ? [0x02, 0x00, 0x01] : [0x03, 0x7f, 0x00]
    const imp = [0x01, ...str(mod), ...str(field), ...desc]
    const sections = [
      [0x01, 4, 0x01, 0x60, 0x00, 0x00], // type: () -> ()
      [0x02, imp.length, ...imp],
    ]
    if (kind !== 'memory') sections.push([0x05, 3, 0x01, 0x00, 0x01]) // memory 1
    const memIndex = 0
    const exp = [0x01, ...str('memory'), 0x02, memIndex]
    sections.push([0x07, exp.length, ...exp])
    return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()])
  }

  it('refuses ungranted functions, unknown Extism functions, memories and globals, by name', async () => {
    await expect(plugin(moduleImporting('env', 'system', 'func'), { isolation: 'in-process' })).rejects.toThrow(/env\.system \(not granted/)
    await expect(plugin(moduleImporting('extism:host/env', 'exec', 'func'), { isolation: 'in-process' })).rejects.toThrow(
      /extism:host\/env\.exec \(not an Extism function/,
    )
    await expect(plugin(moduleImporting('extism:host/env', 'alloc', 'func'), { isolation: 'in-process' })).rejects.toThrow(
      /declared \(\) -> \(\), Extism's is \(i64\) -> \(i64\)/,
    )
    await expect(plugin(moduleImporting('env', 'memory', 'memory'), { isolation: 'in-process' })).rejects.toThrow(ModuleError)
    await expect(plugin(moduleImporting('env', 'g', 'global'), { isolation: 'in-process' })).rejects.toThrow(/env\.g \(global/)
    await expect(
      plugin(moduleImporting('app', 'lookup', 'func'), { isolation: 'in-process', host: { 'app.lookup': () => 1 } }),
    ).rejects.toThrow(/a host function takes \(i32 ptr/)
  })

  it('refuses bytes that are not a module, and a compiled module', async () => {
    await expect(plugin(new Uint8Array([1, 2, 3]), { isolation: 'in-process' })).rejects.toThrow(ModuleError)
    await expect(plugin(new WebAssembly.Module(moduleImporting('env', 'x', 'func')) as never, { isolation: 'in-process' })).rejects.toThrow(
      /needs its module bytes/,
    )
  })
})
