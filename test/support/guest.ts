/**
 * @module Shared helpers for tests that run guest programs: the fixture layout (a writable
 * `/sandbox` and a read-only `/data`) on a real temp directory or in memory, and a runner.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { runSync, type MountSpec, type RunOptions, type RunResult } from '../../runtime/index.js'
import { memFsFromTree } from '../../wasi-host/index.js'

export const repoRoot = resolve(import.meta.dirname, '../..')
export const fixtureWasm = (name: string) => join(repoRoot, 'test/fixtures/wasm', `${name}.wasm`)
export const sampleWasm = (name: string) => join(repoRoot, 'samples', `${name}.wasm`)

/** The environment the fixtures expect. */
export const GUEST_ENV = { CAPLET_TEST: '1', HOME: '/home/guest' }

export const DATA_TREE = { 'a.txt': 'alpha\n', sub: { 'b.txt': 'bravo bravo\n' }, empty: {} }

export interface HostLayout {
  root: string
  sandbox: string
  data: string
  cleanup(): void
}

/** `<tmp>/sandbox` (empty) and `<tmp>/data` (DATA_TREE) on the real filesystem. */
export function makeHostLayout(): HostLayout {
  const root = mkdtempSync(join(tmpdir(), 'caplet-test-'))
  const sandbox = join(root, 'sandbox')
  const data = join(root, 'data')
  mkdirSync(sandbox)
  mkdirSync(join(data, 'sub'), { recursive: true })
  mkdirSync(join(data, 'empty'))
  writeFileSync(join(data, 'a.txt'), 'alpha\n')
  writeFileSync(join(data, 'sub', 'b.txt'), 'bravo bravo\n')
  return { root, sandbox, data, cleanup: () => rmSync(root, { recursive: true, force: true }) }
}

export type Backend = 'host' | 'memory'

/** Runs a guest with /sandbox (rw) and /data (ro) on the chosen backend. */
export function runWithLayout(wasm: string, backend: Backend, options: RunOptions = {}): RunResult & { layout?: HostLayout } {
  if (backend === 'memory') {
    const mounts: MountSpec[] = [
      { guest: '/sandbox', tmp: true },
      { guest: '/data', fs: memFsFromTree(DATA_TREE), mode: 'ro' },
    ]
    return runSync(wasm, { env: GUEST_ENV, ...options, mounts })
  }
  const layout = makeHostLayout()
  try {
    const mounts: MountSpec[] = [
      { guest: '/sandbox', host: layout.sandbox },
      { guest: '/data', host: layout.data, mode: 'ro' },
    ]
    return runSync(wasm, { env: GUEST_ENV, ...options, mounts })
  } finally {
    layout.cleanup()
  }
}

export const text = (b: Uint8Array) => new TextDecoder().decode(b)
