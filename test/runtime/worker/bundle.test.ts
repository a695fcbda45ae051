/**
 * The sandbox worker's bundle (dist/worker.js, built by scripts/build.mjs): a .wasm run's worker
 * parses no JavaScript engine and no mount backend. QuickJS's driver and the mounts are chunks
 * of their own that only a job needing them imports; such a job still runs as a fresh worker's
 * first.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DIST as dist, staticGraph } from '../../support/dist-graph.js'

describe('the sandbox worker bundle', () => {
  it('loads the JavaScript engine only through a dynamic import', () => {
    const graph = staticGraph('worker.js')
    expect(graph.size).toBeGreaterThan(1) // the host code is a chunk the entry imports
    for (const [file, text] of graph) expect(text.includes('quickjs-wasi'), file).toBe(false)
    const lazy = /import\("\.\/(worker-script-run-[^"]+\.js)"\)/.exec(graph.get('worker.js')!)
    expect(lazy).not.toBeNull()
    expect(readFileSync(join(dist, lazy![1]!), 'utf8')).toContain('quickjs-wasi')
  })

  it('loads the mount backends only through a dynamic import', () => {
    const all = [...staticGraph('worker.js').values()].join('\n')
    const BACKENDS = ['runtime/mounts.ts', 'wasi-host/fs/mem-fs.ts', 'wasi-host/fs/overlay.ts', 'wasi-host/node/host-dir-fs.ts']
    for (const file of BACKENDS) expect(all.includes(`// ${file}\n`), file).toBe(false)
    const lazy = /import\("\.\/(worker-mounts-[^"]+\.js)"\)/.exec(all)
    expect(lazy).not.toBeNull()
    const mounts = [...staticGraph(lazy![1]!).values()].join('\n')
    for (const file of BACKENDS) expect(mounts.includes(`// ${file}\n`), file).toBe(true)
  })

  it('runs a script as the first job of a fresh worker (the driver loads on demand), and a .wasm', () => {
    const dir = mkdtempSync(join(tmpdir(), 'caplet-worker-bundle-'))
    try {
      writeFileSync(join(dir, 'a.js'), 'console.log("script", 6 * 7)\n')
      const bin = resolve(import.meta.dirname, '../../../bin/caplet.js')
      const env = { PATH: process.env.PATH ?? '', CAPLET_CACHE_DIR: join(dir, 'cache') }
      const script = spawnSync(process.execPath, [bin, 'run', join(dir, 'a.js')], { encoding: 'utf8', env })
      expect(script).toMatchObject({ status: 0, stdout: 'script 42\n' })
      const wasm = spawnSync(process.execPath, [bin, 'run', resolve(import.meta.dirname, '../../../samples/hello.wasm')], {
        encoding: 'utf8',
        env,
      })
      expect(wasm).toMatchObject({ status: 0, stdout: 'hello from caplet\n' })
      // A job with mounts, first in a fresh worker: a host directory read, and a tmp one listed.
      writeFileSync(join(dir, 'f.txt'), 'from the mount\n')
      const samples = resolve(import.meta.dirname, '../../../samples')
      const cat = spawnSync(process.execPath, [bin, 'run', '--dir', `${dir}:/data:ro`, join(samples, 'cat.wasm'), '/data/f.txt'], {
        encoding: 'utf8',
        env,
      })
      expect(cat).toMatchObject({ status: 0, stdout: 'from the mount\n' })
      const ls = spawnSync(process.execPath, [bin, 'run', '--tmp', '/t', join(samples, 'ls.wasm'), '/t'], { encoding: 'utf8', env })
      expect(ls).toMatchObject({ status: 0, stderr: '' })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
