/**
 * Red-team: write-behind (wasi-host/write-behind.ts), small sequential writes to host-directory
 * files held and written at the guest's next other call or at the end of the run. Attacks on
 * where held bytes land (confinement, rights, quotas), on what the guest and the embedder see
 * (consistency), on whether they are lost (how a run or a reactor's turn ends, a host fault, a
 * stack exhausted under the flush) and on shared memory, against real host directories.
 *
 * Layout (per test): root/outside.txt (a canary beside the mount), root/mount/ (fd 5, rw),
 * the same root/mount/ again read-only (fd 6).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { prepareSync, resolvePolicy, runSync } from '../../runtime/index.js'
import { openMounts } from '../../runtime/mounts.js'
import { Errno, Rights } from '../../wasi-host/abi/constants.js'
import { HostInvariantError } from '../../wasi-host/errors.js'
import { memFsFromTree } from '../../wasi-host/fs/mem-fs.js'
import { WasiHost } from '../../wasi-host/host.js'
import { createHostDirFs } from '../../wasi-host/node/host-dir-fs.js'
import { writeLogFs } from '../support/write-log-fs.js'
import { buildModule, I32, I64, op, s32 } from '../runtime/instrument/wasm.js'
import { ALL_RIGHTS, expectErrno, harness, O_CREAT, readIn, type Harness } from '../wasi-host/harness.js'

const RW = 5
const RO = 6
const CHUNK = '0123456789abcdef'
const enc = new TextEncoder()

let root: string
let mount: string
const closers: (() => void)[] = []
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'caplet-redteam-wb-'))
  mount = join(root, 'mount')
  mkdirSync(mount)
  writeFileSync(join(root, 'outside.txt'), 'OUTSIDE-CANARY\n')
})
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c()
  rmSync(root, { recursive: true, force: true })
})

/** A harness with the host directory `mount` read-write at fd 5 and read-only at fd 6. */
function hostHarness(): Harness {
  const rw = createHostDirFs(mount)
  const ro = createHostDirFs(mount)
  const h = harness({
    extraPreopens: [
      { guestPath: '/m', fs: rw },
      { guestPath: '/r', fs: ro, mode: 'ro' },
    ],
  })
  closers.push(() => {
    h.host.close()
    rw.close()
    ro.close()
  })
  return h
}

const onHost = (name: string) => readFileSync(join(mount, name), 'utf8')
const open = (h: Harness, name: string, dirfd = RW, oflags = O_CREAT) => h.openOk(name, { dirfd, base: ALL_RIGHTS, oflags })
function write(h: Harness, fd: number, s: string): void {
  expect(h.writeFd(fd, s)).toEqual({ errno: Errno.SUCCESS, n: enc.encode(s).byteLength })
}

const i32 = (n: number) => [op.i32_const, ...s32(n)]
const u32le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]
/** path_open(3, 0, "out", O_CREAT | O_TRUNC, FD_WRITE, 0, 0, &fd at 96), import 0. */
const OPEN_OUT = [
  ...i32(3),
  ...i32(0),
  ...i32(0),
  ...i32(3),
  ...i32(9),
  op.i64_const,
  ...s32(Rights.FD_WRITE),
  op.i64_const,
  0,
  ...i32(0),
  ...i32(96),
  op.call,
  0,
  op.drop,
]
/** fd_write(fd at 96, the iovec at 16 = CHUNK, 1, &n at 80), import 1. */
const WRITE_CHUNK = [...i32(96), op.i32_load, 2, 0, ...i32(16), ...i32(1), ...i32(80), op.call, 1, op.drop]
const OPEN_TYPE = { params: [I32, I32, I32, I32, I32, I64, I64, I32, I32], results: [I32] }
const WRITE_TYPE = { params: [I32, I32, I32, I32], results: [I32] }
const DATA = [
  [0x00, ...i32(0), op.end, 3, ...enc.encode('out')],
  [0x00, ...i32(16), op.end, 8, ...u32le(32), ...u32le(16)],
  [0x00, ...i32(32), op.end, 16, ...enc.encode(CHUNK)],
]

