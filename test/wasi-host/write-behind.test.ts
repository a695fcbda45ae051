/**
 * Write-behind (wasi-host/write-behind.ts), called directly as wasm would: small sequential
 * `fd_write`s to a file on a backend that declares `writeBehind` are held and handed over in one
 * backend write, and the guest never observes the difference: every other call sees the bytes in
 * place, positions move at once, and a failure of a held write is reported by the next
 * `fd_write`, `fd_sync`, `fd_datasync` or `fd_close` on the descriptor, or as a warning.
 */
import { describe, expect, it } from 'vitest'
import { Errno, Fdflags, Filetype, Whence } from '../../wasi-host/abi/constants.js'
import { HostInvariantError, ProcExit, WasiError } from '../../wasi-host/errors.js'
import { createMemFs, memFsFromTree } from '../../wasi-host/fs/mem-fs.js'
import { createOverlayFs } from '../../wasi-host/fs/overlay.js'
import { withQuota } from '../../wasi-host/fs/quota.js'
import { readOnly } from '../../wasi-host/fs/read-only.js'
import { WRITE_BEHIND_CAP, WRITE_BEHIND_MAX_WRITE } from '../../wasi-host/write-behind.js'
import { writeLogFs } from '../support/write-log-fs.js'
import { ALL_RIGHTS, expectErrno, harness, O_CREAT, readIn, SIGNATURES, STDOUT, WITX_PREVIEW1, type Harness } from './harness.js'

/** The write-behind mount's preopen, after `/sandbox` (3) and `/data` (4). */
const WB = 5

function setup(tree: Parameters<typeof memFsFromTree>[0] = { 'f.txt': '' }) {
  const inner = memFsFromTree(tree)
  const { fs, log } = writeLogFs(inner)
  const h = harness({ extraPreopens: [{ guestPath: '/wb', fs }] })
  /** The file's bytes as the backend holds them, read beside the host (so nothing is flushed). */
  const stored = (path = 'f.txt') => readIn(inner, path)
  return { h, log, inner, stored }
}

function openWb(h: Harness, path = 'f.txt', fdflags = 0, oflags = 0): number {
  return h.openOk(path, { dirfd: WB, base: ALL_RIGHTS, fdflags, oflags })
}

function write(h: Harness, fd: number, s: string): void {
  const r = h.writeFd(fd, s)
  expectErrno(r.errno, 'SUCCESS')
  expect(r.n).toBe(new TextEncoder().encode(s).byteLength)
}

function seek(h: Harness, fd: number, offset: bigint, whence: number): bigint {
  const p = h.alloc(8, 8)
  expectErrno(h.wasi.fd_seek(fd, offset, whence, p), 'SUCCESS')
  return h.u64(p)
}

function tell(h: Harness, fd: number): bigint {
  const p = h.alloc(8, 8)
  expectErrno(h.wasi.fd_tell(fd, p), 'SUCCESS')
  return h.u64(p)
}

