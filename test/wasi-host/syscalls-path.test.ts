/**
 * The path_* calls other than path_open, each with its own success and error paths. The checks
 * every path call shares (descriptor kind, rights, encoding, escapes, traps on the path pointer)
 * are in `syscalls-path-common.test.ts`.
 */
import { describe, expect, it } from 'vitest'
import { Filetype, Rights } from '../../wasi-host/abi/constants.js'
import { memFsFromTree } from '../../wasi-host/fs/mem-fs.js'
import {
  ALL_RIGHTS,
  BAD_FD,
  DATA,
  errnoName,
  existsIn,
  expectErrno,
  expectTrap,
  harness,
  LOOKUP_FOLLOW,
  NEG_PTR,
  O_DIRECTORY,
  PATH_TREE,
  readIn,
  readlinkIn,
  SANDBOX,
  statIn,
  STDOUT,
  type Harness,
} from './harness.js'

const ATIM = 1,
  ATIM_NOW = 2,
  MTIM = 4,
  MTIM_NOW = 8

function mkdir(h: Harness, path: string, fd = SANDBOX): number {
  const p = h.str(path)
  return h.wasi.path_create_directory(fd, p.ptr, p.len)
}
function rmdir(h: Harness, path: string, fd = SANDBOX): number {
  const p = h.str(path)
  return h.wasi.path_remove_directory(fd, p.ptr, p.len)
}
function unlink(h: Harness, path: string, fd = SANDBOX): number {
  const p = h.str(path)
  return h.wasi.path_unlink_file(fd, p.ptr, p.len)
}
function symlink(h: Harness, target: string, path: string, fd = SANDBOX): number {
  const t = h.str(target)
  const p = h.str(path)
  return h.wasi.path_symlink(t.ptr, t.len, fd, p.ptr, p.len)
}
function link(h: Harness, from: string, to: string, fromFd = SANDBOX, toFd = SANDBOX, flags = 0): number {
  const a = h.str(from)
  const b = h.str(to)
  return h.wasi.path_link(fromFd, flags, a.ptr, a.len, toFd, b.ptr, b.len)
}
function rename(h: Harness, from: string, to: string, fromFd = SANDBOX, toFd = SANDBOX): number {
  const a = h.str(from)
  const b = h.str(to)
  return h.wasi.path_rename(fromFd, a.ptr, a.len, toFd, b.ptr, b.len)
}
function readlink(h: Harness, path: string, bufLen = 64, fd = SANDBOX): { errno: number; text: string; used: number } {
  const p = h.str(path)
  const buf = h.alloc(Math.max(bufLen, 1), 1)
  const used = h.alloc(4, 4)
  const errno = h.wasi.path_readlink(fd, p.ptr, p.len, buf, bufLen, used)
  const n = errno === 0 ? h.u32(used) : 0
  return { errno, used: n, text: h.readString(buf, n) }
}
function setTimes(h: Harness, path: string, atim: bigint, mtim: bigint, flags: number, lookup = LOOKUP_FOLLOW, fd = SANDBOX): number {
  const p = h.str(path)
  return h.wasi.path_filestat_set_times(fd, lookup, p.ptr, p.len, atim, mtim, flags)
}

/** A second writable mount, to test two-handle calls across mounts. */
function withOtherRw(): Harness {
  return harness({ sandbox: PATH_TREE, extraPreopens: [{ guestPath: '/other', fs: memFsFromTree({ 'o.txt': 'other\n' }), mode: 'rw' }] })
}
const OTHER = 5

