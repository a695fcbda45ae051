/**
 * @module Escape and abuse tests for JavaScript/TypeScript guests: the script runs inside
 * QuickJS on caplet's own WASI host, so it must find none of the host's JavaScript world
 * (`process`, `require`, `fetch`, host `WebAssembly`, host `globalThis`, host modules through
 * `import()`), reach no file outside its mounts (`..`, absolute paths, symlinks out: canaries
 * stay unread and unchanged), and be stopped by fuel, timeout, the memory cap and the output
 * limit without being able to catch any of them; deep recursion traps and the engine instance
 * is discarded (the next run starts clean).
 */
import { symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileScript, runScript, type RunOptions, type RunResult, type ScriptProgram } from '../../runtime/index.js'
import { assertHostAlive, assertNoLeak, CANARY_MARKERS, makeCanaryLayout, watchOutside, type CanaryLayout } from '../support/security.js'
import { text } from '../support/guest.js'

async function program(src: string, files: Record<string, string> = {}): Promise<ScriptProgram> {
  const r = await compileScript({ files: { 'main.ts': src, ...files }, entry: 'main.ts' })
  if (r.program === undefined) throw new Error(JSON.stringify(r.diagnostics))
  return r.program
}

async function script(src: string, options: RunOptions = {}): Promise<RunResult & { out: string; err: string }> {
  const r = await runScript(await program(src), { isolation: 'in-process', ...options })
  return Object.assign(r, { out: text(r.stdout), err: text(r.stderr) })
}

describe('a script finds none of the host JavaScript world', () => {
  it("has no process, require, module, fetch, host WebAssembly, timers or other hosts' globals", async () => {
    const r = await script(`
      const names = ['process', 'require', 'module', 'exports', '__dirname', 'fetch', 'WebAssembly', 'setTimeout',
        'setInterval', 'XMLHttpRequest', 'Deno', 'Bun', 'std', 'os', 'Buffer', 'global', 'importScripts', 'navigator', '${'__caplet_host'}']
      for (const n of names) console.log(n, typeof (globalThis as any)[n])
      const g = Function('return this')()
      console.log('same global', g === globalThis, typeof g.process, typeof g.require)
      console.log('constructor escape', (globalThis as any).constructor.constructor('return typeof process')())
    `)
    expect(r.exitCode).toBe(0)
    for (const line of r.out.trim().split('\n').slice(0, 19)) expect(line).toMatch(/ undefined$/)
    expect(r.out).toContain('same global true undefined undefined')
    expect(r.out).toContain('constructor escape undefined')
  })

  it('cannot import host modules: bundling refuses them by name, and a run-time import() finds nothing', async () => {
    for (const spec of ['fs', 'node:fs', 'node:child_process', '/etc/passwd', '../outside.ts', 'https://example.com/x.js']) {
      const r = await compileScript({
        files: { 'main.ts': `import * as m from ${JSON.stringify(spec)}\nconsole.log(m)` },
        entry: 'main.ts',
      })
      expect(r.program, spec).toBeUndefined()
      expect(r.diagnostics[0]?.message, spec).toContain(JSON.stringify(spec))
    }
    const r = await script(`
      for (const spec of [['node', 'fs'].join(':'), 'fs', './main.ts', '/etc/passwd', 'data:text/javascript,export default 1']) {
        try { await import(spec); console.log('imported', spec) } catch (e) { console.log('refused', spec, String(e)) }
      }
    `)
    expect(r.exitCode).toBe(0)
    expect(r.out).not.toContain('imported')
    expect(r.out.match(/^refused /gm)).toHaveLength(5)
    expect(r.out).not.toContain('/work')
  })

  it('a script cannot reach the host function the API is built on, nor crash it with odd arguments', async () => {
    const r = await script(
      `
      const odd: any[] = [{ toString() { return '/x' } }, 1, null, Symbol('s'), new Proxy({}, {}), 2n ** 70n]
      let refused = 0
      for (const a of odd) {
        for (const f of [readFile, readdir, (p: any) => writeFile(p, 'x'), (p: any) => writeFile('/t/a', p)] as any[]) {
          try { f(a) } catch (e) { refused++ }
        }
      }
      console.log('refused', refused, typeof (globalThis as any).__caplet_host)
    `,
      { mounts: [{ guest: '/t', tmp: true }] },
    )
    expect(r.trap).toBeUndefined()
    expect(r.out).toBe('refused 24 undefined\n')
  })

  it('reports UTC and no host timezone', async () => {
    const r = await script('console.log(new Date(0).getTimezoneOffset(), new Date(0).toString())')
    expect(r.out).toBe('0 Thu Jan 01 1970 00:00:00 GMT+0000\n')
  })
})

