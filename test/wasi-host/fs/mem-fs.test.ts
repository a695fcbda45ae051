/**
 * @module MemFs: the shared backend contract, then what only MemFs promises (seeding from a
 * tree, the `maxFileSize` cap, per-instance inode numbers, its clock, directory link counts,
 * insertion-ordered readdir, closed handles).
 */
import { describe, expect, it } from 'vitest'
import { Errno, Filetype, errnoName } from '../../../wasi-host/abi/constants.js'
import type { DirHandle, OpenFileOptions } from '../../../wasi-host/fs/filesystem.js'
import { createMemFs, memFsFromTree } from '../../../wasi-host/fs/mem-fs.js'
import { errnoOf, readText, runBackendSuite } from './fs-backend.case.js'

runBackendSuite('MemFs contract', () => ({ fs: createMemFs() }))

const enc = new TextEncoder()
const dec = new TextDecoder()
const CREATE: OpenFileOptions = { read: true, write: true, create: true, exclusive: false, truncate: false }
const READ: OpenFileOptions = { read: true, write: false, create: false, exclusive: false, truncate: false }

/** A clock the test moves by hand, so timestamps are exact. */
function manualClock(start = 1_000n): { now: () => bigint; tick: (by?: bigint) => bigint } {
  let t = start
  return { now: () => t, tick: (by = 1n) => (t += by) }
}

describe('memFsFromTree', () => {
  it('builds files, binary files, directories and symlinks in spec order', () => {
    const fs = memFsFromTree({
      'b.txt': 'bee',
      'a.bin': new Uint8Array([0, 1, 255]),
      sub: { inner: 'in', deeper: {} },
      link: { symlink: '../escape/kept/as/given' },
    })
    const root = fs.root()
    expect(root.readdir().map((e) => [e.name, e.filetype])).toEqual([
      ['b.txt', Filetype.REGULAR_FILE],
      ['a.bin', Filetype.REGULAR_FILE],
      ['sub', Filetype.DIRECTORY],
      ['link', Filetype.SYMBOLIC_LINK],
    ])
    expect(readText(root, 'b.txt')).toBe('bee')
    const bin = root.openFile('a.bin', READ)
    const buf = new Uint8Array(3)
    expect(bin.read(buf, 0n)).toBe(3)
    expect(Array.from(buf)).toEqual([0, 1, 255])
    const sub = root.openDir('sub')
    expect(readText(sub, 'inner')).toBe('in')
    expect(sub.openDir('deeper').readdir()).toEqual([])
    expect(root.readlink('link')).toBe('../escape/kept/as/given')
  })

  it('copies byte content, so later changes to the source do not leak in', () => {
    const src = new Uint8Array([1, 2, 3])
    const root = memFsFromTree({ f: src }).root()
    src[0] = 9
    const buf = new Uint8Array(3)
    root.openFile('f', READ).read(buf, 0n)
    expect(Array.from(buf)).toEqual([1, 2, 3])
  })

  it('an object with other keys beside "symlink" is a directory', () => {
    const root = memFsFromTree({ d: { symlink: 'file named symlink', other: 'x' } }).root()
    const d = root.openDir('d')
    expect(readText(d, 'symlink')).toBe('file named symlink')
  })

  it('rejects names that are not single components', () => {
    for (const bad of ['', '.', '..', 'a/b', 'a\0b']) {
      expect(
        errnoOf(() => memFsFromTree({ [bad]: 'x' })),
        JSON.stringify(bad),
      ).toBe('INVAL')
    }
    expect(errnoOf(() => memFsFromTree({ d: { '..': 'x' } }))).toBe('INVAL')
  })

  it('rejects content larger than maxFileSize instead of cutting it', () => {
    expect(errnoOf(() => memFsFromTree({ f: 'too long' }, { maxFileSize: 4 }))).toBe('FBIG')
    expect(() => memFsFromTree({ f: 'fits' }, { maxFileSize: 4 })).not.toThrow()
  })
})

