/**
 * What every path_* call shares, table-driven over all ten of them: descriptor checks (BADF,
 * NOTDIR for a non-directory, NOTCAPABLE for a missing right), path validation (ILSEQ, INVAL for
 * NUL, NOENT for empty, NAMETOOLONG past 4096 bytes), confinement (PERM for an absolute path,
 * `..` past the root, a symlink leading out), traps on bad path pointers, and no leaked backend
 * handle after any of it.
 */
import { describe, expect, it } from 'vitest'
import { errnoName, Rights } from '../../wasi-host/abi/constants.js'
import { SYSCALL_RIGHTS } from '../../wasi-host/rights.js'
import {
  ALL_RIGHTS,
  BAD_FD,
  DATA,
  expectErrno,
  expectTrap,
  harness,
  HIGH_PTR,
  LOOKUP_FOLLOW,
  NEG_PTR,
  PATH_TREE,
  READ_RIGHTS,
  SANDBOX,
  STDOUT,
  listIn,
  type Harness,
} from './harness.js'

type Path = { ptr: number; len: number }
type PathCall = (h: Harness, fd: number, p: Path) => number

const enc = new TextEncoder()

/** Each path call with valid other arguments, taking the path under test as its (first) path. */
const CALLS: Record<string, PathCall> = {
  path_create_directory: (h, fd, p) => h.wasi.path_create_directory(fd, p.ptr, p.len),
  path_filestat_get: (h, fd, p) => h.wasi.path_filestat_get(fd, LOOKUP_FOLLOW, p.ptr, p.len, h.alloc(64, 8)),
  path_filestat_set_times: (h, fd, p) => h.wasi.path_filestat_set_times(fd, LOOKUP_FOLLOW, p.ptr, p.len, 0n, 0n, 2 | 8),
  path_link: (h, fd, p) => {
    const n = h.str('new-link')
    return h.wasi.path_link(fd, 0, p.ptr, p.len, fd, n.ptr, n.len)
  },
  path_open: (h, fd, p) => h.wasi.path_open(fd, LOOKUP_FOLLOW, p.ptr, p.len, 0, READ_RIGHTS, ALL_RIGHTS, 0, h.alloc(4, 4)),
  path_readlink: (h, fd, p) => h.wasi.path_readlink(fd, p.ptr, p.len, h.alloc(64, 1), 64, h.alloc(4, 4)),
  path_remove_directory: (h, fd, p) => h.wasi.path_remove_directory(fd, p.ptr, p.len),
  path_rename: (h, fd, p) => {
    const n = h.str('renamed')
    return h.wasi.path_rename(fd, p.ptr, p.len, fd, n.ptr, n.len)
  },
  path_symlink: (h, fd, p) => {
    const t = h.str('a.txt')
    return h.wasi.path_symlink(t.ptr, t.len, fd, p.ptr, p.len)
  },
  path_unlink_file: (h, fd, p) => h.wasi.path_unlink_file(fd, p.ptr, p.len),
}

/** Calls taking a second path, with the path under test as that second one. */
const SECOND_PATH: Record<string, PathCall> = {
  path_link: (h, fd, p) => {
    const o = h.str('a.txt')
    return h.wasi.path_link(fd, 0, o.ptr, o.len, fd, p.ptr, p.len)
  },
  path_rename: (h, fd, p) => {
    const o = h.str('a.txt')
    return h.wasi.path_rename(fd, o.ptr, o.len, fd, p.ptr, p.len)
  },
  path_symlink: (h, fd, p) => {
    // The target string: only a lexical escape check applies (it is stored, not resolved).
    const n = h.str('new-link')
    return h.wasi.path_symlink(p.ptr, p.len, fd, n.ptr, n.len)
  },
}

const NAMES = Object.keys(CALLS)

function snapshot(h: Harness): string {
  return JSON.stringify([listIn(h.sandboxFs), listIn(h.sandboxFs, 'sub'), listIn(h.dataFs)])
}

/** Runs `fn` and checks that it neither changed the trees nor leaked a handle or descriptor. */
function noSideEffect(h: Harness, fn: () => void): void {
  const tree = snapshot(h)
  const handles = h.openHandles()
  const fds = h.host.fds.size
  fn()
  expect(snapshot(h)).toBe(tree)
  expect(h.openHandles()).toBe(handles)
  expect(h.host.fds.size).toBe(fds)
}

