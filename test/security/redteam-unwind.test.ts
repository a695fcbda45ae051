/**
 * Red-team: the host's deliberate unwinding (`proc_exit`, a limit, a memory fault, a host fault)
 * must end the run, as invariant 3 of docs/security.md says. A module built with the exception-handling
 * proposal can `catch_all` what an import throws (V8 runs such modules when no fuel is metered:
 * only the fuel instrumenter refuses them), so the host cannot rely on the exception reaching
 * `_start`'s caller: once a call has thrown to end the run, every later call throws the same, and
 * the run ends as that first call said, whatever the guest does in its handler.
 */
import { describe, expect, it } from 'vitest'
import { run, runSync } from '../../runtime/index.js'
import { writeLogFs } from '../support/write-log-fs.js'
import { buildModule, I32, I64, op, s32 } from '../runtime/instrument/wasm.js'
import { Rights } from '../../wasi-host/abi/constants.js'
import { createMemFs } from '../../wasi-host/fs/mem-fs.js'
import { text } from '../support/guest.js'

const TRY = 0x06
const CATCH_ALL = 0x19
const i32 = (n: number) => [op.i32_const, ...s32(n)]
const u32le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]
const enc = new TextEncoder()

type Attempt = 'exit' | 'stdout' | 'fault' | 'host-fault'

/**
 * `_start`: `try { <attempt> } catch_all {}`, then writes "after\n" to stderr and returns.
 * exit: proc_exit(3). stdout: writes 10 bytes to stdout (past a 4-byte limit). fault: fd_write
 * with an iovec array past the end of memory. host-fault: a small write to `out` in the first
 * preopen (held by write-behind), then sched_yield, whose flush meets a backend bug.
 */
function catcher(attempt: Attempt): Uint8Array {
  const write = (fd: number[], iov: number) => [...fd, ...i32(iov), ...i32(1), ...i32(80), op.call, 1, op.drop]
  const body = {
    exit: [...i32(3), op.call, 2],
    stdout: write(i32(1), 16),
    fault: write(i32(1), 0xfffc),
    'host-fault': [
      // path_open(3, 0, "out", O_CREAT, FD_WRITE, 0, 0, &fd at 96)
      ...i32(3),
      ...i32(0),
      ...i32(0),
      ...i32(3),
      ...i32(1),
      op.i64_const,
      ...s32(Rights.FD_WRITE),
      op.i64_const,
      0,
      ...i32(0),
      ...i32(96),
      op.call,
      0,
      op.drop,
      ...write([...i32(96), op.i32_load, 2, 0], 16),
      op.call,
      3,
      op.drop,
    ],
  }[attempt]
  return buildModule({
    types: [
      { params: [I32, I32, I32, I32, I32, I64, I64, I32, I32], results: [I32] },
      { params: [I32, I32, I32, I32], results: [I32] },
      { params: [I32], results: [] },
      { params: [], results: [I32] },
    ],
    imports: [
      { module: 'wasi_snapshot_preview1', name: 'path_open', desc: [0x00, 0] },
      { module: 'wasi_snapshot_preview1', name: 'fd_write', desc: [0x00, 1] },
      { module: 'wasi_snapshot_preview1', name: 'proc_exit', desc: [0x00, 2] },
      { module: 'wasi_snapshot_preview1', name: 'sched_yield', desc: [0x00, 3] },
    ],
    memory: [0x00, 1],
    funcs: [{ export: '_start', body: [TRY, op.void, ...body, CATCH_ALL, op.end, ...write(i32(2), 48)] }],
    data: [
      [0x00, ...i32(0), op.end, 3, ...enc.encode('out')],
      [0x00, ...i32(16), op.end, 8, ...u32le(32), ...u32le(10)],
      [0x00, ...i32(32), op.end, 10, ...enc.encode('0123456789')],
      [0x00, ...i32(48), op.end, 8, ...u32le(64), ...u32le(6)],
      [0x00, ...i32(64), op.end, 6, ...enc.encode('after\n')],
    ],
  })
}

describe('a guest cannot catch the end of its run (exception handling)', () => {
  it("the engine does run such a module: without the host's guard its handler would go on", () => {
    // Nothing thrown: the handler is never entered and the guest writes after it.
    const m = catcher('stdout')
    const r = runSync(m, { isolation: 'in-process' })
    expect(r.exitCode).toBe(0)
    expect([text(r.stdout), text(r.stderr)]).toEqual(['0123456789', 'after\n'])
  })

  it('proc_exit ends the run with its code; nothing the handler writes gets out', () => {
    const r = runSync(catcher('exit'), { isolation: 'in-process' })
    expect([r.exitCode, r.trap, text(r.stderr)]).toEqual([3, undefined, ''])
  })

  it('an output limit stops the guest and is reported, however the guest handles it', () => {
    const r = runSync(catcher('stdout'), { isolation: 'in-process', limits: { stdout: 4 } })
    expect([r.exitCode, r.limit, text(r.stdout), text(r.stderr)]).toEqual([124, 'stdout', '0123', ''])
  })

  it('in a worker as in-process', async () => {
    const r = await run(catcher('exit'))
    expect([r.exitCode, r.trap, text(r.stderr)]).toEqual([3, undefined, ''])
  })

  it('a memory fault is a trap of the call that faulted', () => {
    const r = runSync(catcher('fault'), { isolation: 'in-process' })
    expect(r.exitCode).toBe(134)
    expect(r.trap?.syscall).toBe('fd_write')
    expect(text(r.stderr)).toBe('')
  })

  it('a host fault (here: a backend bug met while writing out held bytes) ends the run', () => {
    const { fs, log } = writeLogFs(createMemFs())
    log.failWith = new TypeError('backend bug')
    const r = runSync(catcher('host-fault'), { isolation: 'in-process', mounts: [{ guest: '/o', fs }] })
    expect(r.exitCode).toBe(134)
    expect(r.trap?.kind).toBe('host-fault')
    expect(r.trap?.syscall).toBe('sched_yield')
    expect(text(r.stderr)).toBe('')
  })
})
