/**
 * Write-behind at the level of a run: small writes a guest makes to a host-directory file just
 * before its run ends (with no other call after them, so they are still held) reach the file
 * however the run ends, in-process and in a worker; and a held write that fails when nothing can
 * report it any more becomes a warning of the run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { run, runSync } from '../../runtime/index.js'
import { Errno, Rights } from '../../wasi-host/abi/constants.js'
import { WasiError } from '../../wasi-host/errors.js'
import { memFsFromTree } from '../../wasi-host/fs/mem-fs.js'
import { writeLogFs } from '../support/write-log-fs.js'
import { buildModule, I32, I64, op, s32 } from './instrument/wasm.js'

const CHUNK = '0123456789abcdef'
const WRITES = 10
type Ending = 'return' | 'exit' | 'trap' | 'spin'

/**
 * A guest that opens `out` in its first preopen, writes `CHUNK` `WRITES` times with `fd_write`,
 * and then, with no other call: returns, calls `proc_exit(7)`, traps, or loops forever.
 */
function writer(ending: Ending): Uint8Array {
  const i32 = (n: number) => [op.i32_const, ...s32(n)]
  const u32le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]
  const write = [...i32(64), op.i32_load, 2, 0, ...i32(16), ...i32(1), ...i32(80), op.call, 1, op.drop]
  const end = {
    return: [],
    exit: [...i32(7), op.call, 2],
    trap: [op.unreachable],
    spin: [op.loop, op.void, op.br, 0, op.end],
  }[ending]
  return buildModule({
    types: [
      { params: [I32, I32, I32, I32, I32, I64, I64, I32, I32], results: [I32] },
      { params: [I32, I32, I32, I32], results: [I32] },
      { params: [I32], results: [] },
    ],
    imports: [
      { module: 'wasi_snapshot_preview1', name: 'path_open', desc: [0x00, 0] },
      { module: 'wasi_snapshot_preview1', name: 'fd_write', desc: [0x00, 1] },
      { module: 'wasi_snapshot_preview1', name: 'proc_exit', desc: [0x00, 2] },
    ],
    memory: [0x00, 1],
    funcs: [
      {
        export: '_start',
        body: [
          // path_open(3, 0, "out", O_CREAT | O_TRUNC, FD_WRITE, 0, 0, &fd at 64)
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
          ...i32(64),
          op.call,
          0,
          op.drop,
          ...Array.from({ length: WRITES }, () => write).flat(),
          ...end,
        ],
      },
    ],
    data: [
      [0x00, ...i32(0), op.end, 3, ...new TextEncoder().encode('out')],
      // The iovec at 16: { buf 32, len 16 }, then the bytes at 32.
      [0x00, ...i32(16), op.end, 8, ...u32le(32), ...u32le(16)],
      [0x00, ...i32(32), op.end, 16, ...new TextEncoder().encode(CHUNK)],
    ],
  })
}

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'caplet-wb-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const stored = () => readFileSync(join(dir, 'out'), 'utf8')

describe.each(['in-process', 'worker'] as const)('held writes reach the host file however the run ends (%s)', (isolation) => {
  const go = (ending: Ending, limits = {}) => run(writer(ending), { isolation, mounts: [{ guest: '/out', host: dir }], limits })

  it('when _start returns', async () => {
    const r = await go('return')
    expect(r.exitCode).toBe(0)
    expect(stored()).toBe(CHUNK.repeat(WRITES))
  })

  it('on proc_exit', async () => {
    const r = await go('exit')
    expect(r.exitCode).toBe(7)
    expect(stored()).toBe(CHUNK.repeat(WRITES))
    expect(r.warnings).toBeUndefined()
  })

  it('on a trap', async () => {
    const r = await go('trap')
    expect(r.trap?.kind).toBe('unreachable')
    expect(stored()).toBe(CHUNK.repeat(WRITES))
  })

  it('when fuel runs out', async () => {
    const r = await go('spin', { fuel: 100_000 })
    expect(r.limit).toBe('fuel')
    expect(stored()).toBe(CHUNK.repeat(WRITES))
  })
})

describe('held writes that fail after the guest is gone', () => {
  it('become a warning of the run, naming the mount and the error', () => {
    const { fs, log } = writeLogFs(memFsFromTree({}))
    log.failWith = new WasiError(Errno.IO, 'device gone')
    const r = runSync(writer('exit'), { mounts: [{ guest: '/out', fs }] })
    expect(r.exitCode).toBe(7)
    expect(log.writes.map((w) => w.text)).toEqual([CHUNK.repeat(WRITES)])
    expect(r.warnings).toEqual([expect.stringMatching(/^\/out: .*IO: device gone/)])
  })
})
