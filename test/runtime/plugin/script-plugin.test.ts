/**
 * JavaScript plugins (`scriptPlugin`) with what `plugin()` offers: `callSync`, host functions
 * granted by name (sync in-process; sync or async in a worker), the same options and errors.
 * Adversarial: a script that tries to keep data across fresh calls, to call (and catch) an
 * ungranted host function, to loop forever under a timeout; host functions that throw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PluginCallError, PluginUnusableError, PolicyError } from '../../../runtime/errors.js'
import { compileScript, type ScriptProgram } from '../../../runtime/index.js'
import { scriptPlugin, type HostInput, type Plugin } from '../../../runtime/plugin/index.js'
import { MAX_KEPT_TOP_LEVEL_CALLS } from '../../../runtime/plugin/script-plugin.js'

const SOURCE = `
const input = stdin
switch (args[0]) {
  case 'price':
    console.log('price:' + callHost('app.price', input, 'utf8'))
    break
  case 'bytes':
    console.log(Array.from(callHost('app.bytes', input)).join(','))
    break
  case 'remember': {
    const g = globalThis as { seen?: string }
    console.log(JSON.stringify({ seen: g.seen ?? null }))
    g.seen = input
    break
  }
  case 'sneak':
    try {
      callHost('app.nope', 'data')
    } catch {
      console.log('caught')
    }
    console.log('after')
    break
  case 'spin':
    for (;;) {}
}
`
const EXPORTS = ['price', 'bytes', 'remember', 'sneak', 'spin']
const text = (b: Uint8Array) => new TextDecoder().decode(b)
let program: ScriptProgram
const opened: Plugin[] = []
const load = async (options: Parameters<typeof scriptPlugin>[1]) => {
  const p = await scriptPlugin(program, { exports: EXPORTS, limits: { fuel: 1e9 }, ...options })
  opened.push(p)
  return p
}
const failure = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(e).toBeInstanceOf(PluginCallError)
  return e as PluginCallError
}
const prices: Record<string, string> = { pen: '1.25', ink: '4' }
const host = {
  app: {
    price: (sku: HostInput) => prices[sku.text()] ?? 'none',
    bytes: (b: HostInput) => new Uint8Array([b.length, 0, 255]),
    boom: () => {
      throw new Error('the price service is down')
    },
  },
}

beforeAll(async () => {
  const r = await compileScript({ files: { 'plugin.ts': SOURCE }, entry: 'plugin.ts' })
  if (r.program === undefined) throw new Error(JSON.stringify(r.diagnostics))
  program = r.program
}, 60_000)
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()))
})

describe.each(['in-process', 'worker'] as const)('scriptPlugin (%s)', (isolation) => {
  it('calls granted host functions (text and bytes), with call and callSync alike', async () => {
    const p = await load({ isolation, host })
    expect(text(await p.call('price', 'pen'))).toBe('price:1.25\n')
    expect(text(p.callSync('price', 'ink'))).toBe('price:4\n')
    expect(text(await p.call('bytes', 'abc'))).toBe('3,0,255\n')
    expect(text(p.callSync('bytes', new Uint8Array([1, 2])))).toBe('2,0,255\n')
  }, 60_000)

  it('fresh state: a script cannot keep data across calls (globalThis), with call or callSync', async () => {
    const p = await load({ isolation })
    for (let i = 0; i < 3; i++) {
      expect(JSON.parse(text(await p.call('remember', `secret-${i}`)))).toEqual({ seen: null })
      expect(JSON.parse(text(p.callSync('remember', `sync-secret-${i}`)))).toEqual({ seen: null })
    }
  }, 60_000)

  it('fresh state, loaded from bytecode: module variables, closures on builtins, jobs, WeakRefs and Math.random start anew', async () => {
    // Each way a program might carry one call's input into the next: every call must see none of them.
    const src = `
      let calls = 0
      calls++
      const g = globalThis as Record<string, any>
      const proto = Array.prototype as unknown as Record<string, () => string>
      const stashed = typeof proto.stash === 'function' ? proto.stash() : null
      const input = stdin
      proto.stash = () => input
      const late = g.late ?? null
      const ref = g.ref instanceof WeakRef ? (g.ref.deref()?.input ?? 'collected') : null
      const held = { input }
      g.ref = new WeakRef(held)
      g.keep = held
      const random = Math.random()
      Math.random = () => 0.5
      Promise.resolve().then(() => { g.late = input })
      await null
      console.log(JSON.stringify({ calls, stashed, late, ref, random: typeof random, uniform: random === 0.5 }))
    `
    const compiled = await compileScript({ files: { 'stash.ts': src }, entry: 'stash.ts' })
    const p = await scriptPlugin(compiled.program!, { isolation, limits: { fuel: 1e9 } })
    opened.push(p)
    const clean = { calls: 1, stashed: null, late: null, ref: null, random: 'number', uniform: false }
    for (let i = 0; i < 4; i++) {
      expect(JSON.parse(text(await p.call('main', `secret-${i}`)))).toEqual(clean)
      expect(JSON.parse(text(p.callSync('main', `sync-secret-${i}`)))).toEqual(clean)
    }
  }, 60_000)

  it('bytecode is per program: two programs under one file name run their own code; an uncaught error keeps its source line', async () => {
    const one = await compileScript({ files: { 'same.ts': "console.log('one')" }, entry: 'same.ts' })
    const two = await compileScript({ files: { 'same.ts': "console.log('two')\nthrow new Error('bad order')" }, entry: 'same.ts' })
    const a = await scriptPlugin(one.program!, { isolation })
    const b = await scriptPlugin(two.program!, { isolation })
    opened.push(a, b)
    for (let i = 0; i < 2; i++) {
      expect(text(await a.call('main'))).toBe('one\n')
      const e = await failure(b.call('main'))
      expect(e.failure).toBe('plugin')
      expect(e.details.stderr).toMatch(/Error: bad order[\s\S]*same\.ts:2/)
    }
  }, 60_000)

  it('a program that does not parse (hand-made, not from compileScript) fails every call with its SyntaxError', async () => {
    const p = await scriptPlugin({ ...program, code: 'const x = ;\nconsole.log(x)' }, { isolation })
    opened.push(p)
    for (let i = 0; i < 2; i++) {
      const e = await failure(p.call('main', 'x'))
      expect(e.failure).toBe('plugin')
      expect(e.details.stderr).toMatch(/SyntaxError/)
    }
  }, 60_000)

  it('an ungranted host function fails the call (the script cannot catch it); the next call works', async () => {
    for (const p of [await load({ isolation, host }), await load({ isolation })]) {
      const e = await failure(p.call('sneak'))
      expect(e.failure).toBe('host')
      expect(e.message).toMatch(/no host function app\.nope was granted/)
      expect(e.details.hostFunction).toBeUndefined()
      expect(() => p.callSync('sneak')).toThrow(/no host function app\.nope was granted/)
      expect(text(await p.call('remember', 'x'))).toBe('{"seen":null}\n')
    }
  }, 60_000)

  it('a host function that throws fails the call with its message, naming it', async () => {
    const src = await compileScript({ files: { 'boom.ts': "callHost('app.boom', stdin)\nconsole.log('unreachable')" }, entry: 'boom.ts' })
    const p = await scriptPlugin(src.program!, { isolation, host })
    opened.push(p)
    const e = await failure(p.call('main', 'x'))
    expect([e.failure, e.details.hostFunction]).toEqual(['host', 'app.boom'])
    expect(e.message).toMatch(/host function app\.boom failed: the price service is down/)
  }, 60_000)
})

describe('scriptPlugin: the same refusals and limits as plugin()', () => {
  it('a script looping forever is stopped by the call timeout (worker); the plugin answers the next call', async () => {
    const p = await load({ isolation: 'worker', limits: {} })
    const e = await failure(p.call('spin', '', { timeout: '200ms' }))
    expect([e.failure, e.limit]).toEqual(['limit', 'timeout'])
    expect(text(await p.call('remember', 'x'))).toBe('{"seen":null}\n')
  }, 60_000)

  it('callSync refuses a timeout and async host functions; in-process refuses async host functions at load', async () => {
    const p = await load({ isolation: 'worker', host: { app: { price: async () => '1' } } })
    expect(() => p.callSync('spin', '', { timeout: '1s' })).toThrow(PolicyError)
    expect(() => p.callSync('spin', '', { timeout: '1s' })).toThrow(/callSync runs on this thread/)
    expect(() => p.callSync('price', 'pen')).toThrow(/cannot wait for the async host functions app\.price/)
    // In a worker the async host function is awaited on this thread.
    expect(text(await p.call('price', 'pen'))).toBe('price:1\n')
    await expect(scriptPlugin(program, { isolation: 'in-process', host: { app: { price: async () => '1' } } })).rejects.toThrow(
      /host\.app\.price: an async host function needs isolation "worker"/,
    )
    await expect(scriptPlugin(program, { host: { price: () => '1' } as never })).rejects.toThrow(/host\.price: name it "module\.field"/)
  }, 60_000)

  it('fuel stops a looping script in callSync; the next call works', async () => {
    const p = await load({ isolation: 'in-process' })
    const e = (() => {
      try {
        p.callSync('spin', '', { fuel: 1_000_000 })
      } catch (x) {
        return x as PluginCallError
      }
      throw new Error('the call returned')
    })()
    expect([e.failure, e.limit]).toEqual(['limit', 'fuel'])
    expect(text(p.callSync('remember', 'y'))).toBe('{"seen":null}\n')
  }, 60_000)
})

describe("scriptPlugin state: 'keep' (in-process)", () => {
  it('calls share the instance: what one call left on globalThis, the next sees; each reads its own input', async () => {
    const p = await load({ isolation: 'in-process', state: 'keep' })
    expect(text(await p.call('remember', 'first'))).toBe('{"seen":null}\n')
    expect(text(p.callSync('remember', 'second'))).toBe('{"seen":"first"}\n')
    expect(text(await p.call('remember', 'third'))).toBe('{"seen":"second"}\n')
    // A call of another export reads its own args.
    const priced = await load({ isolation: 'in-process', state: 'keep', host })
    expect(text(await priced.call('remember', 'pen'))).toBe('{"seen":null}\n')
    expect(text(await priced.call('price', 'ink'))).toBe('price:4\n')
    expect(text(await priced.call('remember', 'x'))).toBe('{"seen":"pen"}\n')
  }, 60_000)

  it('no other plugin sees a kept instance: two keep plugins, and fresh ones of the same program, stay apart', async () => {
    const a = await load({ isolation: 'in-process', state: 'keep' })
    const b = await load({ isolation: 'in-process', state: 'keep' })
    const fresh = await load({ isolation: 'in-process' })
    await a.call('remember', 'a-secret')
    expect(text(await b.call('remember', 'b-secret'))).toBe('{"seen":null}\n')
    for (let i = 0; i < 3; i++) expect(text(await fresh.call('remember', 'f'))).toBe('{"seen":null}\n')
    expect(text(await a.call('remember', 'x'))).toBe('{"seen":"a-secret"}\n')
    await a.close()
    expect(text(await fresh.call('remember', 'f'))).toBe('{"seen":null}\n')
  }, 60_000)

  it('a limit leaves a keep plugin unusable, with a clear error; keep needs in-process', async () => {
    const p = await load({ isolation: 'in-process', state: 'keep' })
    await p.call('remember', 'state')
    const e = await failure(p.call('spin', '', { fuel: 1_000_000 }))
    expect([e.failure, e.limit]).toEqual(['limit', 'fuel'])
    await expect(p.call('remember', 'x')).rejects.toThrow(/state: 'keep'\) is unusable after a failed call: limit exceeded: fuel/)
    expect(() => p.callSync('remember', 'x')).toThrow(/is unusable/)
    // A host failure unwinds the engine mid-call: its state cannot be trusted either.
    const q = await load({ isolation: 'in-process', state: 'keep' })
    expect((await failure(q.call('sneak'))).failure).toBe('host')
    await expect(q.call('remember', 'x')).rejects.toThrow(/is unusable after a failed call: no host function app\.nope was granted/)
    await expect(scriptPlugin(program, { exports: EXPORTS, state: 'keep' })).rejects.toThrow(/'keep' needs isolation 'in-process'/)
    await expect(scriptPlugin(program, { exports: EXPORTS, state: 'sticky' as never, isolation: 'in-process' })).rejects.toThrow(
      /state: must be "fresh" or "keep"/,
    )
  }, 60_000)
})

/** The export convention: a module exporting functions, evaluated once; each call runs one export. */
const MODULE = `
const atLoad = { stdin, args: [...args], random: Math.random() }
const counted = globalThis as { evaluations?: number }
counted.evaluations = (counted.evaluations ?? 0) + 1
export const evaluations = () => counted.evaluations
console.log('printed by the top level')
let calls = 0
let last: string | null = null
const jobs: string[] = []
let stash: (() => string) | undefined
export function total(input: string) {
  calls++
  const o = JSON.parse(input) as { a: number; b: number }
  return { sum: o.a + o.b, calls }
}
export function remember(input: string) {
  const g = globalThis as { seen?: string }
  const proto = Array.prototype as unknown as { leak?: string }
  const seen = { module: last, global: g.seen ?? null, closure: stash?.() ?? null, proto: proto.leak ?? null, jobs: [...jobs], calls }
  last = input
  g.seen = input
  stash = () => input
  proto.leak = input
  void Promise.resolve().then(() => jobs.push(input))
  calls++
  return seen
}
export const kind = (x: unknown) => (x instanceof Uint8Array ? 'bytes:' + x.length : typeof x + ':' + String(x))
export const invert = (b: Uint8Array) => b.map((x) => x ^ 255)
export function nothing() {}
export function boom(input: string) {
  throw new Error('bad input: ' + input)
}
export async function later(s: string) {
  await null
  return s + '!'
}
export const random = () => Math.random()
export const loaded = () => atLoad
const xAtLoad = env.X ?? null
export const envX = () => ({ load: xAtLoad, now: env.X ?? null })
export const VERSION = '1.0'
`
const FUNCTIONS = ['boom', 'envX', 'evaluations', 'invert', 'kind', 'later', 'loaded', 'nothing', 'random', 'remember', 'total']
let exporting: ScriptProgram
beforeAll(async () => {
  const r = await compileScript({ files: { 'module.ts': MODULE }, entry: 'module.ts' })
  if (r.program === undefined) throw new Error(JSON.stringify(r.diagnostics))
  exporting = r.program
}, 60_000)
const loadExporting = async (options: Parameters<typeof scriptPlugin>[1]) => {
  const p = await scriptPlugin(exporting, { limits: { fuel: 1e8 }, ...options })
  opened.push(p)
  return p
}

