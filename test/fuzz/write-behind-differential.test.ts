/**
 * @module Differential fuzzing of write-behind through the real import object: random sequences
 * of descriptor I/O on two files (three descriptors, two of them on the same file) run against
 * (A) a MemFs, where nothing is held, (B) the same MemFs behind a backend that declares
 * `writeBehind`, and (C) a host directory, which declares it too. Every step must give the same
 * errno and the same result on all three (bytes read, positions, sizes), and the files the same
 * bytes at the end: the guest cannot tell held writes from written ones. The plans favour small
 * writes, so most of them are held, interleaved with every kind of call that must see them.
 *
 * `FUZZ_RUNS` and `FUZZ_SEED` override the run count and seed, as for the backend fuzz.
 */
import * as nodeFs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Errno, Fdflags, errnoName, RIGHTS_ALL } from '../../wasi-host/abi/constants.js'
import type { Filesystem } from '../../wasi-host/fs/filesystem.js'
import { memFsFromTree } from '../../wasi-host/fs/mem-fs.js'
import { WasiHost } from '../../wasi-host/host.js'
import { createHostDirFs } from '../../wasi-host/node/host-dir-fs.js'
import { writeLogFs } from '../support/write-log-fs.js'

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 150)
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x3b1d)
const TIMEOUT = Math.max(60_000, RUNS * 300)

/** Descriptor slots: 0 and 1 on `f`, 2 on `g`. */
type Slot = 0 | 1 | 2
const FILE_OF = ['f', 'f', 'g'] as const
type Step =
  | { op: 'write'; slot: Slot; sizes: number[]; byte: number }
  | { op: 'pwrite'; slot: Slot; at: number; size: number; byte: number }
  | { op: 'read'; slot: Slot; size: number }
  | { op: 'pread'; slot: Slot; at: number; size: number }
  | { op: 'seek'; slot: Slot; offset: number; whence: 0 | 1 | 2 }
  | { op: 'tell'; slot: Slot }
  | { op: 'fstat'; slot: Slot }
  | { op: 'pathstat'; slot: Slot }
  | { op: 'setSize'; slot: Slot; size: number }
  | { op: 'setFlags'; slot: Slot; append: boolean }
  | { op: 'sync'; slot: Slot }
  | { op: 'reopen'; slot: Slot; trunc: boolean }
  | { op: 'renumber'; from: Slot; to: Slot }

const slotArb = fc.constantFrom<Slot>(0, 1, 2)
/** Mostly held sizes; some at and past the limit of a held write. */
const sizeArb = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) }, fc.constantFrom(700, 1023, 1024, 3000))
const offsetArb = fc.integer({ min: 0, max: 6000 })

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      slot: slotArb,
      sizes: fc.array(sizeArb, { minLength: 1, maxLength: 3 }),
      byte: fc.integer({ min: 65, max: 90 }),
    }),
  },
  fc.record({ op: fc.constant('pwrite' as const), slot: slotArb, at: offsetArb, size: sizeArb, byte: fc.integer({ min: 97, max: 122 }) }),
  { weight: 2, arbitrary: fc.record({ op: fc.constant('read' as const), slot: slotArb, size: fc.integer({ min: 1, max: 5000 }) }) },
  fc.record({ op: fc.constant('pread' as const), slot: slotArb, at: offsetArb, size: fc.integer({ min: 1, max: 5000 }) }),
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('seek' as const),
      slot: slotArb,
      offset: fc.integer({ min: -50, max: 5000 }),
      whence: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
    }),
  },
  fc.record({ op: fc.constant('tell' as const), slot: slotArb }),
  fc.record({ op: fc.constant('fstat' as const), slot: slotArb }),
  fc.record({ op: fc.constant('pathstat' as const), slot: slotArb }),
  fc.record({ op: fc.constant('setSize' as const), slot: slotArb, size: fc.integer({ min: 0, max: 6000 }) }),
  fc.record({ op: fc.constant('setFlags' as const), slot: slotArb, append: fc.boolean() }),
  fc.record({ op: fc.constant('sync' as const), slot: slotArb }),
  fc.record({ op: fc.constant('reopen' as const), slot: slotArb, trunc: fc.boolean() }),
  fc.record({ op: fc.constant('renumber' as const), from: slotArb, to: slotArb }),
)

