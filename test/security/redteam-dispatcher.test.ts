/**
 * Red-team: odd raw values through the dispatcher (direct calls on the import object, exactly as
 * wasm can pass them: i32 signed, i64 as signed bigint, and, when a guest declares an import with
 * another signature, floats, bigints where numbers are expected and the reverse), and modules
 * that import WASI functions under a signature of their own.
 *
 * Every call must end in an errno or a trap (GuestFault / HostInvariantError), never a JS
 * exception of another kind, a side effect after a fault, or a `run` that throws.
 */
import { describe, expect, it } from 'vitest'
import { GuestFault, HostInvariantError, ProcExit } from '../../wasi-host/errors.js'
import { run, runSync, type RunResult } from '../../runtime/index.js'
import { buildModule, F64, I32, I64, op, u32 } from '../runtime/instrument/wasm.js'
import {
  ALL_RIGHTS,
  Errno,
  errnoName,
  existsIn,
  harness,
  HIGH_PTR,
  NEG_PTR,
  O_CREAT,
  readIn,
  READ_RIGHTS,
  SANDBOX,
  type Harness,
} from '../wasi-host/harness.js'

type Outcome = { kind: 'errno'; name: string } | { kind: 'trap'; what: string } | { kind: 'other'; what: string }

function outcome(fn: () => unknown): Outcome {
  try {
    const rc = fn()
    if (typeof rc !== 'number' || !Number.isInteger(rc) || rc < 0 || rc > 76) return { kind: 'other', what: `returned ${String(rc)}` }
    return { kind: 'errno', name: errnoName(rc) }
  } catch (e) {
    if (e instanceof GuestFault || e instanceof HostInvariantError) return { kind: 'trap', what: e.name }
    return { kind: 'other', what: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }
  }
}

/** A harness whose clock never really sleeps (it records what it was asked to). */
function quietHarness(): { h: Harness; slept: bigint[] } {
  const slept: bigint[] = []
  const h = harness({
    memoryPages: 1,
    maximumPages: 2,
    clocks: {
      realtime: () => 1_700_000_000_000_000_000n,
      monotonic: () => 1_000n,
      processCputime: () => 0n,
      threadCputime: () => 0n,
      resolution: { realtime: 1n, monotonic: 1n, processCputime: 1n, threadCputime: 1n },
      sleep: (ns) => {
        slept.push(ns)
      },
    },
  })
  return { h, slept }
}

const U32_MAX = 0xffffffff
const I64_MIN = -(1n << 63n)

