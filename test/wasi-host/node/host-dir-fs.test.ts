/**
 * @module Tests of the host-directory backend on a real temp dir, for both strategies.
 *
 * Layout of every test: `<tmp>/mount` is mounted; `<tmp>/canary.txt` and `<tmp>/outside/` sit
 * BESIDE it and must never be read, changed or listed through the backend.
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Errno, Filetype } from '../../../wasi-host/abi/constants.js'
import { WasiError } from '../../../wasi-host/errors.js'
import type { DirHandle, FileHandle, OpenFileOptions } from '../../../wasi-host/fs/filesystem.js'
import { createHostDirFs, type HostDirFs } from '../../../wasi-host/node/host-dir-fs.js'
import { hostErrno, wasiErrorFrom } from '../../../wasi-host/node/host-errno.js'
import { runBackendSuite } from '../fs/fs-backend.case.js'

const RO: OpenFileOptions = { read: true, write: false, create: false, exclusive: false, truncate: false }
const RW: OpenFileOptions = { read: true, write: true, create: false, exclusive: false, truncate: false }
const WO: OpenFileOptions = { read: false, write: true, create: false, exclusive: false, truncate: false }
const CREATE: OpenFileOptions = { read: true, write: true, create: true, exclusive: false, truncate: false }
const CREATE_EXCL: OpenFileOptions = { ...CREATE, exclusive: true }
const TRUNC: OpenFileOptions = { ...RW, truncate: true }

const enc = new TextEncoder()
const dec = new TextDecoder()

/** The errno a call throws (`'ok'` if it returns); anything but a WasiError fails the test. */
function errnoOf(call: () => unknown): number | 'ok' {
  try {
    call()
    return 'ok'
  } catch (err) {
    if (err instanceof WasiError) return err.errno
    throw err
  }
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length
}

function readAll(file: FileHandle): string {
  const buf = new Uint8Array(4096)
  const n = file.read(buf, 0n)
  return dec.decode(buf.subarray(0, n))
}

const onLinux = process.platform === 'linux'
const strategies = [
  ...(onLinux ? [{ mode: 'proc', strategy: 'proc-fd' } as const] : []),
  { mode: 'fallback', strategy: 'fallback' } as const,
]

