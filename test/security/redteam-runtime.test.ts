/**
 * Red-team: the runtime's limits (fuel, time, memory, disk, output, descriptors) and the
 * survival of the host process (invariants 7 and 8). Attacks that could wedge or kill the test
 * process itself run in a child `node` on the built bundle (`dist/index.js`, `npm run build`),
 * with a hard kill timeout; a test then fails if the child hung or died.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { ModuleError, PolicyError, resolvePolicy, run, runSync } from '../../runtime/index.js'
import { parseArgs } from '../../runtime/cli.js'
import { fixtureWasm, repoRoot, text } from '../support/guest.js'
import { buildModule, FUNCREF, I32, I64, op, u32 } from '../runtime/instrument/wasm.js'

const scratch = mkdtempSync(join(tmpdir(), 'caplet-redteam-rt-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const RED_AMP = fixtureWasm('red_amp')
const DIST = pathToFileURL(join(repoRoot, 'dist/index.js')).href

/**
 * Runs `body` (an async function body with `caplet` = the built API and `wasm` = the module
 * path) in a child node; returns its exit status, signal, output and whether it was killed.
 */
function inChild(
  wasm: Uint8Array | string,
  body: string,
  opts: { timeoutMs: number; heapMb?: number; extraFiles?: Record<string, Uint8Array> },
): {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  killed: boolean
} {
  const dir = mkdtempSync(join(scratch, 'child-'))
  const wasmPath = typeof wasm === 'string' ? wasm : join(dir, 'm.wasm')
  if (typeof wasm !== 'string') writeFileSync(wasmPath, wasm)
  for (const [name, bytes] of Object.entries(opts.extraFiles ?? {})) writeFileSync(join(dir, name), bytes)
  const script = join(dir, 'main.mjs')
  writeFileSync(script, `const caplet = await import(${JSON.stringify(DIST)});\nconst wasm = ${JSON.stringify(wasmPath)};\n${body}\n`)
  const args = [...(opts.heapMb ? [`--max-old-space-size=${opts.heapMb}`] : []), script]
  const r = spawnSync(process.execPath, args, { timeout: opts.timeoutMs, encoding: 'utf8', killSignal: 'SIGKILL' })
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, killed: r.signal === 'SIGKILL' && r.status === null }
}

/** A raw module from sections given as [id, payload] pairs (for what buildModule cannot say). */
function rawModule(sections: [number, number[]][]): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  for (const [id, p] of sections) out.push(id, ...u32(p.length), ...p)
  return new Uint8Array(out)
}
const vec = (items: number[][]) => [...u32(items.length), ...items.flat()]
const str = (s: string) => {
  const b = [...new TextEncoder().encode(s)]
  return [...u32(b.length), ...b]
}

/** (module (memory (export "memory") 1) (table × n, min `size` funcref) (func (export "_start"))) */
function manyTables(n: number, size: number): Uint8Array {
  return rawModule([
    [1, vec([[0x60, 0, 0]])],
    [3, vec([[0]])],
    [4, vec(Array.from({ length: n }, () => [FUNCREF, 0x00, ...u32(size)]))],
    [5, vec([[0x00, 1]])],
    [
      7,
      vec([
        [...str('memory'), 0x02, 0],
        [...str('_start'), 0x00, 0],
      ]),
    ],
    [10, vec([[2, 0, op.end]])],
  ])
}

