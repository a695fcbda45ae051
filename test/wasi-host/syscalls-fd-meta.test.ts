/**
 * The descriptor-metadata calls: fd_advise, fd_allocate, fd_close, fd_datasync, fd_sync,
 * fd_fdstat_get, fd_fdstat_set_flags, fd_fdstat_set_rights, fd_filestat_get,
 * fd_filestat_set_size, fd_filestat_set_times, fd_prestat_get, fd_prestat_dir_name, fd_renumber.
 */
import { describe, expect, it } from 'vitest'
import { Filetype, Rights } from '../../wasi-host/abi/constants.js'
import { DIRECTORY_RIGHTS, FILE_RIGHTS, MUTATING_RIGHTS, STDIN_RIGHTS, STDOUT_RIGHTS } from '../../wasi-host/rights.js'
import {
  ALL_RIGHTS,
  BAD_FD,
  DATA,
  errnoName,
  expectErrno,
  expectTrap,
  harness,
  HIGH_PTR,
  NEG_PTR,
  O_CREAT,
  O_DIRECTORY,
  readIn,
  READ_RIGHTS,
  RIGHTS_ALL,
  SANDBOX,
  statIn,
  STDERR,
  STDIN,
  STDOUT,
  type Harness,
} from './harness.js'

const ATIM = 1,
  ATIM_NOW = 2,
  MTIM = 4,
  MTIM_NOW = 8

function rw(h: Harness, path = 'a.txt'): number {
  return h.openOk(path, { base: ALL_RIGHTS })
}

describe('fd_advise', () => {
  it('accepts every advice 0..5 on a file', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    for (let a = 0; a <= 5; a++) expectErrno(h.wasi.fd_advise(fd, 0n, 6n, a), 'SUCCESS')
  })

  it('refuses advice 6 and a range past 2^63-1 with INVAL', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_advise(fd, 0n, 1n, 6), 'INVAL')
    expectErrno(h.wasi.fd_advise(fd, 0n, 1n, -1), 'INVAL')
    expectErrno(h.wasi.fd_advise(fd, -1n, 1n, 0), 'INVAL')
  })

  it('is BADF on fd 99, a closed fd and a directory', () => {
    const h = harness()
    expectErrno(h.wasi.fd_advise(BAD_FD, 0n, 0n, 0), 'BADF')
    const fd = h.openOk('a.txt')
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_advise(fd, 0n, 0n, 0), 'BADF')
    expectErrno(h.wasi.fd_advise(SANDBOX, 0n, 0n, 0), 'BADF')
  })

  it('is NOTCAPABLE without FD_ADVISE (dropped, or stdout)', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    h.restrict(fd, Rights.FD_ADVISE)
    expectErrno(h.wasi.fd_advise(fd, 0n, 0n, 0), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_advise(STDOUT, 0n, 0n, 0), 'NOTCAPABLE')
  })
})

describe('fd_allocate', () => {
  it('grows a file to cover the range, never shrinks it', () => {
    const h = harness()
    const fd = rw(h)
    expectErrno(h.wasi.fd_allocate(fd, 10n, 6n), 'SUCCESS')
    expect(h.fdStat(fd).stat.size).toBe(16n)
    expectErrno(h.wasi.fd_allocate(fd, 0n, 2n), 'SUCCESS')
    expect(h.fdStat(fd).stat.size).toBe(16n)
  })

  it('refuses a zero length with INVAL', () => {
    const h = harness()
    expectErrno(h.wasi.fd_allocate(rw(h), 0n, 0n), 'INVAL')
  })

  it('refuses a range past 2^63-1 without allocating', () => {
    const h = harness()
    const fd = rw(h)
    expect(['FBIG', 'INVAL']).toContain(errnoName(h.wasi.fd_allocate(fd, -1n, 1n)))
    expect(['FBIG', 'INVAL']).toContain(errnoName(h.wasi.fd_allocate(fd, 0n, -1n)))
    expect(h.fdStat(fd).stat.size).toBe(6n)
  })

  it('refuses a huge allocation without spending memory (FBIG from the backend limit)', () => {
    const h = harness()
    const fd = rw(h)
    expectErrno(h.wasi.fd_allocate(fd, 0n, 1n << 40n), 'FBIG')
  })

  it('is ROFS on the read-only mount; NOTCAPABLE without FD_ALLOCATE', () => {
    const h = harness()
    const ro = h.openOk('r.txt', { dirfd: DATA })
    expectErrno(h.wasi.fd_allocate(ro, 0n, 100n), 'ROFS')
    expect(statIn(h.dataFs, 'r.txt')!.size).toBe(10n)
    const fd = rw(h)
    h.restrict(fd, Rights.FD_ALLOCATE)
    expectErrno(h.wasi.fd_allocate(fd, 0n, 100n), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_allocate(h.openOk('a.txt'), 0n, 100n), 'NOTCAPABLE')
    expect(statIn(h.sandboxFs, 'a.txt')!.size).toBe(6n)
  })

  it('is BADF on fd 99, a closed fd, stdout and a directory', () => {
    const h = harness()
    expectErrno(h.wasi.fd_allocate(BAD_FD, 0n, 1n), 'BADF')
    const fd = rw(h)
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_allocate(fd, 0n, 1n), 'BADF')
    expectErrno(h.wasi.fd_allocate(STDOUT, 0n, 1n), 'BADF')
    expectErrno(h.wasi.fd_allocate(SANDBOX, 0n, 1n), 'BADF')
  })
})

