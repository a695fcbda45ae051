/**
 * Red team, wave 3: the iovec snapshot of reads (wasi-host/syscalls/iovecs.ts,
 * `checkedIovecSnapshot`), which replaced `checkIovecs` followed by a second read of the array.
 * 1. Differential against `checkIovecs` (the check as it was) and `GuestMemory.iovecs` on
 *    thousands of hostile arrays: overlapping the buffers they describe, pointing at themselves,
 *    lengths summing past 2^31 and 2^32, count 0 anywhere, counts past the cap or past memory,
 *    misaligned arrays. Same error (trap or errno, same message) in the same order, same total.
 * 2. Real guests against node:wasi for ordinary cases (node:wasi is only an oracle there):
 *    fd_write with count 0, empty and overlapping buffers, an iovec over its own array; fd_read
 *    and fd_pread into a buffer covering their own iovec array (bytes read must not redirect the
 *    rest of the read). Same output, errno and counts. Hostile cases get caplet's documented
 *    answers (trap memory-fault, INVAL), and the host runs the next guest right.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import wabtInit from 'wabt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GuestMemory } from '../../wasi-host/abi/guest-memory.js'
import type { HostState } from '../../wasi-host/host-state.js'
import { checkedIovecSnapshot, checkIovecs, iovecTotal } from '../../wasi-host/syscalls/iovecs.js'
import { repoRoot, runWithLayout } from '../support/guest.js'
import { rng } from '../support/rng.js'

type Outcome = { ok: true; total: number; pairs: number[] } | { ok: false; error: string }

function outcome(f: () => { total: number; pairs: number[] }): Outcome {
  try {
    return { ok: true, ...f() }
  } catch (e) {
    const err = e as Error & { errno?: number }
    return { ok: false, error: `${err.constructor.name}:${err.errno ?? ''}:${err.message}` }
  }
}

describe('checkedIovecSnapshot: the same answers as checkIovecs', () => {
  it('5,000 hostile arrays: same error in the same order, same total, the snapshot is the array as checked', () => {
    const r = rng(0x10fec)
    const PAGES = 16
    const memory = new WebAssembly.Memory({ initial: PAGES })
    const size = PAGES * 65536
    const m = new GuestMemory()
    m.bind(memory)
    const dv = new DataView(memory.buffer)
    const kinds = new Map<string, number>()
    for (let c = 0; c < 5000; c++) {
      const maxIovecs = r.pick([0, 1, 8, 1024, 2 ** 20])
      const h = { memory: m, limits: { maxIovecs } } as unknown as HostState
      const iovs = r.pick([0, 4, 8, 1, 2, 3, size - 8, size - 16, size - 4, size, size + 8, 2 ** 31, 2 ** 32 - 8, r.int(size)])
      const count = r.pick([0, 1, 2, 8, 1024, 1025, 4096, 2 ** 16, 2 ** 28, 2 ** 29, 2 ** 32 - 1, r.int(64)])
      // Fill the array (where it fits) with hostile pairs.
      const n = Math.min(count, Math.max(0, Math.floor((size - iovs) / 8)), 8192)
      for (let i = 0; i < n; i++) {
        const at = iovs + i * 8
        const ptr = r.pick([iovs, at, at + 4, 0, size - 1, size, size + 1, 2 ** 32 - 1, r.int(size)])
        const len = r.pick([0, 1, 8, 16, size, size - ptr, 2 ** 31, 2 ** 32 - 1, (size - ptr) >>> 1, r.int(4096)])
        dv.setUint32(at, ptr >>> 0, true)
        dv.setUint32(at + 4, len >>> 0, true)
      }
      // Now and then every buffer is the whole memory: lengths sum past 2^31 and 2^32 in bounds.
      if (r.int(10) === 0) for (let i = 0; i < n; i++) (dv.setUint32(iovs + i * 8, 0, true), dv.setUint32(iovs + i * 8 + 4, size, true))
      const before = outcome(() => {
        const total = checkIovecs(h, iovs, count)
        const pairs: number[] = []
        for (let i = 0; i < count; i++) pairs.push(dv.getUint32(iovs + i * 8, true), dv.getUint32(iovs + i * 8 + 4, true))
        return { total, pairs }
      })
      const now = outcome(() => {
        const vecs = checkedIovecSnapshot(h, iovs, count)
        return { total: iovecTotal(vecs), pairs: [...vecs] }
      })
      expect(now, `case ${c}: iovs ${iovs} count ${count} max ${maxIovecs}`).toEqual(before)
      // GuestMemory.iovecs (no cap) faults on the same pointers.
      if (!before.ok || before.pairs.length <= 2 * 8192) {
        const viaMemory = outcome(() => {
          const v = m.iovecs(iovs, count)
          return { total: iovecTotal(v), pairs: [...v] }
        })
        if (before.ok) expect(viaMemory).toEqual(before)
        else if (/GuestFault/.test(before.error)) expect(viaMemory).toEqual(before)
      }
      const kind = before.ok ? 'ok' : before.error.slice(0, 40)
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
    }
    const seen = [...kinds.keys()].join('|')
    expect(seen).toMatch(/ok/)
    expect(seen).toMatch(/out-of-bounds/)
    expect(seen).toMatch(/misaligned/)
    expect(seen).toMatch(/too many iovecs/)
    // Crafted: in-bounds buffers whose lengths sum past 2^31 and past 2^32 (every buffer the whole memory).
    const h = { memory: m, limits: { maxIovecs: 2 ** 20 } } as unknown as HostState
    for (const count of [2048, 2049, 4096, 4097]) {
      for (let i = 0; i < count; i++) (dv.setUint32(i * 8, 0, true), dv.setUint32(i * 8 + 4, size, true))
      const a = outcome(() => ({ total: checkIovecs(h, 0, count), pairs: [] }))
      const b = outcome(() => ({ total: iovecTotal(checkedIovecSnapshot(h, 0, count)), pairs: [] }))
      expect(b).toEqual(a)
      expect(a.ok).toBe(false)
      expect((a as { error: string }).error).toMatch(/^WasiError:28:.*iovec total too large/)
    }
    // 2047 of them plus one of size - 1 bytes: 2^31 - 1, the largest total allowed.
    for (let i = 0; i < 2048; i++) (dv.setUint32(i * 8, 0, true), dv.setUint32(i * 8 + 4, i === 2047 ? size - 1 : size, true))
    expect(iovecTotal(checkedIovecSnapshot(h, 0, 2048))).toBe(2 ** 31 - 1)
    expect(checkIovecs(h, 0, 2048)).toBe(2 ** 31 - 1)
  })
})

// ---- Real guests, against node:wasi for ordinary cases ---------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'caplet-redteam-iovecs-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let wabt: Awaited<ReturnType<typeof wabtInit>>
beforeAll(async () => {
  wabt = await wabtInit()
})

const store = (at: number, v: number) => `(i32.store (i32.const ${at}) (i32.const ${v}))`
const iov = (at: number, ptr: number, len: number) => store(at, ptr) + store(at + 4, len)

/**
 * A guest that sets memory up, makes one call whose errno goes to 1000 and count to 1004, then
 * writes 1000..1008 and the region `show` to stdout and exits 0. fd 4 is /data; the file opened
 * (if any) is fd `$fd`.
 */