describe.each(NAMES)('%s: shared path checks', (name) => {
  const call = CALLS[name]!
  const valid = (h: Harness): Path => h.str(name === 'path_create_directory' || name === 'path_symlink' ? 'fresh' : 'a.txt')

  it('is BADF for fd 99, a closed directory and a negative fd', () => {
    const h = harness({ sandbox: PATH_TREE })
    expectErrno(call(h, BAD_FD, valid(h)), 'BADF')
    expectErrno(call(h, -1, valid(h)), 'BADF')
    const sub = h.openOk('sub', { oflags: 2 })
    expectErrno(h.wasi.fd_close(sub), 'SUCCESS')
    expectErrno(call(h, sub, valid(h)), 'BADF')
  })

  it('is NOTDIR on a file descriptor and on stdout', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      const fd = h.openOk('a.txt')
      expectErrno(call(h, fd, valid(h)), 'NOTDIR')
      expectErrno(call(h, STDOUT, valid(h)), 'NOTDIR')
      h.wasi.fd_close(fd)
    })
  })

  it('is NOTCAPABLE when the directory lacks the right the call needs', () => {
    const h = harness({ sandbox: PATH_TREE })
    const need = (SYSCALL_RIGHTS as Record<string, number>)[name]!
    expect(need).not.toBe(0)
    h.restrict(SANDBOX, need)
    noSideEffect(h, () => expectErrno(call(h, SANDBOX, valid(h)), 'NOTCAPABLE'))
  })

  it('is ILSEQ for invalid UTF-8', () => {
    const h = harness({ sandbox: PATH_TREE })
    for (const bad of [[0x61, 0xff, 0x62], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      noSideEffect(h, () => expectErrno(call(h, SANDBOX, h.bytes(bad)), 'ILSEQ'))
    }
  })

  it('is INVAL for a NUL byte in the path', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      expectErrno(call(h, SANDBOX, h.str('a.txt\0')), 'INVAL')
      expectErrno(call(h, SANDBOX, h.str('\0')), 'INVAL')
    })
  })

  it('is NOENT for an empty path', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      expectErrno(call(h, SANDBOX, h.str('')), 'NOENT')
      // An empty path at the very end of memory is still just empty.
      expectErrno(call(h, SANDBOX, { ptr: h.size, len: 0 }), 'NOENT')
    })
  })

  it('is NAMETOOLONG past 4096 bytes, and for a component past 255', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      expectErrno(call(h, SANDBOX, h.str('a/'.repeat(2048) + 'b')), 'NAMETOOLONG')
      expectErrno(call(h, SANDBOX, h.str('é'.repeat(2049))), 'NAMETOOLONG')
      expectErrno(call(h, SANDBOX, h.str('x'.repeat(256))), 'NAMETOOLONG')
    })
  })

  it('is PERM for an absolute path', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      for (const p of ['/a.txt', '/', '/sandbox/a.txt', '//etc/passwd']) expectErrno(call(h, SANDBOX, h.str(p)), 'PERM')
    })
  })

  it('is PERM for ".." past the root, however reached', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      for (const p of ['..', '../a.txt', 'sub/../../a.txt', './..', 'sub/deeper/../../../x', '../sandbox/a.txt']) {
        expectErrno(call(h, SANDBOX, h.str(p)), 'PERM')
      }
    })
  })

  it('is PERM for a path through a symlink that leads out (to /etc, "..", "../..", "sub/../..")', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      for (const p of ['abs/passwd', 'up/a.txt', 'up2/x', 'sneaky/y']) {
        expectErrno(call(h, SANDBOX, h.str(p)), 'PERM')
      }
      // "link/" follows the link (PERM), except for calls acting on the entry itself
      // (rmdir, unlink, rename), which keep the link and refuse it as not a directory (Linux).
      for (const p of ['abs/', 'up/']) {
        expect(['PERM', 'NOTDIR']).toContain(errnoName(call(h, SANDBOX, h.str(p))))
      }
    })
  })

  it('is PERM from a subdirectory descriptor for ".." past that descriptor', () => {
    const h = harness({ sandbox: PATH_TREE })
    // READ_RIGHTS holds every path_* right (wasi-libc's O_RDONLY request).
    const sub = h.openOk('sub', { oflags: 2, base: READ_RIGHTS })
    expect(h.fdstat(sub).base & BigInt(Rights.PATH_SYMLINK | Rights.PATH_RENAME_SOURCE)).not.toBe(0n)
    noSideEffect(h, () => expectErrno(call(h, sub, h.str('../a.txt')), 'PERM'))
  })

  it('is NOTDIR for a file used as a directory ("a.txt/../x", "a.txt/x")', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      expectErrno(call(h, SANDBOX, h.str('a.txt/../sub')), 'NOTDIR')
      expectErrno(call(h, SANDBOX, h.str('a.txt/x')), 'NOTDIR')
    })
  })

  it('is NOENT for a missing directory in the middle', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => expectErrno(call(h, SANDBOX, h.str('missing/x')), 'NOENT'))
  })

  it('traps on a path past the end of memory or at a negative pointer, with no side effect', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      expectTrap(() => call(h, SANDBOX, { ptr: h.size - 2, len: 3 }), name)
      expectTrap(() => call(h, SANDBOX, { ptr: NEG_PTR, len: 5 }))
      expectTrap(() => call(h, SANDBOX, { ptr: HIGH_PTR, len: 1 }))
      expectTrap(() => call(h, SANDBOX, { ptr: 16, len: -1 }))
    })
  })

  it('reads a path that ends exactly at the end of memory', () => {
    const h = harness({ sandbox: PATH_TREE })
    const s = enc.encode('missing/x')
    new Uint8Array(h.mem.buffer).set(s, h.size - s.length)
    expectErrno(call(h, SANDBOX, { ptr: h.size - s.length, len: s.length }), 'NOENT')
  })

  it('reads a path placed in memory grown after binding', () => {
    const h = harness({ sandbox: PATH_TREE })
    const old = h.size
    h.mem.grow(1)
    const s = enc.encode('/abs')
    new Uint8Array(h.mem.buffer).set(s, old + 4000)
    expectErrno(call(h, SANDBOX, { ptr: old + 4000, len: s.length }), 'PERM')
  })

  it('refuses every mutation on the read-only mount with ROFS (reads succeed)', () => {
    const h = harness({ sandbox: PATH_TREE })
    const p = h.str(name === 'path_create_directory' || name === 'path_symlink' ? 'fresh' : 'r.txt')
    const reads = ['path_filestat_get', 'path_open', 'path_readlink']
    noSideEffect(h, () => {
      const rc = call(h, DATA, p)
      if (name === 'path_readlink')
        expectErrno(rc, 'INVAL') // r.txt is not a symlink
      else if (name === 'path_open') {
        expectErrno(rc, 'SUCCESS')
        h.wasi.fd_close(h.host.fds.numbers().at(-1)!)
      } else if (reads.includes(name)) expectErrno(rc, 'SUCCESS')
      else expectErrno(rc, 'ROFS')
    })
  })
})

