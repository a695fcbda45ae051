import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run, runSync } from '../../runtime/index.js'
import { ROOT } from './instrument/wasm.js'

const bin = join(ROOT, 'bin/caplet.js')
const hello = join(ROOT, 'samples/hello.wasm')
const caplet = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: '' })
let tmp: string
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'caplet-trace-'))
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('--trace', () => {
  it('prints each host call to stderr, and the guest output is unchanged', () => {
    const r = caplet(['run', '--trace', hello])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('hello from caplet\n')
    expect(r.stderr).toMatch(/^caplet trace: fd_write\(1, \d+ iovs? 18 bytes\) = 0 \(n=18\)$/m)
  })

  it('--trace=FILE --trace-format json writes one JSON object per call', () => {
    const file = join(tmp, 't.jsonl')
    const r = caplet(['run', `--trace=${file}`, '--trace-format', 'json', hello])
    expect(r.status).toBe(0)
    expect(r.stderr).toBe('')
    const events = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { call: string; result: string })
    expect(events.some((e) => e.call === 'fd_write' && e.result === 'SUCCESS')).toBe(true)
  })

  it('--trace=summary prints the strace -c table at the end', () => {
    const r = caplet(['run', '--trace=summary', hello])
    expect(r.stderr).toMatch(/% time +total us +us\/call +calls +errors syscall/)
    expect(r.stderr).toMatch(/ fd_write\n/)
    expect(r.stderr).toMatch(/ total\n$/)
  })

  it('trace: sink receives lines in a worker and in-process; summary lands in the result', async () => {
    const lines: string[] = []
    await run(hello, { trace: (l) => lines.push(l), stdout: 'discard' })
    expect(lines.some((l) => l.startsWith('fd_write(1,'))).toBe(true)
    const inproc: string[] = []
    runSync(hello, { trace: { sink: (l) => inproc.push(l), format: 'json' }, stdout: 'discard' })
    expect(JSON.parse(inproc[0]!)).toHaveProperty('call')
    const s = runSync(hello, { trace: { summary: true }, stdout: 'discard' })
    expect(s.traceSummary!.find((r) => r.call === 'fd_write')).toMatchObject({ calls: 1, errors: 0 })
    expect(runSync(hello, { stdout: 'discard' }).traceSummary).toBeUndefined()
  })
})

describe('import flags on the command line', () => {
  it('--deny-syscalls refuses, --stub-denied-syscalls runs with ENOSYS', () => {
    const refused = caplet(['run', '--deny-syscalls', 'fd_write', hello])
    expect(refused.status).toBe(126)
    expect(refused.stderr).toMatch(/denies: fd_write \(allow them with --allow-syscalls fd_write/)
    const stubbed = caplet(['run', '--deny-syscalls', 'fd_write', '--stub-denied-syscalls', '--explain-denials', hello])
    expect(stubbed.stdout).toBe('')
    expect(stubbed.stderr).toMatch(
      /the guest called fd_write: fd_write is not in the policy's syscall allow-list \(it returned ENOSYS\) \(grant with --allow-syscalls fd_write\)/,
    )
  })

  it('--allow-syscalls with a name that is no WASI function is a usage error', () => {
    const r = caplet(['run', '--allow-syscalls', 'fd_write,fork', hello])
    expect(r.status).toBe(125)
    expect(r.stderr).toMatch(/not wasi_snapshot_preview1 functions: "fork"/)
  })
})

describe('--explain and --dry-run', () => {
  it('--dry-run prints the exposure, flags what is unlimited, and runs nothing', () => {
    const r = caplet(['run', '--dry-run', '--tmp', '/scratch', '--env', 'K=v', hello])
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^caplet: what this run grants the guest$/m)
    expect(r.stderr).toMatch(/^ {2}writes +\/scratch \(in memory, at most 256 MiB\)$/m)
    expect(r.stderr).toMatch(/^ {2}env +K$/m)
    expect(r.stderr).toMatch(/^ {2}UNLIMITED: time \(--timeout, --fuel\), output \(--max-output\)$/m)
    expect(r.stderr).toMatch(/dry run: .* nothing ran/)
  })

  it('--explain with limits set flags nothing, then runs', () => {
    const r = caplet(['run', '--explain', '--timeout', '5s', '--max-output', '1MiB', hello])
    expect(r.stdout).toBe('hello from caplet\n')
    expect(r.stderr).not.toMatch(/UNLIMITED:/)
    expect(r.stderr).toMatch(/time +5000 ms/)
  })

  it('--dry-run still refuses a module that could not start', () => {
    const r = caplet(['run', '--dry-run', join(ROOT, 'test/fixtures/inspect/indirect_import.wasm')])
    expect(r.status).toBe(126)
  })
})