const MOUNT_FD = 3
const FD_PTR = 16
const N_PTR = 20
const U64_PTR = 24
const STAT_PTR = 64
const IOV_PTR = 128
const PATH_PTR = 256
const BUF_PTR = 1024
const O_CREAT = 1
const O_TRUNC = 8
const ALL = BigInt(RIGHTS_ALL)

type Wasi = Record<string, (...args: (number | bigint)[]) => number>
interface Outcome {
  errno: string
  data?: unknown
}

/** One guest over one backend, with three descriptors on two files. */
class Guest {
  readonly host: WasiHost
  readonly mem = new WebAssembly.Memory({ initial: 1 })
  readonly wasi: Wasi
  /** Descriptor numbers by slot (-1 once renumbered away). */
  readonly fds: number[] = []

  constructor(fs: Filesystem) {
    this.host = new WasiHost({ preopens: [{ guestPath: '/m', fs, mode: 'rw' }] })
    this.host.memory.bind(this.mem)
    this.wasi = this.host.imports.wasi_snapshot_preview1 as unknown as Wasi
    for (const s of [0, 1, 2] as const) this.fds.push(this.#open(s, O_CREAT))
  }

  #v(): DataView {
    return new DataView(this.mem.buffer)
  }

  #open(slot: Slot, oflags: number): number {
    const name = new TextEncoder().encode(FILE_OF[slot])
    new Uint8Array(this.mem.buffer).set(name, PATH_PTR)
    const rc = this.wasi['path_open']!(MOUNT_FD, 0, PATH_PTR, name.length, oflags, ALL, ALL, 0, FD_PTR)
    if (rc !== Errno.SUCCESS) throw new Error(`open ${FILE_OF[slot]}: ${errnoName(rc)}`)
    return this.#v().getUint32(FD_PTR, true)
  }

  #bytes(len: number): string {
    return new TextDecoder().decode(new Uint8Array(this.mem.buffer, BUF_PTR, len))
  }

  run(step: Step): Outcome {
    const v = this.#v()
    const fd = step.op === 'renumber' ? -1 : this.fds[step.slot]!
    const result = (rc: number, data?: () => unknown): Outcome => ({
      errno: errnoName(rc),
      ...(rc === Errno.SUCCESS && data ? { data: data() } : {}),
    })
    switch (step.op) {
      case 'write': {
        let at = BUF_PTR
        step.sizes.forEach((n, i) => {
          new Uint8Array(this.mem.buffer).fill(step.byte + i, at, at + n)
          v.setUint32(IOV_PTR + i * 8, at, true)
          v.setUint32(IOV_PTR + i * 8 + 4, n, true)
          at += n
        })
        return result(this.wasi['fd_write']!(fd, IOV_PTR, step.sizes.length, N_PTR), () => v.getUint32(N_PTR, true))
      }
      case 'pwrite':
        new Uint8Array(this.mem.buffer).fill(step.byte, BUF_PTR, BUF_PTR + step.size)
        v.setUint32(IOV_PTR, BUF_PTR, true)
        v.setUint32(IOV_PTR + 4, step.size, true)
        return result(this.wasi['fd_pwrite']!(fd, IOV_PTR, 1, BigInt(step.at), N_PTR), () => v.getUint32(N_PTR, true))
      case 'read':
      case 'pread': {
        v.setUint32(IOV_PTR, BUF_PTR, true)
        v.setUint32(IOV_PTR + 4, step.size, true)
        const rc =
          step.op === 'read' ? this.wasi['fd_read']!(fd, IOV_PTR, 1, N_PTR) : this.wasi['fd_pread']!(fd, IOV_PTR, 1, BigInt(step.at), N_PTR)
        return result(rc, () => this.#bytes(v.getUint32(N_PTR, true)))
      }
      case 'seek':
        return result(this.wasi['fd_seek']!(fd, BigInt(step.offset), step.whence, U64_PTR), () => v.getBigUint64(U64_PTR, true))
      case 'tell':
        return result(this.wasi['fd_tell']!(fd, U64_PTR), () => v.getBigUint64(U64_PTR, true))
      case 'fstat':
        return result(this.wasi['fd_filestat_get']!(fd, STAT_PTR), () => v.getBigUint64(STAT_PTR + 32, true))
      case 'pathstat': {
        const name = new TextEncoder().encode(FILE_OF[step.slot])
        new Uint8Array(this.mem.buffer).set(name, PATH_PTR)
        return result(this.wasi['path_filestat_get']!(MOUNT_FD, 0, PATH_PTR, name.length, STAT_PTR), () =>
          v.getBigUint64(STAT_PTR + 32, true),
        )
      }
      case 'setSize':
        return result(this.wasi['fd_filestat_set_size']!(fd, BigInt(step.size)))
      case 'setFlags':
        return result(this.wasi['fd_fdstat_set_flags']!(fd, step.append ? Fdflags.APPEND : 0))
      case 'sync':
        return result(this.wasi['fd_sync']!(fd))
      case 'reopen': {
        const rc = fd < 0 ? Errno.BADF : this.wasi['fd_close']!(fd)
        this.fds[step.slot] = this.#open(step.slot, step.trunc ? O_TRUNC : 0)
        return result(rc)
      }
      case 'renumber': {
        const from = this.fds[step.from]!
        const to = this.fds[step.to]!
        const rc = this.wasi['fd_renumber']!(from < 0 ? 999 : from, to < 0 ? 998 : to)
        if (rc === Errno.SUCCESS && from !== to) {
          // Both slots now name the moved descriptor, on `from`'s file: keep `to` pointing at it.
          this.fds[step.to] = to
          this.fds[step.from] = -1
        }
        return result(rc)
      }
    }
  }
}

