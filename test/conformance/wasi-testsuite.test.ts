/**
 * @module Conformance: caplet's own C renderings of the upstream WASI preview1 test suite
 * (WebAssembly/wasi-testsuite, and wasmtime's crates/test-programs it came from), run on an
 * in-memory scratch directory and on a real host directory.
 *
 * Each `test/fixtures/wasm/conf_*.wasm` lists its scenarios (`--list`) and runs one per process,
 * printing `ok <scenario>.<check>` or `FAIL <scenario>.<check>: got … want …` and exiting 1 if any
 * check failed. `skip.json` names the checks where caplet deliberately differs from upstream; a
 * listed check must still print FAIL (an unexpected pass, or a check that no longer runs, fails the
 * test), so the list cannot go stale. See README.md for the map to the upstream files.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runSync, type RunResult } from '../../runtime/index.js'

type Backend = 'memory' | 'host'
const BACKENDS: readonly Backend[] = ['memory', 'host']

interface SkipEntry {
  /** `<program>/<scenario>.<check>`, e.g. `conf_fdtable/stdio_renumber_free.stdin_renumber_to_unused`. */
  test: string
  reason: string
  /**
   * Where the divergence is decided: `docs/<page>.md#<anchor>` (the project's design
   * documents), or an https link to the spec text or issue.
   */
  decision: string
  /** Only on these backends (default: all). */
  backends?: Backend[]
}

const here = import.meta.dirname
const repoRoot = resolve(here, '../..')
const wasmDir = join(repoRoot, 'test/fixtures/wasm')
const srcDir = join(repoRoot, 'test/fixtures/src')
const skips: SkipEntry[] = JSON.parse(readFileSync(join(here, 'skip.json'), 'utf8'))

const programs = readdirSync(wasmDir)
  .filter((f) => /^conf_[a-z0-9_]+\.wasm$/.test(f))
  .map((f) => f.slice(0, -'.wasm'.length))
  .sort()

const text = (b: Uint8Array) => new TextDecoder().decode(b)

function scenariosOf(program: string): string[] {
  const r = runSync(join(wasmDir, `${program}.wasm`), { args: [program, '--list'] })
  if (r.exitCode !== 0) throw new Error(`${program} --list exited ${r.exitCode}: ${text(r.stderr)}`)
  return text(r.stdout)
    .split('\n')
    .filter((l) => l.length > 0)
}

