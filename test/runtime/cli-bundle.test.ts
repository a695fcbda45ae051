/**
 * The CLI's bundle (dist/cli.js, built by scripts/build.mjs): the main thread of a worker run
 * parses no WASI host. The in-process executor, host sockets and scripts are chunks that only
 * a run needing them imports; such runs still work from a fresh process.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DIST, staticGraph } from '../support/dist-graph.js'

const bin = resolve(import.meta.dirname, '../../bin/caplet.js')
const hello = resolve(import.meta.dirname, '../../samples/hello.wasm')
/** Source files whose code runs the guest on the caller's thread: esbuild names each in a comment. */
const HOST_SIDE = [
  'wasi-host/host.ts',
  'wasi-host/syscalls/fd.ts',
  'runtime/execute.ts',
  'wasi-host/node/net-service.ts',
  'runtime/script-guest.ts',
]

describe('the CLI bundle', () => {
  it('loads the WASI host, sockets and scripts only through dynamic imports', () => {
    const entry = readFileSync(join(DIST, 'cli.js'), 'utf8')
    const cli = /import\("\.\/(cli-[^"]+\.js)"\)/.exec(entry)
    expect(cli).not.toBeNull()
    const graph = staticGraph(cli![1]!, staticGraph('cli.js'))
    expect(graph.size).toBeGreaterThan(2)
    const all = [...graph.values()].join('\n')
    expect(all).toContain('// runtime/program.ts') // the graph is the one a run takes
    for (const file of HOST_SIDE) expect(all.includes(`// ${file}\n`), file).toBe(false)
    // …and each is in a chunk of dist/ a run can import.
    const lazy = [...all.matchAll(/import\("\.\/([^"]+\.js)"\)/g)].map((m) => readFileSync(join(DIST, m[1]!), 'utf8'))
    const reachable = lazy.map(
      (text, i) => [...staticGraph([...all.matchAll(/import\("\.\/([^"]+\.js)"\)/g)][i]![1]!).values()].join('\n') + text,
    )
    for (const file of HOST_SIDE)
      expect(
        reachable.some((t) => t.includes(`// ${file}\n`)),
        file,
      ).toBe(true)
  })

  it('runs a module on the worker and in process, with a policy error said as before', () => {
    const env = { PATH: process.env.PATH ?? '', CAPLET_NO_CACHE: '1' }
    for (const args of [
      ['run', hello],
      ['run', '--in-process', hello],
    ])
      expect(spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env })).toMatchObject({
        status: 0,
        stdout: 'hello from caplet\n',
        stderr: '',
      })
    const bad = spawnSync(process.execPath, [bin, 'run', '--in-process', '--timeout', '1s', hello], { encoding: 'utf8', env })
    expect(bad).toMatchObject({
      status: 125,
      stderr:
        "caplet: invalid policy: limits.timeout: needs isolation 'worker' (an in-process guest cannot be stopped mid-instruction; use limits.fuel)\n",
    })
  }, 60_000)
})
