/**
 * @module The `Filesystem` backend contract suite (Hono `common.case.test.ts`, unstorage
 * `testDriver()` style), run by every backend: MemFs, read-only views, NodeFs on a temp dir.
 *
 * It asserts POSIX-observable behaviour only, never one backend's internals: where POSIX allows
 * two errnos both are accepted, timestamps are compared against values set just before (no
 * sleeping, no clock assumptions), and readdir order is only required to be stable.
 * Capability flags gate tests with `it.skipIf` and skips need a reason, so nothing passes
 * silently. In `readOnly` mode the backend must come pre-seeded with `seedBackendFixture`; the
 * lookup and read tests then run against it, and every mutation must fail with `ROFS`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Errno, Filetype, errnoName } from '../../../wasi-host/abi/constants.js'
import { WasiError } from '../../../wasi-host/errors.js'
import type { DirHandle, FileHandle, Filesystem, FilesystemCaps, OpenFileOptions } from '../../../wasi-host/fs/filesystem.js'

export interface BackendUnderTest {
  fs: Filesystem
  cleanup?: () => Promise<void> | void
}

export interface BackendSuiteOptions {
  /** Tests to skip, each group with the reason (shown in the report). Unknown names fail the suite. */
  skip?: { reason: string; tests: string[] }[]
  /**
   * The backend is a read-only mount pre-seeded with `seedBackendFixture`: run the lookup and
   * read tests against it, and require `ROFS` from every mutation instead of the write tests.
   */
  readOnly?: boolean
}

type Cap = keyof FilesystemCaps
type Mode = 'read' | 'write'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Whole seconds, so a backend whose host API takes float seconds (node:fs utimes) stays exact. */
const T1 = 1_000_000_000n * 1_000_000_000n
const T2 = 1_200_000_000n * 1_000_000_000n
const OLD = 1_000_000_000n
const MAX_OFFSET = (1n << 63n) - 1n

const BAD_NAMES = ['', '.', '..', 'a/b', 'a\0b', '/', 'a/']

const FIXTURE_HELLO = 'hello, world\n'
const FIXTURE_INNER = 'inner'

/**
 * The tree the read tests look at. In `readOnly` mode the caller seeds it (through a writable
 * handle on the same backend) before wrapping; otherwise the suite seeds it per test.
 *
 * ```
 * hello.txt   "hello, world\n"
 * empty       ""
 * sub/inner.txt "inner"
 * sub/deeper/ (empty directory)
 * link     -> "hello.txt"       (if caps.symlinks)
 * dangling -> "missing"         (if caps.symlinks)
 * escape   -> "../../outside"   (if caps.symlinks; stored, never resolved)
 * ```
 */
export function seedBackendFixture(root: DirHandle, caps: FilesystemCaps): void {
  writeFile(root, 'hello.txt', FIXTURE_HELLO)
  writeFile(root, 'empty', '')
  root.mkdir('sub')
  const sub = root.openDir('sub')
  try {
    writeFile(sub, 'inner.txt', FIXTURE_INNER)
    sub.mkdir('deeper')
  } finally {
    sub.close()
  }
  if (caps.symlinks) {
    root.symlink('hello.txt', 'link')
    root.symlink('missing', 'dangling')
    root.symlink('../../outside', 'escape')
  }
}

const FIXTURE_NAMES_PLAIN = ['empty', 'hello.txt', 'sub']
const FIXTURE_NAMES_SYMLINKS = ['dangling', 'escape', 'link']

function opts(o: Partial<OpenFileOptions>): OpenFileOptions {
  return { read: false, write: false, create: false, exclusive: false, truncate: false, ...o }
}
const READ = opts({ read: true })
const WRITE = opts({ write: true })
const RW = opts({ read: true, write: true })
const CREATE = opts({ read: true, write: true, create: true })
const CREATE_EXCL = opts({ read: true, write: true, create: true, exclusive: true })

function writeFile(dir: DirHandle, name: string, content: string | Uint8Array): void {
  const f = dir.openFile(name, opts({ write: true, create: true, truncate: true }))
  try {
    const bytes = typeof content === 'string' ? enc.encode(content) : content
    if (bytes.length > 0) expect(f.write(bytes, 0n)).toBe(bytes.length)
  } finally {
    f.close()
  }
}

function readBytes(file: FileHandle): Uint8Array {
  const size = Number(file.stat().size)
  const buf = new Uint8Array(size)
  let off = 0
  while (off < size) {
    const n = file.read(buf.subarray(off), BigInt(off))
    if (n === 0) break
    off += n
  }
  return buf.subarray(0, off)
}

function readFile(dir: DirHandle, name: string): string {
  const f = dir.openFile(name, READ)
  try {
    return dec.decode(readBytes(f))
  } finally {
    f.close()
  }
}

function names(dir: DirHandle): string[] {
  return dir
    .readdir()
    .map((e) => e.name)
    .sort()
}

/** Runs `fn` and returns the errno of the `WasiError` it throws; fails if it throws anything else. */
export function errnoOf(fn: () => unknown): string {
  let caught: unknown
  try {
    fn()
  } catch (e) {
    caught = e
  }
  if (caught === undefined) throw new Error('expected a WasiError, but the call succeeded')
  if (!(caught instanceof WasiError)) throw new Error(`expected a WasiError, got ${String(caught)}`, { cause: caught })
  return errnoName(caught.errno)
}

/** The errno name a call throws, or `'ok'` if it returns; anything but a `WasiError` fails the test. */
export function errnoOrOk(fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (e) {
    if (e instanceof WasiError) return errnoName(e.errno)
    throw e
  }
}

/** A whole file's contents as text, read through the backend. */
export function readText(dir: DirHandle, name: string): string {
  const f = dir.openFile(name, READ)
  try {
    const buf = new Uint8Array(Number(f.stat().size))
    let off = 0
    while (off < buf.length) {
      const n = f.read(buf.subarray(off), BigInt(off))
      if (n === 0) break
      off += n
    }
    return dec.decode(buf.subarray(0, off))
  } finally {
    f.close()
  }
}

/** Expects `fn` to fail with `errno`, or with any of the errnos POSIX allows for it. */
function expectErrno(fn: () => unknown, errno: Errno | readonly Errno[]): void {
  const got = errnoOf(fn)
  const allowed = (Array.isArray(errno) ? errno : [errno]).map(errnoName)
  expect(allowed, `errno ${got}`).toContain(got)
}

function expectAbsent(dir: DirHandle, name: string): void {
  expectErrno(() => dir.statChild(name), Errno.NOENT)
}

/**
 * Declares the contract suite for one backend.
 *
 * @example
 * runBackendSuite('MemFs', () => ({ fs: createMemFs() }))
 * runBackendSuite('NodeFs', async () => { const dir = await mkdtemp(...); return { fs: nodeFs(dir), cleanup: () => rm(dir, { recursive: true }) } },
 *   { skip: [{ reason: 'tmpfs has no atime', tests: ['…'] }] })
 */