describe('fd_close', () => {
  it('closes a file and frees its number for reuse (lowest first) and its backend handle', () => {
    const h = harness()
    const before = h.openHandles()
    const a = h.openOk('a.txt')
    const b = h.openOk('sub/b.txt')
    expect([a, b]).toEqual([5, 6])
    expect(h.openHandles()).toBe(before + 2)
    expectErrno(h.wasi.fd_close(a), 'SUCCESS')
    expect(h.openHandles()).toBe(before + 1)
    expect(h.openOk('a.txt')).toBe(5)
  })

  it('is BADF on fd 99, on a second close and on a negative number', () => {
    const h = harness()
    expectErrno(h.wasi.fd_close(BAD_FD), 'BADF')
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_close(fd), 'SUCCESS')
    expectErrno(h.wasi.fd_close(fd), 'BADF')
    expectErrno(h.wasi.fd_close(-1), 'BADF')
    expect(h.counters.every((c) => c.doubleClose === 0)).toBe(true)
  })

  it('closes stdio and preopens; their numbers are then BADF', () => {
    const h = harness()
    expectErrno(h.wasi.fd_close(STDOUT), 'SUCCESS')
    expectErrno(h.writeFd(STDOUT, 'x').errno, 'BADF')
    const before = h.openHandles()
    expectErrno(h.wasi.fd_close(DATA), 'SUCCESS')
    expect(h.openHandles()).toBe(before - 1)
    expectErrno(h.open('r.txt', { dirfd: DATA }).errno, 'BADF')
    expectErrno(h.wasi.fd_prestat_get(DATA, h.alloc(8, 4)), 'BADF')
  })

  it('closing a preopen leaves a directory opened from it usable', () => {
    const h = harness()
    const self = h.openOk('.', { oflags: O_DIRECTORY })
    expectErrno(h.wasi.fd_close(SANDBOX), 'SUCCESS')
    expect(h.readFd(h.openOk('a.txt', { dirfd: self })).text).toBe('alpha\n')
    const before = h.openHandles()
    expectErrno(h.wasi.fd_close(self), 'SUCCESS')
    expect(h.openHandles()).toBeLessThan(before)
  })

  it('host.close() closes every descriptor and every backend handle', () => {
    const h = harness()
    h.openOk('a.txt')
    h.openOk('sub', { oflags: O_DIRECTORY })
    h.openOk('.', { oflags: O_DIRECTORY })
    h.host.close()
    expect(h.openHandles()).toBe(0)
    expect(h.counters.every((c) => c.doubleClose === 0)).toBe(true)
    expect(h.host.fds.size).toBe(0)
  })
})

describe('fd_datasync', () => {
  it('succeeds on a writable file and a directory', () => {
    const h = harness()
    expectErrno(h.wasi.fd_datasync(rw(h)), 'SUCCESS')
    expectErrno(h.wasi.fd_datasync(SANDBOX), 'SUCCESS')
  })

  it('is INVAL on stdout, BADF on fd 99 and a closed fd', () => {
    const h = harness()
    expectErrno(h.wasi.fd_datasync(STDOUT), 'INVAL')
    expectErrno(h.wasi.fd_datasync(BAD_FD), 'BADF')
    const fd = rw(h)
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_datasync(fd), 'BADF')
  })

  it('is NOTCAPABLE without FD_DATASYNC', () => {
    const h = harness()
    const fd = rw(h)
    h.restrict(fd, Rights.FD_DATASYNC)
    expectErrno(h.wasi.fd_datasync(fd), 'NOTCAPABLE')
    // wasi-libc's O_RDONLY open does not ask for FD_DATASYNC.
    expectErrno(h.wasi.fd_datasync(h.openOk('a.txt')), 'NOTCAPABLE')
  })
})