describe('MemFs limits and positions', () => {
  it('writes stop at maxFileSize: a straddling write is shortened, the next is FBIG', () => {
    const f = createMemFs({ maxFileSize: 8n }).root().openFile('f', CREATE)
    expect(f.write(enc.encode('123456'), 0n)).toBe(6)
    expect(f.write(enc.encode('abcd'), 6n)).toBe(2)
    expect(f.stat().size).toBe(8n)
    expect(errnoOf(() => f.write(enc.encode('x'), 8n))).toBe('FBIG')
    expect(errnoOf(() => f.write(enc.encode('x'), 1n << 40n))).toBe('FBIG')
    const buf = new Uint8Array(8)
    f.read(buf, 0n)
    expect(dec.decode(buf)).toBe('123456ab')
  })

  it('setSize and allocate beyond maxFileSize are FBIG', () => {
    const f = createMemFs({ maxFileSize: 1024 }).root().openFile('f', CREATE)
    f.setSize(1024n)
    expect(errnoOf(() => f.setSize(1025n))).toBe('FBIG')
    expect(errnoOf(() => f.allocate(1000n, 25n))).toBe('FBIG')
    expect(f.stat().size).toBe(1024n)
  })

  it('the default cap is 2^32 bytes, and growth by setSize/allocate is sparse (no allocation)', () => {
    const f = createMemFs().root().openFile('f', CREATE)
    expect(errnoOf(() => f.setSize((1n << 32n) + 1n))).toBe('FBIG')
    expect(errnoOf(() => f.allocate(1n << 32n, 1n))).toBe('FBIG')
    // Accepted without allocating 4 GiB: size grows, memory is spent only on written bytes.
    f.setSize(1n << 32n)
    expect(f.stat().size).toBe(1n << 32n)
    const buf = new Uint8Array(4).fill(7)
    expect(f.read(buf, (1n << 32n) - 2n)).toBe(2)
    expect(Array.from(buf)).toEqual([0, 0, 7, 7])
    f.allocate(0n, 16n)
    expect(f.stat().size).toBe(1n << 32n)
    f.write(enc.encode('hi'), 100n)
    f.read(buf, 99n)
    expect(Array.from(buf)).toEqual([0, 104, 105, 0])
  })

  it('allocate with a zero length is INVAL (posix_fallocate)', () => {
    const f = createMemFs().root().openFile('f', CREATE)
    expect(errnoOf(() => f.allocate(0n, 0n))).toBe('INVAL')
  })

  it('a big truncate gives memory back and reads zeros when grown again', () => {
    const f = createMemFs().root().openFile('f', CREATE)
    f.write(new Uint8Array(1 << 20).fill(1), 0n)
    f.setSize(10n)
    f.setSize(1n << 20n)
    const buf = new Uint8Array(32)
    expect(f.read(buf, 5n)).toBe(32)
    expect(Array.from(buf.subarray(0, 5))).toEqual([1, 1, 1, 1, 1])
    expect(buf.subarray(5).every((b) => b === 0)).toBe(true)
  })

  it('rejects an invalid maxFileSize at construction', () => {
    expect(() => createMemFs({ maxFileSize: -1 })).toThrow(RangeError)
    expect(() => createMemFs({ maxFileSize: 1n << 60n })).toThrow(RangeError)
  })

  it('many small appends stay correct (amortised growth; no timing asserted)', () => {
    const f = createMemFs().root().openFile('f', CREATE)
    const one = new Uint8Array(1)
    const n = 200_000
    for (let i = 0; i < n; i++) {
      one[0] = i & 0xff
      f.write(one, BigInt(i))
    }
    expect(f.stat().size).toBe(BigInt(n))
    const all = new Uint8Array(n)
    expect(f.read(all, 0n)).toBe(n)
    expect(all.every((b, i) => b === (i & 0xff))).toBe(true)
  })

  it('reads that cross the written prefix into the sparse tail get zeros', () => {
    const f = createMemFs().root().openFile('f', CREATE)
    f.write(new Uint8Array(100).fill(3), 0n)
    f.setSize(1000n)
    const buf = new Uint8Array(200).fill(9)
    expect(f.read(buf, 50n)).toBe(200)
    expect(buf.subarray(0, 50).every((b) => b === 3)).toBe(true)
    expect(buf.subarray(50).every((b) => b === 0)).toBe(true)
  })

  it('symlink targets containing NUL are INVAL', () => {
    expect(errnoOf(() => createMemFs().root().symlink('a\0b', 'l'))).toBe('INVAL')
  })

  it('timestamps outside the u64 range are INVAL', () => {
    const f = createMemFs().root().openFile('f', CREATE)
    expect(errnoOf(() => f.setTimes(-1n, undefined))).toBe('INVAL')
    expect(errnoOf(() => f.setTimes(undefined, 1n << 64n))).toBe('INVAL')
  })
})