describe('path_create_directory', () => {
  it('creates a directory, nested ones, and accepts a trailing slash', () => {
    const h = harness()
    expectErrno(mkdir(h, 'new'), 'SUCCESS')
    expectErrno(mkdir(h, 'new/inner'), 'SUCCESS')
    expectErrno(mkdir(h, 'slash/'), 'SUCCESS')
    expect(statIn(h.sandboxFs, 'new/inner')!.filetype).toBe(Filetype.DIRECTORY)
    expect(statIn(h.sandboxFs, 'slash')!.filetype).toBe(Filetype.DIRECTORY)
  })

  it('creates relative to an opened subdirectory', () => {
    const h = harness()
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    expectErrno(mkdir(h, 'made', sub), 'SUCCESS')
    expect(existsIn(h.sandboxFs, 'sub/made')).toBe(true)
  })

  it('is EXIST for an existing file, directory, symlink, "." and "sub/.."', () => {
    const h = harness()
    for (const p of ['a.txt', 'sub', 'link', '.', 'sub/..', 'sub/deeper/']) expectErrno(mkdir(h, p), 'EXIST')
  })

  it('is NOENT when the parent is missing', () => {
    const h = harness()
    expectErrno(mkdir(h, 'no/such'), 'NOENT')
  })

  it('is ROFS on the read-only mount, NOTCAPABLE without PATH_CREATE_DIRECTORY', () => {
    const h = harness()
    expectErrno(mkdir(h, 'x', DATA), 'ROFS')
    expect(existsIn(h.dataFs, 'x')).toBe(false)
    h.restrict(SANDBOX, Rights.PATH_CREATE_DIRECTORY)
    expectErrno(mkdir(h, 'x'), 'NOTCAPABLE')
    expect(existsIn(h.sandboxFs, 'x')).toBe(false)
  })
})

describe('path_filestat_get', () => {
  it('stats a file, a directory, and the mount root', () => {
    const h = harness()
    const f = h.pathStat('a.txt')
    expectErrno(f.errno, 'SUCCESS')
    expect(f.stat.filetype).toBe(Filetype.REGULAR_FILE)
    expect(f.stat.size).toBe(6n)
    expect(f.stat.dev).toBe(h.fdStat(SANDBOX).stat.dev)
    expect(h.pathStat('sub').stat.filetype).toBe(Filetype.DIRECTORY)
    expect(h.pathStat('.').stat.ino).toBe(h.fdStat(SANDBOX).stat.ino)
  })

  it('stats a symlink itself without SYMLINK_FOLLOW and its target with it', () => {
    const h = harness()
    const own = h.pathStat('link', SANDBOX, 0).stat
    expect(own.filetype).toBe(Filetype.SYMBOLIC_LINK)
    expect(own.size).toBe(5n)
    expect(h.pathStat('link').stat.filetype).toBe(Filetype.REGULAR_FILE)
  })

  it('is NOENT for a missing name and a dangling symlink followed', () => {
    const h = harness({ sandbox: { d: { symlink: 'nope' } } })
    expectErrno(h.pathStat('missing').errno, 'NOENT')
    expectErrno(h.pathStat('d').errno, 'NOENT')
    expectErrno(h.pathStat('d', SANDBOX, 0).errno, 'SUCCESS')
  })

  it('is NOTDIR for a trailing slash on a file', () => {
    const h = harness()
    expectErrno(h.pathStat('a.txt/').errno, 'NOTDIR')
    expectErrno(h.pathStat('link/', SANDBOX, 0).errno, 'NOTDIR')
    expectErrno(h.pathStat('sub/').errno, 'SUCCESS')
  })

  it('works on the read-only mount', () => {
    const h = harness()
    expect(h.pathStat('dir/c.txt', DATA).stat.size).toBe(8n)
  })

  it('refuses unknown lookupflags with INVAL', () => {
    const h = harness()
    expectErrno(h.pathStat('a.txt', SANDBOX, 2).errno, 'INVAL')
    expectErrno(h.pathStat('a.txt', SANDBOX, -1).errno, 'INVAL')
  })

  it('traps on a bad or misaligned result buffer', () => {
    const h = harness()
    const p = h.str('a.txt')
    expectTrap(() => h.wasi.path_filestat_get(SANDBOX, 1, p.ptr, p.len, h.size - 32), 'path_filestat_get')
    expectTrap(() => h.wasi.path_filestat_get(SANDBOX, 1, p.ptr, p.len, NEG_PTR))
    expectTrap(() => h.wasi.path_filestat_get(SANDBOX, 1, p.ptr, p.len, h.alloc(72, 8) + 4))
  })
})