describe('redteam runtime: the host process survives (invariant 8)', () => {
  // FINDING: in-process runs (runSync, isolation 'in-process') are bounded by fuel alone, but a
  // host call costs one unit of fuel however long it blocks: poll_oneoff on a clock sleeps on
  // the caller's thread for as long as the guest asks (blockingSleep, Atomics.wait), an hour
  // here, 2^64 ns at most. The host thread is wedged; fuel never runs out.
  it('in-process with a fuel budget: a guest cannot block the host thread in poll_oneoff', () => {
    const c = inChild(
      RED_AMP,
      `
      const r = caplet.runSync(wasm, { args: ['red_amp', 'sleep', '3600'], limits: { fuel: 100000 } })
      console.log(JSON.stringify({ exitCode: r.exitCode, limit: r.limit, out: new TextDecoder().decode(r.stdout) }))
    `,
      { timeoutMs: 3000 },
    )
    expect({ killed: c.killed, status: c.status }).toEqual({ killed: false, status: 0 })
  })

  it('in a worker with a timeout, the same sleep is cut short and the pool serves the next run', async () => {
    const t0 = performance.now()
    const r = await run(RED_AMP, { args: ['red_amp', 'sleep', '3600'], limits: { timeout: '300ms' } })
    expect(r.limit).toBe('timeout')
    expect(performance.now() - t0).toBeLessThan(10_000)
    const ok = await run(RED_AMP, { args: ['red_amp', 'sleep', '0'], limits: { timeout: '5s' } })
    expect(text(ok.stdout)).toBe('slept: ok\n')
  })

  // FINDING (critical): the memory cap rewrites memories only; tables are neither capped nor
  // counted. A ~70-byte module with a 1-page memory declares two tables of 10^7 funcref (V8's
  // per-table maximum; reference types allow many tables): ~160 MB of V8 heap each. In the
  // default worker isolation this does not end as ERR_WORKER_OUT_OF_MEMORY: V8 reaches its heap
  // limit inside the table allocation and calls FatalProcessOutOfMemory, which aborts the whole
  // host process (SIGABRT), every other run with it. Any guest, default policy.
  it('in a worker (the default): a module declaring huge tables cannot kill the host process', () => {
    const c = inChild(
      manyTables(2, 10_000_000),
      `
      const r = await caplet.run(wasm, { limits: { memory: '64KiB', timeout: '20s' } })
        .catch((e) => ({ refused: e.name, tables: /table/.test(e.message) }))
      const next = await caplet.run(wasm.replace(/m\.wasm$/, 'ok.wasm'), { limits: { timeout: '5s' } }).catch((e) => ({ exitCode: String(e) }))
      console.log(JSON.stringify({ ...(r.refused ? r : { exitCode: r.exitCode, trap: r.trap?.kind }), next: next.exitCode }))
      process.exit(0)
    `,
      { timeoutMs: 25_000, extraFiles: { 'ok.wasm': manyTables(1, 1) } },
    )
    expect({ signal: c.signal, status: c.status, fatal: /FATAL|heap out of memory/.test(c.stderr) }).toEqual({
      signal: null,
      status: 0,
      fatal: false,
    })
    // Refused before it runs (the table cap), or at worst a host-fault result; never a dead host.
    expect([
      { refused: 'ModuleError', tables: true, next: 0 },
      { exitCode: 134, trap: 'host-fault', next: 0 },
    ]).toContainEqual(JSON.parse(c.stdout))
  }, 30_000)

  // Same attack, in-process: the host's own heap (here 256 MB, 3 tables; with the default heap
  // about 30 tables, still a 200-byte module).
  it('in-process: tables cannot exhaust the host heap (the process survives with a result)', () => {
    const c = inChild(
      manyTables(3, 10_000_000),
      `
      let out
      try {
        const r = caplet.runSync(wasm, { limits: { memory: '64KiB' } })
        out = { exitCode: r.exitCode, trap: r.trap?.kind }
      } catch (e) { out = { rejected: String(e) } }
      console.log(JSON.stringify(out))
    `,
      { timeoutMs: 20_000, heapMb: 256 },
    )
    expect({ killed: c.killed, signal: c.signal, status: c.status, fatal: /FATAL|heap out of memory/.test(c.stderr) }).toEqual({
      killed: false,
      signal: null,
      status: 0,
      fatal: false,
    })
  }, 30_000)

  // fd_readdir snapshots the whole listing per descriptor at cookie 0 and keeps it while the
  // descriptor lives: the host holds (open dir fds) x (entries), far beyond what the guest's own
  // quotas charge. In a worker the heap limit catches it (regression below); in-process it is
  // the host's own heap (FINDING, shown with a 128 MB heap: 12,000 names x 300 descriptors).
  // With the listing budget (FdTable.maxListedEntries) the run now completes; before it, the
  // worker's heap limit turned it into a host-fault result. Either way the host survives.
  it('in a worker: filling the heap with directory listings ends the run with a result', () => {
    const c = inChild(
      RED_AMP,
      `
      const r = await caplet.run(wasm, { args: ['red_amp', 'listings', '20000', '400'], mounts: [{ guest: '/t', tmp: true }], limits: { timeout: '60s' } })
      console.log(JSON.stringify({ exitCode: r.exitCode, trap: r.trap?.kind }))
      process.exit(0)
    `,
      { timeoutMs: 25_000 },
    )
    expect({ signal: c.signal, status: c.status }).toEqual({ signal: null, status: 0 })
    expect([{ exitCode: 0 }, { exitCode: 134, trap: 'host-fault' }]).toContainEqual(JSON.parse(c.stdout))
  }, 30_000)

  it('in-process: directory listings held per descriptor cannot exhaust the host heap', () => {
    const c = inChild(
      RED_AMP,
      `
      let out
      try {
        const r = caplet.runSync(wasm, { args: ['red_amp', 'listings', '12000', '300'], mounts: [{ guest: '/t', tmp: true }], limits: { fuel: 1e10 } })
        out = { exitCode: r.exitCode, stdout: new TextDecoder().decode(r.stdout) }
      } catch (e) { out = { rejected: String(e) } }
      console.log(JSON.stringify(out))
    `,
      { timeoutMs: 25_000, heapMb: 128 },
    )
    expect({ killed: c.killed, signal: c.signal, status: c.status, fatal: /FATAL|heap out of memory/.test(c.stderr) }).toEqual({
      killed: false,
      signal: null,
      status: 0,
      fatal: false,
    })
  }, 30_000)

  it('pooled workers: a guest that leaves descriptors open leaks no host fd into the next run', async () => {
    const host = mkdtempSync(join(scratch, 'fds-'))
    const count = () => readdirSync('/proc/self/fd').length
    // Warm the pool so its own fds are already counted.
    await run(RED_AMP, { args: ['red_amp', 'sleep', '0'], limits: { timeout: '5s' } })
    const before = count()
    for (let i = 0; i < 4; i++) {
      const r = await run(RED_AMP, { args: ['red_amp', 'fds'], mounts: [{ guest: '/d', host }], limits: { timeout: '10s', fds: 200 } })
      expect(text(r.stdout)).toBe('fds: 196 MFILE\n')
    }
    expect(count()).toBeLessThanOrEqual(before)
  })
})

