/**
 * fd_read, fd_write, fd_pread, fd_pwrite, fd_seek, fd_tell, fd_readdir, called directly as wasm
 * would. Every pointer (the iovec array, each buffer in it, the result pointer) is checked before
 * the first byte moves, so a trap never consumes input or emits output.
 */
import { describe, expect, it } from 'vitest'
import { Filetype, Rights } from '../../wasi-host/abi/constants.js'
import {
  ALL_RIGHTS,
  BAD_FD,
  DATA,
  errnoName,
  expectErrno,
  expectTrap,
  FDFLAG_APPEND,
  harness,
  HIGH_PTR,
  NEG_PTR,
  O_CREAT,
  O_DIRECTORY,
  O_TRUNC,
  readIn,
  SANDBOX,
  STDERR,
  STDIN,
  STDOUT,
  type Harness,
} from './harness.js'

const MAX_OFFSET = (1n << 63n) - 1n

function rw(h: Harness, path = 'a.txt', oflags = 0, fdflags = 0): number {
  return h.openOk(path, { base: ALL_RIGHTS, oflags, fdflags })
}

function tell(h: Harness, fd: number): bigint {
  const p = h.alloc(8, 8)
  expectErrno(h.wasi.fd_tell(fd, p), 'SUCCESS')
  return h.u64(p)
}

