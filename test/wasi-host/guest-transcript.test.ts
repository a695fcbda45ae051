/**
 * Golden transcripts: the raw-API conformance guest (`syscalls.c`, every preview1 group with its
 * success and error paths) prints one line per call and result. The transcript is pinned in
 * `test/fixtures/golden/`, so any change of behaviour is a deliberate, reviewed diff. The
 * host-directory backend has its own transcript: there, links the guest creates are seen by host
 * programs, so targets that climb with `..` are refused (see `PreopenSpec.hostVisible`); the
 * test also checks that this is the only difference. Regenerate with
 * `UPDATE_GOLDEN=1 npx vitest run test/wasi-host/guest-transcript.test.ts`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fixtureWasm, repoRoot, runWithLayout, text, type Backend } from '../support/guest.js'

const GOLDEN = [
  ['syscalls', ['all']],
  ['rights', ['all']],
  ['escape', ['all']],
] as const

describe.each(['memory', 'host'] as Backend[])('guest transcripts on the %s backend', (backend) => {
  it.each(GOLDEN)('%s %j matches its golden transcript', (name, args) => {
    const r = runWithLayout(fixtureWasm(name), backend, { args: [name, ...args] })
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(0)
    const file = join(repoRoot, 'test/fixtures/golden', `${name}-${args.join('-')}${backend === 'host' ? '.host' : ''}.txt`)
    if (process.env.UPDATE_GOLDEN) writeFileSync(file, r.stdout)
    expect(existsSync(file)).toBe(true)
    expect(text(r.stdout)).toBe(readFileSync(file, 'utf8'))
  })
})