describe.each(['in-process', 'worker'] as const)('scriptPlugin, exported functions (%s)', (isolation) => {
  it('lists the exported functions; calls one with each input, many times, each answer from the evaluated module', async () => {
    const p = await loadExporting({ isolation })
    expect(p.exports().sort()).toEqual(FUNCTIONS)
    const many = Array.from({ length: 300 }, (_, i) => i)
    for (const i of many) {
      const input = JSON.stringify({ a: i, b: 2 * i + 1 })
      const out = isolation === 'in-process' && i % 2 === 1 ? p.callSync('total', input) : await p.call('total', input)
      // calls: 1 every time: each call starts from the module as evaluated (calls = 0).
      expect(text(out)).toBe(`{"sum":${3 * i + 1},"calls":1}`)
    }
    // Several at once (several workers, each evaluating the module on its first call).
    const outs = await Promise.all(many.slice(0, 8).map((i) => p.call('total', `{"a":${i},"b":0}`)))
    expect(outs.map(text)).toEqual(many.slice(0, 8).map((i) => `{"sum":${i},"calls":1}`))
  }, 60_000)

  it('the input arrives as the caller gave it (text or bytes); the return value is text, bytes, JSON, nothing, or awaited', async () => {
    const p = await loadExporting({ isolation })
    expect(text(await p.call('kind', 'héllo'))).toBe('string:héllo')
    expect(text(await p.call('kind', new Uint8Array([1, 2, 3])))).toBe('bytes:3')
    expect(text(await p.call('kind'))).toBe('string:')
    expect([...(await p.call('invert', new Uint8Array([0, 1, 255])))]).toEqual([255, 254, 0])
    expect((await p.call('nothing', 'x')).byteLength).toBe(0)
    expect(text(await p.call('later', 'soon'))).toBe('soon!')
  }, 60_000)

  it('fresh: no call sees an earlier one through module variables, globals, closures, prototypes or promise jobs', async () => {
    const p = await loadExporting({ isolation })
    const blank = '{"module":null,"global":null,"closure":null,"proto":null,"jobs":[],"calls":0}'
    for (let i = 0; i < 3; i++) expect(text(await p.call('evaluations'))).toBe('1')
    for (const secret of ['first-secret', 'second-secret', 'third']) {
      expect(text(await p.call('remember', secret))).toBe(blank)
      if (isolation === 'in-process') expect(text(p.callSync('remember', secret))).toBe(blank)
    }
  }, 60_000)

  it('the module is evaluated without any call: its top level sees no input or args, prints nothing into outputs, reaches no host function', async () => {
    const p = await loadExporting({ isolation, host })
    const outs = await Promise.all(Array.from({ length: 6 }, (_, i) => p.call('loaded', `secret-${i}`)))
    for (const o of outs) expect(JSON.parse(text(o))).toMatchObject({ stdin: '', args: [] })
    // Math.random is reseeded per call, even though the top level drew from it before the snapshot.
    const draws = await Promise.all(Array.from({ length: 5 }, () => p.call('random')))
    expect(new Set(draws.map(text)).size).toBe(5)
    // A top level that calls a host function does not load.
    const r = await compileScript({ files: { 'h.ts': "callHost('app.price', 'pen')\nexport const f = () => 1" }, entry: 'h.ts' })
    await expect(scriptPlugin(r.program!, { isolation, host })).rejects.toThrow(/host functions are for calls/)
  }, 60_000)

  it('each plugin has its own snapshot: two plugins of one program under different env stay apart', async () => {
    const a = await loadExporting({ isolation, env: { X: 'a' } })
    const b = await loadExporting({ isolation, env: { X: 'b' } })
    for (let i = 0; i < 4; i++) {
      expect(text(await a.call('envX'))).toBe('{"load":"a","now":"a"}')
      expect(text(await b.call('envX'))).toBe('{"load":"b","now":"b"}')
    }
    // More plugins than a thread keeps snapshots of (4 per engine): the evicted ones evaluate again, still without the call's input.
    const more = await Promise.all(['c', 'd', 'e', 'f', 'g'].map((X) => loadExporting({ isolation, env: { X } })))
    for (const [i, p] of [a, b, ...more].entries()) {
      const X = 'abcdefg'[i]!
      expect(text(await p.call('envX'))).toBe(`{"load":"${X}","now":"${X}"}`)
      expect(JSON.parse(text(await p.call('loaded', `secret-${X}`)))).toMatchObject({ stdin: '', args: [] })
    }
  }, 60_000)

  it('a name that is not an exported function is refused; a throwing export fails its call with the message, the next call works', async () => {
    const p = await loadExporting({ isolation })
    for (const name of ['VERSION', 'nope', 'toString', '__proto__', 'default', ''])
      await expect(p.call(name, 'x')).rejects.toThrow(/has no callable export/)
    const e = await failure(p.call('boom', 'q1'))
    expect(e.failure).toBe('plugin')
    expect(e.message).toMatch(/Uncaught Error: bad input: q1/)
    expect(e.details.stderr).toMatch(/module\.ts:\d+/)
    expect(text(await p.call('total', '{"a":1,"b":1}'))).toBe('{"sum":2,"calls":1}')
    await expect(loadExporting({ isolation, exports: ['total', 'VERSION'] })).rejects.toThrow(
      /exports: the module exports no function VERSION/,
    )
    expect((await loadExporting({ isolation, exports: ['total'] })).exports()).toEqual(['total'])
  }, 60_000)

  it('a module whose top level throws does not load; fuel stops a looping export and the next call works', async () => {
    const bad = await compileScript({ files: { 'b.ts': "throw new Error('no config')\nexport const f = () => 1" }, entry: 'b.ts' })
    await expect(scriptPlugin(bad.program!, { isolation })).rejects.toThrow(/Uncaught Error: no config/)
    const spin = await compileScript({
      files: { 's.ts': 'export function spin() { for (;;) {} }\nexport const ok = () => "ok"' },
      entry: 's.ts',
    })
    const p = await scriptPlugin(spin.program!, { isolation, limits: { fuel: 1e7 } })
    opened.push(p)
    expect((await failure(p.call('spin'))).limit).toBe('fuel')
    expect(text(await p.call('ok'))).toBe('ok')
  }, 60_000)
})