describe('redteam dispatcher: raw values at the edges of their types', () => {
  it('descriptor numbers: negative, 2^31, 2^32-1 and floats are BADF or the fd they wrap to, never a throw', () => {
    const { h } = quietHarness()
    const w = h.wasi as unknown as Record<string, (...a: unknown[]) => number>
    for (const fd of [-1, HIGH_PTR, U32_MAX, 1e10 + 0.5, Number.NaN, Infinity, -Infinity, 2 ** 53, -0]) {
      h.resetAlloc()
      const out = h.alloc(64, 8)
      for (const name of ['fd_fdstat_get', 'fd_filestat_get', 'fd_prestat_get', 'fd_tell']) {
        const o = outcome(() => w[name]!(fd, out))
        expect(o.kind, `${name}(${fd}) ${JSON.stringify(o)}`).toBe('errno')
      }
      expect(outcome(() => w.fd_close!(fd)).kind).toBe('errno')
      expect(outcome(() => w.fd_renumber!(fd, fd)).kind).toBe('errno')
    }
    // The preopens are still there.
    expect(h.fdstat(SANDBOX).errno).toBe(Errno.SUCCESS)
  })

  it('pointers: negative, at 2^31, wrapping, misaligned, NaN: a trap before any effect, never a RangeError', () => {
    const { h } = quietHarness()
    const w = h.wasi
    const calls: [string, () => number][] = [
      ['args_sizes_get', () => w.args_sizes_get(NEG_PTR, NEG_PTR)],
      ['environ_get', () => w.environ_get(HIGH_PTR, HIGH_PTR)],
      ['fd_write-iovs', () => w.fd_write(1, NEG_PTR, 1, 16)],
      ['fd_write-len', () => w.fd_write(1, 16, -1, 32)],
      [
        'fd_write-inner',
        () => {
          const iov = h.iovecs([[U32_MAX - 3, 8]])
          return w.fd_write(1, iov, 1, 16)
        },
      ],
      [
        'fd_read-inner',
        () => {
          const iov = h.iovecs([[65530, 16]])
          return w.fd_read(0, iov, 1, 16)
        },
      ],
      ['fd_filestat_get', () => w.fd_filestat_get(SANDBOX, 65536 - 32)],
      ['fd_fdstat_get-mis', () => w.fd_fdstat_get(SANDBOX, 1027)],
      ['clock_time_get', () => w.clock_time_get(0, 0n, 65536)],
      ['random_get', () => w.random_get(0, -1)],
      ['random_get-wrap', () => w.random_get(-16, 32)],
      ['prestat_dir_name', () => w.fd_prestat_dir_name(SANDBOX, 65535, U32_MAX)],
      ['poll-nsubs', () => w.poll_oneoff(0, 0, -1, 16)],
      ['poll-out', () => w.poll_oneoff(1024, NEG_PTR, 1, 16)],
      ['readdir-buf', () => w.fd_readdir(SANDBOX, 60000, 10000, 0n, 16)],
      ['path_open-path', () => w.path_open(SANDBOX, 0, NEG_PTR, 8, 0, READ_RIGHTS, ALL_RIGHTS, 0, 16)],
      ['path_open-len', () => w.path_open(SANDBOX, 0, 1024, -1, 0, READ_RIGHTS, ALL_RIGHTS, 0, 16)],
      [
        'path_open-fdptr',
        () => {
          const p = h.str('a.txt')
          return w.path_open(SANDBOX, 0, p.ptr, p.len, 0, READ_RIGHTS, ALL_RIGHTS, 0, 65534)
        },
      ],
      [
        'path_open-nan',
        () => (w.path_open as (...a: unknown[]) => number)(SANDBOX, 0, Number.NaN, 5, 0, READ_RIGHTS, ALL_RIGHTS, 0, Number.NaN),
      ],
    ]
    for (const [name, fn] of calls) {
      h.resetAlloc()
      const o = outcome(fn)
      expect(['trap', 'errno'], `${name}: ${JSON.stringify(o)}`).toContain(o.kind)
    }
    // A faulting path_open with O_CREAT leaves nothing behind.
    h.resetAlloc()
    const p = h.str('made-by-fault')
    expect(outcome(() => w.path_open(SANDBOX, 0, p.ptr, p.len, O_CREAT, ALL_RIGHTS, ALL_RIGHTS, 0, NEG_PTR)).kind).toBe('trap')
    expect(existsIn(h.sandboxFs, 'made-by-fault')).toBe(false)
  })

  it('i64 values with high bits: offsets, sizes, cookies, timestamps, rights', () => {
    const { h, slept } = quietHarness()
    const w = h.wasi
    const f = h.openOk('a.txt', { base: ALL_RIGHTS, oflags: 0 })
    const checks: [string, () => number][] = [
      ['seek-min', () => w.fd_seek(f, I64_MIN, 0, h.alloc(8, 8))],
      ['seek-end-min', () => w.fd_seek(f, I64_MIN, 2, h.alloc(8, 8))],
      ['seek-max', () => w.fd_seek(f, (1n << 63n) - 1n, 1, h.alloc(8, 8))],
      [
        'pread-neg',
        () => {
          const b = h.alloc(8)
          return w.fd_pread(f, h.iovecs([[b, 8]]), 1, -1n, h.alloc(4, 4))
        },
      ],
      [
        'pwrite-neg',
        () => {
          const b = h.alloc(8)
          return w.fd_pwrite(f, h.iovecs([[b, 8]]), 1, -1n, h.alloc(4, 4))
        },
      ],
      [
        'pwrite-2^63',
        () => {
          const b = h.alloc(8)
          return w.fd_pwrite(f, h.iovecs([[b, 8]]), 1, 1n << 63n, h.alloc(4, 4))
        },
      ],
      ['set_size-neg', () => w.fd_filestat_set_size(f, -1n)],
      ['allocate-wrap', () => w.fd_allocate(f, (1n << 63n) - 1n, 2n)],
      ['allocate-neg', () => w.fd_allocate(f, -1n, -1n)],
      ['advise-wrap', () => w.fd_advise(f, -1n, -1n, 0)],
      ['times-max', () => w.fd_filestat_set_times(f, -1n, -1n, 1 | 4)],
      ['readdir-cookie', () => w.fd_readdir(SANDBOX, h.alloc(256, 8), 256, -1n, h.alloc(4, 4))],
      ['rights-unknown-bits', () => w.fd_fdstat_set_rights(f, -1n, -1n)],
      [
        'open-rights-all-bits',
        () => {
          const p = h.str('a.txt')
          return w.path_open(SANDBOX, 0, p.ptr, p.len, 0, -1n, -1n, 0, h.alloc(4, 4))
        },
      ],
      ['clock-precision', () => w.clock_time_get(1, -1n, h.alloc(8, 8))],
      ['clock-bad-id', () => w.clock_time_get(-1, 0n, h.alloc(8, 8))],
    ]
    const res: Record<string, string> = {}
    for (const [name, fn] of checks) {
      const o = outcome(fn)
      res[name] = o.kind === 'errno' ? o.name : `${o.kind}:${o.what}`
    }
    for (const [name, r] of Object.entries(res)) expect(r, name).not.toMatch(/^(other|trap)/)
    // Nothing past 2^63 was written, and the file kept its size class.
    expect(readIn(h.sandboxFs, 'a.txt').length).toBeLessThan(1 << 20)
    // A poll on a far-future absolute deadline asks the clock for an enormous sleep (see the
    // runtime test for what that does to an in-process run).
    h.resetAlloc()
    const sub = h.alloc(48, 8)
    h.setU64(sub, 7n)
    h.setU8(sub + 8, 0)
    h.setU32(sub + 16, 0)
    h.setU64(sub + 24, (1n << 64n) - 1n)
    h.setU16(sub + 40, 1)
    expect(errnoName(w.poll_oneoff(sub, h.alloc(32, 8), 1, h.alloc(4, 4)))).toBe('SUCCESS')
    expect(slept.length).toBe(1)
  })

  it('wrong JS types (a guest import declared with another signature): a trap, never another exception', () => {
    const { h } = quietHarness()
    const w = h.wasi as unknown as Record<string, (...a: unknown[]) => number>
    const cases: [string, () => number][] = [
      ['bigint-for-i32', () => w.fd_close!(3n)],
      ['bigint-for-ptr', () => w.args_sizes_get!(16n, 32n)],
      ['number-for-i64', () => w.fd_seek!(0, 5, 0, 16)],
      ['float-for-i64', () => w.fd_filestat_set_size!(3, 1.5)],
      ['undefined-all', () => w.path_open!()],
      ['null', () => w.fd_write!(null, null, null, null)],
      ['function-ref', () => w.fd_close!(() => 3)],
    ]
    for (const [name, fn] of cases) {
      h.resetAlloc()
      const o = outcome(fn)
      expect(o.kind, `${name}: ${JSON.stringify(o)}`).not.toBe('other')
    }
    expect(h.fdstat(SANDBOX).errno).toBe(Errno.SUCCESS)
  })

  it('counts past the caps: iovecs, poll subscriptions, aliasing iovecs past 2^31 bytes', () => {
    const h = harness({ memoryPages: 34, maximumPages: 34 })
    const w = h.wasi
    // 2048 zero-length iovecs (in bounds): INVAL, not a 2048-entry copy.
    const many = h.alloc(2048 * 8, 4)
    expect(errnoName(w.fd_write(1, many, 2048, h.alloc(4, 4)))).toBe('INVAL')
    // 1024 iovecs all naming the same 64 KiB: 64 MiB from 64 KiB of guest memory is fine;
    // 1024 x (2 MiB + 8) passes 2^31 - 1 in total: INVAL.
    h.resetAlloc()
    const big = h.iovecs(Array.from({ length: 1024 }, () => [0, 65536] as const))
    expect(errnoName(w.fd_write(1, big, 1024, h.alloc(4, 4)))).toBe('SUCCESS')
    h.resetAlloc()
    const huge = h.iovecs(Array.from({ length: 1024 }, () => [0, (1 << 21) + 8] as const))
    expect(errnoName(w.fd_write(1, huge, 1024, h.alloc(4, 4)))).toBe('INVAL')
    h.resetAlloc()
    // 5000 poll subscriptions: INVAL.
    expect(errnoName(w.poll_oneoff(0, 0, 5000, 8))).toBe('INVAL')
  })
})