describe('path_filestat_set_times', () => {
  it('sets times on a file, through a symlink, and on the symlink itself', () => {
    const h = harness()
    expectErrno(setTimes(h, 'a.txt', 10n, 20n, ATIM | MTIM), 'SUCCESS')
    let st = statIn(h.sandboxFs, 'a.txt')!
    expect([st.atim, st.mtim]).toEqual([10n, 20n])
    expectErrno(setTimes(h, 'link', 30n, 0n, ATIM), 'SUCCESS')
    st = statIn(h.sandboxFs, 'a.txt')!
    expect([st.atim, st.mtim]).toEqual([30n, 20n])
    expectErrno(setTimes(h, 'link', 40n, 50n, ATIM | MTIM, 0), 'SUCCESS')
    expect(statIn(h.sandboxFs, 'link')!.mtim).toBe(50n)
    expect(statIn(h.sandboxFs, 'a.txt')!.mtim).toBe(20n)
  })

  it('sets "now" times', () => {
    const h = harness()
    expectErrno(setTimes(h, 'a.txt', 1n, 1n, ATIM | MTIM), 'SUCCESS')
    expectErrno(setTimes(h, 'a.txt', 0n, 0n, ATIM_NOW | MTIM_NOW), 'SUCCESS')
    expect(statIn(h.sandboxFs, 'a.txt')!.atim).toBeGreaterThan(1n)
  })

  it('refuses ATIM|ATIM_NOW, MTIM|MTIM_NOW, unknown fstflags and lookupflags with INVAL', () => {
    const h = harness()
    const before = statIn(h.sandboxFs, 'a.txt')
    expectErrno(setTimes(h, 'a.txt', 1n, 1n, ATIM | ATIM_NOW), 'INVAL')
    expectErrno(setTimes(h, 'a.txt', 1n, 1n, MTIM | MTIM_NOW), 'INVAL')
    expectErrno(setTimes(h, 'a.txt', 1n, 1n, 16), 'INVAL')
    expectErrno(setTimes(h, 'a.txt', 1n, 1n, ATIM, 2), 'INVAL')
    expect(statIn(h.sandboxFs, 'a.txt')).toEqual(before)
  })

  it('is NOENT for a missing name, NOTDIR for a trailing slash on a file', () => {
    const h = harness()
    expectErrno(setTimes(h, 'missing', 1n, 1n, ATIM), 'NOENT')
    expectErrno(setTimes(h, 'a.txt/', 1n, 1n, ATIM), 'NOTDIR')
  })

  it('is ROFS on the read-only mount, leaving the times alone', () => {
    const h = harness()
    const before = statIn(h.dataFs, 'r.txt')
    expectErrno(setTimes(h, 'r.txt', 1n, 1n, ATIM | MTIM, LOOKUP_FOLLOW, DATA), 'ROFS')
    expect(statIn(h.dataFs, 'r.txt')).toEqual(before)
  })

  it('is NOTCAPABLE without PATH_FILESTAT_SET_TIMES', () => {
    const h = harness()
    h.restrict(SANDBOX, Rights.PATH_FILESTAT_SET_TIMES)
    expectErrno(setTimes(h, 'a.txt', 1n, 1n, ATIM), 'NOTCAPABLE')
  })
})