describe('fd_read', () => {
  it('reads a file into several buffers, in order, and advances the position', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const a = h.alloc(3, 1)
    const b = h.alloc(10, 1)
    const iov = h.iovecs([
      [a, 3],
      [b, 10],
    ])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_read(fd, iov, 2, n), 'SUCCESS')
    expect(h.u32(n)).toBe(6)
    expect(h.readString(a, 3) + h.readString(b, 3)).toBe('alpha\n')
    expect(tell(h, fd)).toBe(6n)
    expectErrno(h.wasi.fd_read(fd, iov, 2, n), 'SUCCESS')
    expect(h.u32(n)).toBe(0)
  })

  it('reads stdin, then 0 at its end', () => {
    const h = harness({ stdin: 'line one\n' })
    expect(h.readFd(STDIN, 4).text).toBe('line')
    expect(h.readFd(STDIN).text).toBe(' one\n')
    const r = h.readFd(STDIN)
    expectErrno(r.errno, 'SUCCESS')
    expect(r.n).toBe(0)
  })

  it('accepts zero iovecs and zero-length buffers', () => {
    const h = harness({ stdin: 'abc' })
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_read(STDIN, h.size, 0, n), 'SUCCESS')
    expect(h.u32(n)).toBe(0)
    const buf = h.alloc(2, 1)
    const iov = h.iovecs([
      [h.size, 0],
      [buf, 2],
    ])
    expectErrno(h.wasi.fd_read(STDIN, iov, 2, n), 'SUCCESS')
    expect(h.readString(buf, h.u32(n))).toBe('ab')
  })

  it('reads a file on the read-only mount', () => {
    const h = harness()
    const fd = h.openOk('r.txt', { dirfd: DATA })
    expect(h.readFd(fd).text).toBe('read only\n')
  })

  it('is BADF for fd 99, a closed fd, and a directory', () => {
    const h = harness({ stdin: 'x' })
    expectErrno(h.readFd(BAD_FD).errno, 'BADF')
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_close(fd), 'SUCCESS')
    expectErrno(h.readFd(fd).errno, 'BADF')
    expectErrno(h.readFd(SANDBOX).errno, 'BADF')
  })

  it('is NOTCAPABLE once FD_READ has been dropped', () => {
    const h = harness({ stdin: 'secret' })
    h.restrict(STDIN, Rights.FD_READ)
    expectErrno(h.readFd(STDIN).errno, 'NOTCAPABLE')
    const fd = h.openOk('a.txt')
    h.restrict(fd, Rights.FD_READ)
    expectErrno(h.readFd(fd).errno, 'NOTCAPABLE')
  })

  it('is BADF on a descriptor never open for reading (write-only open, stdout), as POSIX', () => {
    const h = harness()
    const wo = h.openOk('a.txt', { base: BigInt(Rights.FD_WRITE) })
    expectErrno(h.readFd(wo).errno, 'BADF')
    expectErrno(h.readFd(STDOUT).errno, 'BADF')
  })

  it('traps when one iovec among good ones is out of bounds, consuming no input', () => {
    const h = harness({ stdin: 'keep me' })
    const a = h.alloc(4, 1)
    const n = h.alloc(4, 4)
    for (const bad of [
      [h.size - 2, 4],
      [NEG_PTR, 4],
      [HIGH_PTR, 1],
      [8, -1],
    ] as const) {
      const iov = h.iovecs([[a, 4], bad, [a, 4]])
      expectTrap(() => h.wasi.fd_read(STDIN, iov, 3, n), 'fd_read')
    }
    expect(h.readFd(STDIN).text).toBe('keep me')
  })

  it('traps on a bad iovec without moving a file position', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const a = h.alloc(4, 1)
    const iov = h.iovecs([
      [a, 2],
      [h.size, 1],
    ])
    expectTrap(() => h.wasi.fd_read(fd, iov, 2, h.alloc(4, 4)))
    expect(tell(h, fd)).toBe(0n)
    expect(h.readFd(fd).text).toBe('alpha\n')
  })

  it('traps when the iovec array or nread is out of bounds or misaligned, consuming nothing', () => {
    const h = harness({ stdin: 'keep' })
    const a = h.alloc(4, 1)
    const iov = h.iovecs([[a, 4]])
    const n = h.alloc(8, 4)
    expectTrap(() => h.wasi.fd_read(STDIN, h.size - 4, 1, n))
    expectTrap(() => h.wasi.fd_read(STDIN, NEG_PTR, 1, n))
    expectTrap(() => h.wasi.fd_read(STDIN, iov + 2, 1, n))
    expectTrap(() => h.wasi.fd_read(STDIN, iov, 1, h.size))
    expectTrap(() => h.wasi.fd_read(STDIN, iov, 1, NEG_PTR))
    expectTrap(() => h.wasi.fd_read(STDIN, iov, 1, n + 1))
    expect(h.readFd(STDIN).text).toBe('keep')
  })

  it('refuses an in-bounds iovs_len beyond the limit with INVAL; one past the end of memory traps', () => {
    const h = harness({ stdin: 'keep', limits: { maxIovecs: 4 } })
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_read(STDIN, 0, 5, n), 'INVAL')
    expectTrap(() => h.wasi.fd_read(STDIN, 0, -1, n), 'fd_read')
    expect(h.readFd(STDIN).text).toBe('keep')
  })

  it('refuses iovecs totalling more than 2^31-1 bytes with INVAL, consuming nothing', () => {
    const count = 33_000 // × 64 KiB (overlapping) > 2^31 - 1
    const h = harness({ stdin: 'keep', limits: { maxIovecs: 40_000 }, memoryPages: 5 })
    const iov = h.alloc(count * 8, 4)
    for (let i = 0; i < count; i++) {
      h.setU32(iov + i * 8, 0)
      h.setU32(iov + i * 8 + 4, 65536)
    }
    expectErrno(h.wasi.fd_read(STDIN, iov, count, h.alloc(4, 4)), 'INVAL')
    expect(h.readFd(STDIN).text).toBe('keep')
  })

  it('works with buffers in memory grown after binding (views re-derived)', () => {
    const h = harness({ stdin: 'grown' })
    const old = h.size
    h.mem.grow(1)
    const buf = old + 100
    const iov = old + 200
    const n = old + 300
    h.setU32(iov, buf)
    h.setU32(iov + 4, 16)
    expectErrno(h.wasi.fd_read(STDIN, iov, 1, n), 'SUCCESS')
    expect(h.readString(buf, h.u32(n))).toBe('grown')
  })
})