/** The files' bytes, read beside the host. */
function contents(fs: Filesystem): string[] {
  const root = fs.root()
  try {
    return ['f', 'g'].map((name) => {
      const h = root.openFile(name, { read: true, write: false, create: false, exclusive: false, truncate: false })
      try {
        const buf = new Uint8Array(Number(h.stat().size))
        let at = 0
        while (at < buf.length) at += h.read(buf.subarray(at), BigInt(at))
        return new TextDecoder().decode(buf)
      } finally {
        h.close()
      }
    })
  } finally {
    root.close()
  }
}

describe('write-behind: differential fuzz of descriptor I/O', () => {
  it('held writes are indistinguishable from written ones, step by step and at the end', { timeout: TIMEOUT }, () => {
    /** Successful writes that did not reach B's backend in their own call. */
    let held = 0
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), (plan) => {
        // A renumber onto a slot of the other file moves a descriptor between files: FILE_OF
        // then no longer says which file a slot is on, but every backend agrees all the same.
        const tmp = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'caplet-wb-fuzz-'))
        const hostFs = createHostDirFs(tmp)
        try {
          const plain = memFsFromTree({})
          const logged = writeLogFs(memFsFromTree({}))
          const backends: Filesystem[] = [plain, logged.fs, hostFs]
          const guests = backends.map((fs) => new Guest(fs))
          for (const step of plan) {
            const before = logged.log.writes.length
            const [a, ...rest] = guests.map((g) => g.run(step))
            for (const b of rest) expect(b, JSON.stringify(step)).toEqual(a)
            if (step.op === 'write' && a!.data !== 0 && logged.log.writes.length === before) held++
          }
          for (const g of guests) {
            g.host.close()
            expect(g.host.writeFailures()).toEqual([])
          }
          const [want, ...got] = backends.map(contents)
          for (const c of got) expect(c).toEqual(want)
        } finally {
          hostFs.close()
          nodeFs.rmSync(tmp, { recursive: true, force: true })
        }
      }),
      { numRuns: RUNS, seed: SEED },
    )
    // The plans did exercise holding: fewer backend writes than guest writes.
    expect(held).toBeGreaterThan(0)
  })
})