/** A command module importing one WASI function under `type`, calling it from `_start`. */
function oddImport(
  fn: string,
  params: number[],
  results: number[],
  args: number[][],
  extra: Partial<Parameters<typeof buildModule>[0]> = {},
): Uint8Array {
  const call = [...args.flat(), op.call, 0, ...results.map(() => op.drop)]
  return buildModule({
    imports: [{ module: 'wasi_snapshot_preview1', name: fn, desc: [0x00, ...u32(0)] }],
    types: [{ params, results }],
    memory: [0x00, 1],
    funcs: [{ body: call, export: '_start' }],
    ...extra,
  })
}

const i32c = (v: number) => [op.i32_const, ...sleb(v)]
const i64c = (v: number) => [op.i64_const, ...sleb(v)]
const f64c = (v: number) => {
  const b = new Uint8Array(new Float64Array([v]).buffer)
  return [op.f64_const, ...b]
}
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

function settles(fn: () => RunResult): { result?: RunResult; threw?: string } {
  try {
    return { result: fn() }
  } catch (e) {
    return { threw: e instanceof Error ? `${e.name}: ${e.message}` : `non-Error ${Object.prototype.toString.call(e)} ${JSON.stringify(e)}` }
  }
}

describe("redteam dispatcher: WASI imports declared with a signature of the guest's choosing", () => {
  it('i64 where the host expects i32, f64 where it expects i64: the run ends with a result', () => {
    const mods = [
      oddImport('proc_exit', [I64], [], [i64c(7)]),
      oddImport('fd_close', [F64], [I32], [f64c(Number.NaN)]),
      oddImport('fd_filestat_set_size', [I32, F64], [I32], [i32c(3), f64c(1e300)]),
      oddImport('args_sizes_get', [], [I32], []),
      oddImport('fd_write', [F64, F64, F64, F64], [I32], [f64c(1), f64c(-1), f64c(Infinity), f64c(0)]),
    ]
    for (const m of mods) {
      const s = settles(() => runSync(m))
      expect(s.threw, s.threw).toBeUndefined()
    }
  })

  // FINDING: nothing checks an import's declared signature against the WASI one. A result type
  // the host's number cannot convert to (i64, a funcref, two results) makes the engine throw a
  // TypeError in the import wrapper, after the host call returned and outside the dispatcher's
  // try/catch; classifyTrap does not know it, so `executeGuest` rethrows it and `runSync` /
  // in-process `run` throw instead of returning a result.
  it('an import declared to return i64 ends the run with a result, not a thrown TypeError', () => {
    const m = oddImport('sched_yield', [], [I64], [])
    const s = settles(() => runSync(m))
    expect(s.threw).toBeUndefined()
    expect(s.result?.trap?.kind).toBeDefined()
  })

  it('an import declared to return i64 in a worker: a result, and the worker pool still serves', async () => {
    const m = oddImport('sched_yield', [], [I64], [])
    const r = await run(m, { limits: { timeout: '5s' } })
    expect(r.exitCode).toBe(134)
    const ok = await run(oddImport('proc_exit', [I32], [], [i32c(3)]), { limits: { timeout: '5s' } })
    expect(ok.exitCode).toBe(3)
  })
})