describe('fd_write', () => {
  it('gathers several buffers to stdout and stderr', () => {
    const h = harness()
    const a = h.str('hello, ')
    const b = h.str('wörld\n')
    const iov = h.iovecs([
      [a.ptr, a.len],
      [b.ptr, b.len],
    ])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_write(STDOUT, iov, 2, n), 'SUCCESS')
    expect(h.u32(n)).toBe(a.len + b.len)
    expect(h.stdoutText()).toBe('hello, wörld\n')
    expectErrno(h.wasi.fd_write(STDERR, iov, 1, n), 'SUCCESS')
    expect(h.stderrText()).toBe('hello, ')
    expect(h.host.stats.bytesWritten).toBe(a.len + b.len + a.len)
  })

  it('writes a file at its position, and at the end with APPEND', () => {
    const h = harness()
    const fd = rw(h)
    expect(h.writeFd(fd, 'AL').n).toBe(2)
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('ALpha\n')
    const ap = rw(h, 'a.txt', 0, FDFLAG_APPEND)
    expect(h.writeFd(ap, '+').n).toBe(1)
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('ALpha\n+')
  })

  it('is BADF for fd 99, a closed fd and a directory', () => {
    const h = harness()
    expectErrno(h.writeFd(BAD_FD, 'x').errno, 'BADF')
    expectErrno(h.wasi.fd_close(STDOUT), 'SUCCESS')
    expectErrno(h.writeFd(STDOUT, 'x').errno, 'BADF')
    expectErrno(h.writeFd(SANDBOX, 'x').errno, 'BADF')
    expect(h.stdoutText()).toBe('')
  })

  it('is NOTCAPABLE once FD_WRITE has been dropped', () => {
    const h = harness()
    h.restrict(STDOUT, Rights.FD_WRITE)
    expectErrno(h.writeFd(STDOUT, 'x').errno, 'NOTCAPABLE')
    const fd = rw(h)
    h.restrict(fd, Rights.FD_WRITE)
    expectErrno(h.writeFd(fd, 'x').errno, 'NOTCAPABLE')
    expect(h.stdoutText()).toBe('')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })

  it('is BADF on a descriptor never open for writing (read-only open, stdin), as POSIX', () => {
    const h = harness()
    expectErrno(h.writeFd(h.openOk('a.txt'), 'x').errno, 'BADF')
    expectErrno(h.writeFd(STDIN, 'x').errno, 'BADF')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })

  it('cannot write a file of the read-only mount (BADF: it can only be opened for reading)', () => {
    const h = harness()
    const fd = h.openOk('r.txt', { dirfd: DATA })
    expectErrno(h.writeFd(fd, 'x').errno, 'BADF')
    expect(readIn(h.dataFs, 'r.txt')).toBe('read only\n')
  })

  it('traps when one iovec among good ones is bad, writing nothing', () => {
    const h = harness()
    const s = h.str('visible')
    const n = h.alloc(4, 4)
    for (const bad of [
      [h.size - 1, 2],
      [NEG_PTR, 1],
      [HIGH_PTR, 0x7fffffff],
    ] as const) {
      const iov = h.iovecs([[s.ptr, s.len], bad])
      expectTrap(() => h.wasi.fd_write(STDOUT, iov, 2, n), 'fd_write')
    }
    const fd = rw(h)
    const iov = h.iovecs([
      [s.ptr, s.len],
      [h.size, 1],
    ])
    expectTrap(() => h.wasi.fd_write(fd, iov, 2, n))
    expect(h.stdoutText()).toBe('')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
    expect(tell(h, fd)).toBe(0n)
  })

  it('traps on a bad or misaligned nwritten pointer, writing nothing', () => {
    const h = harness()
    const s = h.str('x')
    const iov = h.iovecs([[s.ptr, s.len]])
    expectTrap(() => h.wasi.fd_write(STDOUT, iov, 1, h.size - 3))
    expectTrap(() => h.wasi.fd_write(STDOUT, iov, 1, NEG_PTR))
    expectTrap(() => h.wasi.fd_write(STDOUT, iov, 1, h.alloc(8, 4) + 2))
    expectTrap(() => h.wasi.fd_write(STDOUT, iov + 1, 1, h.alloc(4, 4)))
    expect(h.stdoutText()).toBe('')
  })

  it('refuses more iovecs than the limit with INVAL', () => {
    const h = harness({ limits: { maxIovecs: 2 } })
    expectErrno(h.wasi.fd_write(STDOUT, 0, 3, h.alloc(4, 4)), 'INVAL')
  })

  it('writes from memory grown after binding', () => {
    const h = harness()
    const old = h.size
    expect(h.mem.grow(2)).toBe(1)
    const buf = old + 65536 + 10
    new Uint8Array(h.mem.buffer).set(new TextEncoder().encode('far'), buf)
    const iov = old + 8
    h.setU32(iov, buf)
    h.setU32(iov + 4, 3)
    expectErrno(h.wasi.fd_write(STDOUT, iov, 1, h.size - 4), 'SUCCESS')
    expect(h.u32(h.size - 4)).toBe(3)
    expect(h.stdoutText()).toBe('far')
  })
})