describe("scriptPlugin, exported functions, state: 'keep' (in-process)", () => {
  it('calls share the evaluated module: module variables, globals, closures, prototypes and jobs carry over', async () => {
    const p = await loadExporting({ isolation: 'in-process', state: 'keep' })
    expect(JSON.parse(text(await p.call('remember', 'one')))).toEqual({
      module: null,
      global: null,
      closure: null,
      proto: null,
      jobs: [],
      calls: 0,
    })
    expect(JSON.parse(text(p.callSync('remember', 'two')))).toEqual({
      module: 'one',
      global: 'one',
      closure: 'one',
      proto: 'one',
      jobs: ['one'],
      calls: 1,
    })
    // A throwing export is a failed call; the kept module goes on.
    expect((await failure(p.call('boom', 'z'))).message).toMatch(/bad input: z/)
    expect(JSON.parse(text(await p.call('remember', 'three')))).toMatchObject({ module: 'two', calls: 2 })
    // Evaluated once, at load: the kept instance starts from that evaluation.
    expect(text(await p.call('evaluations'))).toBe('1')
    const other = await loadExporting({ isolation: 'in-process', state: 'keep' })
    expect(JSON.parse(text(await other.call('remember', 'x')))).toMatchObject({ module: null, calls: 0 })
  }, 60_000)

  it('20,000 calls under a 16 MiB memory limit, each correct (the module is never evaluated again)', async () => {
    const p = await loadExporting({ isolation: 'in-process', state: 'keep', limits: { fuel: 1e7, memory: '16MiB' } })
    for (let i = 1; i <= 20_000; i++) {
      const out = text(p.callSync('total', `{"a":${i},"b":${i}}`))
      if (out !== `{"sum":${2 * i},"calls":${i}}`) expect(out).toBe(`{"sum":${2 * i},"calls":${i}}`)
    }
  }, 120_000)
})