describe('fd_sync', () => {
  it('succeeds on a file and a directory', () => {
    const h = harness()
    expectErrno(h.wasi.fd_sync(rw(h)), 'SUCCESS')
    expectErrno(h.wasi.fd_sync(h.openOk('a.txt')), 'SUCCESS')
    expectErrno(h.wasi.fd_sync(SANDBOX), 'SUCCESS')
  })

  it('is INVAL on stdout, BADF on fd 99, NOTCAPABLE without FD_SYNC', () => {
    const h = harness()
    expectErrno(h.wasi.fd_sync(STDOUT), 'INVAL')
    expectErrno(h.wasi.fd_sync(BAD_FD), 'BADF')
    const fd = rw(h)
    h.restrict(fd, Rights.FD_SYNC)
    expectErrno(h.wasi.fd_sync(fd), 'NOTCAPABLE')
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_sync(fd), 'BADF')
  })
})

describe('fd_fdstat_get', () => {
  it('describes stdio: unknown files (not terminals) with stream rights, so isatty() is false', () => {
    const h = harness()
    const i = h.fdstat(STDIN)
    expectErrno(i.errno, 'SUCCESS')
    expect(i.filetype).toBe(Filetype.UNKNOWN)
    expect(i.base).toBe(BigInt(STDIN_RIGHTS))
    expect(i.inheriting).toBe(0n)
    expect(h.fdstat(STDOUT).base).toBe(BigInt(STDOUT_RIGHTS))
    expect(h.fdstat(STDERR).base).toBe(BigInt(STDOUT_RIGHTS))
  })

  it('describes a terminal as a character device without seek rights (what isatty() checks)', () => {
    const h = harness({ ttys: { stdout: true } })
    const o = h.fdstat(STDOUT)
    expect(o.filetype).toBe(Filetype.CHARACTER_DEVICE)
    expect(o.base & BigInt(Rights.FD_SEEK | Rights.FD_TELL)).toBe(0n)
    expect(h.fdstat(STDIN).filetype).toBe(Filetype.UNKNOWN)
    expect(h.fdStat(STDOUT).stat.filetype).toBe(Filetype.CHARACTER_DEVICE)
  })

  it('describes preopens: rw has every directory right; ro has none that mutates', () => {
    const h = harness()
    const sb = h.fdstat(SANDBOX)
    expect(sb.filetype).toBe(Filetype.DIRECTORY)
    expect(sb.base).toBe(BigInt(DIRECTORY_RIGHTS))
    const ro = h.fdstat(DATA)
    expect(ro.filetype).toBe(Filetype.DIRECTORY)
    expect(ro.base & BigInt(MUTATING_RIGHTS)).toBe(0n)
    expect(ro.base & BigInt(Rights.PATH_OPEN)).not.toBe(0n)
    // Generous inheriting rights on both: the mode is enforced at open (Decisions taken, 7).
    expect(ro.inheriting).toBe(sb.inheriting)
  })

  it('describes an opened file with exactly the rights it holds', () => {
    const h = harness()
    const fd = h.openOk('a.txt', { base: BigInt(Rights.FD_READ | Rights.FD_SEEK) })
    const st = h.fdstat(fd)
    expect(st.filetype).toBe(Filetype.REGULAR_FILE)
    expect(st.base).toBe(BigInt(Rights.FD_READ | Rights.FD_SEEK))
  })

  it('reports fdflags', () => {
    const h = harness()
    const fd = h.openOk('a.txt', { base: ALL_RIGHTS, fdflags: 1 })
    expect(h.fdstat(fd).flags).toBe(1)
  })

  it('is BADF on fd 99 and a closed fd', () => {
    const h = harness()
    expectErrno(h.fdstat(BAD_FD).errno, 'BADF')
    h.wasi.fd_close(STDERR)
    expectErrno(h.fdstat(STDERR).errno, 'BADF')
  })

  it('traps on a bad or misaligned pointer (fdstat is 8-aligned)', () => {
    const h = harness()
    expectTrap(() => h.wasi.fd_fdstat_get(STDOUT, h.size - 16), 'fd_fdstat_get')
    expectTrap(() => h.wasi.fd_fdstat_get(STDOUT, NEG_PTR))
    expectTrap(() => h.wasi.fd_fdstat_get(STDOUT, HIGH_PTR))
    expectTrap(() => h.wasi.fd_fdstat_get(STDOUT, h.alloc(32, 8) + 4))
    expectErrno(h.wasi.fd_fdstat_get(STDOUT, h.size - 24), 'SUCCESS')
  })
})

