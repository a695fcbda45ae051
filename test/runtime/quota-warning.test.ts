import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const bin = join(root, 'bin/caplet.js')
const flood = join(root, 'test/fixtures/wasm/flood.wasm')
const caplet = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' })

describe('a guest that ignores writes a quota refused', () => {
  it('exits as it says, with one warning line at the end of the run', () => {
    const r = caplet(['run', '--tmp', '/sandbox', '--tmp', '/data', '--disk', '2MiB', flood, 'big-write'])
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/2097152 bytes.*DQUOT/)
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    expect(lines).toEqual([
      expect.stringMatching(
        /^caplet: warning: the guest exited 0, but 1 of its writes was refused by a quota \(EDQUOT.*files it wrote may be incomplete$/,
      ),
    ])
  })

  it('names it in --json (warnings), and says nothing when no write was refused', () => {
    const r = caplet(['run', '--json', '--tmp', '/sandbox', '--tmp', '/data', '--max-files', '5', flood, 'files'])
    expect(r.status).toBe(0)
    const j = JSON.parse(r.stdout) as { exitCode: number; stdout: string; warnings?: string[] }
    expect(j.stdout).toBe('files: 5 DQUOT\n')
    expect(j.warnings).toEqual([expect.stringMatching(/refused by a quota/)])
    const quiet = caplet(['run', '--json', '--tmp', '/sandbox', '--tmp', '/data', flood, 'files', '3'])
    expect(quiet.status).toBe(0)
    expect((JSON.parse(quiet.stdout) as { warnings?: string[] }).warnings).toBeUndefined()
  })
})