describe('path_link', () => {
  it('hard-links a file: same inode, nlink 2, and content shared', () => {
    const h = harness()
    expectErrno(link(h, 'a.txt', 'sub/hard'), 'SUCCESS')
    expect(statIn(h.sandboxFs, 'sub/hard')!.ino).toBe(statIn(h.sandboxFs, 'a.txt')!.ino)
    expect(statIn(h.sandboxFs, 'a.txt')!.nlink).toBe(2n)
    expect(readIn(h.sandboxFs, 'sub/hard')).toBe('alpha\n')
  })

  it('links the symlink itself without SYMLINK_FOLLOW, and its target with it', () => {
    const h = harness()
    expectErrno(link(h, 'link', 'l-own'), 'SUCCESS')
    expect(statIn(h.sandboxFs, 'l-own')!.filetype).toBe(Filetype.SYMBOLIC_LINK)
    expectErrno(link(h, 'link', 'l-target', SANDBOX, SANDBOX, LOOKUP_FOLLOW), 'SUCCESS')
    expect(statIn(h.sandboxFs, 'l-target')!.filetype).toBe(Filetype.REGULAR_FILE)
  })

  it('is PERM for a directory source, EXIST for an existing target, NOENT for a missing source', () => {
    const h = harness()
    expectErrno(link(h, 'sub', 'subl'), 'PERM')
    expectErrno(link(h, '.', 'dot'), 'PERM')
    expectErrno(link(h, 'a.txt', 'sub/b.txt'), 'EXIST')
    expectErrno(link(h, 'a.txt', 'sub'), 'EXIST')
    expectErrno(link(h, 'missing', 'x'), 'NOENT')
    expect(readIn(h.sandboxFs, 'sub/b.txt')).toBe('bravo\n')
  })

  it('refuses unknown lookupflags with INVAL', () => {
    const h = harness()
    expectErrno(link(h, 'a.txt', 'x', SANDBOX, SANDBOX, 2), 'INVAL')
    expect(existsIn(h.sandboxFs, 'x')).toBe(false)
  })

  it('from the read-only mount into the writable one is refused (ghsa-4ch3)', () => {
    const h = harness()
    expectErrno(link(h, 'r.txt', 'stolen', DATA, SANDBOX), 'ROFS')
    expect(existsIn(h.sandboxFs, 'stolen')).toBe(false)
  })

  it('from the writable mount into the read-only one is refused', () => {
    const h = harness()
    expectErrno(link(h, 'a.txt', 'planted', SANDBOX, DATA), 'ROFS')
    expect(existsIn(h.dataFs, 'planted')).toBe(false)
  })

  it('across two writable mounts is XDEV', () => {
    const h = withOtherRw()
    expectErrno(link(h, 'a.txt', 'x', SANDBOX, OTHER), 'XDEV')
    expectErrno(link(h, 'o.txt', 'x', OTHER, SANDBOX), 'XDEV')
    expect(existsIn(h.sandboxFs, 'x')).toBe(false)
  })

  it('the target descriptor: BADF for fd 99, NOTDIR for a file or stdout, NOTCAPABLE without PATH_LINK_TARGET', () => {
    const h = harness()
    expectErrno(link(h, 'a.txt', 'x', SANDBOX, BAD_FD), 'BADF')
    expectErrno(link(h, 'a.txt', 'x', SANDBOX, h.openOk('a.txt')), 'NOTDIR')
    expectErrno(link(h, 'a.txt', 'x', SANDBOX, STDOUT), 'NOTDIR')
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    h.restrict(sub, Rights.PATH_LINK_TARGET)
    expectErrno(link(h, 'a.txt', 'x', SANDBOX, sub), 'NOTCAPABLE')
    expect(existsIn(h.sandboxFs, 'sub/x')).toBe(false)
  })

  it('links between two descriptors of the same mount', () => {
    const h = harness()
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    expectErrno(link(h, 'a.txt', 'from-root', SANDBOX, sub), 'SUCCESS')
    expect(existsIn(h.sandboxFs, 'sub/from-root')).toBe(true)
  })
})

