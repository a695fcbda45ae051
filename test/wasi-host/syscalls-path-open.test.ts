/**
 * path_open in depth: flags, rights derived from effects (wasmtime GHSA-2r75), the read-only
 * mount, symlinks, trailing slashes, the descriptor limit, and traps that leave nothing behind
 * (bun#34468: an out-of-bounds fd pointer after a valid open must not leak a descriptor).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Filetype, Rights } from '../../wasi-host/abi/constants.js'
import type { FileHandle, Filesystem, OpenFileOptions } from '../../wasi-host/fs/filesystem.js'
import { memFsFromTree } from '../../wasi-host/fs/mem-fs.js'
import { createHostDirFs } from '../../wasi-host/node/host-dir-fs.js'
import { FILE_RIGHTS, MUTATING_RIGHTS } from '../../wasi-host/rights.js'
import {
  ALL_RIGHTS,
  countingFs,
  DATA,
  errnoName,
  existsIn,
  expectErrno,
  expectTrap,
  FDFLAG_APPEND,
  harness,
  HIGH_PTR,
  NEG_PTR,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_TRUNC,
  PATH_TREE,
  readIn,
  READ_RIGHTS,
  SANDBOX,
  statIn,
  type Harness,
} from './harness.js'

const WRITE = BigInt(Rights.FD_WRITE)

/** Asserts that `fn` changed no descriptor, no handle and no file in either mount. */
function unchanged(h: Harness, fn: () => void): void {
  const fds = h.host.fds.size
  const handles = h.openHandles()
  const a = readIn(h.sandboxFs, 'a.txt')
  const r = readIn(h.dataFs, 'r.txt')
  fn()
  expect(h.host.fds.size).toBe(fds)
  expect(h.openHandles()).toBe(handles)
  expect(readIn(h.sandboxFs, 'a.txt')).toBe(a)
  expect(readIn(h.dataFs, 'r.txt')).toBe(r)
}