describe('findings', () => {
  it("a reactor's held write reaches the file before its export returns to the embedder", () => {
    // (module (func (export "_initialize") <open out>) (func (export "log") <write CHUNK>))
    const reactor = buildModule({
      types: [OPEN_TYPE, WRITE_TYPE],
      imports: [
        { module: 'wasi_snapshot_preview1', name: 'path_open', desc: [0x00, 0] },
        { module: 'wasi_snapshot_preview1', name: 'fd_write', desc: [0x00, 1] },
      ],
      memory: [0x00, 1],
      funcs: [
        { export: '_initialize', body: OPEN_OUT },
        { export: 'log', body: WRITE_CHUNK },
      ],
      data: DATA,
    })
    const fs = createHostDirFs(mount)
    const host = new WasiHost({ preopens: [{ guestPath: '/m', fs }] })
    closers.push(() => {
      host.close()
      fs.close()
    })
    const instance = new WebAssembly.Instance(
      new WebAssembly.Module(reactor as Uint8Array<ArrayBuffer>),
      host.imports as unknown as WebAssembly.Imports,
    )
    host.initialize(instance)
    const log = instance.exports['log'] as () => void
    log()
    // No call of the host comes after an export: the embedder reads the file now, or never.
    expect(onHost('out')).toBe(CHUNK)
    log()
    expect(onHost('out')).toBe(CHUNK + CHUNK)
  })

  it('a host fault while writing held bytes out (the stack exhausted under the flush) keeps them for the end of the run', () => {
    const inner = memFsFromTree({})
    const { fs, log } = writeLogFs(inner)
    const h = harness({ extraPreopens: [{ guestPath: '/wb', fs }] })
    const fd = open(h, 'f.txt')
    write(h, fd, 'held')
    log.failWith = new RangeError('Maximum call stack size exceeded')
    expect(() => h.wasi.sched_yield()).toThrow(HostInvariantError)
    // The run ends at that fault; at its end the stack is shallow again.
    log.failWith = undefined
    h.host.close()
    expect(readIn(inner, 'f.txt')).toBe('held')
    expect(h.host.writeFailures()).toEqual([])
  })

  it('a guest that exhausts its stack right after a write loses no byte its writes reported', () => {
    // _start: open out; rec(): sched_yield; fd_write CHUNK; rec(). With frames of these sizes the
    // stack runs out, now and then, inside the flush sched_yield makes (before the fix the bytes
    // of the last write were dropped there, the run ending with a stack-overflow trap).
    const results = [20, 60, 120, 250, 400].map((locals) => {
      const deep = buildModule({
        types: [OPEN_TYPE, WRITE_TYPE, { params: [], results: [I32] }],
        imports: [
          { module: 'wasi_snapshot_preview1', name: 'path_open', desc: [0x00, 0] },
          { module: 'wasi_snapshot_preview1', name: 'fd_write', desc: [0x00, 1] },
          { module: 'wasi_snapshot_preview1', name: 'sched_yield', desc: [0x00, 2] },
        ],
        memory: [0x00, 1],
        funcs: [
          { export: '_start', body: [...OPEN_OUT, op.call, 4] },
          { locals: Array.from({ length: locals }, () => I64), body: [op.call, 2, op.drop, ...WRITE_CHUNK, op.call, 4] },
        ],
        data: DATA,
      })
      const r = runSync(deep, { mounts: [{ guest: '/o', host: mount }] })
      // Exhausted in wasm, or in the host's code under a call (then a fault of that call).
      expect(['stack-overflow', 'host-fault']).toContain(r.trap?.kind)
      return { locals, kind: r.trap?.kind, reported: r.stats.bytesWritten, stored: statSync(join(mount, 'out')).size }
    })
    for (const r of results) expect(r.stored, `locals ${r.locals} (${r.kind})`).toBe(r.reported)
  })

  it('a shared memory: writes are not held (another thread may change the iovecs between the count and the copy)', () => {
    const { fs, log } = writeLogFs(memFsFromTree({}))
    const host = new WasiHost({ preopens: [{ guestPath: '/wb', fs }] })
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })
    host.memory.bind(mem)
    const w = host.imports.wasi_snapshot_preview1 as unknown as Record<string, (...a: (number | bigint)[]) => number>
    const dv = new DataView(mem.buffer)
    new Uint8Array(mem.buffer).set(enc.encode('f.txt'), 100)
    expectErrno(w['path_open']!(3, 0, 100, 5, O_CREAT, ALL_RIGHTS, 0n, 0, 200), 'SUCCESS')
    new Uint8Array(mem.buffer).set(enc.encode('x'), 300)
    dv.setUint32(400, 300, true)
    dv.setUint32(404, 1, true)
    expectErrno(w['fd_write']!(dv.getUint32(200, true), 400, 1, 408), 'SUCCESS')
    expect(log.writes).toEqual([{ at: 0n, text: 'x' }])
    host.close()
  })

  it("a shared memory: a thread flipping an iovec's length during writes causes no host fault, and the file holds what the writes reported", async () => {
    const fs = createHostDirFs(mount)
    const host = new WasiHost({ preopens: [{ guestPath: '/m', fs }] })
    closers.push(() => {
      host.close()
      fs.close()
    })
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })
    host.memory.bind(mem)
    const w = host.imports.wasi_snapshot_preview1 as unknown as Record<string, (...a: (number | bigint)[]) => number>
    const dv = new DataView(mem.buffer)
    new Uint8Array(mem.buffer).set(enc.encode('race'), 100)
    expectErrno(w['path_open']!(3, 0, 100, 4, O_CREAT, ALL_RIGHTS, 0n, 0, 200), 'SUCCESS')
    const fd = dv.getUint32(200, true)
    new Uint8Array(mem.buffer).fill(0x41, 1000, 1900)
    dv.setUint32(300, 1000, true)
    dv.setUint32(304, 1, true)
    const stop = new Int32Array(new SharedArrayBuffer(4))
    const racer = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads')
      const dv = new DataView(workerData.memory)
      const stop = new Int32Array(workerData.stop)
      parentPort.postMessage('go')
      for (let i = 0; Atomics.load(stop, 0) === 0; i++) dv.setUint32(304, (i & 1) ? 900 : 1, true)
    `,
      { eval: true, workerData: { memory: mem.buffer, stop: stop.buffer } },
    )
    await new Promise((resolve) => racer.once('message', resolve))
    let reported = 0
    let faults = 0
    const until = Date.now() + 300
    try {
      while (Date.now() < until) {
        try {
          expectErrno(w['fd_write']!(fd, 300, 1, 400), 'SUCCESS')
          reported += dv.getUint32(400, true)
        } catch {
          faults++
        }
      }
    } finally {
      Atomics.store(stop, 0, 1)
      await racer.terminate()
    }
    expectErrno(w['sched_yield']!(), 'SUCCESS')
    expect(faults).toBe(0)
    expect(statSync(join(mount, 'race')).size).toBe(reported)
  })
})

describe('attacks that held', () => {
  it('held bytes land in the file written, not in what its name leads to when they are written out', () => {
    const h = hostHarness()
    writeFileSync(join(mount, 'f'), '')
    const fd = open(h, 'f', RW, 0)
    write(h, fd, 'held')
    // Another host program swaps the file for a link to a file outside the mount.
    renameSync(join(mount, 'f'), join(mount, 'f.old'))
    symlinkSync(join(root, 'outside.txt'), join(mount, 'f'))
    expectErrno(h.wasi.sched_yield(), 'SUCCESS')
    expect(readFileSync(join(root, 'outside.txt'), 'utf8')).toBe('OUTSIDE-CANARY\n')
    expect(onHost('f.old')).toBe('held')
  })

  it('a dropped write right, a descriptor renumbered over, closed or replaced: nothing lands after', () => {
    const h = hostHarness()
    const a = open(h, 'a')
    const b = open(h, 'b')
    write(h, a, 'A1')
    h.restrict(a, Rights.FD_WRITE)
    expect(onHost('a')).toBe('A1')
    expectErrno(h.writeFd(a, 'A2').errno, 'NOTCAPABLE')
    write(h, b, 'B1')
    // b's slot now holds a (which may not write): b's bytes are out, and a's slot is free.
    expectErrno(h.wasi.fd_renumber(a, b), 'SUCCESS')
    expect(onHost('b')).toBe('B1')
    expectErrno(h.writeFd(b, 'B2').errno, 'NOTCAPABLE')
    expectErrno(h.writeFd(a, 'A3').errno, 'BADF')
    const c = open(h, 'c')
    write(h, c, 'C1')
    expectErrno(h.wasi.fd_close(c), 'SUCCESS')
    expectErrno(h.writeFd(c, 'C2').errno, 'BADF')
    h.host.close()
    expect([onHost('a'), onHost('b'), onHost('c')]).toEqual(['A1', 'B1', 'C1'])
    expect(readFileSync(join(root, 'outside.txt'), 'utf8')).toBe('OUTSIDE-CANARY\n')
  })

  it('the other mount of the same directory, read-only, sees held bytes at once; it can never write', () => {
    const h = hostHarness()
    const fd = open(h, 'f')
    write(h, fd, 'via rw')
    const r = h.openOk('f', { dirfd: RO })
    expect(h.readFd(r).text).toBe('via rw')
    expect(h.pathStat('f', RO).stat.size).toBe(6n)
    expectErrno(h.open('f', { dirfd: RO, base: ALL_RIGHTS }).errno, 'ROFS')
  })

  it('a quota of the policy sees every write when it happens: a host directory with a size is never held past it', () => {
    for (const options of [{ size: 40 }, { disk: 40 }]) {
      const policy = resolvePolicy({
        isolation: 'in-process',
        mounts: [{ guest: '/q', host: mount, ...('size' in options ? { size: options.size } : {}) }],
        ...('disk' in options ? { limits: { disk: options.disk } } : {}),
      })
      const mounts = openMounts(policy, [])
      const host = new WasiHost({ preopens: mounts.preopens })
      const mem = new WebAssembly.Memory({ initial: 1 })
      host.memory.bind(mem)
      const w = host.imports.wasi_snapshot_preview1 as unknown as Record<string, (...a: (number | bigint)[]) => number>
      const dv = new DataView(mem.buffer)
      new Uint8Array(mem.buffer).set(enc.encode('q'), 100)
      expectErrno(w['path_open']!(3, 0, 100, 1, O_CREAT | 8, ALL_RIGHTS, 0n, 0, 200), 'SUCCESS')
      const fd = dv.getUint32(200, true)
      new Uint8Array(mem.buffer).set(enc.encode(CHUNK), 300)
      dv.setUint32(400, 300, true)
      dv.setUint32(404, 16, true)
      const got: string[] = []
      for (let i = 0; i < 4; i++) {
        const rc = w['fd_write']!(fd, 400, 1, 408)
        got.push(rc === 0 ? String(dv.getUint32(408, true)) : String(rc))
        // What a write reported is in the file when it returns: nothing is held under a quota.
        expect(statSync(join(mount, 'q')).size).toBe(Math.min(40, 16 * (i + 1)))
      }
      expect(got, JSON.stringify(options)).toEqual(['16', '16', '8', String(Errno.DQUOT)])
      host.close()
      mounts.close()
      rmSync(join(mount, 'q'))
    }
  })

  it('held writes end on disk however a run ends: an output limit, a host fault, a trap in a later call', () => {
    // _start: open out; write CHUNK (held); then <ending>.
    const ending = {
      stdout: [...i32(1), ...i32(16), ...i32(1), ...i32(80), op.call, 1, op.drop],
      trap: [...i32(1), ...i32(0xfffc), ...i32(1), ...i32(80), op.call, 1, op.drop],
    }
    for (const [name, tail] of Object.entries(ending)) {
      const m = buildModule({
        types: [OPEN_TYPE, WRITE_TYPE],
        imports: [
          { module: 'wasi_snapshot_preview1', name: 'path_open', desc: [0x00, 0] },
          { module: 'wasi_snapshot_preview1', name: 'fd_write', desc: [0x00, 1] },
        ],
        memory: [0x00, 1],
        funcs: [{ export: '_start', body: [...OPEN_OUT, ...WRITE_CHUNK, ...tail] }],
        data: DATA,
      })
      const r = runSync(m, { mounts: [{ guest: '/o', host: mount }], limits: { stdout: 3 } })
      expect(r.exitCode, name).toBe(name === 'stdout' ? 124 : 134)
      expect(onHost('out'), name).toBe(CHUNK)
    }
  })

  it('many runs of a prepared program that leave writes held leak no descriptor and no warning', () => {
    const writer = buildModule({
      types: [OPEN_TYPE, WRITE_TYPE],
      imports: [
        { module: 'wasi_snapshot_preview1', name: 'path_open', desc: [0x00, 0] },
        { module: 'wasi_snapshot_preview1', name: 'fd_write', desc: [0x00, 1] },
      ],
      memory: [0x00, 1],
      funcs: [{ export: '_start', body: [...OPEN_OUT, ...WRITE_CHUNK, ...WRITE_CHUNK] }],
      data: DATA,
    })
    const program = prepareSync(writer, { isolation: 'in-process', mounts: [{ guest: '/o', host: mount }] })
    const fds = () => readdirSync('/proc/self/fd').length
    program.runSync()
    const before = fds()
    for (let i = 0; i < 200; i++) {
      const r = program.runSync()
      expect(r.warnings).toBeUndefined()
    }
    expect(fds()).toBe(before)
    expect(onHost('out')).toBe(CHUNK + CHUNK)
  })
})