describe('redteam runtime: limits that a guest can exceed (invariant 7)', () => {
  // FINDING (policy defaults): docs/security.md invariant 7 says every resource is bounded, but with
  // no limits given a run has neither fuel nor a timeout (a guest may run forever and hold a
  // pooled worker), a `tmp` mount has no size (host memory, see below), and output that is not
  // captured (`inherit`, which the CLI always uses without --json) has no byte limit.
  // DECISION: time and inherited output are not bounded by default, as with wasmtime and docker
  // (a long computation or a program streaming to a terminal is legitimate); a caller running
  // untrusted code sets limits.timeout / fuel / stdout (README). Memory, tables and every
  // in-memory layer are bounded by default, because they are the host's own memory.
  it('the default policy bounds memory and in-memory mount bytes (tmp and overlay layers)', () => {
    const p = resolvePolicy({
      mounts: [
        { guest: '/t', tmp: true },
        { guest: '/o', host: '.', mode: 'overlay' },
      ],
      stdout: 'inherit',
      stderr: 'inherit',
    })
    expect({ memory: p.limits.memoryPages, tmp: p.mounts[0]!.bytes, overlay: p.mounts[1]!.bytes }).toEqual({
      memory: (1 << 30) / 65536,
      tmp: 256 << 20,
      overlay: 256 << 20,
    })
  })

  // FINDING (design): one unit of fuel per instruction "whatever it does" lets memory.fill /
  // memory.copy (and host calls: an aliasing 2 GiB fd_write costs ~6) do unbounded work per unit.
  // In-process runs rely on fuel alone to stop a guest, so the budget does not bound time.
  // Fixed: bulk operations are charged one unit per 64 elements of their length operand
  // (runtime/instrument/fuel.ts, BULK_SHIFT); host calls likewise, one unit per 64 bytes they
  // move (`HostState.chargeWork`).
  it('fuel bounds work: 2,000 units cannot buy 40 fills of 64 MiB (2.5 GiB of stores)', () => {
    // (memory 1024) (func _start (local i32) (loop (memory.fill 0 0x55 64MiB) (br_if 0 (i32.lt_s (local.tee 0 (i32.add (local.get 0) 1)) 40))))
    const m = buildModule({
      memory: [0x00, ...u32(1024)],
      funcs: [
        {
          locals: [I32],
          body: [
            op.loop,
            op.void,
            op.i32_const,
            0,
            op.i32_const,
            ...sleb(0x55),
            op.i32_const,
            ...sleb(64 << 20),
            0xfc,
            ...u32(11),
            0x00,
            op.local_get,
            0,
            op.i32_const,
            1,
            op.i32_add,
            op.local_tee,
            0,
            op.i32_const,
            40,
            op.i32_lt_s,
            op.br_if,
            0,
            op.end,
          ],
          export: '_start',
        },
      ],
    })
    const r = runSync(m, { limits: { fuel: 2000 } })
    expect({ limit: r.limit, fuelUsed: r.stats.fuelUsed }).toMatchObject({ limit: 'fuel' })
  })

  // FINDING: a `tmp` mount without a size, and no `limits.disk`, is unbounded, and it lives in
  // the host process's memory (MemFs ArrayBuffers, outside any worker heap limit). Aliasing
  // iovecs let a guest with 256 KiB of linear memory push 64 MiB per call into it.
  it('a tmp mount without an explicit size has a bound: 512 MiB from a 256 KiB guest is refused', () => {
    const before = process.memoryUsage().arrayBuffers
    let peak = 0
    let out = ''
    runSync(RED_AMP, {
      args: ['red_amp', 'alias-write', '512'],
      mounts: [{ guest: '/t', tmp: true }],
      limits: { memory: '256KiB' },
      stdout: (c) => {
        peak = process.memoryUsage().arrayBuffers - before
        out += text(c)
      },
    })
    const written = Number(/alias-write: (\d+)/.exec(out)?.[1] ?? 'NaN')
    expect(Number.isNaN(written)).toBe(false)
    // Observed: "alias-write: 512 ok", with ~512 MiB more ArrayBuffer memory held by the host.
    expect(written, `host held ${Math.round(peak / 2 ** 20)} MiB`).toBeLessThan(512)
    expect(Math.round(peak / 2 ** 20), 'MiB of ArrayBuffers the host held for the guest').toBeLessThan(512)
  })

  it('with a size, the tmp mount stops the same guest at its quota (EDQUOT)', () => {
    let out = ''
    runSync(RED_AMP, {
      args: ['red_amp', 'alias-write', '512'],
      mounts: [{ guest: '/t', tmp: true, size: '100MiB' }],
      limits: { memory: '256KiB' },
      stdout: (c) => {
        out += text(c)
      },
    })
    // 100 MiB land in the file; the call that crosses the quota reports DQUOT for the whole call
    // (the partial count is lost), so the guest may only have seen 64.
    expect(out).toMatch(/^alias-write: (64|100) DQUOT\n$/)
  })

  // FINDING (low): the quota charges bytes of content, symlink targets and hard-link names, but a
  // new empty file costs 0 bytes, whatever its name: with `disk` set and no `inodes`, directory
  // growth (names, inodes) is unbounded. quota.ts charges LINK_NAME_BYTES to hard links for this
  // very reason ("left free, link in a loop would grow a directory without bound").
  it('limits.disk alone bounds names too: 5,000 empty files with 240-byte names do not fit in 64 KiB', () => {
    let out = ''
    runSync(RED_AMP, {
      args: ['red_amp', 'empties', '5000', '240'],
      mounts: [{ guest: '/t', tmp: true }],
      limits: { disk: '64KiB' },
      stdout: (c) => {
        out += text(c)
      },
    })
    expect(out).not.toBe('empties: 5000 ok\n')
  })

  // FINDING: on an overlay mount the quota wraps the overlay, and copy-up is not growth: opening
  // a lower file for writing (or setting its times) copies it whole into the in-memory upper
  // layer uncharged; and a lower file read in place, unlinked, then set-timed through each of N
  // open handles is copied N times into private scratch files (overlay.ts `#copyUpSelf`).
  // `limits.disk: 1MiB` thus lets a guest make the host hold (maxFds x largest lower file).
  it('overlay: disk 1MiB bounds the host memory a guest can make the overlay hold', () => {
    const lower = mkdtempSync(join(scratch, 'lower-'))
    writeFileSync(join(lower, 'big.bin'), Buffer.alloc(8 << 20, 0x41))
    const before = process.memoryUsage().arrayBuffers
    let peak = 0
    let out = ''
    runSync(RED_AMP, {
      args: ['red_amp', 'scratch', 'big.bin', '40'],
      mounts: [{ guest: '/o', host: lower, mode: 'overlay' }],
      limits: { disk: '1MiB' },
      stdout: (c) => {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - before)
        out += text(c)
      },
    })
    expect(out).toMatch(/^scratch: \d+/)
    // Up to 40 x 8 MiB = 320 MiB held for a guest allowed 1 MiB (observed: ~190-320 MiB).
    expect(Math.round(peak / 2 ** 20), out).toBeLessThan(64)
  })

  it('overlay: copy-up of lower files by opening them for writing is charged against limits.disk', () => {
    const lower = mkdtempSync(join(scratch, 'lower-'))
    for (let i = 0; i < 4; i++) writeFileSync(join(lower, `f${i}.bin`), Buffer.alloc(4 << 20, 0x42))
    let out = ''
    runSync(RED_AMP, {
      args: ['red_amp', 'copyup', 'f0.bin', 'f1.bin', 'f2.bin', 'f3.bin'],
      mounts: [{ guest: '/o', host: lower, mode: 'overlay' }],
      limits: { disk: '1MiB' },
      stdout: (c) => {
        out += text(c)
      },
    })
    // 16 MiB copied into host memory with a 1 MiB budget.
    expect(out).not.toBe('copyup: 4 ok\n')
  })
})