describe('path_open', () => {
  describe('success paths', () => {
    it('opens a file for reading at the lowest free number', () => {
      const h = harness()
      const fd = h.openOk('a.txt')
      expect(fd).toBe(5)
      expect(h.readFd(fd).text).toBe('alpha\n')
      expect(h.fdstat(fd).filetype).toBe(Filetype.REGULAR_FILE)
    })

    it('opens through a symlink in the middle and at the end (with SYMLINK_FOLLOW)', () => {
      const h = harness({ sandbox: { ...PATH_TREE, s: { symlink: 'sub' } } })
      expect(h.readFd(h.openOk('s/b.txt', { lookup: 0 })).text).toBe('bravo\n')
      expect(h.readFd(h.openOk('link')).text).toBe('alpha\n')
    })

    it('follows a chain of symlinks staying inside, including through ".."', () => {
      const h = harness({ sandbox: { 'a.txt': 'alpha\n', sub: { back: { symlink: '../a.txt' }, deep: { l: { symlink: '../back' } } } } })
      expect(h.readFd(h.openOk('sub/deep/l')).text).toBe('alpha\n')
    })

    it('is LOOP on a final symlink without SYMLINK_FOLLOW (O_NOFOLLOW); NOTDIR with O_DIRECTORY', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('link', { lookup: 0 }).errno, 'LOOP')
        expectErrno(h.open('link', { lookup: 0, oflags: O_DIRECTORY }).errno, 'NOTDIR')
      })
    })

    it('opens a directory, "." and "sub/..", each usable for further lookups', () => {
      const h = harness()
      for (const p of ['sub', '.', 'sub/..', 'sub/deeper/../..', './sub/./']) {
        const r = h.open(p, { oflags: O_DIRECTORY })
        expectErrno(r.errno, 'SUCCESS')
        expect(h.fdstat(r.fd).filetype).toBe(Filetype.DIRECTORY)
      }
      const sub = h.openOk('sub', { oflags: O_DIRECTORY })
      expect(h.readFd(h.openOk('b.txt', { dirfd: sub })).text).toBe('bravo\n')
      const self = h.openOk('sub/..', { oflags: O_DIRECTORY })
      expect(h.readFd(h.openOk('a.txt', { dirfd: self })).text).toBe('alpha\n')
    })

    it('opens a directory without O_DIRECTORY too', () => {
      const h = harness()
      const fd = h.openOk('sub')
      expect(h.fdstat(fd).filetype).toBe(Filetype.DIRECTORY)
    })

    it('creates a file with O_CREAT, and again without error (no EXCL)', () => {
      const h = harness()
      const fd = h.openOk('new.txt', { oflags: O_CREAT, base: ALL_RIGHTS })
      expect(h.writeFd(fd, 'n').n).toBe(1)
      expect(readIn(h.sandboxFs, 'new.txt')).toBe('n')
      expect(h.readFd(h.openOk('new.txt', { oflags: O_CREAT })).text).toBe('n')
    })

    it('is EXIST for O_CREAT|O_EXCL on an existing file, directory or symlink', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('a.txt', { oflags: O_CREAT | O_EXCL, base: ALL_RIGHTS }).errno, 'EXIST')
        expectErrno(h.open('sub', { oflags: O_CREAT | O_EXCL }).errno, 'EXIST')
        expectErrno(h.open('link', { oflags: O_CREAT | O_EXCL, lookup: 0 }).errno, 'EXIST')
        expectErrno(h.open('link', { oflags: O_CREAT | O_EXCL }).errno, 'EXIST')
      })
    })

    it('O_CREAT|O_EXCL never follows a dangling symlink to create its target (POSIX: EEXIST)', () => {
      const h = harness({ sandbox: { dangling: { symlink: 'target.txt' } } })
      expectErrno(h.open('dangling', { oflags: O_CREAT | O_EXCL, base: ALL_RIGHTS }).errno, 'EXIST')
      expect(existsIn(h.sandboxFs, 'target.txt')).toBe(false)
    })

    it('O_CREAT without EXCL through a dangling symlink creates the target inside the mount', () => {
      const h = harness({ sandbox: { dangling: { symlink: 'sub/target.txt' }, sub: {} } })
      const fd = h.openOk('dangling', { oflags: O_CREAT, base: ALL_RIGHTS })
      h.writeFd(fd, 'x')
      expect(readIn(h.sandboxFs, 'sub/target.txt')).toBe('x')
    })

    it('truncates with O_TRUNC on the writable mount', () => {
      const h = harness()
      const fd = h.openOk('a.txt', { oflags: O_TRUNC, base: ALL_RIGHTS })
      expect(h.fdStat(fd).stat.size).toBe(0n)
      expect(readIn(h.sandboxFs, 'a.txt')).toBe('')
    })

    it('opens with APPEND and writes at the end', () => {
      const h = harness()
      const fd = h.openOk('a.txt', { base: ALL_RIGHTS, fdflags: FDFLAG_APPEND })
      h.writeFd(fd, 'Z')
      expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\nZ')
    })

    it('gives a file exactly requested & dir inheriting & FILE_RIGHTS', () => {
      const h = harness()
      const req = BigInt(Rights.FD_READ | Rights.FD_SEEK | Rights.PATH_OPEN | Rights.FD_READDIR)
      const fd = h.openOk('a.txt', { base: req })
      expect(h.fdstat(fd).base).toBe(req & BigInt(FILE_RIGHTS))
    })

    it('opens a path placed in memory grown after binding, writing the fd there too', () => {
      const h = harness()
      const old = h.size
      h.mem.grow(1)
      const s = new TextEncoder().encode('sub/b.txt')
      new Uint8Array(h.mem.buffer).set(s, old + 10)
      const fdPtr = h.size - 4
      expectErrno(h.wasi.path_open(SANDBOX, 1, old + 10, s.length, 0, READ_RIGHTS, 0n, 0, fdPtr), 'SUCCESS')
      expect(h.readFd(h.u32(fdPtr)).text).toBe('bravo\n')
    })
  })

  describe('flags', () => {
    it('refuses unknown oflags, fdflags and lookupflags with INVAL, creating nothing', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('x', { oflags: O_CREAT | 16 }).errno, 'INVAL')
        expectErrno(h.open('x', { oflags: O_CREAT, fdflags: 32 }).errno, 'INVAL')
        expectErrno(h.open('x', { oflags: O_CREAT, lookup: 2 }).errno, 'INVAL')
        expectErrno(h.open('x', { oflags: -1 }).errno, 'INVAL')
      })
      expect(existsIn(h.sandboxFs, 'x')).toBe(false)
    })

    it('is NOTDIR for O_DIRECTORY on a file, NOENT for O_DIRECTORY on a missing name', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('a.txt', { oflags: O_DIRECTORY }).errno, 'NOTDIR')
        expectErrno(h.open('nope', { oflags: O_DIRECTORY }).errno, 'NOENT')
      })
    })

    it('is ISDIR when opening a directory for writing, truncating or creating', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('sub', { base: WRITE }).errno, 'ISDIR')
        expectErrno(h.open('sub', { oflags: O_TRUNC }).errno, 'ISDIR')
        expectErrno(h.open('sub', { oflags: O_CREAT }).errno, 'ISDIR')
        expectErrno(h.open('.', { base: WRITE }).errno, 'ISDIR')
      })
    })

    it('applies trailing-slash rules: a file is NOTDIR, a missing name with O_CREAT is refused', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('a.txt/').errno, 'NOTDIR')
        expectErrno(h.open('link/').errno, 'NOTDIR')
        expectErrno(h.open('nope/').errno, 'NOENT')
        expect(['ISDIR', 'NOTDIR', 'NOENT']).toContain(errnoName(h.open('new/', { oflags: O_CREAT, base: ALL_RIGHTS }).errno))
      })
      expect(existsIn(h.sandboxFs, 'new')).toBe(false)
      expectErrno(h.open('sub/').errno, 'SUCCESS')
    })

    it('is NOENT for a missing file without O_CREAT', () => {
      const h = harness()
      unchanged(h, () => expectErrno(h.open('nope.txt').errno, 'NOENT'))
    })

    it('is LOOP for a symlink cycle and past 40 links', () => {
      const tree: Record<string, { symlink: string } | string> = { l1: { symlink: 'l2' }, l2: { symlink: 'l1' }, end: 'ok' }
      for (let i = 0; i < 41; i++) tree[`c${i}`] = { symlink: i === 40 ? 'end' : `c${i + 1}` }
      const h = harness({ sandbox: tree })
      const handles = h.openHandles()
      expectErrno(h.open('l1').errno, 'LOOP')
      expectErrno(h.open('c0').errno, 'LOOP')
      expect(h.openHandles()).toBe(handles)
      expect(h.readFd(h.openOk('c1')).text).toBe('ok')
    })
  })

  describe('rights', () => {
    it('is NOTCAPABLE without PATH_OPEN on the directory', () => {
      const h = harness()
      h.restrict(SANDBOX, Rights.PATH_OPEN)
      unchanged(h, () => expectErrno(h.open('a.txt').errno, 'NOTCAPABLE'))
    })

    it('O_CREAT needs PATH_CREATE_FILE (NOTCAPABLE, nothing created)', () => {
      const h = harness()
      h.restrict(SANDBOX, Rights.PATH_CREATE_FILE)
      unchanged(h, () => expectErrno(h.open('new.txt', { oflags: O_CREAT, base: ALL_RIGHTS }).errno, 'NOTCAPABLE'))
      expect(existsIn(h.sandboxFs, 'new.txt')).toBe(false)
    })

    it('O_TRUNC needs PATH_FILESTAT_SET_SIZE, even with only read rights (NOTCAPABLE, not truncated)', () => {
      const h = harness()
      h.restrict(SANDBOX, Rights.PATH_FILESTAT_SET_SIZE)
      unchanged(h, () => expectErrno(h.open('a.txt', { oflags: O_TRUNC, base: BigInt(Rights.FD_READ) }).errno, 'NOTCAPABLE'))
    })

    it('asking for write beyond the directory inheriting rights is NOTCAPABLE', () => {
      const h = harness()
      h.restrict(SANDBOX, 0, Rights.FD_WRITE)
      unchanged(h, () => expectErrno(h.open('a.txt', { base: ALL_RIGHTS }).errno, 'NOTCAPABLE'))
      // A read-only request still works.
      expect(h.fdstat(h.openOk('a.txt')).base & WRITE).toBe(0n)
    })

    it('rights beyond what a file may hold are silently not granted', () => {
      const h = harness()
      const fd = h.openOk('a.txt', { base: -1n })
      expect(h.fdstat(fd).base & ~BigInt(FILE_RIGHTS)).toBe(0n)
    })

    it('a child directory inherits at most the parent inheriting set', () => {
      const h = harness()
      h.restrict(SANDBOX, 0, Rights.PATH_UNLINK_FILE)
      const sub = h.openOk('sub', { oflags: O_DIRECTORY, inheriting: -1n })
      expect(h.fdstat(sub).base & BigInt(Rights.PATH_UNLINK_FILE)).toBe(0n)
      const p = h.str('b.txt')
      expectErrno(h.wasi.path_unlink_file(sub, p.ptr, p.len), 'NOTCAPABLE')
      expect(existsIn(h.sandboxFs, 'sub/b.txt')).toBe(true)
    })
  })

  describe('the read-only mount', () => {
    it('opens for reading; the descriptor holds no mutating right', () => {
      const h = harness()
      const fd = h.openOk('r.txt', { dirfd: DATA, inheriting: -1n })
      expect(h.readFd(fd).text).toBe('read only\n')
      expect(h.fdstat(fd).base & BigInt(MUTATING_RIGHTS)).toBe(0n)
      expect(h.fdstat(fd).inheriting & BigInt(MUTATING_RIGHTS)).toBe(0n)
    })

    it('O_TRUNC with only read rights is ROFS and does not truncate (GHSA-2r75)', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('r.txt', { dirfd: DATA, oflags: O_TRUNC, base: BigInt(Rights.FD_READ) }).errno, 'ROFS')
        expectErrno(h.open('r.txt', { dirfd: DATA, oflags: O_TRUNC, base: 0n }).errno, 'ROFS')
        expectErrno(h.open('dir/c.txt', { dirfd: DATA, oflags: O_TRUNC, base: READ_RIGHTS }).errno, 'ROFS')
      })
      expect(readIn(h.dataFs, 'dir/c.txt')).toBe('charlie\n')
    })

    it('O_CREAT is ROFS and creates nothing, for new and existing names', () => {
      const h = harness()
      unchanged(h, () => {
        expectErrno(h.open('new.txt', { dirfd: DATA, oflags: O_CREAT, base: BigInt(Rights.FD_READ) }).errno, 'ROFS')
        expectErrno(h.open('new.txt', { dirfd: DATA, oflags: O_CREAT | O_EXCL }).errno, 'ROFS')
      })
      expect(existsIn(h.dataFs, 'new.txt')).toBe(false)
    })

    it('write rights (FD_WRITE, FD_ALLOCATE, FD_FILESTAT_SET_SIZE, APPEND) are ROFS at open', () => {
      const h = harness()
      unchanged(h, () => {
        for (const base of [WRITE, BigInt(Rights.FD_ALLOCATE), BigInt(Rights.FD_FILESTAT_SET_SIZE), ALL_RIGHTS, -1n]) {
          expectErrno(h.open('r.txt', { dirfd: DATA, base }).errno, 'ROFS')
        }
        expectErrno(h.open('r.txt', { dirfd: DATA, fdflags: FDFLAG_APPEND }).errno, 'ROFS')
      })
    })

    it('a directory opened beneath it stays read-only', () => {
      const h = harness()
      const dir = h.openOk('dir', { dirfd: DATA, oflags: O_DIRECTORY, inheriting: -1n })
      expect(h.fdstat(dir).base & BigInt(MUTATING_RIGHTS)).toBe(0n)
      unchanged(h, () => {
        expectErrno(h.open('c.txt', { dirfd: dir, oflags: O_TRUNC }).errno, 'ROFS')
        expectErrno(h.open('c.txt', { dirfd: dir, base: WRITE }).errno, 'ROFS')
        expectErrno(h.open('n.txt', { dirfd: dir, oflags: O_CREAT }).errno, 'ROFS')
      })
      expect(readIn(h.dataFs, 'dir/c.txt')).toBe('charlie\n')
    })
  })

  describe('traps leave nothing behind', () => {
    it('a bad fd pointer traps without opening a descriptor, creating or truncating a file', () => {
      const h = harness()
      unchanged(h, () => {
        for (const fdPtr of [h.size, h.size - 2, NEG_PTR, HIGH_PTR]) {
          const p = h.str('a.txt')
          expectTrap(() => h.wasi.path_open(SANDBOX, 1, p.ptr, p.len, O_TRUNC, ALL_RIGHTS, 0n, 0, fdPtr), 'path_open')
          const n = h.str('created.txt')
          expectTrap(() => h.wasi.path_open(SANDBOX, 1, n.ptr, n.len, O_CREAT, ALL_RIGHTS, 0n, 0, fdPtr))
          const d = h.str('sub')
          expectTrap(() => h.wasi.path_open(SANDBOX, 1, d.ptr, d.len, O_DIRECTORY, READ_RIGHTS, 0n, 0, fdPtr))
        }
      })
      expect(existsIn(h.sandboxFs, 'created.txt')).toBe(false)
      // The next descriptor number is still the lowest free one.
      expect(h.openOk('a.txt')).toBe(5)
    })

    it('a misaligned fd pointer traps', () => {
      const h = harness()
      unchanged(h, () => {
        const p = h.str('new.txt')
        const fdPtr = h.alloc(8, 4) + 1
        expectTrap(() => h.wasi.path_open(SANDBOX, 1, p.ptr, p.len, O_CREAT, ALL_RIGHTS, 0n, 0, fdPtr))
      })
      expect(existsIn(h.sandboxFs, 'new.txt')).toBe(false)
    })
  })

  describe('the descriptor limit', () => {
    it('is MFILE once limits.maxFds descriptors are open, leaking no handle', () => {
      const h = harness({ limits: { maxFds: 6 } })
      const fd = h.openOk('a.txt')
      unchanged(h, () => {
        expectErrno(h.open('a.txt').errno, 'MFILE')
        expectErrno(h.open('sub', { oflags: O_DIRECTORY }).errno, 'MFILE')
        expectErrno(h.open('.', { oflags: O_DIRECTORY }).errno, 'MFILE')
        expectErrno(h.open('sub/deeper/..', { oflags: O_DIRECTORY }).errno, 'MFILE')
      })
      expectErrno(h.wasi.fd_close(fd), 'SUCCESS')
      expect(h.openOk('sub', { oflags: O_DIRECTORY })).toBe(fd)
    })

    it('MFILE with O_CREAT does not create the file', () => {
      const h = harness({ limits: { maxFds: 5 } })
      expectErrno(h.open('new.txt', { oflags: O_CREAT, base: ALL_RIGHTS }).errno, 'MFILE')
      expect(existsIn(h.sandboxFs, 'new.txt')).toBe(false)
    })

    it('MFILE with O_TRUNC does not truncate the file', () => {
      const h = harness({ limits: { maxFds: 5 } })
      expectErrno(h.open('a.txt', { oflags: O_TRUNC, base: ALL_RIGHTS }).errno, 'MFILE')
      expect(readIn(h.sandboxFs, 'a.txt')).toBe('alpha\n')
    })

    it('counts stdio and preopens: with maxFds 5 nothing more can be opened', () => {
      const h = harness({ limits: { maxFds: 5 } })
      expectErrno(h.open('a.txt').errno, 'MFILE')
      expect(statIn(h.sandboxFs, 'a.txt')).toBeDefined()
    })
  })
})