describe('fd_pread', () => {
  it('reads at an offset without moving the position', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const buf = h.alloc(8, 1)
    const iov = h.iovecs([[buf, 3]])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_pread(fd, iov, 1, 2n, n), 'SUCCESS')
    expect(h.readString(buf, h.u32(n))).toBe('pha')
    expect(tell(h, fd)).toBe(0n)
    expectErrno(h.wasi.fd_pread(fd, iov, 1, 100n, n), 'SUCCESS')
    expect(h.u32(n)).toBe(0)
  })

  it('is SPIPE on stdin, BADF on fd 99 and a closed fd', () => {
    const h = harness({ stdin: 'abc' })
    const iov = h.iovecs([[h.alloc(4, 1), 4]])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_pread(STDIN, iov, 1, 0n, n), 'SPIPE')
    expectErrno(h.wasi.fd_pread(BAD_FD, iov, 1, 0n, n), 'BADF')
    const fd = h.openOk('a.txt')
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_pread(fd, iov, 1, 0n, n), 'BADF')
  })

  it('is NOTCAPABLE without FD_SEEK or FD_READ', () => {
    const h = harness()
    const iov = h.iovecs([[h.alloc(4, 1), 4]])
    const n = h.alloc(4, 4)
    const a = h.openOk('a.txt')
    h.restrict(a, Rights.FD_SEEK)
    expectErrno(h.wasi.fd_pread(a, iov, 1, 0n, n), 'NOTCAPABLE')
    const b = h.openOk('a.txt')
    h.restrict(b, Rights.FD_READ)
    expectErrno(h.wasi.fd_pread(b, iov, 1, 0n, n), 'NOTCAPABLE')
  })

  it('refuses an offset past 2^63-1 (a negative i64) with INVAL', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const iov = h.iovecs([[h.alloc(4, 1), 4]])
    expectErrno(h.wasi.fd_pread(fd, iov, 1, -1n, h.alloc(4, 4)), 'INVAL')
  })

  it('reads a u64 offset as wasm would: -1n and 2^64-1 are the same, 2^64 wraps to 0', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const iov = h.iovecs([[h.alloc(4, 1), 4]])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_pread(fd, iov, 1, (1n << 64n) - 1n, n), 'INVAL')
    expectErrno(h.wasi.fd_pread(fd, iov, 1, 1n << 64n, n), 'SUCCESS')
    expect(h.u32(n)).toBeGreaterThan(0)
    // A JS caller's number is taken as the bigint it stands for.
    expectErrno(h.wasi.fd_pread(fd, iov, 1, 1 as unknown as bigint, n), 'SUCCESS')
    expect(h.u32(n)).toBeGreaterThan(0)
  })

  it('traps on bad pointers', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const buf = h.alloc(4, 1)
    expectTrap(
      () =>
        h.wasi.fd_pread(
          fd,
          h.iovecs([
            [buf, 4],
            [h.size, 1],
          ]),
          2,
          0n,
          h.alloc(4, 4),
        ),
      'fd_pread',
    )
    expectTrap(() => h.wasi.fd_pread(fd, h.iovecs([[buf, 4]]), 1, 0n, NEG_PTR))
    expectTrap(() => h.wasi.fd_pread(fd, h.iovecs([[buf, 4]]), 1, 0n, h.alloc(8, 4) + 1))
  })
})

