/**
 * Red-team: the module pipeline runs on the caller's thread, on untrusted bytes, before any
 * limit (worker, timeout, fuel) applies. It must be linear in the module's size.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { tierHints } from '../../runtime/instrument/index.js'
import { repoRoot } from '../support/guest.js'
import { u32 } from '../runtime/instrument/wasm.js'

const scratch = mkdtempSync(join(tmpdir(), 'caplet-redteam-mod-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/**
 * n functions, f_i calling f_{i-1} once (outside any loop), `_start` = f_{n-1}: a chain whose
 * edges are listed callee-last, so a spine search that iterated passes over all edges until
 * nothing changed would take n passes x n edges (`startSpine`, `instrument/tier-hints.ts`).
 */
function chain(n: number): Uint8Array {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  const section = (id: number, p: number[]) => {
    out.push(id, ...u32(p.length))
    for (const b of p) out.push(b)
  }
  const str = (s: string) => {
    const b = [...new TextEncoder().encode(s)]
    return [...u32(b.length), ...b]
  }
  section(1, [1, 0x60, 0, 0])
  const fsec = [...u32(n)]
  for (let i = 0; i < n; i++) fsec.push(0)
  section(3, fsec)
  section(5, [1, 0x00, 1])
  section(7, [2, ...str('memory'), 0x02, 0, ...str('_start'), 0x00, ...u32(n - 1)])
  const code = [...u32(n)]
  for (let i = 0; i < n; i++) {
    const body = i === 0 ? [0, 0x0b] : [0, 0x10, ...u32(i - 1), 0x0b]
    code.push(...u32(body.length))
    for (const b of body) code.push(b)
  }
  section(10, code)
  return new Uint8Array(out)
}

describe('redteam module pipeline', () => {
  it('tier hints on a short call chain (2,000 functions) come back at once, with nothing to hint', () => {
    expect(tierHints(chain(2000), 'auto')).toBeUndefined() // no loops: nothing to hint
  })

  // The spine search runs on the caller's thread, inside `run()`/`runSync()`/`loadModule`, before
  // the worker starts and before `limits.timeout` is armed. It was once a fixpoint over every
  // once-called edge (O(functions^2): 40,000 functions, 300 KB, took 5.8 s); it is now one
  // breadth-first walk. A 60,000-function chain must load and run within the 3 s this allows.
  it('run() with a 1 s timeout returns within seconds for a 450 KB module (linear pipeline)', () => {
    const wasm = join(scratch, 'chain.wasm')
    writeFileSync(wasm, chain(60_000))
    const script = join(scratch, 'main.mjs')
    writeFileSync(
      script,
      `
      const caplet = await import(${JSON.stringify(pathToFileURL(join(repoRoot, 'dist/index.js')).href)})
      const r = await caplet.run(${JSON.stringify(wasm)}, { limits: { timeout: '1s' } })
      console.log(JSON.stringify({ exitCode: r.exitCode }))
      process.exit(0)
    `,
    )
    const r = spawnSync(process.execPath, [script], { timeout: 3000, encoding: 'utf8', killSignal: 'SIGKILL' })
    expect({ killed: r.signal === 'SIGKILL', status: r.status }).toEqual({ killed: false, status: 0 })
  })
})