describe('path_readlink', () => {
  it('reads a symlink target, without a NUL', () => {
    const h = harness()
    const r = readlink(h, 'link')
    expectErrno(r.errno, 'SUCCESS')
    expect(r.text).toBe('a.txt')
    expect(r.used).toBe(5)
  })

  it('truncates to a too-small buffer (bufused == buf_len), and accepts a zero-length buffer', () => {
    const h = harness()
    const r = readlink(h, 'link', 3)
    expectErrno(r.errno, 'SUCCESS')
    expect(r.used).toBe(3)
    expect(r.text).toBe('a.t')
    const p = h.str('link')
    const used = h.alloc(4, 4)
    expectErrno(h.wasi.path_readlink(SANDBOX, p.ptr, p.len, h.size, 0, used), 'SUCCESS')
    expect(h.u32(used)).toBe(0)
  })

  it('reads a link in a subdirectory and a multi-byte target', () => {
    const h = harness({ sandbox: { sub: { l: { symlink: '../日本.txt' } } } })
    expect(readlink(h, 'sub/l').text).toBe('../日本.txt')
  })

  it('is INVAL for a file or directory, NOENT for a missing name', () => {
    const h = harness()
    expectErrno(readlink(h, 'a.txt').errno, 'INVAL')
    expectErrno(readlink(h, 'sub').errno, 'INVAL')
    expectErrno(readlink(h, '.').errno, 'INVAL')
    expectErrno(readlink(h, 'missing').errno, 'NOENT')
  })

  it('works on the read-only mount', () => {
    const h = harness()
    expect(readlink(h, 'rlink', 64, DATA).text).toBe('r.txt')
  })

  it('refuses to reveal a target that leads out of the mount (PERM)', () => {
    const h = harness({ sandbox: PATH_TREE })
    expectErrno(readlink(h, 'abs').errno, 'PERM')
    expectErrno(readlink(h, 'up').errno, 'PERM')
    expectErrno(readlink(h, 'up2').errno, 'PERM')
  })

  it('is NOTCAPABLE without PATH_READLINK', () => {
    const h = harness()
    h.restrict(SANDBOX, Rights.PATH_READLINK)
    expectErrno(readlink(h, 'link').errno, 'NOTCAPABLE')
  })

  it('traps on a bad buffer or bufused pointer, writing nothing', () => {
    const h = harness()
    const p = h.str('link')
    const buf = h.alloc(16, 1)
    h.fill(buf, 16, 0xee)
    expectTrap(() => h.wasi.path_readlink(SANDBOX, p.ptr, p.len, h.size - 2, 3, h.alloc(4, 4)), 'path_readlink')
    expectTrap(() => h.wasi.path_readlink(SANDBOX, p.ptr, p.len, NEG_PTR, 3, h.alloc(4, 4)))
    expectTrap(() => h.wasi.path_readlink(SANDBOX, p.ptr, p.len, buf, 16, h.size))
    expectTrap(() => h.wasi.path_readlink(SANDBOX, p.ptr, p.len, buf, 16, h.alloc(8, 4) + 1))
    expect(h.u8(buf)).toBe(0xee)
  })
})

describe('path_remove_directory', () => {
  it('removes an empty directory, also with a trailing slash', () => {
    const h = harness()
    expectErrno(rmdir(h, 'empty'), 'SUCCESS')
    expectErrno(rmdir(h, 'sub/deeper/'), 'SUCCESS')
    expect(existsIn(h.sandboxFs, 'empty')).toBe(false)
    expect(existsIn(h.sandboxFs, 'sub/deeper')).toBe(false)
  })

  it('is NOTEMPTY for a non-empty directory', () => {
    const h = harness()
    expectErrno(rmdir(h, 'sub'), 'NOTEMPTY')
    expect(existsIn(h.sandboxFs, 'sub/b.txt')).toBe(true)
  })

  it('is NOTDIR for a file and for a symlink (even to a directory)', () => {
    const h = harness({ sandbox: { f: 'x', d: {}, ld: { symlink: 'd' } } })
    expectErrno(rmdir(h, 'f'), 'NOTDIR')
    expectErrno(rmdir(h, 'ld'), 'NOTDIR')
    expect(existsIn(h.sandboxFs, 'd')).toBe(true)
    expect(existsIn(h.sandboxFs, 'ld')).toBe(true)
  })

  it('refuses "." and "sub/.." (the directory has no name here; the preopen root is safe)', () => {
    const h = harness({ sandbox: { e: {} } })
    expect(['INVAL', 'BUSY', 'NOTEMPTY']).toContain(errnoName(rmdir(h, '.')))
    expect(['INVAL', 'BUSY', 'NOTEMPTY']).toContain(errnoName(rmdir(h, 'e/..')))
    const e = h.openOk('e', { oflags: O_DIRECTORY })
    expect(['INVAL', 'BUSY']).toContain(errnoName(rmdir(h, '.', e)))
    expect(existsIn(h.sandboxFs, 'e')).toBe(true)
  })

  it('is NOENT for a missing name', () => {
    const h = harness()
    expectErrno(rmdir(h, 'missing'), 'NOENT')
  })

  it('is ROFS on the read-only mount, NOTCAPABLE without PATH_REMOVE_DIRECTORY', () => {
    const h = harness({ data: { e: {} } })
    expectErrno(rmdir(h, 'e', DATA), 'ROFS')
    expect(existsIn(h.dataFs, 'e')).toBe(true)
    h.restrict(SANDBOX, Rights.PATH_REMOVE_DIRECTORY)
    expectErrno(rmdir(h, 'empty'), 'NOTCAPABLE')
    expect(existsIn(h.sandboxFs, 'empty')).toBe(true)
  })
})