describe('fd_pwrite', () => {
  it('writes at an offset without moving the position', () => {
    const h = harness()
    const fd = rw(h)
    const s = h.str('XY')
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_pwrite(fd, h.iovecs([[s.ptr, s.len]]), 1, 3n, n), 'SUCCESS')
    expect(h.u32(n)).toBe(2)
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpXY\n')
    expect(tell(h, fd)).toBe(0n)
  })

  it('is SPIPE on stdout, BADF on fd 99', () => {
    const h = harness()
    const s = h.str('x')
    const iov = h.iovecs([[s.ptr, s.len]])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_pwrite(STDOUT, iov, 1, 0n, n), 'SPIPE')
    expectErrno(h.wasi.fd_pwrite(BAD_FD, iov, 1, 0n, n), 'BADF')
    expect(h.stdoutText()).toBe('')
  })

  it('is BADF on a read-only open (either mount), NOTCAPABLE once FD_WRITE or FD_SEEK is dropped', () => {
    const h = harness()
    const s = h.str('x')
    const iov = h.iovecs([[s.ptr, s.len]])
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_pwrite(h.openOk('a.txt'), iov, 1, 0n, n), 'BADF')
    expectErrno(h.wasi.fd_pwrite(h.openOk('r.txt', { dirfd: DATA }), iov, 1, 0n, n), 'BADF')
    const a = rw(h)
    h.restrict(a, Rights.FD_WRITE)
    expectErrno(h.wasi.fd_pwrite(a, iov, 1, 0n, n), 'NOTCAPABLE')
    const b = rw(h)
    h.restrict(b, Rights.FD_SEEK)
    expectErrno(h.wasi.fd_pwrite(b, iov, 1, 0n, n), 'NOTCAPABLE')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
    expect(readIn(h.dataFs, 'r.txt')).toBe('read only\n')
  })

  it('refuses an offset past 2^63-1 with INVAL, writing nothing', () => {
    const h = harness()
    const fd = rw(h)
    const s = h.str('x')
    expectErrno(h.wasi.fd_pwrite(fd, h.iovecs([[s.ptr, s.len]]), 1, -2n, h.alloc(4, 4)), 'INVAL')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })

  it('traps on a bad buffer or result pointer, writing nothing', () => {
    const h = harness()
    const fd = rw(h)
    const s = h.str('zz')
    expectTrap(
      () =>
        h.wasi.fd_pwrite(
          fd,
          h.iovecs([
            [s.ptr, s.len],
            [NEG_PTR, 8],
          ]),
          2,
          0n,
          h.alloc(4, 4),
        ),
      'fd_pwrite',
    )
    expectTrap(() => h.wasi.fd_pwrite(fd, h.iovecs([[s.ptr, s.len]]), 1, 0n, h.size))
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })
})

describe('fd_seek', () => {
  it('seeks from the start, the current position and the end (negative i64 offsets)', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.fd_seek(fd, 2n, 0, p), 'SUCCESS')
    expect(h.u64(p)).toBe(2n)
    expectErrno(h.wasi.fd_seek(fd, 1n, 1, p), 'SUCCESS')
    expect(h.u64(p)).toBe(3n)
    expectErrno(h.wasi.fd_seek(fd, -2n, 2, p), 'SUCCESS')
    expect(h.u64(p)).toBe(4n)
    expect(h.readFd(fd).text).toBe('a\n')
    expectErrno(h.wasi.fd_seek(fd, 100n, 0, p), 'SUCCESS')
    expect(h.u64(p)).toBe(100n)
  })

  it('refuses whence 3 and a resulting negative offset with INVAL', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const p = h.alloc(8, 8)
    h.setU64(p, 77n)
    expectErrno(h.wasi.fd_seek(fd, 0n, 3, p), 'INVAL')
    expectErrno(h.wasi.fd_seek(fd, -1n, 0, p), 'INVAL')
    expectErrno(h.wasi.fd_seek(fd, -7n, 2, p), 'INVAL')
    expect(h.u64(p)).toBe(77n)
    expect(tell(h, fd)).toBe(0n)
  })

  it('refuses a position past 2^63-1 with OVERFLOW', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.fd_seek(fd, MAX_OFFSET, 0, p), 'SUCCESS')
    expectErrno(h.wasi.fd_seek(fd, 1n, 1, p), 'OVERFLOW')
    expect(tell(h, fd)).toBe(MAX_OFFSET)
  })

  it('is SPIPE on stdout and stdin', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.fd_seek(STDOUT, 0n, 0, p), 'SPIPE')
    expectErrno(h.wasi.fd_seek(STDIN, 0n, 1, p), 'SPIPE')
  })

  it('is BADF on fd 99 and a closed fd', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.fd_seek(BAD_FD, 0n, 0, p), 'BADF')
    const fd = h.openOk('a.txt')
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_seek(fd, 0n, 0, p), 'BADF')
  })

  it('is NOTCAPABLE without FD_SEEK', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    h.restrict(fd, Rights.FD_SEEK)
    expectErrno(h.wasi.fd_seek(fd, 1n, 0, h.alloc(8, 8)), 'NOTCAPABLE')
  })

  it('traps on a bad or misaligned result pointer without moving', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectTrap(() => h.wasi.fd_seek(fd, 3n, 0, h.size - 4), 'fd_seek')
    expectTrap(() => h.wasi.fd_seek(fd, 3n, 0, NEG_PTR))
    expectTrap(() => h.wasi.fd_seek(fd, 3n, 0, HIGH_PTR))
    expectTrap(() => h.wasi.fd_seek(fd, 3n, 0, h.alloc(16, 8) + 4))
    expect(tell(h, fd)).toBe(0n)
  })
})