describe('fd_fdstat_set_flags', () => {
  it('sets APPEND on a file, which then writes at the end', () => {
    const h = harness()
    const fd = rw(h)
    expectErrno(h.wasi.fd_fdstat_set_flags(fd, 1), 'SUCCESS')
    expect(h.fdstat(fd).flags).toBe(1)
    h.writeFd(fd, '!')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n!')
  })

  it('refuses unknown fdflags with INVAL, leaving the flags unchanged', () => {
    const h = harness()
    const fd = rw(h)
    expectErrno(h.wasi.fd_fdstat_set_flags(fd, 0x20), 'INVAL')
    expectErrno(h.wasi.fd_fdstat_set_flags(fd, -1), 'INVAL')
    expect(h.fdstat(fd).flags).toBe(0)
  })

  it('is BADF on fd 99, NOTCAPABLE without FD_FDSTAT_SET_FLAGS', () => {
    const h = harness()
    expectErrno(h.wasi.fd_fdstat_set_flags(BAD_FD, 0), 'BADF')
    h.restrict(STDOUT, Rights.FD_FDSTAT_SET_FLAGS)
    expectErrno(h.wasi.fd_fdstat_set_flags(STDOUT, 4), 'NOTCAPABLE')
    const fd = rw(h)
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_fdstat_set_flags(fd, 0), 'BADF')
  })
})

describe('fd_fdstat_set_rights', () => {
  it('drops rights, which then deny the call', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const st = h.fdstat(fd)
    expectErrno(h.wasi.fd_fdstat_set_rights(fd, st.base & ~BigInt(Rights.FD_READ), 0n), 'SUCCESS')
    expect(h.fdstat(fd).base).toBe(st.base & ~BigInt(Rights.FD_READ))
    expectErrno(h.readFd(fd).errno, 'NOTCAPABLE')
  })

  it('never adds a right back (NOTCAPABLE), base or inheriting', () => {
    const h = harness()
    const fd = h.openOk('a.txt', { base: BigInt(Rights.FD_READ), inheriting: 0n })
    expectErrno(h.wasi.fd_fdstat_set_rights(fd, 0n, 0n), 'SUCCESS')
    expectErrno(h.wasi.fd_fdstat_set_rights(fd, BigInt(Rights.FD_READ), 0n), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_fdstat_set_rights(fd, 0n, BigInt(Rights.FD_READ)), 'NOTCAPABLE')
    expect(h.fdstat(fd).base).toBe(0n)
    expectErrno(h.readFd(fd).errno, 'NOTCAPABLE')
  })

  it('refuses to add write to the read-only preopen', () => {
    const h = harness()
    const st = h.fdstat(DATA)
    expectErrno(h.wasi.fd_fdstat_set_rights(DATA, st.base | BigInt(Rights.PATH_CREATE_FILE), st.inheriting), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_fdstat_set_rights(DATA, BigInt(RIGHTS_ALL), st.inheriting), 'NOTCAPABLE')
    expect(h.fdstat(DATA).base).toBe(st.base)
  })

  it('refuses unknown bits (above bit 29, a negative i64) with NOTCAPABLE', () => {
    const h = harness()
    const st = h.fdstat(SANDBOX)
    expectErrno(h.wasi.fd_fdstat_set_rights(SANDBOX, st.base | (1n << 40n), st.inheriting), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_fdstat_set_rights(SANDBOX, -1n, st.inheriting), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_fdstat_set_rights(SANDBOX, st.base, -1n), 'NOTCAPABLE')
    expect(h.fdstat(SANDBOX).base).toBe(st.base)
  })

  it('setting the same rights is allowed (idempotent)', () => {
    const h = harness()
    const st = h.fdstat(SANDBOX)
    expectErrno(h.wasi.fd_fdstat_set_rights(SANDBOX, st.base, st.inheriting), 'SUCCESS')
  })

  it('is BADF on fd 99 and a closed fd', () => {
    const h = harness()
    expectErrno(h.wasi.fd_fdstat_set_rights(BAD_FD, 0n, 0n), 'BADF')
    h.wasi.fd_close(STDIN)
    expectErrno(h.wasi.fd_fdstat_set_rights(STDIN, 0n, 0n), 'BADF')
  })
})