function runScenario(program: string, scenario: string, backend: Backend, env: Record<string, string> = {}): RunResult {
  const wasm = join(wasmDir, `${program}.wasm`)
  const common = { args: [program, scenario], stdin: '', env }
  if (backend === 'memory') return runSync(wasm, { ...common, mounts: [{ guest: '/sandbox', tmp: true }] })
  const dir = mkdtempSync(join(tmpdir(), 'caplet-conf-'))
  try {
    return runSync(wasm, {
      ...common,
      mounts: [{ guest: '/sandbox', host: dir }],
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

interface Outcome {
  passed: Set<string>
  failed: Map<string, string>
  /** Check names printed more than once: a skip entry could not tell them apart. */
  duplicates: string[]
}

function parse(stdout: string): Outcome {
  const passed = new Set<string>()
  const failed = new Map<string, string>()
  const duplicates: string[] = []
  for (const line of stdout.split('\n')) {
    let name: string
    if (line.startsWith('ok ')) {
      name = line.slice(3)
      if (passed.has(name) || failed.has(name)) duplicates.push(name)
      passed.add(name)
    } else if (line.startsWith('FAIL ')) {
      const rest = line.slice(5)
      const colon = rest.indexOf(': ')
      name = colon < 0 ? rest : rest.slice(0, colon)
      if (passed.has(name) || failed.has(name)) duplicates.push(name)
      failed.set(name, line)
    }
  }
  return { passed, failed, duplicates }
}

function skipsFor(program: string, scenario: string, backend: Backend): Map<string, SkipEntry> {
  const out = new Map<string, SkipEntry>()
  const prefix = `${program}/${scenario}.`
  for (const s of skips) {
    if (!s.test.startsWith(prefix)) continue
    if (s.backends && !s.backends.includes(backend)) continue
    out.set(s.test.slice(`${program}/`.length), s)
  }
  return out
}

const cases = programs.flatMap((program) => scenariosOf(program).map((scenario) => ({ program, scenario })))

describe.each(BACKENDS)('wasi-testsuite conformance (%s scratch dir)', (backend) => {
  it.each(cases)('$program $scenario', ({ program, scenario }) => {
    const r = runScenario(program, scenario, backend)
    const stdout = text(r.stdout)
    expect(r.trap, `${program} ${scenario} trapped\n${stdout}`).toBeUndefined()
    const { passed, failed, duplicates } = parse(stdout)
    expect(passed.size + failed.size, `no check lines\n${stdout}${text(r.stderr)}`).toBeGreaterThan(0)
    expect(duplicates, 'each check name must be printed once').toEqual([])
    const expected = skipsFor(program, scenario, backend)
    const unexpectedFailures = [...failed.entries()].filter(([name]) => !expected.has(name)).map(([, line]) => line)
    const unexpectedPasses = [...expected.keys()]
      .filter((name) => passed.has(name))
      .map((name) => `${program}/${name} is in skip.json but passed: remove the entry`)
    const notRun = [...expected.keys()]
      .filter((name) => !passed.has(name) && !failed.has(name))
      .map((name) => `${program}/${name} is in skip.json but did not run: fix or remove the entry`)
    expect({ unexpectedFailures, unexpectedPasses, notRun }).toEqual({ unexpectedFailures: [], unexpectedPasses: [], notRun: [] })
    expect(r.exitCode, stdout).toBe(failed.size > 0 ? 1 : 0)
  })
})

/**
 * caplet's own bar, beyond upstream's 100 ns: the timestamp scenarios again with a tolerance of
 * 0 ns (`|got - want| < 1`), so a time set through `fd_filestat_set_times` or
 * `path_filestat_set_times` reads back to the nanosecond on every backend (host directories
 * included, though Node's utimes keeps whole microseconds). Their times are the host's own
 * minus 2 ns, so never whole microseconds.
 */
const EXACT_TIME_SCENARIOS = [
  { program: 'conf_fileio', scenario: 'fd_filestat_set' },
  { program: 'conf_path_ops', scenario: 'path_filestat' },
  { program: 'conf_symlink', scenario: 'symlink_filestat' },
]

describe.each(BACKENDS)('exact nanosecond times (%s scratch dir)', (backend) => {
  it.each(EXACT_TIME_SCENARIOS)('$program $scenario with FS_TIME_PRECISION=1', ({ program, scenario }) => {
    const r = runScenario(program, scenario, backend, { FS_TIME_PRECISION: '1' })
    const stdout = text(r.stdout)
    const { passed, failed } = parse(stdout)
    const expected = skipsFor(program, scenario, backend)
    expect([...passed].filter((name) => /mtim|atim/.test(name)).length, stdout).toBeGreaterThan(0)
    expect([...failed.values()].filter((line) => !expected.has(line.slice(5).split(': ')[0]!))).toEqual([])
  })
})

describe('conformance bookkeeping', () => {
  it('every skip.json entry names a known scenario, a reason and a decision', () => {
    const known = new Set(cases.map((c) => `${c.program}/${c.scenario}`))
    for (const s of skips) {
      const slash = s.test.indexOf('/')
      const dot = s.test.indexOf('.', slash)
      expect(known.has(s.test.slice(0, dot)), s.test).toBe(true)
      expect(s.reason.length, s.test).toBeGreaterThan(20)
      expect(s.decision, s.test).toMatch(/^(docs\/[a-z-]+\.md#[a-z0-9-]+|https:\/\/)/)
      for (const b of s.backends ?? []) expect(BACKENDS).toContain(b)
    }
    expect(new Set(skips.map((s) => s.test)).size).toBe(skips.length)
  })

  it('every conf_*.c uses the shared helpers (output protocol, rights, scenario dispatch)', () => {
    const sources = readdirSync(srcDir).filter((f) => /^conf_.*\.c$/.test(f))
    expect(sources.length).toBe(programs.length)
    for (const f of sources) expect(readFileSync(join(srcDir, f), 'utf8'), f).toContain('#include "conf_common.h"')
  })
})