describe('redteam dispatcher: start functions', () => {
  // A start function (section 8) runs inside `new WebAssembly.Instance`, before `host.start`
  // could catch `ProcExit`; it is safe only because the dispatcher refreshes the (still unbound)
  // memory before every call, so even proc_exit faults there. Kept as a regression test.
  it('proc_exit from a start function ends the run with a result', () => {
    const m = buildModule({
      imports: [{ module: 'wasi_snapshot_preview1', name: 'proc_exit', desc: [0x00, ...u32(0)] }],
      types: [{ params: [I32], results: [] }],
      memory: [0x00, 1],
      funcs: [{ body: [], export: '_start' }, { body: [...i32c(5), op.call, 0] }],
      start: 2,
    })
    const s = settles(() => runSync(m))
    expect(s.threw).toBeUndefined()
    expect(s.result?.exitCode).toBe(134)
  })

  it('a WASI call from a start function (memory not bound yet) is a memory-fault trap', () => {
    const m = buildModule({
      imports: [{ module: 'wasi_snapshot_preview1', name: 'random_get', desc: [0x00, ...u32(0)] }],
      types: [{ params: [I32, I32], results: [I32] }],
      memory: [0x00, 1],
      funcs: [{ body: [], export: '_start' }, { body: [...i32c(0), ...i32c(16), op.call, 0, op.drop] }],
      start: 2,
    })
    const s = settles(() => runSync(m))
    expect(s.threw).toBeUndefined()
    expect(s.result?.trap?.kind).toBe('memory-fault')
  })

  it('an endless loop in a start function under fuel stops (the counter starts at 0)', () => {
    const m = buildModule({
      memory: [0x00, 1],
      funcs: [{ body: [], export: '_start' }, { body: [op.loop, op.void, op.br, 0, op.end] }],
      start: 1,
    })
    const s = settles(() => runSync(m, { limits: { fuel: 1_000_000 } }))
    expect(s.threw).toBeUndefined()
    expect(s.result!.exitCode === 124 || s.result!.exitCode === 134).toBe(true)
  })
})

void ProcExit