describe("scriptPlugin, the top-level convention, state: 'keep'", () => {
  it(`stops with a clear error after ${MAX_KEPT_TOP_LEVEL_CALLS} calls (each evaluates a module the engine keeps)`, async () => {
    const p = await load({ isolation: 'in-process', state: 'keep' })
    for (let i = 0; i < MAX_KEPT_TOP_LEVEL_CALLS; i++) p.callSync('remember', String(i))
    expect(() => p.callSync('remember', 'x')).toThrow(PluginUnusableError)
    await expect(p.call('remember', 'x')).rejects.toThrow(/made its 1000 calls.*export functions/)
  }, 120_000)
})

describe.each(['in-process', 'worker'] as const)('scriptPlugin, exported functions, hostile returns (%s)', (isolation) => {
  it('a forged result (a replaced instanceof or JSON.stringify), or a promise that never settles, fails only that call', async () => {
    const src = `
export function forge() {
  Object.defineProperty(Uint8Array, Symbol.hasInstance, { value: () => true })
  return { length: 5, byteLength: 1e9, 0: 1 }
}
export function json() {
  JSON.stringify = (() => ({ not: 'text' })) as never
  return { a: 1 }
}
export const never = () => new Promise(() => {})
export const ok = (s: string) => ({ ok: s, forged: Uint8Array[Symbol.hasInstance] !== Function.prototype[Symbol.hasInstance] })
`
    const r = await compileScript({ files: { 'hostile.ts': src }, entry: 'hostile.ts' })
    const p = await scriptPlugin(r.program!, { isolation, limits: { fuel: 1e8 } })
    opened.push(p)
    expect((await failure(p.call('forge'))).message).toMatch(/neither text, bytes nor JSON/)
    expect((await failure(p.call('json'))).message).toMatch(/TypeError: the exported function returned object/)
    expect((await failure(p.call('never'))).message).toMatch(/exited with code 13: caplet: the promise never settled/)
    // Fresh: the next call has the builtins as they were.
    expect(text(await p.call('ok', 'y'))).toBe('{"ok":"y","forged":false}')
  }, 60_000)
})

describe.each(['in-process', 'worker'] as const)('scriptPlugin, exported functions with host functions (%s)', (isolation) => {
  it('an export calls granted host functions; an ungranted one fails the call (uncatchable), the next call works', async () => {
    const src = `
export const price = (sku: string) => 'price:' + callHost('app.price', sku, 'utf8')
export const bytes = (b: Uint8Array) => callHost('app.bytes', b)
export function sneak() {
  try {
    callHost('app.nope', 'data')
  } catch {
    return 'caught'
  }
  return 'after'
}
`
    const r = await compileScript({ files: { 'hosted.ts': src }, entry: 'hosted.ts' })
    const p = await scriptPlugin(r.program!, { isolation, host, limits: { fuel: 1e8 } })
    opened.push(p)
    expect(text(await p.call('price', 'pen'))).toBe('price:1.25')
    expect([...(await p.call('bytes', new Uint8Array([7, 7])))]).toEqual([2, 0, 255])
    const e = await failure(p.call('sneak'))
    expect([e.failure, e.message]).toEqual(['host', expect.stringMatching(/no host function app\.nope was granted/)])
    expect(text(await p.call('price', 'ink'))).toBe('price:4')
  }, 60_000)
})