describe('MemFs identity and bookkeeping', () => {
  it('inode numbers are per instance: two instances number the same way', () => {
    const build = () => {
      const root = createMemFs().root()
      root.openFile('a', CREATE).close()
      root.mkdir('b')
      root.symlink('a', 'c')
      return [root.stat().ino, ...root.readdir().map((e) => e.ino)]
    }
    const first = build()
    expect(new Set(first).size).toBe(first.length)
    expect(build()).toEqual(first)
  })

  it('readdir lists entries in insertion order', () => {
    const root = createMemFs().root()
    for (const n of ['zeta', 'alpha', 'mid', '0']) root.openFile(n, CREATE).close()
    expect(root.readdir().map((e) => e.name)).toEqual(['zeta', 'alpha', 'mid', '0'])
  })

  it('readdir hands out one frozen listing while the directory is unchanged, a fresh one after any change', () => {
    const fs = createMemFs()
    const root = fs.root()
    root.mkdir('d')
    const other = fs.root() // another handle on the same directory sees the same state
    const names = () => root.readdir().map((e) => e.name)
    let last = root.readdir()
    expect(Object.isFrozen(last)).toBe(true)
    expect(root.readdir()).toBe(last)
    expect(other.readdir()).toBe(last)
    // Opening, writing, reading or stat'ing an existing entry changes no listing.
    const f = root.openFile('f', CREATE)
    last = root.readdir()
    f.write(enc.encode('x'), 0n)
    root.openFile('f', { ...CREATE, truncate: true }).close()
    root.statChild('f')
    expect(root.readdir()).toBe(last)
    const changes: [string, () => void, string[]][] = [
      ['create', () => other.openFile('g', CREATE).close(), ['d', 'f', 'g']],
      ['mkdir', () => other.mkdir('e'), ['d', 'f', 'g', 'e']],
      ['symlink', () => other.symlink('f', 'l'), ['d', 'f', 'g', 'e', 'l']],
      ['link', () => other.link('f', other, 'f2'), ['d', 'f', 'g', 'e', 'l', 'f2']],
      ['unlink', () => other.unlink('g'), ['d', 'f', 'e', 'l', 'f2']],
      ['rmdir', () => other.rmdir('e'), ['d', 'f', 'l', 'f2']],
      ['rename within', () => other.rename('l', other, 'm'), ['d', 'f', 'f2', 'm']],
      ['rename over', () => other.rename('m', other, 'f2'), ['d', 'f', 'f2']],
      ['rename out', () => other.rename('f2', other.openDir('d'), 'f2'), ['d', 'f']],
      ['rename in', () => other.openDir('d').rename('f2', other, 'back'), ['d', 'f', 'back']],
    ]
    for (const [what, change, after] of changes) {
      change()
      const now = root.readdir()
      expect(now, what).not.toBe(last)
      expect(names(), what).toEqual(after)
      last = now
    }
    // The inode an entry lists is the one statChild reports, after every change.
    for (const e of root.readdir()) expect(e.ino).toBe(root.statChild(e.name).ino)
  })

  it('directory nlink is 2 plus its subdirectories, and 0 once removed', () => {
    const root = createMemFs().root()
    expect(root.stat().nlink).toBe(2n)
    root.mkdir('a')
    root.mkdir('b')
    root.openFile('f', CREATE).close()
    expect(root.stat().nlink).toBe(4n)
    const a = root.openDir('a')
    root.rename('a', root.openDir('b'), 'a')
    expect(root.stat().nlink).toBe(3n)
    expect(root.statChild('b').nlink).toBe(3n)
    root.openDir('b').rmdir('a')
    expect(a.stat().nlink).toBe(0n)
    expect(root.statChild('b').nlink).toBe(2n)
  })

  it('timestamps come from options.now; reads leave atim alone (noatime)', () => {
    const clock = manualClock()
    const root = createMemFs({ now: clock.now }).root()
    clock.tick()
    const f = root.openFile('f', CREATE)
    const created = f.stat()
    expect([created.atim, created.mtim, created.ctim]).toEqual([1001n, 1001n, 1001n])
    expect(root.stat().mtim).toBe(1001n)
    clock.tick()
    f.write(enc.encode('x'), 0n)
    expect(f.stat()).toMatchObject({ atim: 1001n, mtim: 1002n, ctim: 1002n })
    clock.tick()
    f.read(new Uint8Array(1), 0n)
    root.readdir()
    expect(f.stat()).toMatchObject({ atim: 1001n, mtim: 1002n, ctim: 1002n })
    clock.tick()
    f.setTimes('now', 5n)
    expect(f.stat()).toMatchObject({ atim: 1004n, mtim: 5n, ctim: 1004n })
    clock.tick()
    root.link('f', root, 'g')
    expect(f.stat().ctim).toBe(1005n)
    expect(f.stat().mtim).toBe(5n)
  })

  it('rename and unlink set ctim on the node they move or unlink', () => {
    const clock = manualClock()
    const root = createMemFs({ now: clock.now }).root()
    const f = root.openFile('f', CREATE)
    root.mkdir('d')
    clock.tick()
    root.rename('f', root.openDir('d'), 'f')
    expect(f.stat().ctim).toBe(1001n)
    clock.tick()
    root.openDir('d').unlink('f')
    expect(f.stat().ctim).toBe(1002n)
    expect(f.stat().nlink).toBe(0n)
  })

  it('closed handles refuse every call with BADF', () => {
    const root = createMemFs().root()
    const f = root.openFile('f', CREATE)
    f.close()
    expect(errnoOf(() => f.read(new Uint8Array(1), 0n))).toBe('BADF')
    expect(errnoOf(() => f.write(new Uint8Array(1), 0n))).toBe('BADF')
    expect(errnoOf(() => f.stat())).toBe('BADF')
    expect(errnoOf(() => f.close())).toBe('BADF')
    root.mkdir('d')
    const d = root.openDir('d')
    d.close()
    expect(errnoOf(() => d.readdir())).toBe('BADF')
    expect(errnoOf(() => d.mkdir('x'))).toBe('BADF')
    expect(errnoOf(() => root.rename('f', d, 'g'))).toBe('BADF')
    expect(readText(root, 'f')).toBe('')
  })

  it('a handle opened with neither read nor write can only stat', () => {
    const root = memFsFromTree({ f: 'x' }).root()
    const f = root.openFile('f', { read: false, write: false, create: false, exclusive: false, truncate: false })
    expect(f.stat().size).toBe(1n)
    expect(errnoOf(() => f.read(new Uint8Array(1), 0n))).toBe('BADF')
    expect(errnoOf(() => f.write(new Uint8Array(1), 0n))).toBe('BADF')
    expect(errnoOf(() => f.allocate(0n, 1n))).toBe('BADF')
  })

  it('handles from two instances never mix (XDEV), even with the same inode numbers', () => {
    const a = createMemFs().root()
    const b = createMemFs().root()
    a.openFile('f', CREATE).close()
    expect(a.stat().ino).toBe(b.stat().ino)
    expect(errnoOf(() => a.rename('f', b, 'f'))).toBe('XDEV')
    expect(errnoOf(() => a.link('f', b, 'f'))).toBe('XDEV')
  })

  it('a look-alike object is not accepted as a directory handle', () => {
    const root = createMemFs().root()
    root.openFile('f', CREATE).close()
    const fake = { ...root, kind: 'dir' } as unknown as DirHandle
    expect(errnoOf(() => root.rename('f', fake, 'g'))).toBe(errnoName(Errno.XDEV))
  })
})