describe('write-behind: holding', () => {
  it('holds small sequential writes and hands them over in one backend write at the next other call', () => {
    const { h, log, stored } = setup()
    const fd = openWb(h)
    write(h, fd, 'ab')
    write(h, fd, 'cd')
    write(h, fd, 'ef')
    expect(log.writes).toEqual([])
    expect(stored()).toBe('')
    expectErrno(h.wasi.sched_yield(), 'SUCCESS')
    expect(log.writes).toEqual([{ at: 0n, text: 'abcdef' }])
    expect(stored()).toBe('abcdef')
  })

  it('gathers every buffer of an iovec array, skipping empty ones', () => {
    const { h, log, stored } = setup()
    const fd = openWb(h)
    const a = h.str('abc'),
      b = h.str('defgh'.repeat(10))
    const iov = h.iovecs([
      [a.ptr, a.len],
      [a.ptr, 0],
      [b.ptr, b.len],
    ])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_write(fd, iov, 3, n), 'SUCCESS')
    expect(h.u32(n)).toBe(53)
    expect(log.writes).toEqual([])
    expect(tell(h, fd)).toBe(53n)
    expect(stored()).toBe('abc' + 'defgh'.repeat(10))
  })

  it(`holds at most ${WRITE_BEHIND_CAP} bytes: a write that does not fit hands the held ones over first`, () => {
    const { h, log, stored } = setup()
    const fd = openWb(h)
    const chunk = h.str('0123456789abcdef')
    const iov = h.iovecs([[chunk.ptr, chunk.len]])
    const n = h.alloc(4, 4)
    for (let i = 0; i < 300; i++) expectErrno(h.wasi.fd_write(fd, iov, 1, n), 'SUCCESS')
    expect(log.writes.map((w) => [w.at, w.text.length])).toEqual([[0n, WRITE_BEHIND_CAP]])
    expect(tell(h, fd)).toBe(4800n)
    expect(log.writes.map((w) => [w.at, w.text.length])).toEqual([
      [0n, WRITE_BEHIND_CAP],
      [4096n, 4800 - WRITE_BEHIND_CAP],
    ])
    expect(stored()).toBe('0123456789abcdef'.repeat(300))
  })

  it(`writes of ${WRITE_BEHIND_MAX_WRITE} bytes or more go straight through, after what is held`, () => {
    const { h, log, stored } = setup()
    const fd = openWb(h)
    write(h, fd, 'x'.repeat(WRITE_BEHIND_MAX_WRITE - 1))
    expect(log.writes).toEqual([])
    write(h, fd, 'y'.repeat(WRITE_BEHIND_MAX_WRITE))
    expect(log.writes.map((w) => [w.at, w.text[0], w.text.length])).toEqual([
      [0n, 'x', WRITE_BEHIND_MAX_WRITE - 1],
      [BigInt(WRITE_BEHIND_MAX_WRITE - 1), 'y', WRITE_BEHIND_MAX_WRITE],
    ])
    expect(stored()).toBe('x'.repeat(WRITE_BEHIND_MAX_WRITE - 1) + 'y'.repeat(WRITE_BEHIND_MAX_WRITE))
  })

  it.each([
    ['APPEND', Fdflags.APPEND],
    ['SYNC', Fdflags.SYNC],
    ['DSYNC', Fdflags.DSYNC],
    ['RSYNC', Fdflags.RSYNC],
  ])('never holds a write with %s', (_name, flag) => {
    const { h, log, stored } = setup({ 'f.txt': 'start-' })
    const fd = openWb(h, 'f.txt', flag)
    write(h, fd, 'a')
    expect(log.writes).toHaveLength(1)
    expect(stored()).toBe(flag === Fdflags.APPEND ? 'start-a' : 'atart-')
  })

  it('stops holding once APPEND is set on an open descriptor (and appends after what was held)', () => {
    const { h, log, stored } = setup({ 'f.txt': '0123456789' })
    const fd = openWb(h)
    write(h, fd, 'ab')
    expectErrno(h.wasi.fd_fdstat_set_flags(fd, Fdflags.APPEND), 'SUCCESS')
    expect(log.writes).toHaveLength(1)
    write(h, fd, 'Z')
    expect(log.writes).toHaveLength(2)
    expect(stored()).toBe('ab23456789Z')
  })

  it('never holds a write far out in the file, where the backend may refuse it by its position', () => {
    const { h, log } = setup()
    const fd = openWb(h)
    seek(h, fd, 1n << 40n, Whence.SET)
    h.writeFd(fd, 'a')
    expect(log.writes).toHaveLength(1)
  })

  it('never holds writes to what is not a regular file (a FIFO, a device: each write acts)', () => {
    for (const filetype of [Filetype.UNKNOWN, Filetype.CHARACTER_DEVICE, Filetype.BLOCK_DEVICE]) {
      const { fs, log } = writeLogFs(memFsFromTree({ 'f.txt': '' }), filetype)
      const h = harness({ extraPreopens: [{ guestPath: '/wb', fs }] })
      write(h, openWb(h), 'a')
      expect(log.writes, String(filetype)).toHaveLength(1)
    }
  })

  it('never holds writes to a stream, nor through a backend that does not declare it', () => {
    const { h, log } = setup()
    const fd = h.openOk('a.txt', { base: ALL_RIGHTS })
    write(h, fd, 'X')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('Xlpha\n')
    write(h, STDOUT, 'out')
    expect(h.stdoutText()).toBe('out')
    expect(log.writes).toEqual([])
  })

  it('only a backend declares it: a quota, a read-only view and an overlay never pass it on', () => {
    const { fs } = writeLogFs()
    expect(fs.caps.writeBehind).toBe(true)
    expect(withQuota(fs, { bytes: 1 << 20 }).caps.writeBehind).toBeUndefined()
    expect(readOnly(fs).caps.writeBehind).toBeUndefined()
    expect(createOverlayFs(readOnly(createMemFs()), { upper: fs }).caps.writeBehind).toBeUndefined()
    expect(createMemFs().caps.writeBehind).toBeUndefined()
  })

  it('a write through a quota reaches the backend at once, so the quota refuses it in the call itself', () => {
    const { fs, log } = writeLogFs()
    const h = harness({ extraPreopens: [{ guestPath: '/q', fs: withQuota(fs, { bytes: 4 }) }] })
    const fd = h.openOk('f.txt', { dirfd: WB, base: ALL_RIGHTS, oflags: O_CREAT })
    write(h, fd, 'abc')
    expect(log.writes).toHaveLength(1)
    // A short write at the limit, then the refusal: each in its own call, never deferred.
    expect(h.writeFd(fd, 'defg')).toEqual({ errno: Errno.SUCCESS, n: 1 })
    expectErrno(h.writeFd(fd, 'h').errno, 'DQUOT')
    expect(log.writes.map((w) => w.text)).toEqual(['abc', 'd'])
  })
})