describe.each(Object.keys(SECOND_PATH))('%s: checks on the second path', (name) => {
  const call = SECOND_PATH[name]!

  it('refuses escapes with PERM and bad encodings, creating nothing', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      for (const p of ['/x', '../x', 'sub/../../x']) expectErrno(call(h, SANDBOX, h.str(p)), 'PERM')
      if (name !== 'path_symlink') {
        // The new name is resolved through the tree: symlinks leading out are refused too.
        expectErrno(call(h, SANDBOX, h.str('up/x')), 'PERM')
        expectErrno(call(h, SANDBOX, h.str('abs/x')), 'PERM')
        expectErrno(call(h, SANDBOX, h.str('a\0b')), 'INVAL')
        expectErrno(call(h, SANDBOX, h.str('')), 'NOENT')
      }
      expectErrno(call(h, SANDBOX, h.bytes([0xff])), 'ILSEQ')
      expectErrno(call(h, SANDBOX, h.str('x'.repeat(4097))), 'NAMETOOLONG')
    })
  })

  it('traps on a bad second path pointer, with no side effect', () => {
    const h = harness({ sandbox: PATH_TREE })
    noSideEffect(h, () => {
      expectTrap(() => call(h, SANDBOX, { ptr: h.size, len: 1 }), name)
      expectTrap(() => call(h, SANDBOX, { ptr: NEG_PTR, len: 4 }))
    })
  })
})

describe('path_* calls never leak a backend handle', () => {
  it('after many failing and succeeding lookups through deep paths and symlinks', () => {
    const h = harness({ sandbox: { ...PATH_TREE, d1: { d2: { d3: { f: 'x', l: { symlink: '../../../sub' } } } } } })
    const base = h.openHandles()
    const paths = [
      'd1/d2/d3/f',
      'd1/d2/d3/l/b.txt',
      'd1/d2/d3/l/../a.txt',
      'd1/d2/d3/missing',
      'd1/d2/d3/f/x',
      'd1/../../x',
      'd1/d2/../d2/d3/./f',
      'up/x',
      'link',
      'sub/deeper/',
      'a.txt/',
    ]
    for (const name of NAMES) {
      for (const p of paths) {
        h.resetAlloc()
        call(h, name, p)
      }
    }
    // Descriptors opened by successful path_open calls hold one handle each; close them.
    for (const fd of h.host.fds.numbers()) if (fd > DATA) h.wasi.fd_close(fd)
    expect(h.openHandles()).toBe(base)
    expect(h.counters.every((c) => c.doubleClose === 0)).toBe(true)
  })
})

function call(h: Harness, name: string, path: string): number {
  return CALLS[name]!(h, SANDBOX, h.str(path))
}