describe('fd_tell', () => {
  it('reports the position after reads and seeks', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    h.readFd(fd, 2)
    expect(tell(h, fd)).toBe(2n)
  })

  it('is SPIPE on stdout, BADF on fd 99, NOTCAPABLE without FD_TELL', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.fd_tell(STDOUT, p), 'SPIPE')
    expectErrno(h.wasi.fd_tell(BAD_FD, p), 'BADF')
    const fd = h.openOk('a.txt')
    h.restrict(fd, Rights.FD_TELL)
    expectErrno(h.wasi.fd_tell(fd, p), 'NOTCAPABLE')
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_tell(fd, p), 'BADF')
  })

  it('traps on bad pointers', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectTrap(() => h.wasi.fd_tell(fd, h.size), 'fd_tell')
    expectTrap(() => h.wasi.fd_tell(fd, NEG_PTR))
    expectTrap(() => h.wasi.fd_tell(fd, h.alloc(16, 8) + 1))
  })
})

function readAllNames(h: Harness, fd: number, bufLen: number): string[] {
  const names: string[] = []
  let cookie = 0n
  for (let rounds = 0; rounds < 100; rounds++) {
    const r = h.readdir(fd, bufLen, cookie)
    expectErrno(r.errno, 'SUCCESS')
    const complete = r.entries.filter((e) => !e.truncated)
    names.push(...complete.map((e) => e.name))
    if (r.used < bufLen) return names
    if (complete.length === 0) throw new Error('buffer too small for one entry')
    cookie = complete[complete.length - 1]!.next
  }
  throw new Error('readdir did not finish')
}