describe('write-behind: the guest sees every byte in place', () => {
  it('flushes before every other syscall, whatever it does with its arguments', () => {
    for (const name of WITX_PREVIEW1) {
      if (name === 'fd_write') continue
      const { h, log } = setup()
      const fd = openWb(h)
      write(h, fd, 'held')
      expect(log.writes, name).toEqual([])
      // Zeros for every argument: most calls fail or trap, after the flush.
      const args = SIGNATURES[name].map((k) => (k === 'i64' ? 0n : 0))
      try {
        h.wasi[name](...args)
      } catch (e) {
        if (!(e instanceof ProcExit) && !(e instanceof Error)) throw e
      }
      expect(log.writes, name).toEqual([{ at: 0n, text: 'held' }])
    }
  })

  it('fd_write to another descriptor, or to stdout, hands the held bytes over first', () => {
    const { h, log, stored } = setup({ 'f.txt': '', 'g.txt': '' })
    const f = openWb(h)
    const g = openWb(h, 'g.txt')
    write(h, f, 'to f')
    write(h, STDOUT, 'out')
    expect(log.writes).toEqual([{ at: 0n, text: 'to f' }])
    write(h, f, '+')
    write(h, g, 'to g')
    expect(log.writes.map((w) => w.text)).toEqual(['to f', '+'])
    expectErrno(h.wasi.sched_yield(), 'SUCCESS')
    expect([stored(), stored('g.txt')]).toEqual(['to f+', 'to g'])
  })

  it('moves the position at once: fd_tell and fd_seek see it, and SEEK_END sees the new size', () => {
    const { h } = setup({ 'f.txt': 'xy' })
    const fd = openWb(h)
    write(h, fd, 'abc')
    expect(tell(h, fd)).toBe(3n)
    write(h, fd, 'de')
    expect(seek(h, fd, 0n, Whence.CUR)).toBe(5n)
    expect(seek(h, fd, 0n, Whence.END)).toBe(5n)
    write(h, fd, 'f')
    expect(seek(h, fd, -1n, Whence.END)).toBe(5n)
  })

  it('reads on the same descriptor, on another one and through a fresh path_open see the bytes', () => {
    const { h } = setup({ 'f.txt': '----------' })
    const fd = openWb(h)
    const other = openWb(h)
    write(h, fd, 'hello')
    expect(h.readFd(other).text).toBe('hello-----')
    write(h, fd, ' you')
    expect(h.readFd(fd).text).toBe('-')
    write(h, fd, '!')
    seek(h, fd, 0n, Whence.SET)
    expect(h.readFd(fd).text).toBe('hello you-!')
    seek(h, fd, 0n, Whence.SET)
    write(h, fd, 'J')
    const fresh = openWb(h)
    expect(h.readFd(fresh).text).toBe('Jello you-!')
  })

  it('fd_pread and fd_pwrite see and keep the order of held bytes', () => {
    const { h, stored } = setup()
    const fd = openWb(h)
    write(h, fd, 'abcdef')
    const z = h.str('Z')
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_pwrite(fd, h.iovecs([[z.ptr, 1]]), 1, 0n, n), 'SUCCESS')
    write(h, fd, 'g')
    const buf = h.alloc(16, 1)
    expectErrno(h.wasi.fd_pread(fd, h.iovecs([[buf, 16]]), 1, 0n, n), 'SUCCESS')
    expect(h.readString(buf, h.u32(n))).toBe('Zbcdefg')
    expect(stored()).toBe('Zbcdefg')
  })

  it('stats by descriptor and by path report the size with the held bytes', () => {
    const { h } = setup()
    const fd = openWb(h)
    write(h, fd, 'abc')
    expect(h.fdStat(fd).stat.size).toBe(3n)
    write(h, fd, 'defg')
    expect(h.pathStat('f.txt', WB).stat.size).toBe(7n)
  })

  it('overwrites after a seek back, and truncation, land where the guest put them', () => {
    const { h, stored } = setup()
    const fd = openWb(h)
    write(h, fd, 'abcdef')
    seek(h, fd, 2n, Whence.SET)
    write(h, fd, 'XY')
    expect(tell(h, fd)).toBe(4n)
    expectErrno(h.wasi.fd_filestat_set_size(fd, 3n), 'SUCCESS')
    write(h, fd, 'q')
    expect(h.fdStat(fd).stat.size).toBe(5n)
    expect(stored()).toBe('abX\0q')
  })

  it('interleaved writes through two descriptors on one file keep their order', () => {
    const { h, stored } = setup()
    const a = openWb(h)
    const b = openWb(h)
    write(h, a, 'aaaa')
    write(h, b, 'bb')
    write(h, a, 'A')
    write(h, b, 'B')
    expectErrno(h.wasi.sched_yield(), 'SUCCESS')
    expect(stored()).toBe('bbBaA')
  })

  it('fd_close, fd_renumber and the end of the host hand the held bytes over', () => {
    const { h, stored } = setup({ 'f.txt': '', 'g.txt': '', 'h.txt': '' })
    const f = openWb(h)
    write(h, f, 'closed')
    expectErrno(h.wasi.fd_close(f), 'SUCCESS')
    expect(stored()).toBe('closed')
    const g = openWb(h, 'g.txt')
    const spare = openWb(h, 'h.txt')
    write(h, g, 'renumbered')
    expectErrno(h.wasi.fd_renumber(g, spare), 'SUCCESS')
    expect(stored('g.txt')).toBe('renumbered')
    write(h, spare, '!')
    h.host.close()
    expect(stored('g.txt')).toBe('renumbered!')
    expect(h.host.writeFailures()).toEqual([])
  })

  it('proc_exit hands the held bytes over before unwinding', () => {
    const { h, stored } = setup()
    write(h, openWb(h), 'bye')
    expect(() => h.wasi.proc_exit(3)).toThrow(ProcExit)
    expect(stored()).toBe('bye')
  })
})