describe('files outside the mounts are unreachable', () => {
  let layout: CanaryLayout
  beforeAll(() => {
    layout = makeCanaryLayout()
    symlinkSync('../outside/secret.txt', join(layout.sandbox, 'link-out'))
    symlinkSync('/etc/passwd', join(layout.sandbox, 'link-abs'))
    symlinkSync('../../canary', join(layout.data, 'up'))
  })
  afterAll(() => layout.cleanup())

  it('by .., absolute paths and symlinks out; the read-only mount stays unchanged', async () => {
    writeFileSync(join(layout.sandbox, 'inside.txt'), 'inside\n')
    const watch = watchOutside(layout)
    const r = await script(
      `
      const tries: [string, () => unknown][] = [
        ['dotdot', () => readFile('/sandbox/../canary')],
        ['dotdot2', () => readFile('/sandbox/../../canary')],
        ['dotdot-dir', () => readdir('/sandbox/..')],
        ['deep-dotdot', () => readFile('/data/sub/../../outside/secret.txt')],
        ['absolute', () => readFile('/etc/passwd')],
        ['relative', () => readFile('../canary')],
        ['link-out', () => readFile('/sandbox/link-out')],
        ['link-abs', () => readFile('/sandbox/link-abs')],
        ['link-up', () => readFile('/data/up')],
        ['write-ro', () => writeFile('/data/a.txt', 'changed')],
        ['create-ro', () => writeFile('/data/new.txt', 'x')],
        ['write-out', () => writeFile('/sandbox/../planted', 'x')],
        ['write-link', () => writeFile('/sandbox/link-out', 'x')],
        ['inside', () => readFile('/sandbox/inside.txt')],
        ['data', () => readFile('/data/a.txt')],
      ]
      for (const [name, f] of tries) {
        try { console.log(name, 'ok', JSON.stringify(f())) } catch (e: any) { console.log(name, e.code) }
      }
    `,
      { mounts: layout.mounts },
    )
    watch.assertUnchanged('js guest')
    assertNoLeak(r, layout)
    const outcome = Object.fromEntries(
      r.out
        .trim()
        .split('\n')
        .map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)]),
    )
    expect(outcome).toEqual({
      dotdot: 'EPERM',
      dotdot2: 'EPERM',
      'dotdot-dir': 'EPERM',
      'deep-dotdot': 'EPERM',
      absolute: 'ENOENT',
      relative: 'ENOENT',
      'link-out': 'EPERM',
      'link-abs': 'EPERM',
      'link-up': 'EPERM',
      'write-ro': 'EROFS',
      'create-ro': 'EROFS',
      'write-out': 'EPERM',
      'write-link': 'EPERM',
      inside: 'ok "inside\\n"',
      data: 'ok "alpha\\n"',
    })
    for (const m of CANARY_MARKERS) expect(r.out).not.toContain(m)
  })

  it('with nothing mounted, no path reaches anything', async () => {
    const r = await script(
      `for (const p of ['/', '.', '/etc/passwd', '/proc/self/environ']) { try { console.log(readdir(p)) } catch (e: any) { console.log(p, e.code) } }`,
    )
    expect(r.out).toBe('/ ENOENT\n. ENOENT\n/etc/passwd ENOENT\n/proc/self/environ ENOENT\n')
  })
})

