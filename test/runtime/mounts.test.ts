/**
 * Mount modes and quotas through `run()`: overlays leave the host directory byte-identical and
 * report exactly what changed, can be saved or applied; quotas stop a filling guest at the limit
 * with what it wrote before intact.
 */
import { createHash } from 'node:crypto'
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PolicyError, run } from '../../runtime/index.js'
import { fixtureWasm, makeHostLayout, text, type HostLayout } from '../support/guest.js'

/** A digest of a whole tree: paths, types, contents and link targets (not times). */
function treeHash(dir: string): string {
  const h = createHash('sha256')
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      const st = lstatSync(p)
      h.update(`${rel}${name}:${st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l>${readlinkSync(p)}` : `f${st.size}`}\n`)
      if (st.isFile()) h.update(readFileSync(p))
      if (st.isDirectory()) walk(p, `${rel}${name}/`)
    }
  }
  walk(dir, '')
  return h.digest('hex')
}

function listTree(dir: string, rel = ''): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name)
      const st = lstatSync(p)
      if (st.isDirectory()) return [`${rel}${name}/`, ...listTree(p, `${rel}${name}/`)]
      return [`${rel}${name}${st.isFile() ? `=${createHash('sha1').update(readFileSync(p)).digest('hex').slice(0, 8)}` : ''}`]
    })
}

const layouts: HostLayout[] = []
afterEach(() => {
  for (const l of layouts.splice(0)) l.cleanup()
})
function layout(): HostLayout {
  const l = makeHostLayout()
  layouts.push(l)
  writeFileSync(join(l.sandbox, 'existing.txt'), 'from the host\n')
  mkdirSync(join(l.sandbox, 'olddir'))
  writeFileSync(join(l.sandbox, 'olddir', 'inner.txt'), 'inner\n')
  return l
}

describe('overlay mounts', () => {
  it('leave the host directory byte-identical and list exactly what the guest changed', async () => {
    const l = layout()
    const before = treeHash(l.sandbox)
    const r = await run(fixtureWasm('diff_fileio'), {
      env: { CAPLET_TEST: '1' },
      mounts: [
        { guest: '/sandbox', host: l.sandbox, mode: 'overlay' },
        { guest: '/data', host: l.data, mode: 'ro' },
      ],
    })
    expect(r.exitCode).toBe(0)
    expect(treeHash(l.sandbox)).toBe(before)
    const changes = r.overlays?.[0]?.changes ?? []
    expect(r.overlays?.[0]?.guest).toBe('/sandbox')
    expect(changes.length).toBeGreaterThan(0)
    expect(changes.every((c) => c.kind === 'added')).toBe(true)
    expect(changes.map((c) => c.path)).toContain('f.txt')
  })

  it('apply reproduces on the host exactly what the guest saw', async () => {
    const viaOverlay = layout()
    const plain = layout()
    const opts = (sandbox: string, data: string, mode: 'overlay' | 'rw') => ({
      env: { CAPLET_TEST: '1' },
      mounts: [
        { guest: '/sandbox', host: sandbox, mode, ...(mode === 'overlay' ? { apply: true } : {}) },
        { guest: '/data', host: data, mode: 'ro' as const },
      ],
    })
    const a = await run(fixtureWasm('diff_fileio'), opts(viaOverlay.sandbox, viaOverlay.data, 'overlay'))
    const b = await run(fixtureWasm('diff_fileio'), opts(plain.sandbox, plain.data, 'rw'))
    expect(a.overlays?.[0]?.applied).toBe(true)
    expect(text(a.stdout)).toBe(text(b.stdout))
    expect(listTree(viaOverlay.sandbox)).toEqual(listTree(plain.sandbox))
  })

  it('saveTo exports the changed files and a manifest of every change, deletions included', async () => {
    const l = layout()
    const out = join(mkdtempSync(join(tmpdir(), 'caplet-out-')), 'export')
    try {
      const r = await run(fixtureWasm('diff_fileio'), {
        env: { CAPLET_TEST: '1' },
        mounts: [
          { guest: '/sandbox', host: l.sandbox, mode: 'overlay', saveTo: out },
          { guest: '/data', host: l.data, mode: 'ro' },
        ],
      })
      expect(r.overlays?.[0]?.savedTo).toBe(out)
      const manifest = JSON.parse(readFileSync(join(out, '.caplet-overlay.json'), 'utf8')) as { changes: { path: string }[] }
      expect(manifest.changes).toEqual(r.overlays?.[0]?.changes)
      expect(readFileSync(join(out, 'f.txt')).byteLength).toBeGreaterThan(0)
      expect(readdirSync(out)).not.toContain('existing.txt')
    } finally {
      rmSync(join(out, '..'), { recursive: true, force: true })
    }
  })

  it('needs a host directory, and saveTo/apply need an overlay', async () => {
    const err = await run(fixtureWasm('diff_exit'), {
      mounts: [
        { guest: '/a', tmp: true, mode: 'overlay' },
        { guest: '/b', tmp: true, saveTo: '/tmp/x' },
      ],
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems.join('\n')).toMatch(/mounts\[0\].*overlay.*host/)
    expect((err as PolicyError).problems.join('\n')).toMatch(/mounts\[1\].*saveTo/)
  })
})

describe('overlapping mounts', () => {
  it('refuses two writable views of one host tree, and allows a read-only one', async () => {
    const l = layout()
    const err = await run(fixtureWasm('diff_exit'), {
      mounts: [
        { guest: '/a', host: l.sandbox },
        { guest: '/b', host: join(l.sandbox, 'olddir'), mode: 'overlay' },
      ],
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems.join('\n')).toMatch(/mounts\[1\]\.host: overlaps the writable mounts\[0\]\.host/)
    const ok = await run(fixtureWasm('diff_exit'), {
      args: ['diff_exit', '0'],
      mounts: [
        { guest: '/a', host: l.sandbox },
        { guest: '/b', host: join(l.sandbox, 'olddir'), mode: 'ro' },
      ],
    })
    expect(ok.exitCode).toBe(0)
  })
})

describe('quotas', () => {
  const big = (mounts: Parameters<typeof run>[1]) => run(fixtureWasm('flood'), { args: ['flood', 'big-write'], ...mounts })

  it('stop a guest filling an in-memory mount at its size, keeping what it wrote', async () => {
    const r = await big({
      mounts: [
        { guest: '/sandbox', tmp: true, size: '1MiB' },
        { guest: '/data', tmp: true },
      ],
    })
    expect(text(r.stdout)).toBe('big-write: 1048576 bytes (1 MiB) DQUOT\nbig-write: file size 1048576\n')
  })

  it('stop a guest filling a host directory: the disk never holds more than the quota', async () => {
    const l = layout()
    const r = await big({
      mounts: [
        { guest: '/sandbox', host: l.sandbox },
        { guest: '/data', host: l.data, mode: 'ro' },
      ],
      limits: { disk: '3MiB' },
    })
    expect(text(r.stdout)).toContain('DQUOT')
    const size = (d: string): number =>
      readdirSync(d).reduce((n, name) => {
        const st = lstatSync(join(d, name))
        return n + (st.isDirectory() ? size(join(d, name)) : st.size)
      }, 0)
    expect(size(l.sandbox) - 'from the host\ninner\n'.length).toBeLessThanOrEqual(3 * 1024 * 1024)
  })

  it('share a total across mounts, and count files created', async () => {
    const r = await run(fixtureWasm('flood'), {
      args: ['flood', 'files'],
      mounts: [
        { guest: '/sandbox', tmp: true },
        { guest: '/data', tmp: true },
      ],
      limits: { inodes: 10 },
    })
    expect(text(r.stdout)).toBe('files: 10 DQUOT\n')
  })

  it('apply to overlays too: the private layer cannot grow past the quota', async () => {
    const l = layout()
    const r = await big({
      mounts: [
        { guest: '/sandbox', host: l.sandbox, mode: 'overlay', size: '512KiB' },
        { guest: '/data', tmp: true },
      ],
    })
    expect(text(r.stdout)).toContain('big-write: 524288 bytes')
    expect(r.overlays?.[0]?.changes).toEqual([{ path: 'big', kind: 'added', type: 'file' }])
  })
})