describe('fd_filestat_get', () => {
  it('stats a file, a directory and stdout', () => {
    const h = harness()
    const f = h.fdStat(h.openOk('a.txt'))
    expectErrno(f.errno, 'SUCCESS')
    expect(f.stat.filetype).toBe(Filetype.REGULAR_FILE)
    expect(f.stat.size).toBe(6n)
    expect(f.stat.nlink).toBe(1n)
    const d = h.fdStat(SANDBOX)
    expect(d.stat.filetype).toBe(Filetype.DIRECTORY)
    expect(h.fdStat(STDOUT).stat.filetype).toBe(Filetype.UNKNOWN)
  })

  it('gives each mount its own device number', () => {
    const h = harness()
    expect(h.fdStat(SANDBOX).stat.dev).not.toBe(h.fdStat(DATA).stat.dev)
    expect(h.fdStat(h.openOk('a.txt')).stat.dev).toBe(h.fdStat(SANDBOX).stat.dev)
  })

  it('is BADF on fd 99 and a closed fd, NOTCAPABLE without FD_FILESTAT_GET', () => {
    const h = harness()
    expectErrno(h.fdStat(BAD_FD).errno, 'BADF')
    const fd = h.openOk('a.txt')
    h.restrict(fd, Rights.FD_FILESTAT_GET)
    expectErrno(h.fdStat(fd).errno, 'NOTCAPABLE')
    h.wasi.fd_close(fd)
    expectErrno(h.fdStat(fd).errno, 'BADF')
  })

  it('traps on a bad or misaligned pointer', () => {
    const h = harness()
    expectTrap(() => h.wasi.fd_filestat_get(SANDBOX, h.size - 56), 'fd_filestat_get')
    expectTrap(() => h.wasi.fd_filestat_get(SANDBOX, NEG_PTR))
    expectTrap(() => h.wasi.fd_filestat_get(SANDBOX, h.alloc(72, 8) + 4))
    expectErrno(h.wasi.fd_filestat_get(SANDBOX, h.size - 64), 'SUCCESS')
  })
})

describe('fd_filestat_set_size', () => {
  it('truncates and extends a file', () => {
    const h = harness()
    const fd = rw(h)
    expectErrno(h.wasi.fd_filestat_set_size(fd, 3n), 'SUCCESS')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alp')
    expectErrno(h.wasi.fd_filestat_set_size(fd, 5n), 'SUCCESS')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alp\0\0')
  })

  it('refuses a size past 2^63-1 (a negative i64) and a huge size', () => {
    const h = harness()
    const fd = rw(h)
    expectErrno(h.wasi.fd_filestat_set_size(fd, -1n), 'FBIG')
    expectErrno(h.wasi.fd_filestat_set_size(fd, 1n << 50n), 'FBIG')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })

  it('is ROFS on the read-only mount and does not change the file', () => {
    const h = harness()
    const fd = h.openOk('r.txt', { dirfd: DATA })
    expectErrno(h.wasi.fd_filestat_set_size(fd, 0n), 'ROFS')
    expect(readIn(h.dataFs, 'r.txt')).toBe('read only\n')
  })

  it('is NOTCAPABLE on a read-only open, BADF on fd 99, stdout and a directory', () => {
    const h = harness()
    expectErrno(h.wasi.fd_filestat_set_size(h.openOk('a.txt'), 0n), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_filestat_set_size(BAD_FD, 0n), 'BADF')
    expectErrno(h.wasi.fd_filestat_set_size(STDOUT, 0n), 'BADF')
    expectErrno(h.wasi.fd_filestat_set_size(SANDBOX, 0n), 'BADF')
    const fd = rw(h)
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_filestat_set_size(fd, 0n), 'BADF')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })
})