describe('write-behind: failures of held writes', () => {
  const NOSPC = () => new WasiError(Errno.NOSPC, 'disk full')

  /** A descriptor whose held write failed at a flush the guest did not ask for. */
  function failedFlush() {
    const s = setup()
    const fd = openWb(s.h)
    write(s.h, fd, 'abc')
    s.log.failWith = NOSPC()
    expect(tell(s.h, fd)).toBe(3n)
    s.log.failWith = undefined
    expect(s.stored()).toBe('')
    return { ...s, fd }
  }

  it('the next fd_write on the descriptor reports it, writes nothing, and only once', () => {
    const { h, log, fd, stored } = failedFlush()
    const before = log.writes.length
    const r = h.writeFd(fd, 'x')
    expectErrno(r.errno, 'NOSPC')
    expect(log.writes).toHaveLength(before)
    write(h, fd, 'y')
    expectErrno(h.wasi.sched_yield(), 'SUCCESS')
    // The position moved when the failed write returned: the next one lands after it.
    expect(stored()).toBe('\0\0\0y')
    expect(h.host.writeFailures()).toEqual([])
  })

  it.each(['fd_sync', 'fd_datasync'] as const)('%s reports it', (call) => {
    const { h, fd } = failedFlush()
    expectErrno(h.wasi[call](fd), 'NOSPC')
    expectErrno(h.wasi[call](fd), 'SUCCESS')
  })

  it('fd_close reports it and still closes the descriptor', () => {
    const { h, fd } = failedFlush()
    expectErrno(h.wasi.fd_close(fd), 'NOSPC')
    expectErrno(h.wasi.fd_close(fd), 'BADF')
    h.host.close()
    expect(h.host.writeFailures()).toEqual([])
  })

  it('is reported on that descriptor only', () => {
    const { h, fd } = failedFlush()
    const other = openWb(h)
    write(h, other, 'fine')
    expectErrno(h.wasi.fd_close(other), 'SUCCESS')
    expectErrno(h.wasi.fd_close(fd), 'NOSPC')
  })

  it('the fd_write whose own flush fails reports it', () => {
    const { h, log } = setup()
    const fd = openWb(h)
    write(h, fd, 'abc')
    log.failWith = NOSPC()
    expectErrno(h.writeFd(fd, 'L'.repeat(WRITE_BEHIND_MAX_WRITE)).errno, 'NOSPC')
    // The big write itself was not attempted: only the held bytes reached the backend.
    expect(log.writes.map((w) => w.text)).toEqual(['abc'])
  })

  it('one the guest never collects becomes a warning at the end: exit, or a descriptor renumbered over', () => {
    const { h, fd } = failedFlush()
    const spare = openWb(h)
    expectErrno(h.wasi.fd_renumber(spare, fd), 'SUCCESS')
    const { h: h2, log: log2 } = setup()
    write(h2, openWb(h2), 'never stored')
    log2.failWith = NOSPC()
    h2.host.close()
    h.host.close()
    for (const warnings of [h.host.writeFailures(), h2.host.writeFailures()]) {
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/^\/wb: .*NOSPC: disk full/)
    }
  })

  it('a backend bug while handing held bytes over traps the call that flushed, or is a warning at the end', () => {
    const { h, log } = setup()
    const fd = openWb(h)
    write(h, fd, 'abc')
    log.failWith = new TypeError('backend bug')
    let thrown: unknown
    try {
      h.wasi.sched_yield()
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(HostInvariantError)
    expect((thrown as HostInvariantError).syscall).toBe('sched_yield')
    write(h, fd, 'def')
    h.host.close()
    expect(h.host.writeFailures()).toEqual([expect.stringMatching(/host fault.*backend bug/)])
  })
})
