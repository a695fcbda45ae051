/**
 * `caplet run main.ts` bundles the script once: the bundle that finds the files it reads is the
 * one `compile()` type-checks and caches (the hand-off in toolchain/js/index.ts), never a second
 * esbuild build. The hand-off is taken only for the very files read: a change means a new build.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest'

const builds = vi.hoisted(() => ({ count: 0 }))
vi.mock('esbuild', async (original) => {
  const esbuild = await original<typeof import('esbuild')>()
  const build: typeof esbuild.build = (options) => {
    builds.count++
    return esbuild.build(options)
  }
  return { ...esbuild, build, default: { ...esbuild, build } }
})

const { compileScriptForCli, newBuildFlags } = await import('../../runtime/cli-compile.js')
const { compileScript } = await import('../../toolchain/js/index.js')
const { compile } = await import('../../toolchain/index.js')

const dir = mkdtempSync(join(tmpdir(), 'caplet-bundle-once-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
beforeEach(() => {
  builds.count = 0
})

function cliCompile(entry: string, flags: Partial<ReturnType<typeof newBuildFlags>> = {}) {
  const errors: string[] = []
  const io = { err: (s: string) => errors.push(s), env: { CAPLET_CACHE_DIR: join(dir, 'cache') } }
  return compileScriptForCli(join(dir, entry), 'typescript', { ...newBuildFlags(), quiet: true, ...flags }, io).then((r) => ({
    r,
    errors,
  }))
}

describe('caplet run SCRIPT.ts bundles once', () => {
  it('without the cache, with a cache miss and with a cache hit: one esbuild build each', async () => {
    writeFileSync(join(dir, 'main.ts'), 'import { k } from "./k.ts"\nconsole.log(k + 1)\n')
    writeFileSync(join(dir, 'k.ts'), 'export const k: number = 41\n')
    for (const flags of [{ noCache: true, noCheck: true }, { noCheck: true }, { noCheck: true }, {}]) {
      builds.count = 0
      const { r, errors } = await cliCompile('main.ts', flags)
      expect(typeof r, errors.join('')).toBe('object')
      expect((r as { code: string }).code).toContain('k + 1')
      expect(builds.count, JSON.stringify(flags)).toBe(1)
    }
  })

  it('the hand-off is for the very files read: other text, another file, another entry or loader bundle anew', async () => {
    const files = { 'a.ts': 'import "./b.ts"\nconsole.log(1)\n', 'b.ts': 'console.log(2)\n' }
    const read = (name: string) => files[name as keyof typeof files]
    const first = await compileScript({ files: read, entry: 'a.ts' })
    expect(builds.count).toBe(1)
    for (const other of [
      { files: { ...files, 'b.ts': 'console.log(3)\n' }, entry: 'a.ts' },
      { files: { ...files, 'c.ts': '' }, entry: 'a.ts' },
      { files: { 'a.ts': files['a.ts'] }, entry: 'a.ts' },
      { files, entry: 'b.ts' },
      { files, entry: 'a.ts', loader: 'js' as const },
    ]) {
      const before = builds.count
      await compileScript(other)
      expect(builds.count, JSON.stringify(other)).toBe(before + 1)
    }
    // A changed file after the probe: compile() bundles what it was given, not the probe's bundle.
    builds.count = 0
    await compileScript({ files: read, entry: 'a.ts' })
    const changed = await compile({
      language: 'typescript',
      files: { ...files, 'b.ts': 'console.log(4)\n' },
      entry: 'a.ts',
      options: { cache: false, typeCheck: false },
    })
    expect(builds.count).toBe(2)
    expect(changed.program.code).toContain('console.log(4)')
    // The same files: taken once, then gone.
    builds.count = 0
    await compileScript({ files: read, entry: 'a.ts' })
    const same = await compileScript({ files, entry: 'a.ts' })
    await compileScript({ files, entry: 'a.ts' })
    expect(builds.count).toBe(2)
    expect(same.program!.code).toBe(first.program!.code)
  })
})