describe('fd_filestat_set_times', () => {
  it('sets atim and mtim on a file and a directory', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1000n, 2000n, ATIM | MTIM), 'SUCCESS')
    const st = h.fdStat(fd).stat
    expect([st.atim, st.mtim]).toEqual([1000n, 2000n])
    expectErrno(h.wasi.fd_filestat_set_times(SANDBOX, 5n, 0n, ATIM), 'SUCCESS')
    expect(h.fdStat(SANDBOX).stat.atim).toBe(5n)
  })

  it('sets "now" and leaves an unnamed time alone', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1000n, 2000n, ATIM | MTIM), 'SUCCESS')
    expectErrno(h.wasi.fd_filestat_set_times(fd, 0n, 0n, MTIM_NOW), 'SUCCESS')
    const st = h.fdStat(fd).stat
    expect(st.atim).toBe(1000n)
    expect(st.mtim).toBeGreaterThan(2000n)
  })

  it('refuses ATIM|ATIM_NOW, MTIM|MTIM_NOW and unknown fstflags with INVAL', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const before = h.fdStat(fd).stat
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1n, 1n, ATIM | ATIM_NOW), 'INVAL')
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1n, 1n, MTIM | MTIM_NOW), 'INVAL')
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1n, 1n, 16), 'INVAL')
    expect(h.fdStat(fd).stat).toEqual(before)
  })

  it('is ROFS on the read-only mount (file and preopen)', () => {
    const h = harness()
    const fd = h.openOk('r.txt', { dirfd: DATA })
    const before = h.fdStat(fd).stat
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1n, 1n, ATIM | MTIM), 'ROFS')
    expectErrno(h.wasi.fd_filestat_set_times(DATA, 1n, 1n, ATIM | MTIM), 'ROFS')
    expect(h.fdStat(fd).stat).toEqual(before)
  })

  it('is NOTCAPABLE without the right, BADF on fd 99 and on stdout', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    h.restrict(fd, Rights.FD_FILESTAT_SET_TIMES)
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1n, 1n, ATIM), 'NOTCAPABLE')
    expectErrno(h.wasi.fd_filestat_set_times(BAD_FD, 1n, 1n, ATIM), 'BADF')
    expectErrno(h.wasi.fd_filestat_set_times(STDOUT, 1n, 1n, ATIM), 'BADF')
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_filestat_set_times(fd, 1n, 1n, ATIM), 'BADF')
  })

  it('accepts a timestamp with the top bit set (a negative i64 is a u64)', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_filestat_set_times(fd, -1n, 0n, ATIM), 'SUCCESS')
    expect(h.fdStat(fd).stat.atim).toBe((1n << 64n) - 1n)
  })
})

describe('fd_prestat_get', () => {
  it('describes each preopen: type dir and the UTF-8 length of its name', () => {
    const h = harness({ extraPreopens: [{ guestPath: '/données', fs: harness().sandboxFs }] })
    const p = h.alloc(8, 4)
    expectErrno(h.wasi.fd_prestat_get(SANDBOX, p), 'SUCCESS')
    expect([h.u32(p), h.u32(p + 4)]).toEqual([0, '/sandbox'.length])
    expectErrno(h.wasi.fd_prestat_get(DATA, p), 'SUCCESS')
    expect(h.u32(p + 4)).toBe(5)
    expectErrno(h.wasi.fd_prestat_get(5, p), 'SUCCESS')
    expect(h.u32(p + 4)).toBe(9)
  })

  it('is BADF for stdio, opened directories, files, fd 99 and the first free number (the libc scan stop)', () => {
    const h = harness()
    const p = h.alloc(8, 4)
    expectErrno(h.wasi.fd_prestat_get(STDIN, p), 'BADF')
    expectErrno(h.wasi.fd_prestat_get(5, p), 'BADF')
    expectErrno(h.wasi.fd_prestat_get(h.openOk('sub', { oflags: O_DIRECTORY }), p), 'BADF')
    expectErrno(h.wasi.fd_prestat_get(h.openOk('a.txt'), p), 'BADF')
    expectErrno(h.wasi.fd_prestat_get(BAD_FD, p), 'BADF')
  })

  it('traps on a bad or misaligned pointer', () => {
    const h = harness()
    expectTrap(() => h.wasi.fd_prestat_get(SANDBOX, h.size - 4), 'fd_prestat_get')
    expectTrap(() => h.wasi.fd_prestat_get(SANDBOX, NEG_PTR))
    expectTrap(() => h.wasi.fd_prestat_get(SANDBOX, h.alloc(12, 4) + 2))
  })
})