describe('path_open: the final name is opened before any lookup', () => {
  const SPY = 5
  const backends = {
    memory: () =>
      memFsFromTree({ 'a.txt': 'alpha\n', sub: { 'b.txt': 'bravo\n' }, link: { symlink: 'a.txt' }, dangling: { symlink: 'new.txt' } }),
    host: () => {
      const dir = mkdtempSync(join(tmpdir(), 'caplet-probe-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      writeFileSync(join(dir, 'a.txt'), 'alpha\n')
      mkdirSync(join(dir, 'sub'))
      writeFileSync(join(dir, 'sub', 'b.txt'), 'bravo\n')
      symlinkSync('a.txt', join(dir, 'link'))
      symlinkSync('new.txt', join(dir, 'dangling'))
      const fs = createHostDirFs(dir)
      cleanups.push(() => fs.close())
      return fs
    },
  }
  const cleanups: (() => void)[] = []
  afterEach(() => {
    for (const c of cleanups.splice(0)) c()
  })

  /** A harness with the backend at fd 5, behind a wrapper logging what the backend is asked. */
  function spied(backend: keyof typeof backends): { h: Harness; log: string[]; fs: Filesystem } {
    const log: string[] = []
    const { fs } = countingFs(backends[backend](), log)
    const h = harness({ extraPreopens: [{ guestPath: '/spy', fs, mode: 'rw' }] })
    return { h, log, fs }
  }
  const opened = (h: Harness, path: string, o: Parameters<Harness['open']>[1] = {}) => {
    const r = h.open(path, { dirfd: SPY, ...o })
    return { errno: errnoName(r.errno), fd: r.fd }
  }

  it('a backend whose file handles do not tell their type is asked stat() instead', () => {
    const inner = memFsFromTree({ 'a.txt': 'alpha\n' })
    let stats = 0
    const plain = (f: FileHandle): FileHandle => ({
      kind: 'file',
      stat: () => {
        stats++
        return f.stat()
      },
      read: (dst, pos) => f.read(dst, pos),
      write: (src, pos) => f.write(src, pos),
      setSize: (n) => f.setSize(n),
      setTimes: (a, m) => f.setTimes(a, m),
      allocate: (o, l) => f.allocate(o, l),
      sync: () => f.sync(),
      datasync: () => f.datasync(),
      close: () => f.close(),
    })
    const fs: Filesystem = {
      caps: inner.caps,
      root: () => {
        const d = inner.root()
        return new Proxy(d, {
          get: (t, k) =>
            k === 'openFile'
              ? (n: string, o: OpenFileOptions) => plain(t.openFile(n, o))
              : typeof Reflect.get(t, k) === 'function'
                ? (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t)
                : Reflect.get(t, k),
        })
      },
    }
    const h = harness({ extraPreopens: [{ guestPath: '/plain', fs, mode: 'rw' }] })
    const fd = h.openOk('a.txt', { dirfd: SPY })
    expect(h.fdstat(fd).filetype).toBe(Filetype.REGULAR_FILE)
    expect(stats).toBe(1)
    expect(h.readFd(fd).text).toBe('alpha\n')
  })

  for (const backend of ['memory', 'host'] as const) {
    describe(backend, () => {
      it('a plain file costs the backend one openFile, and no lookup of the name', () => {
        const { h, log } = spied(backend)
        const fd = opened(h, 'a.txt').fd
        expect(log).toEqual(['openFile(a.txt)'])
        expect(h.readFd(fd).text).toBe('alpha\n')
        expect(h.fdstat(fd).filetype).toBe(Filetype.REGULAR_FILE)
        log.length = 0
        expect(h.readFd(opened(h, 'sub/b.txt').fd).text).toBe('bravo\n')
        // Every directory on the way is still opened one component at a time (no follow).
        expect(log).toEqual(['openDir(sub)', 'openFile(b.txt)'])
      })

      it('a symlink declines the open and is followed (or refused) by the general path', () => {
        const { h, log } = spied(backend)
        expect(h.readFd(opened(h, 'link').fd).text).toBe('alpha\n')
        expect(log).toEqual(['openFile(link)', 'statChild(link)', 'readlink(link)', 'openFile(a.txt)'])
        expect(opened(h, 'link', { lookup: 0 }).errno).toBe('LOOP')
        // O_CREAT through a dangling link creates its target; with O_EXCL it is EXIST and creates nothing.
        expect(opened(h, 'dangling', { lookup: 0, oflags: O_CREAT | O_EXCL, base: READ_RIGHTS }).errno).toBe('EXIST')
        expect(opened(h, 'new.txt').errno).toBe('NOENT')
        expect(opened(h, 'dangling', { oflags: O_CREAT }).errno).toBe('SUCCESS')
        expect(opened(h, 'new.txt').errno).toBe('SUCCESS')
      })

      it('a directory declines the open and is opened as a directory; writing it is ISDIR', () => {
        const { h, log } = spied(backend)
        const fd = opened(h, 'sub').fd
        expect(h.fdstat(fd).filetype).toBe(Filetype.DIRECTORY)
        expect(log).toEqual(['openFile(sub)', 'statChild(sub)', 'openDir(sub)'])
        expect(opened(h, 'sub', { base: ALL_RIGHTS }).errno).toBe('ISDIR')
        expect(opened(h, 'sub', { oflags: O_CREAT }).errno).toBe('ISDIR')
        expect(opened(h, 'sub', { oflags: O_CREAT | O_EXCL }).errno).toBe('EXIST')
        expect(opened(h, 'sub', { oflags: O_TRUNC }).errno).toBe('ISDIR')
      })

      it('creates, truncates and refuses as before: O_CREAT, O_EXCL, O_TRUNC, a missing name', () => {
        const { h, log } = spied(backend)
        expect(opened(h, 'nope').errno).toBe('NOENT')
        log.length = 0
        const fd = opened(h, 'made', { oflags: O_CREAT | O_EXCL, base: ALL_RIGHTS }).fd
        expect(log).toEqual(['openFile(made)'])
        expect(h.readFd(fd).text).toBe('')
        expect(opened(h, 'made', { oflags: O_CREAT | O_EXCL }).errno).toBe('EXIST')
        expect(opened(h, 'a.txt', { oflags: O_TRUNC, base: ALL_RIGHTS }).errno).toBe('SUCCESS')
        expect(h.readFd(opened(h, 'a.txt').fd).text).toBe('')
      })

      it('a trailing slash takes the general path from the start; O_DIRECTORY never opens a file', () => {
        const { h, log } = spied(backend)
        expect(opened(h, 'sub', { oflags: O_DIRECTORY }).errno).toBe('SUCCESS')
        expect(opened(h, 'sub/').errno).toBe('SUCCESS')
        expect(opened(h, 'a.txt/').errno).toBe('NOTDIR')
        expect(opened(h, 'a.txt', { oflags: O_DIRECTORY }).errno).toBe('NOTDIR')
        expect(log.filter((l) => l.startsWith('openFile'))).toEqual([])
      })

      it('O_DIRECTORY on a directory costs one openDir and no lookup of the name', () => {
        const { h, log } = spied(backend)
        const fd = opened(h, 'sub', { oflags: O_DIRECTORY }).fd
        expect(log).toEqual(['openDir(sub)'])
        expect(h.fdstat(fd).filetype).toBe(Filetype.DIRECTORY)
        expect(h.readFd(h.openOk('b.txt', { dirfd: fd })).text).toBe('bravo\n')
        // A missing name is settled by that one call; a file declines it and is NOTDIR.
        log.length = 0
        expect(opened(h, 'nope', { oflags: O_DIRECTORY }).errno).toBe('NOENT')
        expect(log).toEqual(['openDir(nope)'])
        log.length = 0
        expect(opened(h, 'a.txt', { oflags: O_DIRECTORY }).errno).toBe('NOTDIR')
        expect(log).toEqual(['openDir(a.txt)', 'statChild(a.txt)'])
      })

      it('O_DIRECTORY: a symlink declines the probe and is followed, or refused, by the general path', () => {
        const { h, fs, log } = spied(backend)
        const root = fs.root()
        root.symlink('sub', 'dirlink')
        root.close()
        const fd = opened(h, 'dirlink', { oflags: O_DIRECTORY }).fd
        expect(log).toEqual(['openDir(dirlink)', 'statChild(dirlink)', 'readlink(dirlink)', 'openDir(sub)'])
        expect(h.readFd(h.openOk('b.txt', { dirfd: fd })).text).toBe('bravo\n')
        expect(opened(h, 'dirlink', { oflags: O_DIRECTORY, lookup: 0 }).errno).toBe('NOTDIR')
      })

      it('O_DIRECTORY asking for a write is not probed: ISDIR as before, and nothing is opened', () => {
        const { h, log } = spied(backend)
        expect(opened(h, 'sub', { oflags: O_DIRECTORY, base: WRITE }).errno).toBe('ISDIR')
        expect(opened(h, 'sub', { oflags: O_DIRECTORY | O_CREAT }).errno).toBe('ISDIR')
        expect(log.filter((l) => l.startsWith('openDir'))).toEqual([])
      })
    })
  }
})
