/**
 * The committed guest binaries are exactly what our own C sources build to: rebuild every
 * fixture and sample from source in a scratch copy and compare byte for byte. (This is also
 * why .ci/run installs clang-19 and wasi-libc.) Without clang the other tests still run on the
 * committed binaries; this one cannot, and says so.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from './support/guest.js'

const hasClang = spawnSync('clang-19', ['--version']).status === 0

describe('guest binaries', () => {
  it.skipIf(!hasClang)(
    'are reproducible from our C sources (needs clang-19 for wasm32-wasi)',
    () => {
      const scratch = mkdtempSync(join(tmpdir(), 'caplet-fixtures-'))
      try {
        mkdirSync(join(scratch, 'test/fixtures'), { recursive: true })
        cpSync(join(repoRoot, 'test/fixtures/src'), join(scratch, 'test/fixtures/src'), { recursive: true })
        cpSync(join(repoRoot, 'test/fixtures/build.sh'), join(scratch, 'test/fixtures/build.sh'))
        mkdirSync(join(scratch, 'samples'))
        for (const f of readdirSync(join(repoRoot, 'samples')).filter((n) => n.endsWith('.c') || n.endsWith('.h'))) {
          cpSync(join(repoRoot, 'samples', f), join(scratch, 'samples', f))
        }
        execFileSync('bash', [join(scratch, 'test/fixtures/build.sh')], { stdio: 'pipe' })
        const pairs: [string, string][] = [
          ['test/fixtures/wasm', 'test/fixtures/wasm'],
          ['samples', 'samples'],
        ]
        const differing: string[] = []
        let compared = 0
        for (const [built, committed] of pairs) {
          const names = readdirSync(join(scratch, built)).filter((n) => n.endsWith('.wasm'))
          expect(names.sort()).toEqual(
            readdirSync(join(repoRoot, committed))
              .filter((n) => n.endsWith('.wasm'))
              .sort(),
          )
          for (const n of names) {
            compared++
            if (!readFileSync(join(scratch, built, n)).equals(readFileSync(join(repoRoot, committed, n))))
              differing.push(`${committed}/${n}`)
          }
        }
        expect(differing).toEqual([])
        expect(compared).toBeGreaterThan(30)
      } finally {
        rmSync(scratch, { recursive: true, force: true })
      }
    },
    120_000,
  )
})
