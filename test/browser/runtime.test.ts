/**
 * @module caplet/browser in real headless Chromium (playwright-core, /usr/bin/chromium), on a
 * page that is NOT cross-origin isolated: the C fixtures that need no host directory give the
 * same results as in Node (the differential manifest, every wasi-testsuite conformance scenario
 * on an in-memory scratch directory, and the escape, rights and bad-pointer corpora); a timeout
 * and an abort stop an infinite loop while the page stays responsive and keep what was written
 * before the kill; a memory bomb stops at the cap; an OPFS mount keeps a file across a reload; a
 * memfs-volume mount sees the guest's changes; the page's policy refuses what a page cannot
 * have. One browser launch for the file.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the callbacks of page.evaluate run in Chromium, on the page's own untyped globals (window.caplet, window.memfs); their source is sent there as text */
import { existsSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSync, type RunResult } from '../../runtime/index.js'
import { DATA_TREE, GUEST_ENV, runWithLayout, text } from '../support/guest.js'
import { bundleMemfs, hasChromium, launchChromium, repoRoot, startServer, type StaticServer } from './support.js'

/** What both platforms are compared on. */
interface Seen {
  exitCode: number
  stdout: string
  stderr: string
  trap?: string
  syscall?: string
  limit?: string
}

const seenNode = (r: RunResult): Seen => ({
  exitCode: r.exitCode,
  stdout: text(r.stdout),
  stderr: text(r.stderr),
  ...(r.trap ? { trap: r.trap.kind, ...(r.trap.syscall ? { syscall: r.trap.syscall } : {}) } : {}),
  ...(r.limit ? { limit: r.limit } : {}),
})

interface Case {
  wasm: string
  args: string[]
  stdin?: string
  layout: 'fixture' | 'scratch'
}

let server: StaticServer
let browser: Browser
let page: Page

async function openHarness(): Promise<void> {
  await page.goto(`${server.origin}/test/browser/pages/harness.html`)
  await page.waitForFunction(() => (window as unknown as { caplet?: unknown }).caplet !== undefined)
}

/** Runs cases in the page, one prepared program per module, with the fixture layout in memory. */
function runInPage(cases: Case[], extra: Record<string, unknown> = {}): Promise<Seen[]> {
  return page.evaluate(
    async ({ cases, env, data, extra }) => {
      const c = (window as any).caplet
      const td = new TextDecoder()
      const out = []
      const programs = new Map()
      for (const k of cases) {
        const mounts =
          k.layout === 'fixture'
            ? [
                { guest: '/sandbox', tmp: true },
                { guest: '/data', tree: data, mode: 'ro' },
              ]
            : [{ guest: '/sandbox', tmp: true }]
        const key = `${k.wasm}|${k.layout}`
        if (!programs.has(key)) programs.set(key, await c.prepare(k.wasm, { env: k.layout === 'fixture' ? env : {}, mounts, ...extra }))
        const r = await programs.get(key).run({ args: k.args, stdin: k.stdin ?? '' })
        if (r.trap?.kind === 'host-fault') console.log('HOSTFAULT', r.trap.message)
        out.push({
          exitCode: r.exitCode,
          stdout: td.decode(r.stdout),
          stderr: td.decode(r.stderr),
          ...(r.trap ? { trap: r.trap.kind, ...(r.trap.syscall ? { syscall: r.trap.syscall } : {}) } : {}),
          ...(r.limit ? { limit: r.limit } : {}),
        })
      }
      return out
    },
    { cases, env: GUEST_ENV, data: DATA_TREE, extra },
  )
}

function runInNode(k: Case): Seen {
  const wasm = join(repoRoot, k.wasm)
  if (k.layout === 'fixture') return seenNode(runWithLayout(wasm, 'memory', { args: k.args, stdin: k.stdin ?? '' }))
  return seenNode(runSync(wasm, { args: k.args, stdin: k.stdin ?? '', mounts: [{ guest: '/sandbox', tmp: true }] }))
}