function guest(setup: string, call: string, show: [number, number][], open?: string): string {
  const data = ['(data (i32.const 100) "abcdefghijklmnop")', open ? `(data (i32.const 2000) "${open}")` : ''].join(' ')
  const shows = show.map(([p, l], i) => iov(3000 + i * 8, p, l)).join('\n')
  return `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_pread" (func $pread (param i32 i32 i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    ${data}
    (func (export "_start") (local $fd i32)
      ${
        open
          ? `(if (call $open (i32.const 4) (i32.const 0) (i32.const 2000) (i32.const ${open.length}) (i32.const 0) (i64.const 6) (i64.const 0) (i32.const 0) (i32.const 2100)) (then (call $exit (i32.const 99))))
      (local.set $fd (i32.load (i32.const 2100)))`
          : ''
      }
      ${setup}
      (i32.store (i32.const 1000) ${call})
      ${iov(2900, 1000, 8)}
      ${shows}
      (drop (call $write (i32.const 1) (i32.const 2900) (i32.const 1) (i32.const 2992)))
      (drop (call $write (i32.const 1) (i32.const 3000) (i32.const ${show.length}) (i32.const 2992)))
      (call $exit (i32.const 0))))`
}

function build(name: string, src: string): string {
  const m = wabt.parseWat(`${name}.wat`, src)
  try {
    const path = join(dir, `${name}.wasm`)
    writeFileSync(path, m.toBinary({}).buffer)
    return path
  } finally {
    m.destroy()
  }
}

const write = (iovs: number, n: number) => `(call $write (i32.const 1) (i32.const ${iovs}) (i32.const ${n}) (i32.const 1004))`
const read = (iovs: number, n: number) => `(call $read (local.get $fd) (i32.const ${iovs}) (i32.const ${n}) (i32.const 1004))`
const pread = (iovs: number, n: number) =>
  `(call $pread (local.get $fd) (i32.const ${iovs}) (i32.const ${n}) (i64.const 2) (i32.const 1004))`