describe('path_rename', () => {
  it('renames a file, replacing an existing file, and moves it between directories', () => {
    const h = harness()
    expectErrno(rename(h, 'a.txt', 'sub/b.txt'), 'SUCCESS')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(false)
    expect(readIn(h.sandboxFs, 'sub/b.txt')).toBe('alpha\n')
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    expectErrno(rename(h, 'b.txt', 'back.txt', sub, SANDBOX), 'SUCCESS')
    expect(readIn(h.sandboxFs, 'back.txt')).toBe('alpha\n')
  })

  it('renames a directory (trailing slashes allowed) and a symlink without following it', () => {
    const h = harness()
    expectErrno(rename(h, 'sub/', 'moved/'), 'SUCCESS')
    expect(readIn(h.sandboxFs, 'moved/b.txt')).toBe('bravo\n')
    expectErrno(rename(h, 'link', 'link2'), 'SUCCESS')
    expect(readlinkIn(h.sandboxFs, 'link2')).toBe('a.txt')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('an open descriptor follows the renamed file', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(rename(h, 'a.txt', 'z.txt'), 'SUCCESS')
    expect(h.readFd(fd).text).toBe('alpha\n')
  })

  it('is NOENT for a missing source, NOTDIR for a trailing slash on a file', () => {
    const h = harness()
    expectErrno(rename(h, 'missing', 'x'), 'NOENT')
    expectErrno(rename(h, 'a.txt/', 'x'), 'NOTDIR')
    expectErrno(rename(h, 'a.txt', 'x/'), 'NOTDIR')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('refuses to rename ".", ".." or onto them, and a directory into itself', () => {
    const h = harness()
    expect(['BUSY', 'INVAL']).toContain(errnoName(rename(h, '.', 'x')))
    expect(['BUSY', 'INVAL']).toContain(errnoName(rename(h, 'sub/..', 'x')))
    expect(['BUSY', 'INVAL', 'EXIST', 'NOTEMPTY']).toContain(errnoName(rename(h, 'empty', '.')))
    expectErrno(rename(h, 'sub', 'sub/deeper/inside'), 'INVAL')
    expect(existsIn(h.sandboxFs, 'sub/b.txt')).toBe(true)
    expect(existsIn(h.sandboxFs, 'empty')).toBe(true)
  })

  it('is ISDIR/NOTDIR/NOTEMPTY for type clashes', () => {
    const h = harness()
    expectErrno(rename(h, 'a.txt', 'empty'), 'ISDIR')
    expectErrno(rename(h, 'empty', 'a.txt'), 'NOTDIR')
    expectErrno(rename(h, 'empty', 'sub'), 'NOTEMPTY')
  })

  it('from the read-only mount is ROFS (ghsa-4ch3), into it is ROFS', () => {
    const h = harness()
    expectErrno(rename(h, 'r.txt', 'stolen', DATA, SANDBOX), 'ROFS')
    expectErrno(rename(h, 'a.txt', 'planted', SANDBOX, DATA), 'ROFS')
    expectErrno(rename(h, 'r.txt', 'r2.txt', DATA, DATA), 'ROFS')
    expect(existsIn(h.dataFs, 'r.txt')).toBe(true)
    expect(existsIn(h.sandboxFs, 'stolen')).toBe(false)
    expect(existsIn(h.dataFs, 'planted')).toBe(false)
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('across two writable mounts is XDEV', () => {
    const h = withOtherRw()
    expectErrno(rename(h, 'a.txt', 'x', SANDBOX, OTHER), 'XDEV')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('the target descriptor: BADF for fd 99, NOTDIR for a file, NOTCAPABLE without PATH_RENAME_TARGET', () => {
    const h = harness()
    expectErrno(rename(h, 'a.txt', 'x', SANDBOX, BAD_FD), 'BADF')
    expectErrno(rename(h, 'a.txt', 'x', SANDBOX, h.openOk('sub/b.txt')), 'NOTDIR')
    expectErrno(rename(h, 'a.txt', 'x', SANDBOX, STDOUT), 'NOTDIR')
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    h.restrict(sub, Rights.PATH_RENAME_TARGET)
    expectErrno(rename(h, 'a.txt', 'x', SANDBOX, sub), 'NOTCAPABLE')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })
})

describe('path_symlink', () => {
  it('creates a symlink storing the target as given, which then resolves', () => {
    const h = harness()
    expectErrno(symlink(h, 'sub/b.txt', 'sl'), 'SUCCESS')
    expect(readlinkIn(h.sandboxFs, 'sl')).toBe('sub/b.txt')
    expect(h.readFd(h.openOk('sl')).text).toBe('bravo\n')
    expectErrno(symlink(h, '../a.txt', 'sub/up'), 'SUCCESS')
    expect(h.readFd(h.openOk('sub/up')).text).toBe('alpha\n')
  })

  it('creates a dangling symlink (the target need not exist)', () => {
    const h = harness()
    expectErrno(symlink(h, 'later', 'dang'), 'SUCCESS')
    expectErrno(h.open('dang').errno, 'NOENT')
  })

  it('refuses a target that can only lead out of the mount with PERM, creating nothing', () => {
    const h = harness()
    for (const [target, at] of [
      ['/x', 'l1'],
      ['/', 'l2'],
      ['..', 'l3'],
      ['../..', 'l4'],
      ['sub/../../x', 'l5'],
      ['../../a.txt', 'sub/l6'],
    ]) {
      expectErrno(symlink(h, target!, at!), 'PERM')
    }
    expect(['l1', 'l2', 'l3', 'l4', 'l5'].some((n) => existsIn(h.sandboxFs, n))).toBe(false)
    expect(existsIn(h.sandboxFs, 'sub/l6')).toBe(false)
  })

  it('from a subdirectory descriptor, the target is judged against the mount, not the descriptor', () => {
    const h = harness()
    const sub = h.openOk('sub', { oflags: O_DIRECTORY })
    expectErrno(symlink(h, '../../a.txt', 'out', sub), 'PERM')
    expect(existsIn(h.sandboxFs, 'sub/out')).toBe(false)
    // Stays inside the mount: stored. Followed from the subdirectory descriptor it would climb
    // above that descriptor (PERM); followed from the preopen it resolves.
    expectErrno(symlink(h, '../a.txt', 'l', sub), 'SUCCESS')
    expectErrno(h.open('l', { dirfd: sub }).errno, 'PERM')
    expect(h.readFd(h.openOk('sub/l')).text).toBe('alpha\n')
  })

  it('is EXIST for an existing name, NOENT for an empty target or missing parent', () => {
    const h = harness()
    expectErrno(symlink(h, 'x', 'a.txt'), 'EXIST')
    expectErrno(symlink(h, 'x', 'link'), 'EXIST')
    expectErrno(symlink(h, 'x', '.'), 'EXIST')
    expectErrno(symlink(h, '', 'e'), 'NOENT')
    expectErrno(symlink(h, 'x', 'no/such'), 'NOENT')
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })

  it('refuses a trailing slash on a new link name (wasi-testsuite path_symlink_trailing_slashes)', () => {
    const h = harness()
    // Dangling destination with a trailing slash: NOENT, and nothing is created.
    expectErrno(symlink(h, 'a.txt', 'target/'), 'NOENT')
    expect(existsIn(h.sandboxFs, 'target')).toBe(false)
    // Existing destinations: EXIST (a directory), NOTDIR or EXIST (a file).
    expectErrno(symlink(h, 'a.txt', 'sub/'), 'EXIST')
    expect(['NOTDIR', 'EXIST']).toContain(errnoName(symlink(h, 'x', 'a.txt/')))
    expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
  })

  it('is ROFS on the read-only mount, NOTCAPABLE without PATH_SYMLINK', () => {
    const h = harness()
    expectErrno(symlink(h, 'r.txt', 'l', DATA), 'ROFS')
    expect(existsIn(h.dataFs, 'l')).toBe(false)
    h.restrict(SANDBOX, Rights.PATH_SYMLINK)
    expectErrno(symlink(h, 'a.txt', 'l'), 'NOTCAPABLE')
  })

  it('the descriptor is its third argument: BADF for fd 99, NOTDIR for stdout', () => {
    const h = harness()
    expectErrno(symlink(h, 'a.txt', 'l', BAD_FD), 'BADF')
    expectErrno(symlink(h, 'a.txt', 'l', STDOUT), 'NOTDIR')
  })

  it('traps on a bad target pointer, creating nothing', () => {
    const h = harness()
    const p = h.str('l')
    expectTrap(() => h.wasi.path_symlink(h.size - 1, 2, SANDBOX, p.ptr, p.len), 'path_symlink')
    expectTrap(() => h.wasi.path_symlink(NEG_PTR, 2, SANDBOX, p.ptr, p.len))
    expect(existsIn(h.sandboxFs, 'l')).toBe(false)
  })
})

describe('path_unlink_file', () => {
  it('removes a file; an open descriptor keeps reading it', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(unlink(h, 'a.txt'), 'SUCCESS')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(false)
    expect(h.readFd(fd).text).toBe('alpha\n')
  })

  it('removes a symlink, not its target', () => {
    const h = harness()
    expectErrno(unlink(h, 'link'), 'SUCCESS')
    expect(existsIn(h.sandboxFs, 'link')).toBe(false)
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('is ISDIR for a directory, ".", and "sub/.."', () => {
    const h = harness()
    expectErrno(unlink(h, 'sub'), 'ISDIR')
    expectErrno(unlink(h, 'empty'), 'ISDIR')
    expectErrno(unlink(h, '.'), 'ISDIR')
    expectErrno(unlink(h, 'sub/..'), 'ISDIR')
    expect(existsIn(h.sandboxFs, 'empty')).toBe(true)
  })

  it('a trailing slash on a symlink to a file is NOTDIR and removes neither', () => {
    const h = harness()
    expectErrno(unlink(h, 'link/'), 'NOTDIR')
    expect(existsIn(h.sandboxFs, 'link')).toBe(true)
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('is NOTDIR for a trailing slash on a file, NOENT for a missing name', () => {
    const h = harness()
    expectErrno(unlink(h, 'a.txt/'), 'NOTDIR')
    expectErrno(unlink(h, 'missing'), 'NOENT')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('is ROFS on the read-only mount, NOTCAPABLE without PATH_UNLINK_FILE', () => {
    const h = harness()
    expectErrno(unlink(h, 'r.txt', DATA), 'ROFS')
    expect(existsIn(h.dataFs, 'r.txt')).toBe(true)
    h.restrict(SANDBOX, Rights.PATH_UNLINK_FILE)
    expectErrno(unlink(h, 'a.txt'), 'NOTCAPABLE')
    expect(existsIn(h.sandboxFs, 'a.txt')).toBe(true)
  })

  it('works through a directory opened with all rights on the writable mount', () => {
    const h = harness()
    const sub = h.openOk('sub', {
      oflags: O_DIRECTORY,
      base: ALL_RIGHTS & ~BigInt(Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE),
    })
    expectErrno(unlink(h, 'b.txt', sub), 'SUCCESS')
    expect(existsIn(h.sandboxFs, 'sub/b.txt')).toBe(false)
  })
})