describe('redteam runtime: module features the limits must cover', () => {
  it('multiple memories, memory64, and imported memory/table/global are refused', () => {
    const twoMem = rawModule([
      [1, vec([[0x60, 0, 0]])],
      [3, vec([[0]])],
      [
        5,
        vec([
          [0x00, 1],
          [0x00, 1],
        ]),
      ],
      [
        7,
        vec([
          [...str('memory'), 0x02, 0],
          [...str('_start'), 0x00, 0],
        ]),
      ],
      [10, vec([[2, 0, op.end]])],
    ])
    const mem64 = rawModule([
      [1, vec([[0x60, 0, 0]])],
      [3, vec([[0]])],
      [5, vec([[0x04, 1]])],
      [
        7,
        vec([
          [...str('memory'), 0x02, 0],
          [...str('_start'), 0x00, 0],
        ]),
      ],
      [10, vec([[2, 0, op.end]])],
    ])
    const importMem = buildModule({
      imports: [{ module: 'wasi_snapshot_preview1', name: 'memory', desc: [0x02, 0x00, 1] }],
      funcs: [{ body: [], export: '_start' }],
      exports: [{ name: 'memory', kind: 2, index: 0 }],
    })
    const importGlobal = buildModule({
      imports: [{ module: 'wasi_snapshot_preview1', name: 'g', desc: [0x03, I64, 0x01] }],
      memory: [0x00, 1],
      funcs: [{ body: [], export: '_start' }],
    })
    const importTable = buildModule({
      imports: [{ module: 'wasi_snapshot_preview1', name: 't', desc: [0x01, FUNCREF, 0x00, 1] }],
      memory: [0x00, 1],
      funcs: [{ body: [], export: '_start' }],
    })
    for (const [name, m] of Object.entries({ twoMem, mem64, importMem, importGlobal, importTable })) {
      expect(() => runSync(m, { limits: { memory: '64KiB' } }), name).toThrow(ModuleError)
    }
  })

  it('a data segment or a minimum past the cap is refused; memory.grow past it fails', () => {
    const big = buildModule({ memory: [0x00, 16], funcs: [{ body: [], export: '_start' }] })
    expect(() => runSync(big, { limits: { memory: '64KiB' } })).toThrow(ModuleError)
    // (memory 1 65536): grow by 100 pages under a 2-page cap returns -1 -> exit code via proc_exit
    const grow = buildModule({
      imports: [{ module: 'wasi_snapshot_preview1', name: 'proc_exit', desc: [0x00, 0] }],
      types: [{ params: [I32], results: [] }],
      memory: [0x01, 1, ...u32(65536)],
      funcs: [{ body: [op.i32_const, ...sleb(100), op.memory_grow, 0, op.i32_const, 1, op.i32_add, op.call, 0], export: '_start' }],
    })
    expect(runSync(grow, { limits: { memory: '128KiB' } }).exitCode).toBe(0)
  })

  it('fuel: recursion through call_indirect and return_call, and a fuel global of its own, cannot escape metering', () => {
    // (table 1 funcref) (elem (i32.const 0) 0) (func $f (call_indirect (i32.const 0)))
    const indirect = buildModule({
      table: [FUNCREF, 0x00, 1],
      memory: [0x00, 1],
      funcs: [{ body: [op.i32_const, 0, op.call_indirect, 0, 0], export: '_start' }],
      elements: [[0x00, op.i32_const, 0, op.end, ...u32(1), 0]],
    })
    const r1 = runSync(indirect, { limits: { fuel: 100000 } })
    expect(r1.limit === 'fuel' || r1.trap?.kind === 'stack-overflow').toBe(true)
    const tail = buildModule({ memory: [0x00, 1], funcs: [{ body: [op.return_call, 0], export: '_start' }] })
    expect(runSync(tail, { limits: { fuel: 100000 } }).limit).toBe('fuel')
    const ownName = buildModule({
      memory: [0x00, 1],
      globals: [[I64, 0x01, op.i64_const, 0, op.end]],
      exports: [{ name: 'caplet_fuel', kind: 3, index: 0 }],
      funcs: [{ body: [], export: '_start' }],
    })
    expect(() => runSync(ownName, { limits: { fuel: 10 } })).toThrow(ModuleError)
    // global.set of the index the counter will take: invalid before metering, refused.
    const poke = buildModule({
      memory: [0x00, 1],
      funcs: [{ body: [op.i64_const, ...sleb(1 << 30), op.global_set, 0, op.loop, op.void, op.br, 0, op.end], export: '_start' }],
    })
    expect(() => runSync(poke, { limits: { fuel: 10 } })).toThrow(ModuleError)
  })
})