const ORDINARY: [string, string, string, [number, number][], string?][] = [
  ['write count 0', '', write(200, 0), []],
  ['write empty buffers', iov(200, 100, 0) + iov(208, 104, 0), write(200, 2), []],
  ['write overlapping buffers', iov(200, 100, 5) + iov(208, 102, 5) + iov(216, 100, 16), write(200, 3), []],
  ['write an iovec over its own array', iov(200, 200, 24) + iov(208, 204, 8) + iov(216, 200, 4), write(200, 3), []],
  ['read count 0', '', read(300, 0), [[300, 16]], 'sub/b.txt'],
  // iov0 = {304, 8} covers iov0.len and iov1.ptr: the bytes read forge iov1; the read goes on with the one checked.
  [
    'read into its own iovec array',
    iov(300, 304, 8) + iov(308, 400, 8),
    read(300, 2),
    [
      [300, 16],
      [400, 8],
    ],
    'sub/b.txt',
  ],
  ['read: every iovec is the array itself', iov(300, 300, 8) + iov(308, 300, 8), read(300, 2), [[300, 16]], 'sub/b.txt'],
  [
    'pread into its own iovec array',
    iov(300, 300, 12) + iov(308, 400, 8),
    pread(300, 2),
    [
      [300, 16],
      [400, 8],
    ],
    'sub/b.txt',
  ],
  ['read with empty and duplicate buffers', iov(300, 400, 0) + iov(308, 400, 3) + iov(316, 400, 3), read(300, 3), [[400, 8]], 'sub/b.txt'],
]

function nodeWasi(path: string): { stdout: Buffer; status: number | null } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'test/fixtures/run-node-wasi.mjs'), path], { timeout: 30_000 })
  return { stdout: r.stdout, status: r.status }
}

describe('guests: ordinary iovec cases give what node:wasi gives', () => {
  it.each(ORDINARY)('%s', (name, setup, call, show, open) => {
    const path = build(name.replace(/\W+/g, '-'), guest(setup, call, show, open))
    const want = nodeWasi(path)
    expect(want.status).toBe(0)
    for (const backend of ['memory', 'host'] as const) {
      const got = runWithLayout(path, backend)
      expect(got.trap, `${name} (${backend})`).toBeUndefined()
      expect(got.exitCode).toBe(0)
      expect(Buffer.from(got.stdout).toString('hex'), `${name} (${backend})`).toBe(want.stdout.toString('hex'))
    }
  })
})

describe('guests: hostile iovec arrays get the documented answers, and the next run is right', () => {
  const INVAL = 28
  it.each([
    ['an array past the end of memory', '', write(65536 - 8, 2), 'trap'],
    ['a count of 2^32-1', '', write(0, -1), 'trap'],
    ['a misaligned array', iov(202, 100, 1), write(202, 1), 'trap'],
    ['a buffer past the end of memory', iov(200, 65535, 2), write(200, 1), 'trap'],
    ['1,025 in-bounds iovecs (over the cap)', '', write(0, 1025), INVAL],
    // DIVERGENCE (boundary, not ordinary): an empty array or an empty buffer exactly at the end of
    // memory is in bounds for caplet (as for wasmtime); node:wasi answers EOVERFLOW.
    ['count 0 exactly at the end of memory', '', write(65536, 0), 0],
    ['an empty buffer exactly at the end of memory', iov(200, 65536, 0), write(200, 1), 0],
    ['a read into an iovec array past the end', '', read(65536 - 8, 2), 'trap'],
  ] as const)('%s', (name, setup, call, want) => {
    const open = call.includes('$fd') ? 'a.txt' : undefined
    const path = build(`hostile-${name.replace(/\W+/g, '-')}`, guest(setup, call, [[100, 4]], open))
    const r = runWithLayout(path, 'memory')
    if (want === 'trap') {
      expect(r.trap?.kind, name).toBe('memory-fault')
      expect(r.trap?.syscall, name).toMatch(/^fd_(write|read)$/)
    } else {
      expect(r.trap).toBeUndefined()
      expect(Buffer.from(r.stdout).readUInt32LE(0)).toBe(want)
    }
    // The host is fine: an ordinary guest right after.
    const ok = runWithLayout(build('after', guest(iov(200, 100, 4), write(200, 1), [])), 'memory')
    expect(Buffer.from(ok.stdout).toString('latin1')).toBe('abcd\0\0\0\0\u0004\0\0\0')
  })
})