describe('createHostDirFs', () => {
  it.runIf(onLinux)('picks proc-fd by default on Linux', () => {
    const tmp = fs.mkdtempSync(os.tmpdir() + '/caplet-')
    try {
      const mfs = createHostDirFs(tmp)
      expect(mfs.strategy).toBe('proc-fd')
      mfs.close()
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })

  it('refuses a mount point that is missing or not a directory', () => {
    const tmp = fs.mkdtempSync(os.tmpdir() + '/caplet-')
    try {
      fs.writeFileSync(tmp + '/file', '')
      for (const mode of ['auto', 'fallback'] as const) {
        expect(() => createHostDirFs(tmp + '/missing', { mode })).toThrow(/cannot mount/)
        expect(() => createHostDirFs(tmp + '/file', { mode })).toThrow(/cannot mount/)
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })
})

describe('wasiErrorFrom', () => {
  it('maps host errno codes and passes everything else through', () => {
    const enoent = Object.assign(new Error('x'), { code: 'ENOENT', syscall: 'open', path: '/p' })
    const mapped = wasiErrorFrom(enoent)
    expect(mapped).toBeInstanceOf(WasiError)
    expect((mapped as WasiError).errno).toBe(Errno.NOENT)
    expect(hostErrno('EXDEV')).toBe(Errno.XDEV)
    expect(hostErrno('ENOTEMPTY')).toBe(Errno.NOTEMPTY)
    expect(hostErrno('EDQUOT')).toBe(Errno.DQUOT)
    // Not a kernel error: must stay a host fault (a trap), never become EIO.
    const range = Object.assign(new RangeError('x'), { code: 'ERR_OUT_OF_RANGE' })
    expect(wasiErrorFrom(range)).toBe(range)
    const plain = new Error('bug')
    expect(wasiErrorFrom(plain)).toBe(plain)
    const wasi = new WasiError(Errno.PERM)
    expect(wasiErrorFrom(wasi)).toBe(wasi)
  })
})

describe.each(strategies)('host dir fs ($strategy)', ({ mode, strategy }) => {
  let tmp: string
  let mountPath: string
  let mfs: HostDirFs
  let root: DirHandle
  let opened: { close(): void }[]

  /** Remembers a handle so that it is closed after the test whatever happens. */
  function track<T extends { close(): void }>(handle: T): T {
    opened.push(handle)
    return handle
  }

  function expectOutsideUntouched(): void {
    expect(fs.readFileSync(tmp + '/canary.txt', 'utf8')).toBe('CANARY')
    expect(fs.statSync(tmp + '/canary.txt').mtimeMs).toBe(1_000_000)
    expect(fs.readdirSync(tmp + '/outside')).toEqual(['f.txt'])
    expect(fs.readFileSync(tmp + '/outside/f.txt', 'utf8')).toBe('CANARY')
    expect(fs.readdirSync(tmp).sort()).toEqual(['canary.txt', 'mount', 'outside'])
  }

  beforeEach(() => {
    tmp = fs.mkdtempSync(os.tmpdir() + '/caplet-')
    mountPath = tmp + '/mount'
    fs.mkdirSync(mountPath)
    fs.mkdirSync(tmp + '/outside')
    fs.writeFileSync(tmp + '/outside/f.txt', 'CANARY')
    fs.writeFileSync(tmp + '/canary.txt', 'CANARY')
    fs.utimesSync(tmp + '/canary.txt', 1000, 1000)
    opened = []
    mfs = createHostDirFs(mountPath, { mode })
    root = track(mfs.root())
  })

  afterEach(() => {
    for (const h of opened) h.close()
    mfs.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('uses the strategy asked for', () => {
    expect(mfs.strategy).toBe(strategy)
    expect(mfs.caps).toEqual({ symlinks: true, hardLinks: true, hostVisible: true, writeBehind: true })
  })

  it('creates, writes, reads and stats a file', () => {
    const f = track(root.openFile('a.txt', CREATE))
    expect(f.kind).toBe('file')
    expect(f.write(enc.encode('hello world'), 0n)).toBe(11)
    expect(f.write(enc.encode('W'), 6n)).toBe(1)
    expect(readAll(f)).toBe('hello World')
    const buf = new Uint8Array(5)
    expect(f.read(buf, 6n)).toBe(5)
    expect(dec.decode(buf)).toBe('World')
    expect(f.read(buf, 11n)).toBe(0)
    expect(f.read(buf, 1n << 40n)).toBe(0)
    const st = f.stat()
    expect(st.filetype).toBe(Filetype.REGULAR_FILE)
    expect(st.size).toBe(11n)
    expect(st.nlink).toBe(1n)
    expect(root.statChild('a.txt')).toEqual(st)
    f.sync()
    f.datasync()
    expect(fs.readFileSync(mountPath + '/a.txt', 'utf8')).toBe('hello World')
    expect(root.stat().filetype).toBe(Filetype.DIRECTORY)
  })

  it('openFile: errnos', () => {
    fs.writeFileSync(mountPath + '/f', 'data')
    fs.mkdirSync(mountPath + '/d')
    fs.symlinkSync('f', mountPath + '/ln')
    expect(errnoOf(() => root.openFile('missing', RO))).toBe(Errno.NOENT)
    expect(errnoOf(() => root.openFile('f', CREATE_EXCL))).toBe(Errno.EXIST)
    expect(errnoOf(() => root.openFile('d', RO))).toBe(Errno.ISDIR)
    expect(errnoOf(() => root.openFile('d', RW))).toBe(Errno.ISDIR)
    expect(errnoOf(() => root.openFile('d', CREATE))).toBe(Errno.ISDIR)
    // A symlink is never followed, even to a file inside the mount.
    expect(errnoOf(() => root.openFile('ln', RO))).toBe(Errno.LOOP)
    expect(errnoOf(() => root.openFile('ln', CREATE))).toBe(Errno.LOOP)
    expect(errnoOf(() => root.openFile('ln', CREATE_EXCL))).toBe(Errno.EXIST)
    const w = track(root.openFile('f', WO))
    expect(errnoOf(() => w.read(new Uint8Array(4), 0n))).toBe(Errno.BADF)
    const r = track(root.openFile('f', RO))
    expect(errnoOf(() => r.write(enc.encode('x'), 0n))).toBe(Errno.BADF)
    const t = track(root.openFile('f', TRUNC))
    expect(t.stat().size).toBe(0n)
    expect(errnoOf(() => root.openFile('x'.repeat(300), CREATE))).toBe(Errno.NAMETOOLONG)
  })

  it('openFile on a FIFO does not block the host', () => {
    execFileSync('mkfifo', [mountPath + '/fifo'])
    expect(root.statChild('fifo').filetype).toBe(Filetype.UNKNOWN)
    const f = track(root.openFile('fifo', RO))
    expect(errnoOf(() => f.read(new Uint8Array(4), 0n))).toBe(Errno.SPIPE)
    // The type learned at open is what stat says, for what was opened.
    expect(f.filetype).toBe(Filetype.UNKNOWN)
    expect(f.stat().filetype).toBe(Filetype.UNKNOWN)
  })

  it('a file handle knows its type from the open (and a directory is ISDIR)', () => {
    fs.writeFileSync(mountPath + '/f', 'x')
    fs.mkdirSync(mountPath + '/d')
    const f = track(root.openFile('f', RO))
    expect(f.filetype).toBe(Filetype.REGULAR_FILE)
    expect(f.stat().filetype).toBe(Filetype.REGULAR_FILE)
    expect(errnoOf(() => root.openFile('d', RO))).toBe(Errno.ISDIR)
    expect(errnoOf(() => root.openFile('d', CREATE))).toBe(Errno.ISDIR)
  })

  it('openDir: success and errnos', () => {
    fs.mkdirSync(mountPath + '/d/e', { recursive: true })
    fs.writeFileSync(mountPath + '/d/e/x', 'deep')
    fs.writeFileSync(mountPath + '/f', '')
    fs.symlinkSync('d', mountPath + '/dlink')
    const d = track(root.openDir('d'))
    expect(d.kind).toBe('dir')
    const e = track(d.openDir('e'))
    expect(readAll(track(e.openFile('x', RO)))).toBe('deep')
    expect(errnoOf(() => root.openDir('missing'))).toBe(Errno.NOENT)
    expect(errnoOf(() => root.openDir('f'))).toBe(Errno.NOTDIR)
    expect(errnoOf(() => root.openDir('dlink'))).toBe(Errno.NOTDIR)
  })

  it('statChild reports every file type and never follows', async () => {
    fs.mkdirSync(mountPath + '/d')
    fs.writeFileSync(mountPath + '/f', '12345')
    fs.symlinkSync('f', mountPath + '/ln')
    fs.symlinkSync('nowhere', mountPath + '/dangling')
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(mountPath + '/sock', resolve))
    try {
      expect(root.statChild('d').filetype).toBe(Filetype.DIRECTORY)
      expect(root.statChild('f')).toMatchObject({ filetype: Filetype.REGULAR_FILE, size: 5n })
      expect(root.statChild('ln')).toMatchObject({ filetype: Filetype.SYMBOLIC_LINK, size: 1n })
      expect(root.statChild('dangling').filetype).toBe(Filetype.SYMBOLIC_LINK)
      expect(root.statChild('sock').filetype).toBe(Filetype.SOCKET_STREAM)
      expect(errnoOf(() => root.openFile('sock', RO))).toBe(Errno.NXIO)
      expect(errnoOf(() => root.statChild('missing'))).toBe(Errno.NOENT)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('statChild reports device nodes', (ctx) => {
    try {
      execFileSync('mknod', [mountPath + '/null', 'c', '1', '3'], { stdio: 'ignore' })
    } catch {
      ctx.skip() // needs root and a file system that allows device nodes
    }
    expect(root.statChild('null').filetype).toBe(Filetype.CHARACTER_DEVICE)
    const dev = track(root.openFile('null', RW))
    expect(dev.write(enc.encode('x'), 0n)).toBe(1)
  })

  it('readlink returns the raw target; INVAL for a non-link', () => {
    fs.symlinkSync('../canary.txt', mountPath + '/rel')
    fs.symlinkSync(tmp + '/canary.txt', mountPath + '/abs')
    fs.writeFileSync(mountPath + '/f', '')
    expect(root.readlink('rel')).toBe('../canary.txt')
    expect(root.readlink('abs')).toBe(tmp + '/canary.txt')
    expect(errnoOf(() => root.readlink('f'))).toBe(Errno.INVAL)
    expect(errnoOf(() => root.readlink('missing'))).toBe(Errno.NOENT)
  })

  it('mkdir, rmdir and unlink', () => {
    root.mkdir('d')
    expect(fs.statSync(mountPath + '/d').isDirectory()).toBe(true)
    expect(errnoOf(() => root.mkdir('d'))).toBe(Errno.EXIST)
    fs.writeFileSync(mountPath + '/d/x', '')
    expect(errnoOf(() => root.rmdir('d'))).toBe(Errno.NOTEMPTY)
    expect(errnoOf(() => root.unlink('d'))).toBe(Errno.ISDIR)
    const d = track(root.openDir('d'))
    expect(errnoOf(() => d.rmdir('x'))).toBe(Errno.NOTDIR)
    d.unlink('x')
    expect(errnoOf(() => d.unlink('x'))).toBe(Errno.NOENT)
    root.rmdir('d')
    expect(errnoOf(() => root.rmdir('d'))).toBe(Errno.NOENT)
    expect(fs.existsSync(mountPath + '/d')).toBe(false)
    // Unlinking a symlink removes the link, never its target; rmdir on a dir symlink is NOTDIR.
    fs.symlinkSync('../canary.txt', mountPath + '/ln')
    fs.symlinkSync('../outside', mountPath + '/dl')
    expect(errnoOf(() => root.rmdir('dl'))).toBe(Errno.NOTDIR)
    root.unlink('ln')
    root.unlink('dl')
    expect(fs.readdirSync(mountPath)).toEqual([])
    expectOutsideUntouched()
  })

  it('symlink stores its target as given', () => {
    root.symlink('../../etc/passwd', 'up')
    root.symlink('/abs/olute', 'abs')
    root.symlink('a b/ünï', 'odd')
    expect(fs.readlinkSync(mountPath + '/up')).toBe('../../etc/passwd')
    expect(root.readlink('abs')).toBe('/abs/olute')
    expect(root.readlink('odd')).toBe('a b/ünï')
    expect(errnoOf(() => root.symlink('x', 'up'))).toBe(Errno.EXIST)
    expect(errnoOf(() => root.symlink('a\0b', 'nul'))).toBe(Errno.INVAL)
  })

  it('rename within and across directories, with POSIX replacement rules', () => {
    fs.writeFileSync(mountPath + '/a', 'A')
    fs.writeFileSync(mountPath + '/b', 'B')
    fs.mkdirSync(mountPath + '/d/sub', { recursive: true })
    fs.mkdirSync(mountPath + '/empty')
    const d = track(root.openDir('d'))
    root.rename('a', root, 'a2')
    root.rename('a2', d, 'a3')
    expect(fs.readFileSync(mountPath + '/d/a3', 'utf8')).toBe('A')
    d.rename('a3', root, 'b') // replaces a file
    expect(fs.readFileSync(mountPath + '/b', 'utf8')).toBe('A')
    root.rename('empty', d, 'sub') // replaces an empty directory
    expect(errnoOf(() => root.rename('missing', root, 'x'))).toBe(Errno.NOENT)
    expect(errnoOf(() => root.rename('b', d, 'sub'))).toBe(Errno.ISDIR)
    expect(errnoOf(() => root.rename('d', d, 'inside'))).toBe(Errno.INVAL)
    fs.writeFileSync(mountPath + '/d/sub/x', '')
    fs.mkdirSync(mountPath + '/full')
    expect(errnoOf(() => root.rename('full', d, 'sub'))).toBe(Errno.NOTEMPTY)
  })

  it('rename and link to another mount or another backend are XDEV', () => {
    fs.writeFileSync(mountPath + '/a', 'A')
    const twin = createHostDirFs(mountPath, { mode })
    try {
      const other = track(twin.root())
      expect(errnoOf(() => root.rename('a', other, 'b'))).toBe(Errno.XDEV)
      expect(errnoOf(() => root.link('a', other, 'b'))).toBe(Errno.XDEV)
      const foreign = Object.create(Object.getPrototypeOf(root) as object) as DirHandle
      expect(errnoOf(() => root.rename('a', foreign, 'b'))).toBe(Errno.XDEV)
      const lookalike = { kind: 'dir', close() {} } as unknown as DirHandle
      expect(errnoOf(() => root.link('a', lookalike, 'b'))).toBe(Errno.XDEV)
      expect(fs.readdirSync(mountPath)).toEqual(['a'])
    } finally {
      twin.close()
    }
  })

  it('link makes a hard link that shares the inode, never following a symlink', () => {
    fs.writeFileSync(mountPath + '/a', 'A')
    fs.mkdirSync(mountPath + '/d')
    fs.symlinkSync('../canary.txt', mountPath + '/ln')
    const d = track(root.openDir('d'))
    root.link('a', d, 'b')
    const sa = root.statChild('a')
    const sb = d.statChild('b')
    expect(sb.ino).toBe(sa.ino)
    expect(sa.nlink).toBe(2n)
    expect(errnoOf(() => root.link('d', root, 'd2'))).toBe(Errno.PERM)
    expect(errnoOf(() => root.link('a', d, 'b'))).toBe(Errno.EXIST)
    expect(errnoOf(() => root.link('missing', d, 'c'))).toBe(Errno.NOENT)
    root.link('ln', root, 'ln2')
    expect(root.statChild('ln2').filetype).toBe(Filetype.SYMBOLIC_LINK)
    expect(fs.statSync(tmp + '/canary.txt').nlink).toBe(1)
    expectOutsideUntouched()
  })

  it('sets times of files, directories and children, never of a symlink target', () => {
    const t1 = 1_600_000_000_500_000_000n // exactly representable in a double of seconds
    const t2 = 1_500_000_000_250_000_000n
    const f = track(root.openFile('f', CREATE))
    f.setTimes(t1, t2)
    expect(f.stat()).toMatchObject({ atim: t1, mtim: t2 })
    f.setTimes(undefined, t1)
    expect(f.stat()).toMatchObject({ atim: t1, mtim: t1 })
    const before = BigInt(Date.now() - 2000) * 1_000_000n
    f.setTimes('now', undefined)
    const st = f.stat()
    expect(st.atim).toBeGreaterThan(before)
    expect(st.mtim).toBe(t1)
    expect(errnoOf(() => f.setTimes(-1n, undefined))).toBe(Errno.INVAL)

    // An unchanged time is kept even before 1970 (Node would turn a negative number into "now").
    fs.utimesSync(mountPath + '/f', 0, '-100.5')
    f.setTimes(t2, undefined)
    expect(f.stat()).toMatchObject({ atim: t2, mtim: -100_500_000_000n })

    root.mkdir('d')
    const d = track(root.openDir('d'))
    d.setTimes(t2, t1)
    expect(root.statChild('d')).toMatchObject({ atim: t2, mtim: t1 })
    root.setTimesChild('d', t1, undefined)
    expect(d.stat()).toMatchObject({ atim: t1, mtim: t1 })

    fs.symlinkSync('../canary.txt', mountPath + '/ln')
    root.setTimesChild('ln', t2, t2)
    expect(root.statChild('ln')).toMatchObject({ atim: t2, mtim: t2 })
    expect(errnoOf(() => root.setTimesChild('missing', t1, t1))).toBe(Errno.NOENT)
    expectOutsideUntouched()
  })

  it('reads back times set to the nanosecond exactly, through every handle, until the host changes them', () => {
    // Node's utimes keeps whole microseconds: these would come back as ...344260000 without the mount's memory.
    const t1 = 1_796_451_771_344_260_385n
    const t2 = 1_700_000_000_000_000_007n
    const f = track(root.openFile('f', CREATE))
    f.setTimes(t1, t2)
    expect(f.stat()).toMatchObject({ atim: t1, mtim: t2 })
    expect(root.statChild('f')).toMatchObject({ atim: t1, mtim: t2 })
    expect(track(root.openFile('f', RO)).stat()).toMatchObject({ atim: t1, mtim: t2 })
    // An omitted time keeps its exact value, though Node had to re-set it.
    f.setTimes(undefined, t1)
    expect(f.stat()).toMatchObject({ atim: t1, mtim: t1 })
    root.setTimesChild('f', t2, undefined)
    expect(f.stat()).toMatchObject({ atim: t2, mtim: t1 })
    // A host file never touched by the guest keeps its own nanoseconds when one time is set.
    fs.writeFileSync(mountPath + '/g', 'g')
    const hostMtim = fs.statSync(mountPath + '/g', { bigint: true }).mtimeNs
    root.setTimesChild('g', t1, undefined)
    expect(root.statChild('g')).toMatchObject({ atim: t1, mtim: hostMtim })
    // A write on the host (or by the guest) moves mtim: the host's value shows through.
    fs.utimesSync(mountPath + '/f', 1000, 2000)
    expect(f.stat()).toMatchObject({ atim: 1_000_000_000_000n, mtim: 2_000_000_000_000n })
    root.mkdir('d')
    const d = track(root.openDir('d'))
    d.setTimes(t2, t1)
    expect(root.statChild('d')).toMatchObject({ atim: t2, mtim: t1 })
    // 'now' is the host's own clock, never remembered.
    f.setTimes('now', 'now')
    expect(f.stat().mtim % 1000n).toBe(0n)
  })

  it('remembers exact times for a bounded number of nodes, the oldest forgotten first', () => {
    const exact = (i: number) => 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000_000n + 123n
    for (let i = 0; i < 4100; i++) {
      fs.writeFileSync(`${mountPath}/n${i}`, '')
      root.setTimesChild(`n${i}`, exact(i), exact(i))
    }
    expect(root.statChild('n4099').mtim).toBe(exact(4099))
    expect(root.statChild('n4').mtim).toBe(exact(4))
    expect(root.statChild('n3').mtim).toBe(exact(3) - 123n)
    expect(root.statChild('n0').mtim).toBe(exact(0) - 123n)
  })

  it('setSize and allocate, with their limits checked before the host', () => {
    const f = track(root.openFile('f', CREATE))
    f.write(enc.encode('0123456789'), 0n)
    f.setSize(4n)
    expect(readAll(f)).toBe('0123')
    f.setSize(6n)
    expect(f.stat().size).toBe(6n)
    expect(readAll(f)).toBe('0123\0\0')
    expect(errnoOf(() => f.setSize(-1n))).toBe(Errno.INVAL)
    expect(errnoOf(() => f.setSize(1n << 53n))).toBe(Errno.FBIG)
    expect(errnoOf(() => f.setSize(1n << 64n))).toBe(Errno.FBIG)
    expect(f.stat().size).toBe(6n) // Node would have clamped -1 to 0
    f.allocate(0n, 2n) // never shrinks
    expect(f.stat().size).toBe(6n)
    f.allocate(8n, 8n)
    expect(f.stat().size).toBe(16n)
    expect(errnoOf(() => f.allocate(-1n, 1n))).toBe(Errno.INVAL)
    expect(errnoOf(() => f.allocate(1n << 53n, 1n))).toBe(Errno.FBIG)
  })

  it('read and write positions beyond what Node takes are refused, not misplaced', () => {
    const f = track(root.openFile('f', CREATE))
    f.write(enc.encode('abc'), 0n)
    // Node's writeSync would write at the current position for these: nothing may be written.
    expect(errnoOf(() => f.write(enc.encode('X'), 1n << 53n))).toBe(Errno.FBIG)
    expect(errnoOf(() => f.write(enc.encode('X'), 1n << 63n))).toBe(Errno.INVAL)
    expect(errnoOf(() => f.write(enc.encode('X'), -1n))).toBe(Errno.INVAL)
    expect(errnoOf(() => f.read(new Uint8Array(1), 1n << 63n))).toBe(Errno.INVAL)
    expect(errnoOf(() => f.read(new Uint8Array(1), -1n))).toBe(Errno.INVAL)
    expect(f.read(new Uint8Array(1), (1n << 63n) - 100n)).toBe(0)
    // A range whose end would pass 2^63-1 is shortened to end there (the kernel refuses it whole).
    expect(f.read(new Uint8Array(64), (1n << 63n) - 10n)).toBe(0)
    expect(f.read(new Uint8Array(64), (1n << 63n) - 1n)).toBe(0)
    // Either side of 2^53, where the position stops being passed to Node as a number.
    expect(f.read(new Uint8Array(4), (1n << 53n) - 1n)).toBe(0)
    expect(f.read(new Uint8Array(4), 1n << 53n)).toBe(0)
    expect(f.read(new Uint8Array(4), 1n)).toBe(2)
    expect(fs.readFileSync(mountPath + '/f', 'utf8')).toBe('abc')
    expect(f.write(new Uint8Array(0), 0n)).toBe(0)
    expect(f.read(new Uint8Array(0), 0n)).toBe(0)
  })

  it('readdir lists sorted entries with types and the same inos as statChild', () => {
    fs.writeFileSync(mountPath + '/b', '')
    fs.mkdirSync(mountPath + '/a')
    fs.symlinkSync('../canary.txt', mountPath + '/c')
    fs.writeFileSync(mountPath + '/é', '')
    fs.writeFileSync(Buffer.concat([Buffer.from(mountPath + '/latin1-'), Buffer.from([0xe9])]), '')
    // What a lossy decoding would turn the name above into, as a real (UTF-8) name.
    fs.writeFileSync(mountPath + '/latin1-\uFFFD', '')
    const entries = root.readdir()
    expect(entries.map((e) => [e.name, e.filetype])).toEqual([
      ['a', Filetype.DIRECTORY],
      ['b', Filetype.REGULAR_FILE],
      ['c', Filetype.SYMBOLIC_LINK],
      ['latin1-\uFFFD', Filetype.REGULAR_FILE],
      ['é', Filetype.REGULAR_FILE],
    ]) // the non-UTF-8 name is left out: it could not be addressed, and must not alias another
    for (const e of entries) expect(e.ino).toBe(root.statChild(e.name).ino)
    expect(track(root.openDir('a')).readdir()).toEqual([])
  })

  it('hides host inode numbers behind a per-mount counter', () => {
    fs.writeFileSync(mountPath + '/a', '')
    fs.writeFileSync(mountPath + '/b', '')
    fs.linkSync(mountPath + '/a', mountPath + '/a2')
    const ia = root.statChild('a').ino
    const ib = root.statChild('b').ino
    expect(ia).not.toBe(ib)
    expect(root.statChild('a2').ino).toBe(ia)
    expect(track(root.openFile('a', RO)).stat().ino).toBe(ia)
    const hostInos = [fs.lstatSync(mountPath + '/a', { bigint: true }).ino, fs.lstatSync(mountPath + '/b', { bigint: true }).ino]
    expect(hostInos).not.toContain(ia)
    expect(ia < 16n && ib < 16n).toBe(true)
    expect(root.stat().ino).toBe(track(mfs.root()).stat().ino)
    // Another mount numbers on its own.
    const twin = createHostDirFs(mountPath, { mode })
    try {
      const r2 = track(twin.root())
      expect(r2.statChild('b').ino).toBeLessThanOrEqual(2n) // 1 or 2: the root may be numbered first
    } finally {
      twin.close()
    }
  })

  it('refuses names that are not one component', () => {
    for (const bad of ['', '.', '..', 'a/b', '/abs', 'nul\0']) {
      expect(errnoOf(() => root.statChild(bad))).toBe(Errno.INVAL)
      expect(errnoOf(() => root.openFile(bad, CREATE))).toBe(Errno.INVAL)
      expect(errnoOf(() => root.openDir(bad))).toBe(Errno.INVAL)
      expect(errnoOf(() => root.mkdir(bad))).toBe(Errno.INVAL)
      expect(errnoOf(() => root.symlink('x', bad))).toBe(Errno.INVAL)
      expect(errnoOf(() => root.rename('x', root, bad))).toBe(Errno.INVAL)
      expect(errnoOf(() => root.link('x', root, bad))).toBe(Errno.INVAL)
    }
    expectOutsideUntouched()
  })

  it('host-made symlinks pointing out are reported, never followed', () => {
    fs.symlinkSync(tmp + '/canary.txt', mountPath + '/abs')
    fs.symlinkSync('../canary.txt', mountPath + '/rel')
    fs.symlinkSync('rel', mountPath + '/chain1')
    fs.symlinkSync('chain1', mountPath + '/chain2')
    fs.symlinkSync('../outside', mountPath + '/outdir')
    fs.symlinkSync(tmp + '/outside', mountPath + '/outdirabs')
    fs.symlinkSync('chain3', mountPath + '/chain3') // a loop
    for (const name of ['abs', 'rel', 'chain1', 'chain2', 'chain3']) {
      expect(root.statChild(name).filetype).toBe(Filetype.SYMBOLIC_LINK)
      expect(errnoOf(() => root.openFile(name, RO))).toBe(Errno.LOOP)
      expect(errnoOf(() => root.openFile(name, TRUNC))).toBe(Errno.LOOP)
      expect(errnoOf(() => root.openFile(name, CREATE))).toBe(Errno.LOOP)
      expect(errnoOf(() => root.openFile(name, CREATE_EXCL))).toBe(Errno.EXIST)
      expect(errnoOf(() => root.openDir(name))).toBe(Errno.NOTDIR)
    }
    for (const name of ['outdir', 'outdirabs']) {
      expect(root.statChild(name).filetype).toBe(Filetype.SYMBOLIC_LINK)
      expect(errnoOf(() => root.openDir(name))).toBe(Errno.NOTDIR)
      expect(errnoOf(() => root.openFile(name, RO))).toBe(Errno.LOOP)
    }
    expect(root.readlink('abs')).toBe(tmp + '/canary.txt')
    expect(root.readlink('chain2')).toBe('chain1')
    // Operating "through" a link name acts on the link only.
    expect(errnoOf(() => root.mkdir('outdir'))).toBe(Errno.EXIST)
    root.rename('rel', root, 'rel2')
    root.setTimesChild('abs', 5n, 5n)
    expect(root.readdir().map((e) => e.name)).toEqual(['abs', 'chain1', 'chain2', 'chain3', 'outdir', 'outdirabs', 'rel2'])
    expectOutsideUntouched()
  })

  it('a held directory handle is never redirected by a host rename and symlink swap', () => {
    fs.mkdirSync(mountPath + '/sub')
    fs.writeFileSync(mountPath + '/sub/f.txt', 'inside')
    const sub = track(root.openDir('sub'))
    // The host (an attacker with host access, or just bad luck) moves the directory away and puts
    // a symlink to the outside in its place.
    fs.renameSync(mountPath + '/sub', mountPath + '/away')
    fs.symlinkSync(tmp + '/outside', mountPath + '/sub')
    const ops: (() => unknown)[] = [
      () => readAll(track(sub.openFile('f.txt', RO))),
      () => track(sub.openFile('new.txt', CREATE)).write(enc.encode('new'), 0n),
      () => sub.mkdir('nd'),
      () => sub.symlink('t', 'sl'),
      () => sub.readdir(),
      () => sub.statChild('f.txt'),
      () => sub.setTimesChild('f.txt', 5n, 5n),
      () => sub.rename('f.txt', sub, 'g.txt'),
      () => sub.unlink('g.txt'),
      () => sub.setTimes(7_000_000_000n, 7_000_000_000n),
    ]
    if (strategy === 'proc-fd') {
      // The fd holds the directory itself: every operation lands in the real (moved) directory.
      expect(readAll(track(sub.openFile('f.txt', RO)))).toBe('inside')
      for (const op of ops) op()
      expect(fs.readdirSync(mountPath + '/away').sort()).toEqual(['nd', 'new.txt', 'sl'])
      expect(fs.readFileSync(mountPath + '/away/new.txt', 'utf8')).toBe('new')
      expect(fs.statSync(mountPath + '/away').mtimeMs).toBe(7000)
    } else {
      // The fallback cannot follow the directory: every operation refuses with STALE.
      for (const op of ops) expect(errnoOf(op)).toBe(Errno.STALE)
      expect(fs.readdirSync(mountPath + '/away')).toEqual(['f.txt'])
    }
    expectOutsideUntouched()
  })

  it('closed handles refuse use with BADF; close is idempotent and never closes a reused fd', () => {
    fs.writeFileSync(mountPath + '/f', 'data')
    fs.mkdirSync(mountPath + '/d')
    const f = root.openFile('f', RO)
    f.close()
    f.close()
    const d = root.openDir('d')
    d.close()
    d.close()
    // Whatever fd numbers the closed handles had are likely reused now.
    const g = track(root.openFile('f', RO))
    const e = track(root.openDir('d'))
    f.close()
    d.close()
    expect(readAll(g)).toBe('data')
    expect(e.readdir()).toEqual([])
    expect(errnoOf(() => f.read(new Uint8Array(1), 0n))).toBe(Errno.BADF)
    expect(errnoOf(() => f.stat())).toBe(Errno.BADF)
    expect(errnoOf(() => f.setSize(0n))).toBe(Errno.BADF)
    expect(errnoOf(() => d.readdir())).toBe(Errno.BADF)
    expect(errnoOf(() => d.statChild('x'))).toBe(Errno.BADF)
    expect(errnoOf(() => d.stat())).toBe(Errno.BADF)
    expect(errnoOf(() => root.rename('f', d, 'g'))).toBe(Errno.BADF)
    expect(fs.readdirSync(mountPath).sort()).toEqual(['d', 'f'])
  })

  it.runIf(onLinux)('opens and closes every fd exactly once', () => {
    fs.mkdirSync(mountPath + '/d/e', { recursive: true })
    fs.writeFileSync(mountPath + '/d/f', 'x')
    fs.symlinkSync('../canary.txt', mountPath + '/ln')
    const before = fdCount()
    for (let i = 0; i < 50; i++) {
      const r = mfs.root()
      const d = r.openDir('d')
      const e = d.openDir('e')
      const f = d.openFile('f', RW)
      f.write(enc.encode('y'), 1n)
      f.stat()
      const n = e.openFile(`n${i}`, CREATE_EXCL)
      // Error paths must not leak either.
      errnoOf(() => d.openFile('e', RO)) // ISDIR after a successful host open
      errnoOf(() => r.openFile('ln', RO))
      errnoOf(() => r.openDir('ln'))
      errnoOf(() => d.openDir('f'))
      errnoOf(() => e.openFile(`n${i}`, CREATE_EXCL))
      e.readdir()
      r.readdir()
      n.close()
      f.close()
      e.close()
      d.close()
      r.close()
    }
    expect(fdCount()).toBe(before)

    const count = fdCount()
    const other = createHostDirFs(mountPath, { mode })
    expect(fdCount()).toBe(count + (strategy === 'proc-fd' ? 1 : 0))
    const r = other.root()
    other.close()
    other.close()
    expect(errnoOf(() => other.root())).toBe(Errno.BADF)
    // Handles given out before close stay usable (they own their fds).
    expect(r.readdir().map((x) => x.name)).toEqual(['d', 'ln'])
    r.close()
    expect(fdCount()).toBe(count)
  })
})

// The shared backend contract, once per strategy, each instance on its own temp dir.
for (const { mode, strategy } of strategies) {
  runBackendSuite(`HostDirFs (${strategy}) contract`, () => {
    const tmp = fs.mkdtempSync(os.tmpdir() + '/caplet-')
    const mounted = createHostDirFs(tmp, { mode })
    return {
      fs: mounted,
      cleanup: () => {
        mounted.close()
        fs.rmSync(tmp, { recursive: true, force: true })
      },
    }
  })
}