describe('fd_readdir', () => {
  it('lists ".", ".." and every entry with its type, cookies counting up', () => {
    const h = harness()
    const r = h.readdir(SANDBOX)
    expectErrno(r.errno, 'SUCCESS')
    expect(r.used).toBeLessThan(4096)
    const byName = Object.fromEntries(r.entries.map((e) => [e.name, e]))
    expect(Object.keys(byName).sort()).toEqual(['.', '..', 'a.txt', 'empty', 'link', 'sub'])
    expect(byName['.']!.type).toBe(Filetype.DIRECTORY)
    expect(byName['..']!.type).toBe(Filetype.DIRECTORY)
    expect(byName['a.txt']!.type).toBe(Filetype.REGULAR_FILE)
    expect(byName['sub']!.type).toBe(Filetype.DIRECTORY)
    expect(byName['link']!.type).toBe(Filetype.SYMBOLIC_LINK)
    expect(r.entries.map((e) => e.next)).toEqual(r.entries.map((_, i) => BigInt(i + 1)))
    expect(r.entries.every((e) => !e.truncated)).toBe(true)
  })

  it('the inode of an entry matches what path_filestat_get reports', () => {
    const h = harness()
    const r = h.readdir(SANDBOX)
    const a = r.entries.find((e) => e.name === 'a.txt')!
    expect(h.pathStat('a.txt').stat.ino).toBe(a.ino)
  })

  it('fills a too-small buffer completely, truncating the last entry (bufused == buf_len)', () => {
    const h = harness()
    // "." takes 25 bytes; the next entry does not fit in the 5 that remain.
    const r = h.readdir(SANDBOX, 30)
    expect(r.used).toBe(30)
    expect(r.entries[0]!.name).toBe('.')
    expect(r.entries[r.entries.length - 1]!.truncated).toBe(true)
    // A buffer smaller than one header is filled too.
    expect(h.readdir(SANDBOX, 10).used).toBe(10)
  })

  it('resumes from cookies with any buffer size and returns every entry exactly once', () => {
    const h = harness()
    const all = h.readdir(SANDBOX).entries.map((e) => e.name)
    for (const len of [24 + 5, 40, 50, 64, 100, 128]) {
      expect(readAllNames(h, SANDBOX, len)).toEqual(all)
    }
  })

  it('keeps cookies stable while read entries are deleted between calls', () => {
    const files: Record<string, string> = {}
    for (let i = 0; i < 10; i++) files[`f${i}`] = String(i)
    const h = harness({ sandbox: files })
    const seen: string[] = []
    let cookie = 0n
    for (;;) {
      const r = h.readdir(SANDBOX, 64, cookie)
      const complete = r.entries.filter((e) => !e.truncated)
      for (const e of complete) {
        seen.push(e.name)
        if (e.name.startsWith('f')) {
          const p = h.str(e.name)
          expectErrno(h.wasi.path_unlink_file(SANDBOX, p.ptr, p.len), 'SUCCESS')
        }
      }
      if (r.used < 64) break
      cookie = complete[complete.length - 1]!.next
    }
    expect(seen).toEqual(['.', '..', ...Object.keys(files)])
    expect(h.readdir(SANDBOX).entries.map((e) => e.name)).toEqual(['.', '..'])
  })

  it('returns nothing for a cookie at or past the end', () => {
    const h = harness()
    const n = h.readdir(SANDBOX).entries.length
    expect(h.readdir(SANDBOX, 4096, BigInt(n)).used).toBe(0)
    expect(h.readdir(SANDBOX, 4096, -1n).used).toBe(0)
  })

  it('accepts a zero-length buffer, even at the end of memory', () => {
    const h = harness()
    const used = h.alloc(4, 4)
    expectErrno(h.wasi.fd_readdir(SANDBOX, h.size, 0, 0n, used), 'SUCCESS')
    expect(h.u32(used)).toBe(0)
  })

  it('lists an opened subdirectory and the read-only mount', () => {
    const h = harness()
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    expect(h.readdir(sub).entries.map((e) => e.name)).toEqual(['.', '..', 'b.txt', 'deeper'])
    expect(
      h
        .readdir(DATA)
        .entries.map((e) => e.name)
        .sort(),
    ).toEqual(['.', '..', 'dir', 'r.txt', 'rlink'])
  })

  it('lists an unchanged directory the same way again, and a change at the next cookie 0, through any descriptor', () => {
    const h = harness()
    const a = h.openOk('sub', { oflags: O_DIRECTORY })
    const b = h.openOk('sub/deeper/..', { oflags: O_DIRECTORY })
    const first = h.readdir(a)
    expect(h.readdir(a)).toEqual(first)
    expect(h.readdir(b)).toEqual(first)
    // "." and ".." carry the directory's own inode, for every descriptor on it.
    const ino = h.pathStat('sub').stat.ino
    expect(first.entries.slice(0, 2).map((e) => e.ino)).toEqual([ino, ino])
    expectErrno(h.open('sub/new', { oflags: O_CREAT }).errno, 'SUCCESS')
    const p = h.str('sub/b.txt')
    expectErrno(h.wasi.path_unlink_file(SANDBOX, p.ptr, p.len), 'SUCCESS')
    for (const fd of [b, a]) {
      const r = h.readdir(fd)
      expect(r.entries.map((e) => e.name)).toEqual(['.', '..', 'deeper', 'new'])
      expect(r.entries[3]!.ino).toBe(h.pathStat('sub/new').stat.ino)
      expect(r.entries.slice(0, 2).map((e) => e.ino)).toEqual([ino, ino])
    }
  })

  it('is NOTDIR on a file and on stdout', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(h.readdir(fd).errno, 'NOTDIR')
    expectErrno(h.readdir(STDOUT).errno, 'NOTDIR')
  })

  it('is BADF on fd 99 and a closed fd', () => {
    const h = harness()
    expectErrno(h.readdir(BAD_FD).errno, 'BADF')
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    h.wasi.fd_close(sub)
    expectErrno(h.readdir(sub).errno, 'BADF')
  })

  it('is NOTCAPABLE without FD_READDIR', () => {
    const h = harness()
    h.restrict(SANDBOX, Rights.FD_READDIR)
    expectErrno(h.readdir(SANDBOX).errno, 'NOTCAPABLE')
  })

  it('traps on a buffer past the end or a bad bufused pointer, writing nothing', () => {
    const h = harness()
    const buf = h.alloc(64, 8)
    h.fill(buf, 64, 0xee)
    const used = h.alloc(8, 4)
    expectTrap(() => h.wasi.fd_readdir(SANDBOX, h.size - 10, 11, 0n, used), 'fd_readdir')
    expectTrap(() => h.wasi.fd_readdir(SANDBOX, NEG_PTR, 8, 0n, used))
    expectTrap(() => h.wasi.fd_readdir(SANDBOX, buf, 64, 0n, h.size))
    expectTrap(() => h.wasi.fd_readdir(SANDBOX, buf, 64, 0n, NEG_PTR))
    expectTrap(() => h.wasi.fd_readdir(SANDBOX, buf, 64, 0n, used + 2))
    expect(h.u8(buf)).toBe(0xee)
  })
})