describe('redteam runtime: policy and CLI surface', () => {
  it('guest paths with "..", relative guest paths and empty hosts are refused', () => {
    expect(() => resolvePolicy({ mounts: [{ guest: '/a/../etc', tmp: true }] })).toThrow(PolicyError)
    expect(() => resolvePolicy({ mounts: [{ guest: 'rel', tmp: true }] })).toThrow(PolicyError)
    expect(() => resolvePolicy({ mounts: [{ guest: '/a', host: '' }] })).toThrow(PolicyError)
    expect(() => resolvePolicy({ mounts: [{ guest: '/a', tmp: true, mode: 'overlay' }] })).toThrow(PolicyError)
    expect(() =>
      resolvePolicy({
        mounts: [
          { guest: '/a', tmp: true },
          { guest: '/a/', tmp: true },
        ],
      }),
    ).toThrow(PolicyError)
    expect(() => parseArgs(['run', '--dir', `${scratch}:data`, 'x.wasm'], {})).toThrow(/absolute/)
    expect(() => parseArgs(['run', '--dir', `${join(scratch, 'nope')}:/d`, 'x.wasm'], {})).toThrow(/not an existing directory/)
    expect(() => parseArgs(['run', '--dir', `${scratch}:/d:ro:rw`, 'x.wasm'], {})).toThrow(/absolute/)
    const inv = parseArgs(['run', '--dir', `${scratch}:/d:ro`, '--tmp', '/t:1MiB', 'x.wasm'], {})
    expect(inv !== 'help' && inv !== 'version' && inv.options.mounts?.map((m) => m.mode ?? 'rw')).toEqual(['ro', 'rw'])
    expect(() => resolvePolicy({ mounts: [{ guest: '/t', tmp: true, size: 'lots' }] })).toThrow(PolicyError)
    expect(() => resolvePolicy({ mounts: [{ guest: '/r', tmp: true, mode: 'ro', size: '1MiB' }] })).toThrow(PolicyError)
    expect(() => parseArgs(['run', '--env', '=x', 'x.wasm'], {})).toThrow()
  })

  // FINDING (low): the overlap check for writable host mounts compares `a.startsWith(b + '/')`;
  // for the root directory b + '/' is "//", so `/` overlaps nothing. Two writable views of one
  // tree are what the check exists to refuse (quota.ts, "SECURITY (residual)").
  it('two writable mounts of overlapping trees are refused, the host root included', () => {
    const inner = join(scratch, 'inner')
    mkdirSync(inner, { recursive: true })
    expect(() =>
      resolvePolicy({
        mounts: [
          { guest: '/a', host: scratch },
          { guest: '/b', host: inner },
        ],
      }),
    ).toThrow(PolicyError)
    expect(() =>
      resolvePolicy({
        mounts: [
          { guest: '/a', host: inner },
          { guest: '/b', host: scratch },
        ],
      }),
    ).toThrow(PolicyError)
    expect(
      () =>
        resolvePolicy({
          mounts: [
            { guest: '/a', host: '/' },
            { guest: '/b', host: inner },
          ],
        }),
      'host "/" with a writable mount inside it',
    ).toThrow(PolicyError)
  })
})

function sleb(n: number): number[] {
  const out: number[] = []
  let v = BigInt(n)
  for (;;) {
    const b = Number(v & 0x7fn)
    v >>= 7n
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b)
      return out
    }
    out.push(b | 0x80)
  }
}