export function runBackendSuite(
  name: string,
  make: () => Promise<BackendUnderTest> | BackendUnderTest,
  options: BackendSuiteOptions = {},
): void {
  const readOnlyMode = options.readOnly === true
  const skipReason = new Map<string, string>()
  for (const group of options.skip ?? []) {
    if (group.reason.trim().length === 0) throw new Error(`[${name}] every skip needs a reason: ${group.tests.join(', ')}`)
    for (const t of group.tests) skipReason.set(t, group.reason)
  }
  const known = new Set<string>()

  describe(name, async () => {
    // Capabilities are a property of the backend: ask a throwaway instance at collection time.
    const probe = await make()
    const caps: FilesystemCaps = { ...probe.fs.caps }
    await probe.cleanup?.()

    let backend: BackendUnderTest
    let root: DirHandle
    let handles: { close(): void }[]
    let extraCleanups: (() => Promise<void> | void)[]

    /** Keeps `h` to be closed after the test, so a host-fd backend does not leak descriptors. */
    function track<T extends { close(): void }>(h: T): T {
      handles.push(h)
      return h
    }

    /** Opens a second, independent instance of the backend (for `XDEV`). */
    async function another(): Promise<DirHandle> {
      const other = await make()
      if (other.cleanup) extraCleanups.push(other.cleanup)
      return track(other.fs.root())
    }

    beforeEach(async () => {
      handles = []
      extraCleanups = []
      backend = await make()
      root = track(backend.fs.root())
    })

    afterEach(async () => {
      for (const h of handles.reverse()) {
        try {
          h.close()
        } catch {
          // Already closed by the test itself.
        }
      }
      for (const c of extraCleanups) await c()
      await backend.cleanup?.()
    })

    function test(mode: Mode, title: string, fn: () => unknown, needs: Cap[] = []): void {
      if (known.has(title)) throw new Error(`[${name}] duplicate test title: ${title}`)
      known.add(title)
      if (readOnlyMode && mode === 'write') return
      const reason = skipReason.get(title)
      if (reason !== undefined) {
        it.skip(`${title} [skipped: ${reason}]`, fn)
        return
      }
      const missing = needs.filter((c) => !caps[c])
      it.skipIf(missing.length > 0)(missing.length > 0 ? `${title} [needs caps.${missing.join(', caps.')}]` : title, fn)
    }
    const read = (title: string, fn: () => unknown, needs?: Cap[]) => test('read', title, fn, needs)
    const write = (title: string, fn: () => unknown, needs?: Cap[]) => test('write', title, fn, needs)
    /** A group of write tests; on a read-only mount only their titles are recorded (for the skip check). */
    const writeGroup = (title: string, fn: () => void) => (readOnlyMode ? fn() : describe(title, fn))

    describe('lookups and reads', () => {
      beforeEach(() => {
        if (!readOnlyMode) seedBackendFixture(root, caps)
      })

      read('root stat is a directory', () => {
        const st = root.stat()
        expect(st.filetype).toBe(Filetype.DIRECTORY)
        expect(st.mtim).toBeGreaterThan(0n)
      })

      read('statChild of a regular file', () => {
        const st = root.statChild('hello.txt')
        expect(st.filetype).toBe(Filetype.REGULAR_FILE)
        expect(st.size).toBe(BigInt(FIXTURE_HELLO.length))
        expect(st.nlink).toBe(1n)
        expect(root.statChild('empty').size).toBe(0n)
      })

      read('statChild of a directory', () => {
        expect(root.statChild('sub').filetype).toBe(Filetype.DIRECTORY)
      })

      read(
        'statChild of a symlink describes the link itself (lstat)',
        () => {
          const st = root.statChild('link')
          expect(st.filetype).toBe(Filetype.SYMBOLIC_LINK)
          expect(st.size).toBe(BigInt('hello.txt'.length))
          expect(root.statChild('dangling').filetype).toBe(Filetype.SYMBOLIC_LINK)
        },
        ['symlinks'],
      )

      read('statChild of a missing name is NOENT', () => {
        expectAbsent(root, 'nope')
      })

      read('inode numbers identify nodes', () => {
        const a = root.statChild('hello.txt').ino
        const f = track(root.openFile('hello.txt', READ))
        expect(f.stat().ino).toBe(a)
        expect(root.statChild('empty').ino).not.toBe(a)
        expect(root.statChild('sub').ino).not.toBe(a)
        expect(track(root.openDir('sub')).stat().ino).toBe(root.statChild('sub').ino)
      })

      read('readdir lists every entry once, without . and ..', () => {
        const expected = [...FIXTURE_NAMES_PLAIN, ...(caps.symlinks ? FIXTURE_NAMES_SYMLINKS : [])].sort()
        expect(names(root)).toEqual(expected)
        expect(names(track(root.openDir('sub')))).toEqual(['deeper', 'inner.txt'])
      })

      read('readdir filetypes and inodes match statChild', () => {
        for (const e of root.readdir()) {
          const st = root.statChild(e.name)
          expect(e.filetype, e.name).toBe(st.filetype)
          expect(e.ino, e.name).toBe(st.ino)
        }
      })

      read('readdir is stable for an unchanged directory', () => {
        const first = root.readdir().map((e) => e.name)
        root.statChild('hello.txt')
        readFile(root, 'hello.txt')
        expect(root.readdir().map((e) => e.name)).toEqual(first)
        expect(
          track(backend.fs.root())
            .readdir()
            .map((e) => e.name),
        ).toEqual(first)
      })

      read('readdir of an empty directory is empty', () => {
        const sub = track(root.openDir('sub'))
        expect(track(sub.openDir('deeper')).readdir()).toEqual([])
      })

      read('openDir opens a child whose stat matches statChild', () => {
        const sub = track(root.openDir('sub'))
        expect(sub.kind).toBe('dir')
        expect(sub.stat().filetype).toBe(Filetype.DIRECTORY)
        expect(readFile(sub, 'inner.txt')).toBe(FIXTURE_INNER)
      })

      read('openDir on a file is NOTDIR', () => {
        expectErrno(() => root.openDir('hello.txt'), Errno.NOTDIR)
      })

      read(
        'openDir on a symlink is NOTDIR (never followed)',
        () => {
          expectErrno(() => root.openDir('link'), Errno.NOTDIR)
          expectErrno(() => root.openDir('dangling'), Errno.NOTDIR)
        },
        ['symlinks'],
      )

      read('openDir on a missing name is NOENT', () => {
        expectErrno(() => root.openDir('nope'), Errno.NOENT)
      })

      read('openFile reads the whole content', () => {
        const f = track(root.openFile('hello.txt', READ))
        expect(f.kind).toBe('file')
        expect(dec.decode(readBytes(f))).toBe(FIXTURE_HELLO)
      })

      read('read at an offset returns the rest', () => {
        const f = track(root.openFile('hello.txt', READ))
        const buf = new Uint8Array(100)
        const n = f.read(buf, 7n)
        expect(dec.decode(buf.subarray(0, n))).toBe(FIXTURE_HELLO.slice(7))
      })

      read('read into a small buffer returns only what fits', () => {
        const f = track(root.openFile('hello.txt', READ))
        const buf = new Uint8Array(5)
        expect(f.read(buf, 0n)).toBe(5)
        expect(dec.decode(buf)).toBe('hello')
        expect(f.read(buf, 5n)).toBe(5)
        expect(dec.decode(buf)).toBe(', wor')
      })

      read('read at or past end of file returns 0', () => {
        const f = track(root.openFile('hello.txt', READ))
        const buf = new Uint8Array(4)
        expect(f.read(buf, BigInt(FIXTURE_HELLO.length))).toBe(0)
        expect(f.read(buf, 1000n)).toBe(0)
        expect(track(root.openFile('empty', READ)).read(buf, 0n)).toBe(0)
      })

      read('read into an empty buffer returns 0', () => {
        const f = track(root.openFile('hello.txt', READ))
        expect(f.read(new Uint8Array(0), 0n)).toBe(0)
      })

      read('read at a huge position returns 0', () => {
        const f = track(root.openFile('hello.txt', READ))
        expect(f.read(new Uint8Array(4), 1n << 62n)).toBe(0)
        expect(f.read(new Uint8Array(4), MAX_OFFSET)).toBe(0)
      })

      read('read at a position beyond 2^63-1 or negative is INVAL, not a crash', () => {
        const f = track(root.openFile('hello.txt', READ))
        expectErrno(() => f.read(new Uint8Array(4), 1n << 63n), [Errno.INVAL, Errno.FBIG])
        expectErrno(() => f.read(new Uint8Array(4), 1n << 64n), [Errno.INVAL, Errno.FBIG])
        expectErrno(() => f.read(new Uint8Array(4), -1n), Errno.INVAL)
      })

      read('openFile on a directory is ISDIR', () => {
        expectErrno(() => root.openFile('sub', READ), Errno.ISDIR)
      })

      read(
        'openFile on a symlink is LOOP (O_NOFOLLOW)',
        () => {
          expectErrno(() => root.openFile('link', READ), Errno.LOOP)
          expectErrno(() => root.openFile('dangling', READ), Errno.LOOP)
        },
        ['symlinks'],
      )

      read('openFile on a missing name without create is NOENT', () => {
        expectErrno(() => root.openFile('nope', READ), Errno.NOENT)
      })

      read('FileHandle.stat reports filetype, size and inode', () => {
        const f = track(root.openFile('hello.txt', READ))
        const st = f.stat()
        expect(st.filetype).toBe(Filetype.REGULAR_FILE)
        expect(st.size).toBe(BigInt(FIXTURE_HELLO.length))
        expect(st.ino).toBe(root.statChild('hello.txt').ino)
      })

      read(
        'readlink returns the target as stored, never resolved',
        () => {
          expect(root.readlink('link')).toBe('hello.txt')
          expect(root.readlink('dangling')).toBe('missing')
          expect(root.readlink('escape')).toBe('../../outside')
        },
        ['symlinks'],
      )

      read('readlink on a file or directory is INVAL', () => {
        expectErrno(() => root.readlink('hello.txt'), Errno.INVAL)
        expectErrno(() => root.readlink('sub'), Errno.INVAL)
      })

      read('readlink on a missing name is NOENT', () => {
        expectErrno(() => root.readlink('nope'), Errno.NOENT)
      })

      read('sync and datasync succeed on a read handle', () => {
        const f = track(root.openFile('hello.txt', READ))
        f.sync()
        f.datasync()
      })

      read('two handles on the same directory see the same entries', () => {
        const a = track(root.openDir('sub'))
        const b = track(root.openDir('sub'))
        expect(names(a)).toEqual(names(b))
        expect(a.stat().ino).toBe(b.stat().ino)
      })

      read('every name-taking lookup rejects a non-component with INVAL', () => {
        for (const bad of BAD_NAMES) {
          const label = JSON.stringify(bad)
          expect(
            errnoOf(() => root.statChild(bad)),
            `statChild ${label}`,
          ).toBe('INVAL')
          expect(
            errnoOf(() => root.openDir(bad)),
            `openDir ${label}`,
          ).toBe('INVAL')
          expect(
            errnoOf(() => root.openFile(bad, READ)),
            `openFile ${label}`,
          ).toBe('INVAL')
          expect(
            errnoOf(() => root.readlink(bad)),
            `readlink ${label}`,
          ).toBe('INVAL')
        }
      })
    })

    if (readOnlyMode) {
      describe('read-only mount refuses every mutation with ROFS', () => {
        read('FileHandle mutations are ROFS', () => {
          const f = track(root.openFile('hello.txt', READ))
          expectErrno(() => f.write(enc.encode('x'), 0n), Errno.ROFS)
          expectErrno(() => f.setSize(0n), Errno.ROFS)
          expectErrno(() => f.setTimes(T1, T1), Errno.ROFS)
          expectErrno(() => f.allocate(0n, 100n), Errno.ROFS)
          expect(readFile(root, 'hello.txt')).toBe(FIXTURE_HELLO)
        })

        read('openFile with write, create or truncate is ROFS', () => {
          for (const o of [WRITE, RW, CREATE, CREATE_EXCL, opts({ read: true, truncate: true }), opts({ read: true, create: true })]) {
            expect(
              errnoOf(() => root.openFile('hello.txt', o)),
              JSON.stringify(o),
            ).toBe('ROFS')
            // Without create, a missing name may be reported before the mount's mode.
            expect(['ROFS', 'NOENT']).toContain(errnoOf(() => root.openFile('new-file', o)))
          }
          expectErrno(() => root.openFile('new-file', CREATE), Errno.ROFS)
          expectAbsent(root, 'new-file')
          expect(readFile(root, 'hello.txt')).toBe(FIXTURE_HELLO)
        })

        read('DirHandle mutations are ROFS', () => {
          const sub = track(root.openDir('sub'))
          expectErrno(() => root.setTimes(T1, T1), Errno.ROFS)
          expectErrno(() => root.mkdir('d'), Errno.ROFS)
          expectErrno(() => root.symlink('hello.txt', 's'), Errno.ROFS)
          expectErrno(() => root.unlink('hello.txt'), Errno.ROFS)
          expectErrno(() => sub.rmdir('deeper'), Errno.ROFS)
          expectErrno(() => root.rename('hello.txt', root, 'moved'), Errno.ROFS)
          expectErrno(() => root.rename('hello.txt', sub, 'moved'), Errno.ROFS)
          expectErrno(() => root.link('hello.txt', root, 'again'), Errno.ROFS)
          expectErrno(() => root.link('hello.txt', sub, 'again'), Errno.ROFS)
          expectErrno(() => root.setTimesChild('hello.txt', T1, T1), Errno.ROFS)
          expectAbsent(root, 'd')
          expectAbsent(root, 'moved')
          expectAbsent(root, 'again')
          expect(names(sub)).toEqual(['deeper', 'inner.txt'])
          expect(root.statChild('hello.txt').mtim).not.toBe(T1)
        })

        read('rename and link towards another filesystem are refused too', async () => {
          const other = await another()
          expectErrno(() => root.rename('hello.txt', other, 'x'), [Errno.ROFS, Errno.XDEV])
          expectErrno(() => root.link('hello.txt', other, 'x'), [Errno.ROFS, Errno.XDEV])
          expect(readFile(root, 'hello.txt')).toBe(FIXTURE_HELLO)
        })
      })
    }

    writeGroup('files', () => {
      write('openFile create makes an empty regular file', () => {
        const f = track(root.openFile('new', CREATE))
        expect(f.stat().filetype).toBe(Filetype.REGULAR_FILE)
        expect(f.stat().size).toBe(0n)
        expect(root.statChild('new').ino).toBe(f.stat().ino)
        expect(names(root)).toEqual(['new'])
      })

      write('openFile create on an existing file opens it without truncating', () => {
        writeFile(root, 'f', 'keep me')
        const ino = root.statChild('f').ino
        const f = track(root.openFile('f', CREATE))
        expect(f.stat().ino).toBe(ino)
        expect(dec.decode(readBytes(f))).toBe('keep me')
      })

      write('openFile create+exclusive on an existing name is EXIST', () => {
        writeFile(root, 'f', 'x')
        root.mkdir('d')
        expectErrno(() => root.openFile('f', CREATE_EXCL), Errno.EXIST)
        expectErrno(() => root.openFile('d', CREATE_EXCL), Errno.EXIST)
        expect(readFile(root, 'f')).toBe('x')
      })

      write(
        'openFile create+exclusive on a symlink is EXIST, even a dangling one',
        () => {
          root.symlink('f', 'dangling')
          writeFile(root, 'f', 'x')
          root.symlink('f', 'live')
          expectErrno(() => root.openFile('dangling', CREATE_EXCL), Errno.EXIST)
          expectErrno(() => root.openFile('live', CREATE_EXCL), Errno.EXIST)
        },
        ['symlinks'],
      )

      write(
        'openFile create on a symlink is LOOP and creates nothing',
        () => {
          root.symlink('target', 'dangling')
          expectErrno(() => root.openFile('dangling', CREATE), Errno.LOOP)
          expectAbsent(root, 'target')
        },
        ['symlinks'],
      )

      write('openFile for writing on a directory is ISDIR', () => {
        root.mkdir('d')
        expectErrno(() => root.openFile('d', CREATE), Errno.ISDIR)
        expectErrno(() => root.openFile('d', RW), Errno.ISDIR)
      })

      write('openFile create inside a subdirectory', () => {
        root.mkdir('d')
        const d = track(root.openDir('d'))
        track(d.openFile('f', CREATE)).write(enc.encode('in d'), 0n)
        expect(names(d)).toEqual(['f'])
        expect(readFile(d, 'f')).toBe('in d')
        expectAbsent(root, 'f')
      })

      write('openFile truncate empties an existing file', () => {
        writeFile(root, 'f', 'some content')
        const f = track(root.openFile('f', opts({ read: true, write: true, truncate: true })))
        expect(f.stat().size).toBe(0n)
        expect(root.statChild('f').size).toBe(0n)
      })

      write('write then read back through another handle', () => {
        const w = track(root.openFile('f', opts({ write: true, create: true })))
        expect(w.write(enc.encode('abc'), 0n)).toBe(3)
        const r = track(root.openFile('f', READ))
        expect(dec.decode(readBytes(r))).toBe('abc')
        w.write(enc.encode('def'), 3n)
        expect(dec.decode(readBytes(r))).toBe('abcdef')
      })

      write('write returns the byte count and extends the size', () => {
        const f = track(root.openFile('f', CREATE))
        expect(f.write(new Uint8Array(1000).fill(7), 0n)).toBe(1000)
        expect(f.stat().size).toBe(1000n)
        expect(root.statChild('f').size).toBe(1000n)
      })

      write('write of zero bytes changes nothing', () => {
        const f = track(root.openFile('f', CREATE))
        expect(f.write(new Uint8Array(0), 0n)).toBe(0)
        expect(f.write(new Uint8Array(0), 100n)).toBe(0)
        expect(f.stat().size).toBe(0n)
      })

      write('write past end of file zero-fills the hole', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('ab'), 0n)
        expect(f.write(enc.encode('z'), 10n)).toBe(1)
        expect(f.stat().size).toBe(11n)
        expect(Array.from(readBytes(f))).toEqual([97, 98, 0, 0, 0, 0, 0, 0, 0, 0, 122])
      })

      write('a sparse write far from the start reads back zeros before it', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('end'), 1_000_000n)
        expect(f.stat().size).toBe(1_000_003n)
        const buf = new Uint8Array(16).fill(0xff)
        expect(f.read(buf, 500_000n)).toBe(16)
        expect(buf.every((b) => b === 0)).toBe(true)
        expect(f.read(buf, 999_999n)).toBe(4)
        expect(Array.from(buf.subarray(0, 4))).toEqual([0, 101, 110, 100])
      })

      write('overwrite in the middle keeps the rest', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('hello world'), 0n)
        f.write(enc.encode('W'), 6n)
        expect(dec.decode(readBytes(f))).toBe('hello World')
      })

      write('many small appends accumulate in order', () => {
        const f = track(root.openFile('f', CREATE))
        let expected = ''
        for (let i = 0; i < 2000; i++) {
          const chunk = `${i % 10}`
          expect(f.write(enc.encode(chunk), BigInt(expected.length))).toBe(1)
          expected += chunk
        }
        expect(dec.decode(readBytes(f))).toBe(expected)
      })

      write('setSize shrinks, and growing again reads zeros (old bytes never resurface)', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('abcdefgh'), 0n)
        f.setSize(3n)
        expect(f.stat().size).toBe(3n)
        expect(dec.decode(readBytes(f))).toBe('abc')
        f.setSize(8n)
        expect(Array.from(readBytes(f))).toEqual([97, 98, 99, 0, 0, 0, 0, 0])
      })

      write('setSize grows with zeros and to the same size keeps content', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('xy'), 0n)
        f.setSize(2n)
        expect(dec.decode(readBytes(f))).toBe('xy')
        f.setSize(5n)
        expect(Array.from(readBytes(f))).toEqual([120, 121, 0, 0, 0])
        f.setSize(0n)
        expect(f.stat().size).toBe(0n)
      })

      write('allocate grows the file to offset+len and keeps content', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('abc'), 0n)
        f.allocate(2n, 10n)
        expect(f.stat().size).toBe(12n)
        const content = readBytes(f)
        expect(dec.decode(content.subarray(0, 3))).toBe('abc')
        expect(content.subarray(3).every((b) => b === 0)).toBe(true)
      })

      write('allocate inside the file never shrinks it', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('abcdef'), 0n)
        f.allocate(1n, 2n)
        expect(f.stat().size).toBe(6n)
        expect(dec.decode(readBytes(f))).toBe('abcdef')
      })

      write('write at 2^63-1 or beyond is FBIG or INVAL and changes nothing', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('abc'), 0n)
        expectErrno(() => f.write(enc.encode('x'), MAX_OFFSET), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.write(enc.encode('x'), 1n << 63n), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.write(enc.encode('x'), 1n << 64n), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.write(enc.encode('x'), -1n), Errno.INVAL)
        expect(f.stat().size).toBe(3n)
        expect(dec.decode(readBytes(f))).toBe('abc')
      })

      write('setSize beyond 2^63-1 or negative is FBIG or INVAL and changes nothing', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('abc'), 0n)
        expectErrno(() => f.setSize(1n << 63n), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.setSize(1n << 64n), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.setSize(-1n), [Errno.INVAL, Errno.FBIG])
        expect(f.stat().size).toBe(3n)
      })

      write('allocate beyond 2^63-1 or with a negative offset is FBIG or INVAL', () => {
        const f = track(root.openFile('f', CREATE))
        expectErrno(() => f.allocate(MAX_OFFSET, 10n), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.allocate(0n, 1n << 63n), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.allocate(1n << 64n, 1n), [Errno.FBIG, Errno.INVAL])
        expectErrno(() => f.allocate(-1n, 10n), Errno.INVAL)
        expect(f.stat().size).toBe(0n)
      })

      write('read on a write-only handle is BADF', () => {
        writeFile(root, 'f', 'abc')
        const f = track(root.openFile('f', WRITE))
        expectErrno(() => f.read(new Uint8Array(3), 0n), Errno.BADF)
      })

      write('write on a read-only handle is BADF', () => {
        writeFile(root, 'f', 'abc')
        const f = track(root.openFile('f', READ))
        expectErrno(() => f.write(enc.encode('x'), 0n), Errno.BADF)
        expect(readFile(root, 'f')).toBe('abc')
      })

      write('setSize on a read-only handle is BADF or INVAL', () => {
        writeFile(root, 'f', 'abc')
        const f = track(root.openFile('f', READ))
        expectErrno(() => f.setSize(0n), [Errno.BADF, Errno.INVAL])
        expect(root.statChild('f').size).toBe(3n)
      })

      write('two handles on one file share content and size', () => {
        const a = track(root.openFile('f', CREATE))
        const b = track(root.openFile('f', RW))
        a.write(enc.encode('12345'), 0n)
        expect(b.stat().size).toBe(5n)
        b.setSize(2n)
        expect(dec.decode(readBytes(a))).toBe('12')
      })

      write('sync and datasync succeed on a write handle', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('x'), 0n)
        f.sync()
        f.datasync()
      })
    })

    writeGroup('directories and symlinks', () => {
      write('mkdir creates an empty directory', () => {
        root.mkdir('d')
        expect(root.statChild('d').filetype).toBe(Filetype.DIRECTORY)
        expect(track(root.openDir('d')).readdir()).toEqual([])
        expect(names(root)).toEqual(['d'])
      })

      write('mkdir nests through openDir', () => {
        root.mkdir('a')
        const a = track(root.openDir('a'))
        a.mkdir('b')
        const b = track(a.openDir('b'))
        b.mkdir('c')
        expect(names(a)).toEqual(['b'])
        expect(names(b)).toEqual(['c'])
        expectAbsent(root, 'b')
      })

      write('mkdir on an existing name is EXIST', () => {
        root.mkdir('d')
        writeFile(root, 'f', '')
        expectErrno(() => root.mkdir('d'), Errno.EXIST)
        expectErrno(() => root.mkdir('f'), Errno.EXIST)
        expect(root.statChild('f').filetype).toBe(Filetype.REGULAR_FILE)
      })

      write(
        'mkdir on an existing symlink is EXIST (not followed)',
        () => {
          root.symlink('target', 'l')
          expectErrno(() => root.mkdir('l'), Errno.EXIST)
          expectAbsent(root, 'target')
        },
        ['symlinks'],
      )

      write(
        'symlink stores the target as given',
        () => {
          const targets = ['a', '../x', '/abs/path', 'a/b/c', 'dir/', '..', 'ünï cödé']
          targets.forEach((t, i) => root.symlink(t, `l${i}`))
          targets.forEach((t, i) => {
            expect(root.readlink(`l${i}`)).toBe(t)
            const st = root.statChild(`l${i}`)
            expect(st.filetype).toBe(Filetype.SYMBOLIC_LINK)
            expect(st.size).toBe(BigInt(enc.encode(t).length))
          })
        },
        ['symlinks'],
      )

      write(
        'symlink on an existing name is EXIST',
        () => {
          writeFile(root, 'f', 'x')
          root.mkdir('d')
          root.symlink('f', 'l')
          expectErrno(() => root.symlink('other', 'f'), Errno.EXIST)
          expectErrno(() => root.symlink('other', 'd'), Errno.EXIST)
          expectErrno(() => root.symlink('other', 'l'), Errno.EXIST)
          expect(root.readlink('l')).toBe('f')
          expect(readFile(root, 'f')).toBe('x')
        },
        ['symlinks'],
      )

      write(
        'symlink with an empty target is NOENT or INVAL',
        () => {
          expectErrno(() => root.symlink('', 'l'), [Errno.NOENT, Errno.INVAL])
          expectAbsent(root, 'l')
        },
        ['symlinks'],
      )

      write(
        'readdir reports a symlink as a symlink',
        () => {
          root.symlink('x', 'l')
          expect(root.readdir()).toEqual([expect.objectContaining({ name: 'l', filetype: Filetype.SYMBOLIC_LINK })])
        },
        ['symlinks'],
      )

      write('unlink removes a file', () => {
        writeFile(root, 'f', 'x')
        root.unlink('f')
        expectAbsent(root, 'f')
        expect(root.readdir()).toEqual([])
      })

      write(
        'unlink removes a symlink, not its target',
        () => {
          writeFile(root, 'f', 'x')
          root.symlink('f', 'l')
          root.unlink('l')
          expectAbsent(root, 'l')
          expect(readFile(root, 'f')).toBe('x')
        },
        ['symlinks'],
      )

      write('unlink of a directory is ISDIR or PERM', () => {
        root.mkdir('d')
        expectErrno(() => root.unlink('d'), [Errno.ISDIR, Errno.PERM])
        expect(root.statChild('d').filetype).toBe(Filetype.DIRECTORY)
      })

      write('unlink of a missing name is NOENT', () => {
        expectErrno(() => root.unlink('nope'), Errno.NOENT)
      })

      write('rmdir removes an empty directory', () => {
        root.mkdir('d')
        root.rmdir('d')
        expectAbsent(root, 'd')
      })

      write('rmdir of a non-empty directory is NOTEMPTY or EXIST', () => {
        root.mkdir('d')
        const d = track(root.openDir('d'))
        writeFile(d, 'f', 'x')
        expectErrno(() => root.rmdir('d'), [Errno.NOTEMPTY, Errno.EXIST])
        d.unlink('f')
        d.mkdir('sub')
        expectErrno(() => root.rmdir('d'), [Errno.NOTEMPTY, Errno.EXIST])
        expect(names(d)).toEqual(['sub'])
      })

      write('rmdir of a file is NOTDIR', () => {
        writeFile(root, 'f', 'x')
        expectErrno(() => root.rmdir('f'), Errno.NOTDIR)
        expect(readFile(root, 'f')).toBe('x')
      })

      write(
        'rmdir of a symlink to a directory is NOTDIR',
        () => {
          root.mkdir('d')
          root.symlink('d', 'l')
          expectErrno(() => root.rmdir('l'), Errno.NOTDIR)
          expect(root.statChild('d').filetype).toBe(Filetype.DIRECTORY)
          expect(root.statChild('l').filetype).toBe(Filetype.SYMBOLIC_LINK)
        },
        ['symlinks'],
      )

      write('rmdir of a missing name is NOENT', () => {
        expectErrno(() => root.rmdir('nope'), Errno.NOENT)
      })

      write('readdir reflects creations and removals', () => {
        writeFile(root, 'a', '')
        root.mkdir('b')
        writeFile(root, 'c', '')
        expect(names(root)).toEqual(['a', 'b', 'c'])
        root.unlink('a')
        root.rmdir('b')
        expect(names(root)).toEqual(['c'])
        const entry = root.readdir()[0]
        expect(entry?.filetype).toBe(Filetype.REGULAR_FILE)
        expect(entry?.ino).toBe(root.statChild('c').ino)
      })

      write('readdir stays stable across repeated calls after changes', () => {
        for (const n of ['q', 'w', 'e', 'r', 't', 'y']) writeFile(root, n, n)
        root.unlink('e')
        const first = root.readdir().map((e) => e.name)
        expect(root.readdir().map((e) => e.name)).toEqual(first)
        expect([...first].sort()).toEqual(['q', 'r', 't', 'w', 'y'])
      })

      write('names that look like object keys are ordinary names', () => {
        const special = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype']
        for (const n of special) writeFile(root, n, n)
        root.mkdir('valueOf')
        expect(names(root)).toEqual([...special, 'valueOf'].sort())
        for (const n of special) expect(readFile(root, n)).toBe(n)
        expect(root.statChild('valueOf').filetype).toBe(Filetype.DIRECTORY)
        root.unlink('__proto__')
        expectAbsent(root, '__proto__')
        expectAbsent(root, '__defineGetter__')
      })

      write('names with spaces, backslashes, dots and unicode are ordinary names', () => {
        const odd = [' lead', 'trail ', 'a\\b', '...', '.hidden', 'ünïcödé', '日本語', 'a:b', '-']
        for (const n of odd) writeFile(root, n, n)
        expect(names(root)).toEqual([...odd].sort())
        for (const n of odd) expect(readFile(root, n)).toBe(n)
      })

      write('a removed directory accepts no new entries (NOENT) and lists nothing', () => {
        root.mkdir('d')
        const d = track(root.openDir('d'))
        root.rmdir('d')
        expectErrno(() => d.openFile('f', CREATE), Errno.NOENT)
        expectErrno(() => d.mkdir('sub'), Errno.NOENT)
        expect(d.readdir()).toEqual([])
        expect(d.stat().filetype).toBe(Filetype.DIRECTORY)
        expectAbsent(root, 'd')
      })

      write(
        'symlink inside a removed directory is NOENT',
        () => {
          root.mkdir('d')
          const d = track(root.openDir('d'))
          root.rmdir('d')
          expectErrno(() => d.symlink('x', 'l'), Errno.NOENT)
        },
        ['symlinks'],
      )
    })

    writeGroup('rename', () => {
      write('rename a file within a directory keeps its inode and content', () => {
        writeFile(root, 'a', 'content')
        const ino = root.statChild('a').ino
        root.rename('a', root, 'b')
        expectAbsent(root, 'a')
        expect(root.statChild('b').ino).toBe(ino)
        expect(readFile(root, 'b')).toBe('content')
        expect(names(root)).toEqual(['b'])
      })

      write('rename a file into another directory', () => {
        writeFile(root, 'a', 'content')
        root.mkdir('d')
        const d = track(root.openDir('d'))
        root.rename('a', d, 'a')
        expectAbsent(root, 'a')
        expect(readFile(d, 'a')).toBe('content')
      })

      write('rename a file out of a subdirectory', () => {
        root.mkdir('d')
        const d = track(root.openDir('d'))
        writeFile(d, 'f', 'x')
        d.rename('f', root, 'g')
        expect(d.readdir()).toEqual([])
        expect(readFile(root, 'g')).toBe('x')
      })

      write('rename a file over a file replaces it', () => {
        writeFile(root, 'a', 'new')
        writeFile(root, 'b', 'old')
        const ino = root.statChild('a').ino
        root.rename('a', root, 'b')
        expectAbsent(root, 'a')
        expect(root.statChild('b').ino).toBe(ino)
        expect(readFile(root, 'b')).toBe('new')
        expect(names(root)).toEqual(['b'])
      })

      write('a file replaced by rename stays readable through an open handle', () => {
        writeFile(root, 'a', 'new')
        writeFile(root, 'b', 'old')
        const held = track(root.openFile('b', READ))
        root.rename('a', root, 'b')
        expect(dec.decode(readBytes(held))).toBe('old')
        expect(held.stat().nlink).toBe(0n)
      })

      write('rename a directory over an empty directory replaces it', () => {
        root.mkdir('a')
        const a = track(root.openDir('a'))
        writeFile(a, 'f', 'x')
        root.mkdir('b')
        const ino = root.statChild('a').ino
        root.rename('a', root, 'b')
        expectAbsent(root, 'a')
        expect(root.statChild('b').ino).toBe(ino)
        const b = track(root.openDir('b'))
        expect(readFile(b, 'f')).toBe('x')
      })

      write('rename a directory over a non-empty directory is NOTEMPTY or EXIST', () => {
        root.mkdir('a')
        root.mkdir('b')
        writeFile(track(root.openDir('b')), 'f', 'x')
        expectErrno(() => root.rename('a', root, 'b'), [Errno.NOTEMPTY, Errno.EXIST])
        expect(root.statChild('a').filetype).toBe(Filetype.DIRECTORY)
        expect(names(track(root.openDir('b')))).toEqual(['f'])
      })

      write('rename a file over a directory is ISDIR', () => {
        writeFile(root, 'f', 'x')
        root.mkdir('d')
        expectErrno(() => root.rename('f', root, 'd'), Errno.ISDIR)
        expect(readFile(root, 'f')).toBe('x')
        expect(root.statChild('d').filetype).toBe(Filetype.DIRECTORY)
      })

      write('rename a directory over a file is NOTDIR', () => {
        writeFile(root, 'f', 'x')
        root.mkdir('d')
        expectErrno(() => root.rename('d', root, 'f'), Errno.NOTDIR)
        expect(readFile(root, 'f')).toBe('x')
        expect(root.statChild('d').filetype).toBe(Filetype.DIRECTORY)
      })

      write('rename a directory into its own subtree is INVAL', () => {
        root.mkdir('a')
        const a = track(root.openDir('a'))
        a.mkdir('b')
        const b = track(a.openDir('b'))
        expectErrno(() => root.rename('a', a, 'x'), Errno.INVAL)
        expectErrno(() => root.rename('a', b, 'x'), Errno.INVAL)
        expect(names(root)).toEqual(['a'])
        expect(names(a)).toEqual(['b'])
        expect(b.readdir()).toEqual([])
      })

      write('rename into the subtree of a directory moved earlier is INVAL', () => {
        root.mkdir('a')
        root.mkdir('b')
        const a = track(root.openDir('a'))
        const b = track(root.openDir('b'))
        root.rename('a', b, 'a')
        expectErrno(() => root.rename('b', a, 'b'), Errno.INVAL)
        expect(names(root)).toEqual(['b'])
        expect(names(b)).toEqual(['a'])
        expect(a.readdir()).toEqual([])
      })

      write('rename into a removed directory is NOENT', () => {
        writeFile(root, 'f', 'x')
        root.mkdir('d')
        const d = track(root.openDir('d'))
        root.rmdir('d')
        expectErrno(() => root.rename('f', d, 'f'), Errno.NOENT)
        expect(readFile(root, 'f')).toBe('x')
      })

      write('rename to itself is a no-op', () => {
        writeFile(root, 'f', 'x')
        root.mkdir('d')
        root.rename('f', root, 'f')
        root.rename('d', root, 'd')
        const again = track(backend.fs.root())
        root.rename('f', again, 'f')
        expect(readFile(root, 'f')).toBe('x')
        expect(names(root)).toEqual(['d', 'f'])
      })

      write(
        'rename between two hard links of one file does nothing',
        () => {
          writeFile(root, 'a', 'x')
          root.link('a', root, 'b')
          root.rename('a', root, 'b')
          expect(names(root)).toEqual(['a', 'b'])
          expect(root.statChild('a').nlink).toBe(2n)
        },
        ['hardLinks'],
      )

      write('rename of a missing name is NOENT', () => {
        expectErrno(() => root.rename('nope', root, 'x'), Errno.NOENT)
        expectAbsent(root, 'x')
      })

      write(
        'rename moves a symlink, not its target',
        () => {
          writeFile(root, 'f', 'x')
          root.symlink('f', 'l')
          root.rename('l', root, 'm')
          expect(root.readlink('m')).toBe('f')
          expectAbsent(root, 'l')
          expect(readFile(root, 'f')).toBe('x')
        },
        ['symlinks'],
      )

      write(
        'rename a file over a symlink replaces the link, not its target',
        () => {
          writeFile(root, 'target', 'keep')
          root.symlink('target', 'l')
          writeFile(root, 'f', 'new')
          root.rename('f', root, 'l')
          expect(root.statChild('l').filetype).toBe(Filetype.REGULAR_FILE)
          expect(readFile(root, 'l')).toBe('new')
          expect(readFile(root, 'target')).toBe('keep')
        },
        ['symlinks'],
      )

      write('a directory handle stays valid after the directory is renamed', () => {
        root.mkdir('a')
        const a = track(root.openDir('a'))
        root.rename('a', root, 'b')
        writeFile(a, 'f', 'through the old handle')
        const b = track(root.openDir('b'))
        expect(readFile(b, 'f')).toBe('through the old handle')
        expect(a.stat().ino).toBe(b.stat().ino)
      })

      write('a directory handle stays valid after an ancestor is renamed', () => {
        root.mkdir('a')
        const a = track(root.openDir('a'))
        a.mkdir('b')
        const b = track(a.openDir('b'))
        root.mkdir('z')
        root.rename('a', track(root.openDir('z')), 'moved')
        writeFile(b, 'f', 'x')
        const moved = track(track(root.openDir('z')).openDir('moved'))
        expect(readFile(track(moved.openDir('b')), 'f')).toBe('x')
      })

      write('a moved directory keeps its content', () => {
        root.mkdir('a')
        const a = track(root.openDir('a'))
        writeFile(a, 'one', '1')
        a.mkdir('two')
        root.mkdir('dest')
        const dest = track(root.openDir('dest'))
        root.rename('a', dest, 'a2')
        const a2 = track(dest.openDir('a2'))
        expect(names(a2)).toEqual(['one', 'two'])
        expect(readFile(a2, 'one')).toBe('1')
      })

      write('rename to a directory of another filesystem instance is XDEV', async () => {
        writeFile(root, 'f', 'x')
        const other = await another()
        expectErrno(() => root.rename('f', other, 'f'), Errno.XDEV)
        expect(readFile(root, 'f')).toBe('x')
        expect(other.readdir()).toEqual([])
      })
    })

    writeGroup('hard links', () => {
      write(
        'link creates a second name for the same inode',
        () => {
          writeFile(root, 'a', 'shared')
          root.link('a', root, 'b')
          const sa = root.statChild('a')
          const sb = root.statChild('b')
          expect(sb.ino).toBe(sa.ino)
          expect(sa.nlink).toBe(2n)
          expect(sb.nlink).toBe(2n)
          expect(readFile(root, 'b')).toBe('shared')
        },
        ['hardLinks'],
      )

      write(
        'writes through one hard link are seen through the other',
        () => {
          writeFile(root, 'a', 'v1')
          root.link('a', root, 'b')
          const f = track(root.openFile('a', RW))
          f.write(enc.encode('v2!'), 0n)
          expect(readFile(root, 'b')).toBe('v2!')
        },
        ['hardLinks'],
      )

      write(
        'unlink of one hard link keeps the other',
        () => {
          writeFile(root, 'a', 'x')
          root.link('a', root, 'b')
          root.unlink('a')
          expectAbsent(root, 'a')
          expect(readFile(root, 'b')).toBe('x')
          expect(root.statChild('b').nlink).toBe(1n)
        },
        ['hardLinks'],
      )

      write(
        'nlink counts every link, unlink and rename over a link',
        () => {
          writeFile(root, 'a', 'x')
          root.mkdir('d')
          const d = track(root.openDir('d'))
          root.link('a', root, 'b')
          root.link('a', d, 'c')
          expect(root.statChild('a').nlink).toBe(3n)
          root.unlink('b')
          expect(d.statChild('c').nlink).toBe(2n)
          writeFile(root, 'other', 'y')
          root.rename('other', d, 'c')
          expect(root.statChild('a').nlink).toBe(1n)
          expect(readFile(d, 'c')).toBe('y')
        },
        ['hardLinks'],
      )

      write(
        'link into another directory',
        () => {
          writeFile(root, 'a', 'x')
          root.mkdir('d')
          const d = track(root.openDir('d'))
          root.link('a', d, 'a')
          expect(d.statChild('a').ino).toBe(root.statChild('a').ino)
          expect(readFile(d, 'a')).toBe('x')
        },
        ['hardLinks'],
      )

      write(
        'link of a directory is PERM',
        () => {
          root.mkdir('d')
          expectErrno(() => root.link('d', root, 'e'), Errno.PERM)
          expectAbsent(root, 'e')
        },
        ['hardLinks'],
      )

      write(
        'link onto an existing name is EXIST',
        () => {
          writeFile(root, 'a', 'x')
          writeFile(root, 'b', 'y')
          root.mkdir('d')
          expectErrno(() => root.link('a', root, 'b'), Errno.EXIST)
          expectErrno(() => root.link('a', root, 'd'), Errno.EXIST)
          expect(readFile(root, 'b')).toBe('y')
          expect(root.statChild('a').nlink).toBe(1n)
        },
        ['hardLinks'],
      )

      write(
        'link of a missing name is NOENT',
        () => {
          expectErrno(() => root.link('nope', root, 'x'), Errno.NOENT)
          expectAbsent(root, 'x')
        },
        ['hardLinks'],
      )

      write(
        'link of a symlink links the symlink itself (no follow)',
        () => {
          writeFile(root, 'f', 'x')
          root.symlink('f', 'l')
          root.link('l', root, 'l2')
          expect(root.statChild('l2').filetype).toBe(Filetype.SYMBOLIC_LINK)
          expect(root.readlink('l2')).toBe('f')
          expect(root.statChild('f').nlink).toBe(1n)
        },
        ['hardLinks', 'symlinks'],
      )

      write(
        'link into a directory of another filesystem instance is XDEV',
        async () => {
          writeFile(root, 'f', 'x')
          const other = await another()
          expectErrno(() => root.link('f', other, 'f'), Errno.XDEV)
          expect(other.readdir()).toEqual([])
          expect(root.statChild('f').nlink).toBe(1n)
        },
        ['hardLinks'],
      )

      write(
        'link into a removed directory is NOENT',
        () => {
          writeFile(root, 'f', 'x')
          root.mkdir('d')
          const d = track(root.openDir('d'))
          root.rmdir('d')
          expectErrno(() => root.link('f', d, 'f'), Errno.NOENT)
          expect(root.statChild('f').nlink).toBe(1n)
        },
        ['hardLinks'],
      )
    })

    writeGroup('unlink while open', () => {
      write('an unlinked file stays readable and writable through an open handle', () => {
        writeFile(root, 'f', 'before')
        const h = track(root.openFile('f', RW))
        root.unlink('f')
        expectAbsent(root, 'f')
        expect(dec.decode(readBytes(h))).toBe('before')
        expect(h.write(enc.encode('+after'), 6n)).toBe(6)
        expect(dec.decode(readBytes(h))).toBe('before+after')
        h.setSize(3n)
        expect(dec.decode(readBytes(h))).toBe('bef')
        expect(h.stat().nlink).toBe(0n)
        expect(root.readdir()).toEqual([])
      })

      write('a new file under an unlinked name is a different file', () => {
        writeFile(root, 'f', 'old')
        const h = track(root.openFile('f', READ))
        root.unlink('f')
        writeFile(root, 'f', 'new')
        expect(dec.decode(readBytes(h))).toBe('old')
        expect(readFile(root, 'f')).toBe('new')
      })
    })

    writeGroup('timestamps', () => {
      write('setTimes sets exact times on a file', () => {
        const f = track(root.openFile('f', CREATE))
        f.setTimes(T1, T2)
        const st = f.stat()
        expect(st.atim).toBe(T1)
        expect(st.mtim).toBe(T2)
        expect(root.statChild('f').mtim).toBe(T2)
      })

      write('setTimes with undefined leaves that time unchanged', () => {
        const f = track(root.openFile('f', CREATE))
        f.setTimes(T1, T2)
        f.setTimes(undefined, T1)
        expect(f.stat().atim).toBe(T1)
        expect(f.stat().mtim).toBe(T1)
        f.setTimes(T2, undefined)
        expect(f.stat().atim).toBe(T2)
        expect(f.stat().mtim).toBe(T1)
      })

      write('setTimes now moves a time forward', () => {
        const f = track(root.openFile('f', CREATE))
        f.setTimes(OLD, OLD)
        f.setTimes('now', undefined)
        expect(f.stat().atim).toBeGreaterThan(OLD)
        expect(f.stat().mtim).toBe(OLD)
        f.setTimes(undefined, 'now')
        expect(f.stat().mtim).toBeGreaterThan(OLD)
      })

      write('setTimes works on a handle opened read-only', () => {
        writeFile(root, 'f', 'x')
        const f = track(root.openFile('f', READ))
        f.setTimes(T1, T2)
        expect(root.statChild('f').mtim).toBe(T2)
      })

      write('setTimes on a directory handle', () => {
        root.mkdir('d')
        const d = track(root.openDir('d'))
        d.setTimes(T1, T2)
        expect(root.statChild('d').atim).toBe(T1)
        expect(root.statChild('d').mtim).toBe(T2)
      })

      write('setTimes leaves ctim no older than before', () => {
        const f = track(root.openFile('f', CREATE))
        const before = f.stat().ctim
        f.setTimes(OLD, OLD)
        expect(f.stat().ctim).toBeGreaterThanOrEqual(before)
      })

      write('setTimesChild sets the times of a file and of a directory', () => {
        writeFile(root, 'f', 'x')
        root.mkdir('d')
        root.setTimesChild('f', T1, T2)
        root.setTimesChild('d', T2, T1)
        expect(root.statChild('f').atim).toBe(T1)
        expect(root.statChild('f').mtim).toBe(T2)
        expect(root.statChild('d').atim).toBe(T2)
        expect(root.statChild('d').mtim).toBe(T1)
      })

      write(
        'setTimesChild on a symlink does not follow it',
        () => {
          writeFile(root, 'f', 'x')
          root.setTimesChild('f', T1, T1)
          root.symlink('f', 'l')
          root.setTimesChild('l', T2, T2)
          expect(root.statChild('l').mtim).toBe(T2)
          expect(root.statChild('f').mtim).toBe(T1)
          expect(root.statChild('f').atim).toBe(T1)
        },
        ['symlinks'],
      )

      write('setTimesChild on a missing name is NOENT', () => {
        expectErrno(() => root.setTimesChild('nope', T1, T1), Errno.NOENT)
      })

      write('write updates mtim', () => {
        const f = track(root.openFile('f', CREATE))
        f.setTimes(OLD, OLD)
        f.write(enc.encode('x'), 0n)
        expect(f.stat().mtim).toBeGreaterThan(OLD)
      })

      write('setSize updates mtim', () => {
        const f = track(root.openFile('f', CREATE))
        f.write(enc.encode('abc'), 0n)
        f.setTimes(OLD, OLD)
        f.setSize(1n)
        expect(f.stat().mtim).toBeGreaterThan(OLD)
      })

      write('open with truncate updates mtim', () => {
        writeFile(root, 'f', 'abc')
        root.setTimesChild('f', OLD, OLD)
        track(root.openFile('f', opts({ write: true, truncate: true })))
        expect(root.statChild('f').mtim).toBeGreaterThan(OLD)
      })

      write('creating an entry updates the directory mtim', () => {
        root.mkdir('d')
        const d = track(root.openDir('d'))
        d.setTimes(OLD, OLD)
        track(d.openFile('f', CREATE))
        expect(d.stat().mtim).toBeGreaterThan(OLD)
        d.setTimes(OLD, OLD)
        d.mkdir('sub')
        expect(d.stat().mtim).toBeGreaterThan(OLD)
      })

      write(
        'creating a symlink updates the directory mtim',
        () => {
          root.mkdir('d')
          const d = track(root.openDir('d'))
          d.setTimes(OLD, OLD)
          d.symlink('x', 'l')
          expect(d.stat().mtim).toBeGreaterThan(OLD)
        },
        ['symlinks'],
      )

      write('unlink and rmdir update the directory mtim', () => {
        root.mkdir('d')
        const d = track(root.openDir('d'))
        writeFile(d, 'f', 'x')
        d.mkdir('sub')
        d.setTimes(OLD, OLD)
        d.unlink('f')
        expect(d.stat().mtim).toBeGreaterThan(OLD)
        d.setTimes(OLD, OLD)
        d.rmdir('sub')
        expect(d.stat().mtim).toBeGreaterThan(OLD)
      })

      write('rename updates the mtim of both directories', () => {
        root.mkdir('a')
        root.mkdir('b')
        const a = track(root.openDir('a'))
        const b = track(root.openDir('b'))
        writeFile(a, 'f', 'x')
        a.setTimes(OLD, OLD)
        b.setTimes(OLD, OLD)
        a.rename('f', b, 'f')
        expect(a.stat().mtim).toBeGreaterThan(OLD)
        expect(b.stat().mtim).toBeGreaterThan(OLD)
      })

      write(
        'link updates the target directory mtim',
        () => {
          writeFile(root, 'f', 'x')
          root.mkdir('d')
          const d = track(root.openDir('d'))
          d.setTimes(OLD, OLD)
          root.link('f', d, 'f')
          expect(d.stat().mtim).toBeGreaterThan(OLD)
        },
        ['hardLinks'],
      )

      write('reading does not change mtim', () => {
        writeFile(root, 'f', 'abc')
        root.setTimesChild('f', T1, T1)
        readFile(root, 'f')
        expect(root.statChild('f').mtim).toBe(T1)
      })
    })

    writeGroup('name validation', () => {
      write('every name-taking mutation rejects a non-component with INVAL', () => {
        writeFile(root, 'f', 'x')
        root.mkdir('d')
        const calls: [string, (bad: string) => unknown][] = [
          ['openFile create', (bad) => root.openFile(bad, CREATE)],
          ['mkdir', (bad) => root.mkdir(bad)],
          ['unlink', (bad) => root.unlink(bad)],
          ['rmdir', (bad) => root.rmdir(bad)],
          ['rename from', (bad) => root.rename(bad, root, 'g')],
          ['rename to', (bad) => root.rename('f', root, bad)],
          ['setTimesChild', (bad) => root.setTimesChild(bad, T1, T1)],
        ]
        if (caps.symlinks) calls.push(['symlink', (bad) => root.symlink('f', bad)])
        if (caps.hardLinks) {
          calls.push(['link from', (bad) => root.link(bad, root, 'g')])
          calls.push(['link to', (bad) => root.link('f', root, bad)])
        }
        for (const [label, call] of calls) {
          for (const bad of BAD_NAMES)
            expect(
              errnoOf(() => call(bad)),
              `${label} ${JSON.stringify(bad)}`,
            ).toBe('INVAL')
        }
        expect(names(root)).toEqual(['d', 'f'])
        expect(readFile(root, 'f')).toBe('x')
        expect(root.statChild('f').mtim).not.toBe(T1)
      })

      write(
        'a symlink target is not a name: it may hold slashes and dots',
        () => {
          root.symlink('a/../b/./c', 'l')
          expect(root.readlink('l')).toBe('a/../b/./c')
        },
        ['symlinks'],
      )
    })

    it('skip list names only tests that exist', () => {
      const unknown = [...skipReason.keys()].filter((t) => !known.has(t))
      expect(unknown, 'stale or misspelt skip entries').toEqual([])
    })
  })
}