describe('fd_prestat_dir_name', () => {
  it('writes the guest path, without NUL', () => {
    const h = harness()
    const buf = h.alloc(16, 1)
    h.fill(buf, 16, 0xff)
    expectErrno(h.wasi.fd_prestat_dir_name(SANDBOX, buf, 8), 'SUCCESS')
    expect(h.readString(buf, 8)).toBe('/sandbox')
    expect(h.u8(buf + 8)).toBe(0xff)
    expectErrno(h.wasi.fd_prestat_dir_name(DATA, buf, 16), 'SUCCESS')
    expect(h.readString(buf, 5)).toBe('/data')
  })

  it('is NAMETOOLONG for a buffer one byte short, writing nothing', () => {
    const h = harness()
    const buf = h.alloc(8, 1)
    h.fill(buf, 8, 0xff)
    expectErrno(h.wasi.fd_prestat_dir_name(SANDBOX, buf, 7), 'NAMETOOLONG')
    expectErrno(h.wasi.fd_prestat_dir_name(SANDBOX, buf, 0), 'NAMETOOLONG')
    expect(h.u8(buf)).toBe(0xff)
  })

  it('is BADF for a non-preopen, fd 99 and a closed preopen', () => {
    const h = harness()
    const buf = h.alloc(16, 1)
    expectErrno(h.wasi.fd_prestat_dir_name(STDOUT, buf, 16), 'BADF')
    expectErrno(h.wasi.fd_prestat_dir_name(BAD_FD, buf, 16), 'BADF')
    h.wasi.fd_close(SANDBOX)
    expectErrno(h.wasi.fd_prestat_dir_name(SANDBOX, buf, 16), 'BADF')
  })

  it('traps on a buffer past the end of memory', () => {
    const h = harness()
    expectTrap(() => h.wasi.fd_prestat_dir_name(SANDBOX, h.size - 4, 8), 'fd_prestat_dir_name')
    expectTrap(() => h.wasi.fd_prestat_dir_name(SANDBOX, NEG_PTR, 8))
    expectErrno(h.wasi.fd_prestat_dir_name(SANDBOX, h.size - 8, 8), 'SUCCESS')
  })
})

describe('fd_renumber', () => {
  it('moves a descriptor onto another number, closing what was there', () => {
    const h = harness()
    const a = h.openOk('a.txt')
    const b = h.openOk('sub/b.txt')
    const before = h.openHandles()
    expectErrno(h.wasi.fd_renumber(a, b), 'SUCCESS')
    expect(h.openHandles()).toBe(before - 1)
    expect(h.readFd(b).text).toBe('alpha\n')
    expectErrno(h.readFd(a).errno, 'BADF')
    // The freed number is reused first.
    expect(h.openOk('a.txt')).toBe(a)
  })

  it('renumbers over a preopen: the preopen is closed and the number now holds the file', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    const before = h.openHandles()
    expectErrno(h.wasi.fd_renumber(fd, DATA), 'SUCCESS')
    expect(h.openHandles()).toBe(before - 1)
    expectErrno(h.wasi.fd_prestat_get(DATA, h.alloc(8, 4)), 'BADF')
    expect(h.readFd(DATA).text).toBe('alpha\n')
    expectErrno(h.open('r.txt', { dirfd: DATA }).errno, 'NOTDIR')
  })

  it('renumbers a preopen onto stdout: the preopen keeps its name and rights', () => {
    const h = harness()
    const rights = h.fdstat(DATA)
    expectErrno(h.wasi.fd_renumber(DATA, STDOUT), 'SUCCESS')
    const p = h.alloc(8, 4)
    expectErrno(h.wasi.fd_prestat_get(STDOUT, p), 'SUCCESS')
    expect(h.u32(p + 4)).toBe(5)
    expect(h.fdstat(STDOUT)).toEqual(rights)
    expectErrno(h.open('r.txt', { dirfd: STDOUT, base: ALL_RIGHTS }).errno, 'ROFS')
  })

  it('renumbering a number onto itself is a no-op', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_renumber(fd, fd), 'SUCCESS')
    expect(h.readFd(fd).text).toBe('alpha\n')
  })

  it('is BADF when the source is free or closed, or the target is at or past the descriptor limit, changing nothing', () => {
    const h = harness({ limits: { maxFds: 16 } })
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.fd_renumber(BAD_FD, fd), 'BADF')
    expectErrno(h.wasi.fd_renumber(fd, 16), 'BADF')
    expectErrno(h.wasi.fd_renumber(fd, -1), 'BADF')
    expectErrno(h.wasi.fd_renumber(fd, 0x7fffffff), 'BADF')
    expect(h.readFd(fd).text).toBe('alpha\n')
    h.wasi.fd_close(fd)
    expectErrno(h.wasi.fd_renumber(fd, SANDBOX), 'BADF')
    expectErrno(h.wasi.fd_prestat_get(SANDBOX, h.alloc(8, 4)), 'SUCCESS')
  })

  it('moves a descriptor onto a free number below the limit, as dup2 does (yosys moves stdout so)', () => {
    const h = harness({ limits: { maxFds: 16 } })
    const fd = h.openOk('a.txt')
    const before = h.openHandles()
    expectErrno(h.wasi.fd_renumber(fd, 15), 'SUCCESS')
    expect(h.openHandles()).toBe(before)
    expect(h.readFd(15).text).toBe('alpha\n')
    expectErrno(h.readFd(fd).errno, 'BADF')
    // The old number is free again and is reused first; the table still counts 15 as open.
    expect(h.openOk('a.txt')).toBe(fd)
    expectErrno(h.wasi.fd_renumber(STDOUT, 14), 'SUCCESS')
    expectErrno(h.wasi.fd_write(STDOUT, h.alloc(8, 4), 0, h.alloc(4, 4)), 'BADF')
  })

  it('keeps the descriptor limit across renumbers onto free numbers', () => {
    const h = harness({ limits: { maxFds: 8 } })
    const opened: number[] = []
    for (;;) {
      const r = h.open('a.txt')
      if (r.errno !== 0) {
        expectErrno(r.errno, 'MFILE')
        break
      }
      opened.push(r.fd)
    }
    expect(opened.length + 5).toBe(8)
    expect(opened).toEqual([5, 6, 7])
    expectErrno(h.wasi.fd_close(5), 'SUCCESS')
    expectErrno(h.wasi.fd_renumber(6, 8), 'BADF')
    expectErrno(h.wasi.fd_renumber(6, 5), 'SUCCESS')
    expect(h.openOk('a.txt')).toBe(6)
    expectErrno(h.open('a.txt').errno, 'MFILE')
  })

  it('a directory shared by two descriptors stays open until both are gone', () => {
    const h = harness()
    const self = h.openOk('.', { oflags: O_DIRECTORY })
    expectErrno(h.wasi.fd_renumber(self, SANDBOX), 'SUCCESS')
    expect(h.readFd(h.openOk('a.txt')).text).toBe('alpha\n')
    expect(h.counters.every((c) => c.doubleClose === 0)).toBe(true)
  })
})