const scenarioList = (wasm: string, listArg: string[]): string[] =>
  text(runSync(join(repoRoot, wasm), { args: ['x', ...listArg] }).stdout)
    .split('\n')
    .filter((l) => l.length > 0)

describe.skipIf(!hasChromium)('caplet/browser in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(join(repoRoot, 'dist/browser.js'))) execFileSync('node', ['scripts/build.mjs'], { cwd: repoRoot })
    server = await startServer()
    server.files.set('/memfs.js', await bundleMemfs())
    browser = await launchChromium()
    page = await browser.newPage()
    page.on('console', (m) => {
      if (m.text().includes('HOSTFAULT')) console.log(m.text())
    })
    page.on('pageerror', (e) => console.log('PAGEERROR', e.message))
    await openHarness()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it('runs on a page without cross-origin isolation (no SharedArrayBuffer)', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const run = await c.run('/samples/hello.wasm')
      return { isolated: crossOriginIsolated, sab: typeof SharedArrayBuffer, out: new TextDecoder().decode(run.stdout), exit: run.exitCode }
    })
    expect(r).toEqual({ isolated: false, sab: 'undefined', out: 'hello from caplet\n', exit: 0 })
  })

  it('gives the differential fixtures the same results as Node, and as node:wasi recorded them', async () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/expected/manifest.json'), 'utf8')) as Record<
      string,
      { module?: string; wasm?: string; args: string[]; stdin?: string; exit: number; spec?: string; specExit?: number }
    >
    const names = Object.keys(manifest).filter((n) => !n.startsWith('$'))
    const cases: Case[] = names.map((n) => {
      const m = manifest[n]!
      const wasm = m.wasm ?? `test/fixtures/wasm/${m.module ?? n}.wasm`
      return {
        wasm,
        args: [
          wasm
            .split('/')
            .pop()!
            .replace(/\.wasm$/, ''),
          ...m.args,
        ],
        layout: 'fixture',
        ...(m.stdin !== undefined ? { stdin: m.stdin } : {}),
      }
    })
    const inBrowser = await runInPage(cases.map((k) => ({ ...k, wasm: `/${k.wasm}` })))
    // diff_poll and diff_clock check sleeps against wall time; on a loaded machine a sleep can
    // overshoot (in Node as well): such a case gets one more try before it counts.
    for (const [i, n] of names.entries()) {
      if (/^diff_(poll|clock)/.test(n) && JSON.stringify(inBrowser[i]) !== JSON.stringify(runInNode(cases[i]!))) {
        inBrowser[i] = (await runInPage([{ ...cases[i]!, wasm: `/${cases[i]!.wasm}` }]))[0]!
      }
    }
    names.forEach((n, i) => {
      const m = manifest[n]!
      const node = runInNode(cases[i]!)
      expect(inBrowser[i], n).toEqual(node)
      const want = readFileSync(join(repoRoot, 'test/fixtures/expected', m.spec ?? `${n}.txt`), 'utf8')
      expect(inBrowser[i]!.stdout, n).toBe(want)
      expect(inBrowser[i]!.exitCode, n).toBe(m.spec ? (m.specExit ?? m.exit) : m.exit)
    })
    expect(names.length).toBeGreaterThan(15)
  }, 120_000)

  it('passes every wasi-testsuite conformance scenario on an in-memory scratch directory as Node does', async () => {
    const programs = [
      'conf_dirfd',
      'conf_fdtable',
      'conf_fileio',
      'conf_misc',
      'conf_path_open',
      'conf_path_ops',
      'conf_readdir',
      'conf_rights',
      'conf_symlink',
    ]
    const cases: Case[] = programs.flatMap((p) =>
      scenarioList(`test/fixtures/wasm/${p}.wasm`, ['--list']).map((s) => ({
        wasm: `test/fixtures/wasm/${p}.wasm`,
        args: [p, s],
        layout: 'scratch' as const,
      })),
    )
    const inBrowser = await runInPage(cases.map((k) => ({ ...k, wasm: `/${k.wasm}` })))
    const differing = cases
      .map((k, i) => ({ k, b: inBrowser[i]!, n: runInNode(k) }))
      .filter(({ b, n }) => JSON.stringify(b) !== JSON.stringify(n))
    expect(differing.map(({ k, b, n }) => `${k.args.join(' ')}\n browser: ${JSON.stringify(b)}\n node: ${JSON.stringify(n)}`)).toEqual([])
    expect(cases.length).toBeGreaterThan(40)
    expect(inBrowser.some((r) => r.stdout.includes('ok '))).toBe(true)
  }, 180_000)

  it('refuses the escape, rights and bad-pointer corpora as Node does (.., absolute, symlinks out, rights growth, bad pointers)', async () => {
    const usage = text(runSync(join(repoRoot, 'test/fixtures/wasm/memory.wasm'), { args: ['memory'] }).stdout)
    const memory = usage
      .slice(usage.indexOf('scenarios:') + 'scenarios:'.length)
      .trim()
      .split(/\s+/)
    const cases: Case[] = [
      { wasm: 'test/fixtures/wasm/escape.wasm', args: ['escape', 'all'], layout: 'fixture' },
      { wasm: 'test/fixtures/wasm/rights.wasm', args: ['rights', 'all'], layout: 'fixture' },
      ...memory.map((s) => ({ wasm: 'test/fixtures/wasm/memory.wasm', args: ['memory', s], layout: 'fixture' as const })),
    ]
    const inBrowser = await runInPage(cases.map((k) => ({ ...k, wasm: `/${k.wasm}` })))
    cases.forEach((k, i) => expect(inBrowser[i], k.args.join(' ')).toEqual(runInNode(k)))
    // The corpora really exercised refusals and traps.
    expect(inBrowser[0]!.stdout).toContain('PERM')
    expect(inBrowser[1]!.stdout).toContain('NOTCAPABLE')
    expect(inBrowser.filter((r) => r.trap === 'memory-fault').length).toBeGreaterThan(20)
    expect(memory.length).toBeGreaterThan(25)
  }, 120_000)

  it('stops an infinite loop at its timeout within 1.5x, keeps the output written before, and the page stays responsive', async () => {
    const LIMIT = 1000
    // A warm worker, so the limit measures the guest, not a worker's start on a loaded machine.
    await page.evaluate(() => (window as any).caplet.run('/samples/hello.wasm'))
    await page.evaluate((limit) => {
      const w = window as any
      w.longest = 0
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.longest = Math.max(w.longest, e.duration)
      }).observe({ type: 'longtask', buffered: false })
      w.finished = undefined
      const t0 = performance.now()
      w.caplet.run('/test/fixtures/wasm/talk_spin.wasm', { args: ['talk_spin', '200'], limits: { timeout: limit } }).then((r: any) => {
        w.finished = { ms: performance.now() - t0, exitCode: r.exitCode, limit: r.limit, stdout: new TextDecoder().decode(r.stdout) }
      })
    }, LIMIT)
    // The page answers while the guest spins.
    await new Promise((ok) => setTimeout(ok, 300))
    const during = await page.evaluate(() => ({ answer: 6 * 7, finished: (window as any).finished !== undefined }))
    expect(during).toEqual({ answer: 42, finished: false })
    await page.waitForFunction(() => (window as any).finished !== undefined, undefined, { timeout: 20_000 })
    const r = await page.evaluate(() => ({ ...(window as any).finished, longest: (window as any).longest }))
    expect(r.exitCode).toBe(124)
    expect(r.limit).toBe('timeout')
    expect(r.ms).toBeGreaterThanOrEqual(LIMIT - 5)
    expect(r.ms).toBeLessThan(LIMIT * 1.5)
    expect(r.stdout).toBe(Array.from({ length: 200 }, (_, i) => `line ${i + 1}\n`).join(''))
    // Had the guest run on the page's thread, one task would have lasted the whole limit.
    expect(r.longest).toBeLessThan(LIMIT)
  }, 60_000)

  it('stops a guest when its signal aborts, with what it wrote', async () => {
    const r = await page.evaluate(async () => {
      const ac = new AbortController()
      const seen: string[] = []
      // Aborted once all three lines were streamed (the guest then spins forever).
      const p = (window as any).caplet.run('/test/fixtures/wasm/talk_spin.wasm', {
        args: ['talk_spin', '3'],
        signal: ac.signal,
        onStdout: (c: Uint8Array) => {
          seen.push(new TextDecoder().decode(c))
          if (seen.join('').endsWith('line 3\n')) setTimeout(() => ac.abort(), 50)
        },
      })
      const res = await p
      return { exitCode: res.exitCode, limit: res.limit, stdout: new TextDecoder().decode(res.stdout), streamed: seen.join('') }
    })
    expect(r).toEqual({ exitCode: 124, limit: 'aborted', stdout: 'line 1\nline 2\nline 3\n', streamed: 'line 1\nline 2\nline 3\n' })
  }, 30_000)

  it('stops a memory bomb at the cap (memory.grow fails, malloc returns NULL) as Node does', async () => {
    const cases: Case[] = [
      { wasm: 'test/fixtures/wasm/rt_grow.wasm', args: ['rt_grow', '100', '256', '257', '4096', '65536'], layout: 'scratch' },
      { wasm: 'test/fixtures/wasm/flood.wasm', args: ['flood', 'alloc'], layout: 'fixture' },
    ]
    const inBrowser = await runInPage(
      cases.map((k) => ({ ...k, wasm: `/${k.wasm}` })),
      { limits: { memory: '16MiB' } },
    )
    expect(inBrowser[0]).toMatchObject({
      exitCode: 0,
      stdout:
        'grow to 100 pages: ok\ngrow to 256 pages: ok\ngrow to 257 pages: failed\ngrow to 4096 pages: failed\ngrow to 65536 pages: failed\n',
    })
    const node = seenNode(runWithLayout(join(repoRoot, cases[1]!.wasm), 'memory', { args: cases[1]!.args, limits: { memory: '16MiB' } }))
    expect(inBrowser[1]).toEqual(node)
    expect(inBrowser[1]!.exitCode).toBe(0)
    const peak = await page.evaluate(
      async () =>
        (await (window as any).caplet.run('/test/fixtures/wasm/flood.wasm', { args: ['flood', 'alloc'], limits: { memory: '16MiB' } }))
          .stats.peakMemory,
    )
    expect(peak).toBeLessThanOrEqual(16 * 1024 * 1024)
  }, 60_000)

  it('keeps a file written to an OPFS mount across a page reload; a read-only OPFS mount refuses writes', async () => {
    const write = await page.evaluate(async () => {
      const c = (window as any).caplet
      const root = await navigator.storage.getDirectory()
      await root.removeEntry('caplet-test', { recursive: true }).catch(() => {})
      const r = await c.run('/samples/tee.wasm', {
        args: ['tee', '/p/notes/today.txt'],
        stdin: 'persisted line\n',
        mounts: [{ guest: '/p', opfs: 'caplet-test/persist' }],
      })
      return { exitCode: r.exitCode, stderr: new TextDecoder().decode(r.stderr) }
    })
    expect(write.stderr).toContain('tee: /p/notes/today.txt')
    expect(write.exitCode).toBe(1)
    const made = await page.evaluate(async () => {
      const c = (window as any).caplet
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('caplet-test', { create: true })
      const p = await dir.getDirectoryHandle('persist', { create: true })
      await p.getDirectoryHandle('notes', { create: true })
      const r = await c.run('/samples/tee.wasm', {
        args: ['tee', '/p/notes/today.txt'],
        stdin: 'persisted line\n',
        mounts: [{ guest: '/p', opfs: p }],
      })
      return r.exitCode
    })
    expect(made).toBe(0)
    await page.reload()
    await page.waitForFunction(() => (window as any).caplet !== undefined)
    const after = await page.evaluate(async () => {
      const c = (window as any).caplet
      const td = new TextDecoder()
      const cat = await c.run('/samples/cat.wasm', {
        args: ['cat', '/p/notes/today.txt'],
        mounts: [{ guest: '/p', opfs: 'caplet-test/persist', mode: 'ro' }],
      })
      const ro = await c.run('/samples/tee.wasm', {
        args: ['tee', '/p/notes/today.txt'],
        stdin: 'overwritten\n',
        mounts: [{ guest: '/p', opfs: 'caplet-test/persist', mode: 'ro' }],
      })
      const file = await (
        await (
          await (await (await navigator.storage.getDirectory()).getDirectoryHandle('caplet-test')).getDirectoryHandle('persist')
        ).getDirectoryHandle('notes')
      ).getFileHandle('today.txt')
      return {
        cat: td.decode(cat.stdout),
        catExit: cat.exitCode,
        roExit: ro.exitCode,
        roErr: td.decode(ro.stderr),
        stored: await (await file.getFile()).text(),
      }
    })
    expect(after).toEqual({
      cat: 'persisted line\n',
      catExit: 0,
      roExit: 1,
      roErr: expect.stringContaining('tee: /p/notes/today.txt'),
      stored: 'persisted line\n',
    })
  }, 60_000)

  it("a memfs-volume mount sees the guest's changes; a read-only one and a killed run change nothing", async () => {
    const r = await page.evaluate(async () => {
      const { Volume } = (window as any).memfs
      const c = (window as any).caplet
      const td = new TextDecoder()
      const vol = Volume.fromJSON({
        '/proj/in.txt': 'from the volume\n',
        '/proj/src/main.c': 'int main;\n',
        '/other/secret.txt': 'not mounted\n',
      })
      const cat = await c.run('/samples/cat.wasm', {
        args: ['cat', '/w/in.txt', '/w/src/main.c', '/w/../other/secret.txt'],
        mounts: [{ guest: '/w', volume: vol, path: '/proj' }],
      })
      const tee = await c.run('/samples/tee.wasm', {
        args: ['tee', '/w/out/made.txt', '/w/in.txt'],
        stdin: 'written by the guest\n',
        mounts: [{ guest: '/w', volume: vol, path: '/proj' }],
      })
      vol.mkdirSync('/proj/out')
      const tee2 = await c.run('/samples/tee.wasm', {
        args: ['tee', '/w/out/made.txt', '/w/in.txt'],
        stdin: 'written by the guest\n',
        mounts: [{ guest: '/w', volume: vol, path: '/proj' }],
      })
      const ro = await c.run('/samples/tee.wasm', {
        args: ['tee', '/w/in.txt'],
        stdin: 'refused\n',
        mounts: [{ guest: '/w', volume: vol, path: '/proj', mode: 'ro' }],
      })
      const killed = await c.run('/test/fixtures/wasm/talk_spin.wasm', {
        args: ['t', '1'],
        limits: { timeout: 200 },
        mounts: [{ guest: '/w', volume: vol, path: '/proj' }],
      })
      return {
        cat: td.decode(cat.stdout),
        catErr: td.decode(cat.stderr),
        teeExit: tee.exitCode,
        tee2Exit: tee2.exitCode,
        roExit: ro.exitCode,
        killed: killed.limit,
        files: vol.toJSON(),
      }
    })
    expect(r.cat).toBe('from the volume\nint main;\n')
    expect(r.catErr).toMatch(/cat: \/w\/\.\.\/other\/secret\.txt: /)
    expect(r.teeExit).toBe(1) // /w/out did not exist yet
    expect(r.tee2Exit).toBe(0)
    expect(r.roExit).toBe(1)
    expect(r.killed).toBe('timeout')
    expect(r.files).toEqual({
      '/proj/in.txt': 'written by the guest\n',
      '/proj/src/main.c': 'int main;\n',
      '/proj/out/made.txt': 'written by the guest\n',
      '/other/secret.txt': 'not mounted\n',
    })
  }, 60_000)

  it('bounds floods as Node does: descriptors, files and bytes under quota, output, poll and iovec counts, long paths', async () => {
    const floods: [string[], Record<string, unknown>][] = [
      [['flood', 'fds', '5000'], {}],
      [['flood', 'files', '5000'], { limits: { inodes: 300 } }],
      [['flood', 'big-write', '64'], { limits: { disk: '8MiB' } }],
      [['flood', 'symlinks', '5000'], { limits: { inodes: 200 } }],
      [['flood', 'stdout', '64'], { limits: { stdout: '1MiB' } }],
      [['flood', 'random'], {}],
      [['flood', 'iovs-many'], {}],
      [['flood', 'poll-many'], {}],
      [['flood', 'long-path'], {}],
      [['flood', 'mkdir-deep'], {}],
    ]
    for (const [args, extra] of floods) {
      const k: Case = { wasm: 'test/fixtures/wasm/flood.wasm', args, layout: 'fixture' }
      const [b] = await runInPage([{ ...k, wasm: `/${k.wasm}` }], extra)
      const n = seenNode(runWithLayout(join(repoRoot, k.wasm), 'memory', { args, ...extra }))
      expect(b, args.join(' ')).toEqual(n)
    }
  }, 120_000)

  it('refuses links on an OPFS mount (NOTSUP) and never writes one back; a volume mount refuses links that climb', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const td = new TextDecoder()
      const root = await navigator.storage.getDirectory()
      await root.removeEntry('caplet-links', { recursive: true }).catch(() => {})
      const opfs = await c.run('/test/fixtures/wasm/escape.wasm', {
        args: ['escape', 'symlinks'],
        mounts: [
          { guest: '/sandbox', opfs: 'caplet-links' },
          { guest: '/data', tmp: true, mode: 'ro' },
        ],
      })
      const names: string[] = []
      const walk = async (d: any, p: string) => {
        for await (const [n, h] of d.entries()) {
          names.push(`${p}${n}:${h.kind}`)
          if (h.kind === 'directory') await walk(h, `${p}${n}/`)
        }
      }
      await walk(await root.getDirectoryHandle('caplet-links'), '')
      const vol = new (window as any).memfs.Volume()
      vol.mkdirSync('/proj')
      const volRun = await c.run('/test/fixtures/wasm/escape.wasm', {
        args: ['escape', 'symlinks'],
        mounts: [
          { guest: '/sandbox', volume: vol, path: '/proj' },
          { guest: '/data', tmp: true, mode: 'ro' },
        ],
      })
      const links: string[] = []
      const vwalk = (p: string) => {
        for (const n of vol.readdirSync(p)) {
          const q = `${p}/${n}`
          const st = vol.lstatSync(q)
          if (st.isSymbolicLink()) links.push(`${q} -> ${vol.readlinkSync(q)}`)
          else if (st.isDirectory()) vwalk(q)
        }
      }
      vwalk('/proj')
      return { opfs: td.decode(opfs.stdout), opfsExit: opfs.exitCode, names, vol: td.decode(volRun.stdout), links }
    })
    const created = (out: string) => out.split('\n').filter((l) => /^symlink \S+ -> \S+: /.test(l))
    expect(r.opfsExit).toBe(0)
    expect(created(r.opfs).length).toBeGreaterThan(8)
    for (const l of created(r.opfs)) expect(l, l).toMatch(/: (PERM|NOTSUP|NOENT)$/) // NOENT: under a link that was refused
    expect(created(r.opfs).filter((l) => l.endsWith('NOTSUP')).length).toBeGreaterThan(3)
    expect(r.names.filter((n) => n.endsWith(':file') && /loop|dangling|inside|dirlink|dotlink/.test(n))).toEqual([])
    expect(r.vol).toMatch(/^symlink dir\/back -> \.\.\/secret: PERM$/m)
    expect(r.vol).toMatch(/^symlink inside -> secret: ok$/m)
    for (const l of r.links) expect(l, l).not.toMatch(/-> (\/|.*\.\.)/)
  }, 60_000)

  it('refuses what a page cannot have with a PolicyError naming the field, and bad modules with a ModuleError', async () => {
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
        await fail(() => c.run('/samples/hello.wasm', { mounts: [{ guest: '/h', host: '/etc' }] })),
        await fail(() => c.run('/samples/hello.wasm', { stdin: 'inherit' })),
        await fail(() => c.run('/samples/hello.wasm', { isolation: 'in-process' })),
        await fail(() => c.run('/samples/hello.wasm', { mounts: [{ guest: '/o', tmp: true, mode: 'overlay' }] })),
        await fail(() => c.run('/samples/hello.wasm', { listen: ['127.0.0.1:0'] })),
        await fail(() => c.run('/samples/hello.wasm', { mounts: [{ guest: 'rel', tmp: true }] })),
        await fail(() => c.run('/samples/hello.wasm', { mounts: [{ guest: '/x', opfs: '../up' }] })),
        await fail(() => c.run('/samples/missing.wasm')),
        await fail(() => c.run(new TextEncoder().encode('not wasm at all'))),
        await fail(() => c.run('/samples/hello.wasm', { limits: { memory: '64KiB' } })),
        await fail(() =>
          c.run(
            new Uint8Array(
              [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 2, 11, 1, 3, 0x65, 0x6e, 0x76, 3, 0x66, 0x6f, 0x6f, 0, 0, 1, 4, 1, 0x60, 0, 0]
                .slice(0, 8)
                .concat([1, 4, 1, 0x60, 0, 0, 2, 11, 1, 3, 0x65, 0x6e, 0x76, 3, 0x66, 0x6f, 0x6f, 0, 0]),
            ),
          ),
        ),
      ]
    })
    expect(r[0]).toMatch(/^PolicyError: .*mounts\[0\]\.host: host directories are not available in the browser/)
    expect(r[1]).toMatch(/^PolicyError: .*stdin: a page has no stdin to inherit/)
    expect(r[2]).toMatch(/^PolicyError: .*isolation: the browser runs every guest in its own Web Worker/)
    expect(r[3]).toMatch(/^PolicyError: .*mounts\[0\]\.mode: overlays are not available in the browser/)
    expect(r[4]).toMatch(/^PolicyError: .*listen: sockets are not available in the browser/)
    expect(r[5]).toMatch(/^PolicyError: .*mounts\[0\]\.guest: must be an absolute guest path/)
    expect(r[6]).toMatch(/^PolicyError: .*mounts\[0\]\.opfs: must be a path without/)
    expect(r[7]).toMatch(/^ModuleError: .*HTTP 404/)
    expect(r[8]).toMatch(/^ModuleError: .*not a WebAssembly module/)
    expect(r[9]).toMatch(/^ModuleError: .*needs .* of memory to start, more than the memory limit of 64 KiB/)
    expect(r[10]).toMatch(/^UnknownImportsError: .*does not provide: env\.foo/)
  }, 30_000)

  it('runs a prepared program many times, each run fresh (tmp empty again)', async () => {
    const r = await page.evaluate(async () => {
      const c = (window as any).caplet
      const td = new TextDecoder()
      const p = await c.prepare('/samples/tee.wasm', { mounts: [{ guest: '/t', tmp: true, keep: true }] })
      const outs = []
      for (const s of ['one\n', 'two\n', 'three\n']) {
        const r = await p.run({ args: ['tee', '-a', '/t/log'], stdin: s })
        outs.push(r.files['/t'].map((e: any) => `${e.path}=${td.decode(e.data)}`).join())
      }
      const bad = await p.run({ mounts: [] }).then(
        () => 'resolved',
        (e: any) => `${e.name}: ${e.message}`,
      )
      return { outs, bad }
    })
    expect(r.outs).toEqual(['log=one\n', 'log=two\n', 'log=three\n'])
    expect(r.bad).toMatch(/^PolicyError: .*mounts/)
  }, 30_000)
})