describe('fd_read and fd_write on files created through path_open', () => {
  it('round-trips bytes through a new file', () => {
    const h = harness()
    const fd = h.openOk('new.bin', { base: ALL_RIGHTS, oflags: O_CREAT | O_TRUNC })
    expect(h.writeFd(fd, new Uint8Array([0, 1, 2, 255])).n).toBe(4)
    const p = h.alloc(8, 8)
    expectErrno(h.wasi.fd_seek(fd, 0n, 0, p), 'SUCCESS')
    const buf = h.alloc(8, 1)
    const n = h.alloc(4, 4)
    expectErrno(h.wasi.fd_read(fd, h.iovecs([[buf, 8]]), 1, n), 'SUCCESS')
    expect([...h.read(buf, h.u32(n))]).toEqual([0, 1, 2, 255])
  })
})

/**
 * wasi-testsuite `dir_fd_op_failures.rs` and `directory_seek.rs`: on a directory descriptor,
 * fd_seek, fd_tell, fd_pread and fd_pwrite must fail with ISDIR, BADF or NOTCAPABLE (a
 * directory is not a pipe: SPIPE is not among the accepted errnos).
 */
describe('fd_seek, fd_tell, fd_pread and fd_pwrite on a directory (wasi-testsuite dir_fd_op_failures)', () => {
  const ACCEPTED = ['ISDIR', 'BADF', 'NOTCAPABLE']

  it('fd_seek on a directory is ISDIR, BADF or NOTCAPABLE, for every whence', () => {
    const h = harness()
    const p = h.alloc(8, 8)
    for (const whence of [0, 1, 2]) expect(ACCEPTED).toContain(errnoName(h.wasi.fd_seek(SANDBOX, 0n, whence, p)))
    // directory_seek.rs: a directory opened asking for FD_SEEK still cannot seek, nor holds FD_SEEK.
    const dir = h.openOk('sub', { oflags: O_DIRECTORY, base: BigInt(Rights.FD_SEEK) })
    expect(ACCEPTED).toContain(errnoName(h.wasi.fd_seek(dir, 0n, 1, p)))
    expect(h.fdstat(dir).base & BigInt(Rights.FD_SEEK)).toBe(0n)
  })

  it('fd_tell on a directory is ISDIR, BADF or NOTCAPABLE', () => {
    const h = harness()
    expect(ACCEPTED).toContain(errnoName(h.wasi.fd_tell(SANDBOX, h.alloc(8, 8))))
  })

  it('fd_pread on a directory is ISDIR, BADF or NOTCAPABLE', () => {
    const h = harness()
    const iov = h.iovecs([[h.alloc(16, 1), 16]])
    expect(ACCEPTED).toContain(errnoName(h.wasi.fd_pread(SANDBOX, iov, 1, 0n, h.alloc(4, 4))))
  })

  it('fd_pwrite on a directory is ISDIR, BADF or NOTCAPABLE', () => {
    const h = harness()
    const s = h.str('x')
    const iov = h.iovecs([[s.ptr, s.len]])
    expect(ACCEPTED).toContain(errnoName(h.wasi.fd_pwrite(SANDBOX, iov, 1, 0n, h.alloc(4, 4))))
  })

  it('fd_read, fd_write, fd_allocate and fd_filestat_set_size on a directory are refused as the suite expects', () => {
    const h = harness()
    expect(ACCEPTED).toContain(errnoName(h.readFd(SANDBOX).errno))
    expect(ACCEPTED).toContain(errnoName(h.writeFd(SANDBOX, 'x').errno))
    expect(ACCEPTED).toContain(errnoName(h.wasi.fd_allocate(SANDBOX, 0n, 1n)))
    expect([...ACCEPTED, 'INVAL']).toContain(errnoName(h.wasi.fd_filestat_set_size(SANDBOX, 0n)))
  })
})
