/**
 * @module caplet/browser's page API in real headless Chromium (playwright-core, /usr/bin/chromium):
 * a module from a Response or a URL is compiled with compileStreaming only when the pipeline
 * leaves its bytes unchanged (`program.compiledFrom`), never when it must cap memory or meter
 * fuel, and a page that is not a module fails on its header; mounts prepopulated from `File`
 * objects and a `FileList`; a trace function and a trace summary; denials naming the page's
 * options (`explainDenials`), never a CLI flag.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the callbacks of page.evaluate run in Chromium, on the page's own untyped globals (window.caplet); their source is sent there as text */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { instrumentModule } from '../../runtime/module-pipeline.js'
import { preparePolicy } from '../../runtime/policy.js'
import { hasChromium, launchChromium, repoRoot, startServer, type StaticServer } from './support.js'

let server: StaticServer
let browser: Browser
let page: Page

describe.skipIf(!hasChromium)('caplet/browser page API in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(join(repoRoot, 'dist/browser.js'))) execFileSync('node', ['scripts/build.mjs'], { cwd: repoRoot })
    server = await startServer()
    // Modules already capped as the default policy caps them: the pipeline leaves their bytes unchanged.
    const pages = preparePolicy({}).policy.limits.memoryPages
    for (const [name, from] of [
      ['capped-hello', 'samples/hello.wasm'],
      ['capped-grow', 'test/fixtures/wasm/rt_grow.wasm'],
      ['capped-cat', 'samples/cat.wasm'],
    ]) {
      const capped = instrumentModule(readFileSync(join(repoRoot, from!)), { memoryPages: pages })
      server.files.set(`/${name}.wasm`, capped)
    }
    server.files.set('/not-a-module.wasm', "<!doctype html><title>Not found</title><p>an app server's fallback page")
    browser = await launchChromium()
    page = await browser.newPage()
    page.on('pageerror', (e) => console.log('PAGEERROR', e.message))
    await page.goto(`${server.origin}/test/browser/pages/harness.html`)
    await page.waitForFunction(() => (window as any).caplet !== undefined)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it('compiles a Response or URL with compileStreaming when the pipeline leaves the bytes unchanged, and only then', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const td = new TextDecoder()
      const from = async (m: unknown, o: Record<string, unknown> = {}) => {
        const p = await c.prepare(m, o)
        const run = await p.run({ args: ['x', '100', '257', '4096'] })
        return { from: p.compiledFrom, out: td.decode(run.stdout), exit: run.exitCode }
      }
      return {
        response: await from(await fetch('/capped-hello.wasm')),
        againByUrl: await from('/capped-hello.wasm'),
        url: await from(new URL('/capped-grow.wasm', location.href)),
        // The module's maximum (1 GiB) is above this cap: rewritten, not streamed.
        capped16: await from('/capped-grow.wasm', { limits: { memory: '16MiB' } }),
        fuel: await from('/capped-cat.wasm', { limits: { fuel: 1e9 } }),
        // No maximum at all: the default cap must be written in.
        uncapped: await from('/test/fixtures/wasm/rt_grow.wasm'),
        bytes: await from(new Uint8Array(await (await fetch('/samples/ls.wasm')).arrayBuffer())),
        compiled: await from(await WebAssembly.compileStreaming(fetch('/samples/hello.wasm'))),
      }
    })
    expect(r.response).toEqual({ from: 'stream', out: 'hello from caplet\n', exit: 0 })
    expect(r.againByUrl.from).toBe('cache')
    expect(r.url).toEqual({ from: 'stream', out: 'grow to 100 pages: ok\ngrow to 257 pages: ok\ngrow to 4096 pages: ok\n', exit: 0 })
    expect(r.capped16).toEqual({
      from: 'worker',
      out: 'grow to 100 pages: ok\ngrow to 257 pages: failed\ngrow to 4096 pages: failed\n',
      exit: 0,
    })
    expect(r.fuel.from).toBe('worker')
    expect(r.uncapped.from).toBe('worker')
    expect(r.uncapped.out).toContain('grow to 4096 pages: ok')
    expect(r.bytes.from).toBe('worker')
    expect(r.compiled).toEqual({ from: 'module', out: 'hello from caplet\n', exit: 0 })
  }, 60_000)

  it('refuses a response that is not a module on its header, and a memory minimum over the cap before compiling', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const fail = async (f: () => Promise<unknown>) => {
        try {
          await f()
          return 'resolved'
        } catch (e: any) {
          return `${e.name}: ${e.message}`
        }
      }
      return [
        await fail(() => c.prepare('/not-a-module.wasm')),
        await fail(async () => c.prepare(await fetch('/not-a-module.wasm'))),
        await fail(() => c.prepare('/capped-hello.wasm', { limits: { memory: '64KiB' } })),
        await fail(async () => {
          const res = await fetch('/capped-hello.wasm')
          await res.arrayBuffer()
          return c.prepare(res)
        }),
      ]
    })
    expect(r[0]).toMatch(/^ModuleError: .*not a WebAssembly module \(no "\\0asm" header\)/)
    expect(r[1]).toMatch(/^ModuleError: .*not a WebAssembly module/)
    expect(r[2]).toMatch(/^ModuleError: .*needs .* of memory to start, more than the memory limit of 64 KiB/)
    expect(r[3]).toMatch(/^ModuleError: .*cannot read module response: its body was already read/)
  }, 30_000)

  it('prepopulates a mount from File objects and a FileList (nested by webkitRelativePath), and refuses names that climb', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const td = new TextDecoder()
      const nested = new File(['deep\n'], 'n.txt')
      Object.defineProperty(nested, 'webkitRelativePath', { value: 'proj/src/n.txt' })
      const files = [new File(['alpha\n'], 'a.txt'), new File([new Uint8Array([0, 1, 2, 255])], 'bin.dat'), nested]
      const dt = new DataTransfer()
      dt.items.add(new File(['from a list\n'], 'listed.txt'))
      dt.items.add(new File(['second\n'], 'two.txt'))
      const list: FileList = dt.files
      const cat = await c.run('/samples/cat.wasm', {
        args: ['cat', '/in/a.txt', '/in/proj/src/n.txt'],
        mounts: [{ guest: '/in', tree: files, mode: 'ro' }],
      })
      const ls = await c.run('/samples/ls.wasm', { args: ['ls', '/in'], mounts: [{ guest: '/in', tree: files }] })
      const fromList = await c.run('/samples/tee.wasm', {
        args: ['tee', '-a', '/in/listed.txt'],
        stdin: 'appended\n',
        mounts: [{ guest: '/in', tree: list, keep: true }],
      })
      const ro = await c.run('/samples/tee.wasm', {
        args: ['tee', '/in/a.txt'],
        stdin: 'no\n',
        mounts: [{ guest: '/in', tree: files, mode: 'ro' }],
      })
      const fail = async (f: File) => {
        try {
          await c.run('/samples/hello.wasm', { mounts: [{ guest: '/in', tree: [f] }] })
          return 'resolved'
        } catch (e: any) {
          return `${e.name}: ${e.message}`
        }
      }
      const climbing = new File(['x'], 'ok.txt')
      Object.defineProperty(climbing, 'webkitRelativePath', { value: 'proj/../../etc/passwd' })
      return {
        isList: list instanceof FileList,
        cat: td.decode(cat.stdout),
        ls: td.decode(ls.stdout),
        kept: fromList.files['/in'].map((e: any) => `${e.path}=${e.kind === 'file' ? td.decode(e.data) : e.kind}`),
        roExit: ro.exitCode,
        dotdot: await fail(new File(['x'], '..')),
        climbing: await fail(climbing),
        // Each mount's fields are read once (the policy and the mount see the same mode).
        modeReads: await (async () => {
          let reads = 0
          const spec: any = { guest: '/in', tree: files }
          Object.defineProperty(spec, 'mode', {
            enumerable: true,
            get: () => (reads++ === 0 ? 'ro' : 'rw'),
          })
          const r = await c.run('/samples/tee.wasm', { args: ['tee', '/in/a.txt'], stdin: 'no\n', mounts: [spec] })
          return { reads, exit: r.exitCode }
        })(),
        // Files a caller changes after prepare do not change the mount (copied at prepare).
        bin: Array.from(
          (await c.run('/samples/cat.wasm', { args: ['cat', '/in/bin.dat'], mounts: [{ guest: '/in', tree: files }] })).stdout,
        ),
      }
    })
    expect(r.isList).toBe(true)
    expect(r.cat).toBe('alpha\ndeep\n')
    expect(r.ls.split('\n').filter(Boolean)).toEqual(['a.txt', 'bin.dat', 'proj/'])
    expect(r.kept).toEqual(['listed.txt=from a list\nappended\n', 'two.txt=second\n'])
    expect(r.roExit).toBe(1)
    expect(r.dotdot).toMatch(/^PolicyError: .*mounts\[0\]\.tree: "\.\." is not a relative path beneath the mount/)
    expect(r.climbing).toMatch(/^PolicyError: .*mounts\[0\]\.tree: "proj\/\.\.\/\.\.\/etc\/passwd" is not a relative path/)
    expect(r.bin).toEqual([0, 1, 2, 255])
    expect(r.modeReads).toEqual({ reads: 1, exit: 1 })
  }, 30_000)

  it('traces every host call into a function (text or JSON), or counts them in a summary; refuses a trace file', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const text: string[] = []
      const json: string[] = []
      await c.run('/samples/hello.wasm', { trace: (l: string) => text.push(l) })
      await c.run('/samples/cat.wasm', {
        args: ['cat', '/d/f'],
        mounts: [{ guest: '/d', tree: { f: 'x\n' } }],
        trace: { sink: (l: string) => json.push(l), format: 'json' },
      })
      const summary = (await c.run('/samples/hello.wasm', { trace: { summary: true } })).traceSummary
      const fail = async (o: unknown) => {
        try {
          await c.run('/samples/hello.wasm', { trace: o })
          return 'resolved'
        } catch (e: any) {
          return `${e.name}: ${e.message}`
        }
      }
      // Many calls, then a spin the timeout kills: the line of every call made arrives.
      const many: string[] = []
      await c.run('/test/fixtures/wasm/talk_spin.wasm', {
        args: ['t', '300'],
        limits: { timeout: 300 },
        trace: (l: string) => many.push(l),
      })
      return {
        text,
        json,
        summary,
        file: await fail({ file: 'trace.txt' }),
        bare: await fail({ format: 'json' }),
        many: many.filter((l) => l.startsWith('fd_write')).length,
      }
    })
    expect(r.text.some((l) => l.startsWith('fd_write(1,'))).toBe(true)
    const calls = r.json.map((l) => JSON.parse(l) as { call?: string; fn?: string; name?: string })
    expect(calls.length).toBeGreaterThan(2)
    expect(r.json.join('\n')).toContain('path_open')
    expect(r.summary).toEqual(expect.arrayContaining([expect.objectContaining({ call: 'fd_write', calls: expect.any(Number) })]))
    expect(r.file).toMatch(/^PolicyError: .*trace\.file: a page has no files/)
    expect(r.bare).toMatch(/^PolicyError: .*trace: needs a sink function, or summary: true/)
    expect(r.many).toBe(300)
  }, 30_000)

  it('reports denials with the page option that would grant them, and explains them without a CLI flag', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const mounts = [
        { guest: '/tmp', tmp: true },
        { guest: '/data', tree: { 'in.txt': 'x\n' }, mode: 'ro' },
      ]
      const ro = await c.run('/test/fixtures/wasm/deny_probe.wasm', { args: ['deny_probe', 'ro-write', 'escape', 'ro-write'], mounts })
      const fds = await c.run('/test/fixtures/wasm/deny_probe.wasm', { args: ['deny_probe', 'fds'], mounts, limits: { fds: 6 } })
      const quota = await c.run('/test/fixtures/wasm/deny_probe.wasm', { args: ['deny_probe', 'quota'], mounts, limits: { disk: '16KiB' } })
      const none = await c.run('/test/fixtures/wasm/deny_probe.wasm', { args: ['deny_probe', 'missing'], mounts })
      return {
        ro: ro.denials,
        roCount: ro.denialCount,
        lines: c.explainDenials(ro),
        fds: fds.denials[0],
        quota: quota.denials[0],
        none: none.denials,
        noneLines: c.explainDenials(none),
      }
    })
    expect(r.ro[0]).toEqual({
      call: 'path_open',
      kind: 'read-only',
      path: '/data/out.txt',
      fd: 4,
      reason: 'mount /data is read-only',
      grant: "mounts[1].mode: 'rw'",
    })
    expect(r.ro[1]).toMatchObject({ call: 'path_open', kind: 'escape' })
    expect(r.ro[1]).not.toHaveProperty('grant')
    expect(r.roCount).toBe(3)
    expect(r.lines).toEqual([
      "caplet: the guest tried to write /data/out.txt: mount /data is read-only (grant with mounts[1].mode: 'rw') [2 times]",
      expect.stringMatching(
        /^caplet: the guest tried to open \/data\/\.\.\/\.\.\/etc\/passwd: .*nothing outside a mount is reachable; mount what it needs with mounts: \[/,
      ),
    ])
    for (const l of r.lines) expect(l).not.toMatch(/--\w/)
    expect(r.fds).toMatchObject({ kind: 'descriptor-limit', grant: 'limits.fds: 12' })
    expect(r.quota).toMatchObject({ kind: 'quota', grant: 'limits.disk' })
    expect(r.none).toBeUndefined()
    expect(r.noneLines).toEqual([])
  }, 30_000)

  it('a throwing onStdout, onStderr or trace callback does not break the run: the output is kept and the result warns', async () => {
    const pageErrors: string[] = []
    const onError = (e: Error) => pageErrors.push(e.message)
    page.on('pageerror', onError)
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const td = new TextDecoder()
      const boom = () => {
        throw new Error('embedder bug')
      }
      const a = await c.run('/samples/hello.wasm', { onStdout: boom, trace: boom })
      const p = await c.prepare('/samples/cat.wasm', { onStderr: boom })
      const b = await p.run({ args: ['cat', '/missing'] })
      const again = await c.run('/samples/hello.wasm')
      return {
        a: { exit: a.exitCode, out: td.decode(a.stdout), warnings: a.warnings },
        b: { exit: b.exitCode, err: td.decode(b.stderr), warnings: b.warnings },
        again: { exit: again.exitCode, out: td.decode(again.stdout), warnings: again.warnings },
      }
    })
    page.off('pageerror', onError)
    expect(r.a.exit).toBe(0)
    expect(r.a.out).toBe('hello from caplet\n')
    expect(r.a.warnings).toHaveLength(2)
    expect(r.a.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^onStdout threw (once|\d+ times) \(first: embedder bug\); the run went on/),
        expect.stringMatching(/^trace threw \d+ times \(first: embedder bug\); the run went on/),
      ]),
    )
    expect(r.b.exit).not.toBe(0)
    expect(r.b.err).toMatch(/missing/)
    expect(r.b.warnings).toEqual([expect.stringMatching(/^onStderr threw (once|\d+ times) \(first: embedder bug\)/)])
    expect(r.again).toEqual({ exit: 0, out: 'hello from caplet\n', warnings: undefined })
    expect(pageErrors).toEqual([])
  }, 30_000)

  it('refuses a module URL over maxModuleBytes, naming the size and the option', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const fail = async (m: unknown, o: unknown) => {
        try {
          await c.run(m, o)
          return 'resolved'
        } catch (e: any) {
          return `${e.name}: ${e.message}`
        }
      }
      return {
        url: await fail('/samples/hello.wasm', { maxModuleBytes: 1000 }),
        bad: await fail('/samples/hello.wasm', { maxModuleBytes: 'lots' }),
        ok: (await c.run('/samples/hello.wasm', { maxModuleBytes: '1MiB' })).exitCode,
      }
    })
    expect(r.url).toMatch(/^ModuleError: .*module response is .*, over the limit of 1000 B \(maxModuleBytes\)$/)
    expect(r.bad).toMatch(/^PolicyError: .*maxModuleBytes: not a size/)
    expect(r.ok).toBe(0)
  }, 30_000)
})
