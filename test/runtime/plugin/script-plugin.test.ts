/**
 * JavaScript plugins (`scriptPlugin`) with what `plugin()` offers: `callSync`, host functions
 * granted by name (sync in-process; sync or async in a worker), the same options and errors.
 * Adversarial: a script that tries to keep data across fresh calls, to call (and catch) an
 * ungranted host function, to loop forever under a timeout; host functions that throw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PluginCallError, PolicyError } from '../../../runtime/errors.js'
import { compileScript, type ScriptProgram } from '../../../runtime/index.js'
import { scriptPlugin, type HostInput, type Plugin } from '../../../runtime/plugin/index.js'

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