describe('limits stop a script and it cannot catch them', () => {
  it('while(true){} is stopped by fuel', async () => {
    const r = await script('try { while (true) {} } catch (e) { console.log("caught") }', { limits: { fuel: 5e7 } })
    expect(r).toMatchObject({ exitCode: 124, limit: 'fuel', out: '' })
  })

  it('while(true){} is stopped by the timeout in a worker', async () => {
    const r = await runScript(await program('while (true) {}'), { limits: { timeout: '300ms' } })
    expect(r).toMatchObject({ exitCode: 124, limit: 'timeout' })
  })

  it('a 2 GiB allocation is stopped by the memory cap', async () => {
    const r = await script('try { const b = new Uint8Array(2 ** 31 - 1); console.log(b.length) } catch (e) { console.log("caught", e) }', {
      limits: { memory: '64MiB' },
    })
    expect(r).toMatchObject({ exitCode: 124, limit: 'memory', out: '' })
    expect(r.stats.peakMemory).toBeLessThanOrEqual(64 * 1024 * 1024)
  })

  it('growing without bound is stopped by the memory cap', async () => {
    const r = await script('const a: string[] = []; let s = "x"; for (;;) { s += s; a.push(s + "y") }', { limits: { memory: '16MiB' } })
    expect(r).toMatchObject({ exitCode: 124, limit: 'memory' })
  })

  it('file contents the engine cannot hold end the run at the memory cap, not in a host fault', async () => {
    const r = await script(
      'writeFile("/t/big", "x".repeat(3e6)); const keep: string[] = []; for (;;) { try { keep.push(readFile("/t/big") as string) } catch (e) {} }',
      { limits: { memory: '16MiB' }, mounts: [{ guest: '/t', tmp: true }] },
    )
    expect(r).toMatchObject({ exitCode: 124, limit: 'memory' })
    expect(r.trap).toBeUndefined()
  })

  it('an abort signal stops a running script in its worker', async () => {
    const ac = new AbortController()
    const running = runScript(await program('for (;;) {}'), { signal: ac.signal })
    setTimeout(() => ac.abort(new Error('stop')), 200)
    await expect(running).rejects.toThrow('stop')
  })

  it('the output limit ends the run even inside try/catch', async () => {
    const r = await script('for (;;) { try { console.log("x".repeat(100)) } catch (e) {} }', { limits: { stdout: '1KiB' } })
    expect(r).toMatchObject({ exitCode: 124, limit: 'stdout' })
    expect(r.stdout.byteLength).toBeLessThanOrEqual(1024)
  })

  it('exit() cannot be caught and ends the run with its code', async () => {
    const r = await script('try { exit(7) } finally { console.log("finally ran") }\nconsole.log("after")')
    expect(r).toMatchObject({ exitCode: 7, out: '' })
  })

  it('deep recursion traps; the next run gets a clean engine', async () => {
    const r = await script(
      '(globalThis as any).dirty = 1\nfunction f(n: number): number { return f(n + 1) + 1 }\ntry { f(0) } catch (e) { console.log("caught") }',
    )
    expect(r).toMatchObject({ exitCode: 134, out: '' })
    expect(r.trap?.kind).toBe('stack-overflow')
    const next = await script('console.log(typeof (globalThis as any).dirty, [1, 2, 3].map((x) => x * 2).join())')
    expect(next).toMatchObject({ exitCode: 0, out: 'undefined 2,4,6\n' })
    assertHostAlive()
  })

  it('a guest cannot leave state for the next run (globals, prototypes, builtins)', async () => {
    const first = await script(
      '(globalThis as any).leak = "secret"; (Array.prototype as any).evil = 1; JSON.stringify = () => "pwned"; (Math as any).random = () => 4',
    )
    expect(first.exitCode).toBe(0)
    const next = await script(
      'console.log(typeof (globalThis as any).leak, typeof ([] as any).evil, JSON.stringify({ a: 1 }), Math.random() < 1)',
    )
    expect(next.out).toBe('undefined undefined {"a":1} true\n')
  })
})
