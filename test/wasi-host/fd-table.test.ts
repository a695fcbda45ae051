/**
 * The descriptor table: lowest free number first, take/place (what fd_renumber uses), the
 * descriptor limit (MFILE), and handle release for shared directories.
 */
import { describe, expect, it } from 'vitest'
import { Errno, Filetype } from '../../wasi-host/abi/constants.js'
import { WasiError } from '../../wasi-host/errors.js'
import { FdTable, releaseDescriptor, type Descriptor, type DirDescriptor, type Mount } from '../../wasi-host/fd-table.js'
import { memFsFromTree } from '../../wasi-host/fs/mem-fs.js'
import { countingFs, DATA, expectErrno, harness, O_DIRECTORY, SANDBOX, STDOUT } from './harness.js'

function stream(tag: string): Descriptor {
  return {
    kind: 'stream',
    name: 'stdout',
    read: undefined,
    write: undefined,
    filetype: Filetype.CHARACTER_DEVICE,
    rightsAtOpen: 0,
    rightsBase: 0,
    rightsInheriting: 0,
    fdflags: 0,
    [Symbol.for('tag')]: tag,
  } as Descriptor
}
const tagOf = (d: Descriptor | undefined): unknown => (d as unknown as Record<symbol, unknown> | undefined)?.[Symbol.for('tag')]

function mfile(fn: () => unknown): void {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(WasiError)
    expect((e as WasiError).errno).toBe(Errno.MFILE)
    return
  }
  throw new Error('expected MFILE')
}

describe('fd-table', () => {
  it('allocates the lowest free number, from 0', () => {
    const t = new FdTable(16)
    expect([t.insert(stream('a')), t.insert(stream('b')), t.insert(stream('c'))]).toEqual([0, 1, 2])
    expect(t.size).toBe(3)
    expect(tagOf(t.get(1))).toBe('b')
    expect(t.get(3)).toBeUndefined()
    expect(t.get(-1)).toBeUndefined()
  })

  it('reuses the lowest freed number first', () => {
    const t = new FdTable(16)
    for (let i = 0; i < 6; i++) t.insert(stream(`s${i}`))
    t.take(4)
    t.take(1)
    t.take(2)
    expect(t.insert(stream('x'))).toBe(1)
    expect(t.insert(stream('y'))).toBe(2)
    expect(t.insert(stream('z'))).toBe(4)
    expect(t.insert(stream('w'))).toBe(6)
    expect(t.numbers()).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  it('reuses numbers freed at the top', () => {
    const t = new FdTable(16)
    for (let i = 0; i < 4; i++) t.insert(stream(`s${i}`))
    t.take(3)
    t.take(2)
    expect(t.insert(stream('n'))).toBe(2)
    expect(t.numbers()).toEqual([0, 1, 2])
  })

  it('take() removes and returns a descriptor without closing it; a free number gives undefined', () => {
    const t = new FdTable(16)
    const d = stream('a')
    t.insert(d)
    expect(t.take(0)).toBe(d)
    expect(t.take(0)).toBeUndefined()
    expect(t.take(7)).toBeUndefined()
    expect(t.size).toBe(0)
  })

  it('place() puts a descriptor at exactly a free number and refuses one in use', () => {
    const t = new FdTable(16)
    for (let i = 0; i < 3; i++) t.insert(stream(`s${i}`))
    const moved = t.take(2)!
    t.take(1)
    t.place(1, moved)
    expect(tagOf(t.get(1))).toBe('s2')
    expect(() => t.place(1, stream('again'))).toThrow()
    expect(t.size).toBe(2)
    // The next insert skips the placed number.
    expect(t.insert(stream('n'))).toBe(2)
  })

  it('place() far above the end leaves the gap allocatable', () => {
    const t = new FdTable(16)
    t.insert(stream('a'))
    t.place(10, stream('far'))
    expect(t.numbers()).toEqual([0, 10])
    expect(t.insert(stream('b'))).toBe(1)
  })

  it('refuses more than maxFds descriptors with MFILE, and allows one again after a take', () => {
    const t = new FdTable(3)
    for (let i = 0; i < 3; i++) t.insert(stream(`s${i}`))
    mfile(() => t.insert(stream('over')))
    expect(t.size).toBe(3)
    t.take(1)
    expect(t.insert(stream('n'))).toBe(1)
    mfile(() => t.insert(stream('over')))
  })

  it('a zero limit refuses everything', () => {
    mfile(() => new FdTable(0).insert(stream('a')))
  })

  it('releaseDescriptor closes a shared directory handle only with its last reference', () => {
    const { fs, counter } = countingFs(memFsFromTree({ d: {} }))
    const handle = fs.root()
    const mount: Mount = { fs, mode: 'rw', dev: 1n, guestPath: '/x', hostVisible: false, writeBehind: false }
    const dir = { handle, refs: 2 }
    const mk = (): DirDescriptor => ({
      kind: 'dir',
      filetype: Filetype.DIRECTORY,
      dir,
      mount,
      preopenPath: undefined,
      depth: 0,
      listing: undefined,
      rightsAtOpen: 0,
      rightsBase: 0,
      rightsInheriting: 0,
      fdflags: 0,
    })
    releaseDescriptor(mk())
    expect(counter.open).toBe(1)
    releaseDescriptor(mk())
    expect(counter.open).toBe(0)
    expect(counter.doubleClose).toBe(0)
  })

  describe('through the host', () => {
    it('stdio are 0, 1, 2 and preopens follow in order', () => {
      const h = harness()
      expect(h.host.fds.numbers()).toEqual([0, 1, 2, 3, 4])
      expect(h.fdstat(SANDBOX).filetype).toBe(Filetype.DIRECTORY)
    })

    it('fd_renumber over a preopen closes the preopen handle, and the table stays consistent', () => {
      const h = harness()
      const sub = h.openOk('sub', { oflags: O_DIRECTORY })
      const handles = h.openHandles()
      expectErrno(h.wasi.fd_renumber(sub, SANDBOX), 'SUCCESS')
      expect(h.openHandles()).toBe(handles - 1)
      expect(h.host.fds.numbers()).toEqual([0, 1, 2, 3, 4])
      expect(h.readFd(h.openOk('b.txt')).text).toBe('bravo\n')
      expect(h.openOk('b.txt')).toBe(6)
    })

    it('after closing stdio, the lowest number is reused by path_open', () => {
      const h = harness()
      expectErrno(h.wasi.fd_close(STDOUT), 'SUCCESS')
      expect(h.openOk('a.txt')).toBe(STDOUT)
      expectErrno(h.wasi.fd_close(DATA), 'SUCCESS')
      expect(h.openOk('a.txt')).toBe(DATA)
    })

    it('the fd limit counts stdio and preopens (MFILE at limits.maxFds)', () => {
      const h = harness({ limits: { maxFds: 7 } })
      h.openOk('a.txt')
      h.openOk('a.txt')
      expectErrno(h.open('a.txt').errno, 'MFILE')
      expect(h.host.fds.size).toBe(7)
    })

    it('a host with more preopens than maxFds refuses to start', () => {
      expect(() => harness({ limits: { maxFds: 4 } })).toThrow()
    })
  })
})