describe('rights on descriptors opened by path_open', () => {
  it('a file never holds more than FILE_RIGHTS & the directory inheriting rights', () => {
    const h = harness()
    const fd = h.openOk('a.txt', { base: -1n, inheriting: -1n })
    const st = h.fdstat(fd)
    const dir = h.fdstat(SANDBOX)
    expect(st.base & ~(BigInt(FILE_RIGHTS) & dir.inheriting)).toBe(0n)
    expect(st.base & BigInt(Rights.PATH_OPEN)).toBe(0n)
  })

  it('a read-only open on the read-only mount holds no mutating right', () => {
    const h = harness()
    const fd = h.openOk('r.txt', { dirfd: DATA, base: READ_RIGHTS, inheriting: -1n })
    const st = h.fdstat(fd)
    expect(st.base & BigInt(MUTATING_RIGHTS)).toBe(0n)
    expect(st.inheriting & BigInt(MUTATING_RIGHTS)).toBe(0n)
  })

  it('rights dropped from the directory inheriting set are not granted to children', () => {
    const h = harness()
    h.restrict(SANDBOX, 0, Rights.FD_SEEK | Rights.FD_TELL)
    const fd = h.openOk('a.txt', { base: -1n })
    expect(h.fdstat(fd).base & BigInt(Rights.FD_SEEK | Rights.FD_TELL)).toBe(0n)
    expectErrno(h.wasi.fd_seek(fd, 0n, 0, h.alloc(8, 8)), 'NOTCAPABLE')
  })

  it('a child directory cannot regain what its parent lost', () => {
    const h = harness()
    h.restrict(SANDBOX, 0, Rights.PATH_CREATE_FILE)
    const sub = h.openOk('sub', { oflags: O_DIRECTORY, base: READ_RIGHTS, inheriting: -1n })
    expect(h.fdstat(sub).base & BigInt(Rights.PATH_CREATE_FILE)).toBe(0n)
    expect(h.fdstat(sub).inheriting & BigInt(Rights.PATH_CREATE_FILE)).toBe(0n)
    expectErrno(h.open('new.txt', { dirfd: sub, oflags: O_CREAT, base: ALL_RIGHTS }).errno, 'NOTCAPABLE')
    expect(statIn(h.sandboxFs, 'sub/new.txt')).toBeUndefined()
  })
})
