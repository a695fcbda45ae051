/**
 * @module `withQuota(fs, quota)`: the contract suite through the wrapper (MemFs and a host temp
 * dir), then its own promises: a guest filling the disk gets `DQUOT` with everything written
 * before intact; refusals happen before the backend is asked; inode and shared quotas; the
 * sequences that fool naive accounting (write/unlink/rewrite, link-then-unlink,
 * truncate-up-then-write, rename over a file, holding an unlinked file open); no stat per write on
 * the hot path; and property tests (fast-check) over random operation sequences on MemFs, on two
 * overlapping mounts, and on a real host directory, where the bytes on disk are measured.
 */
import * as nodeFs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Errno, Filetype, errnoName } from '../../../wasi-host/abi/constants.js'
import { WasiError } from '../../../wasi-host/errors.js'
import type { DirEntry, DirHandle, FileHandle, Filesystem, OpenFileOptions, TimeSpec } from '../../../wasi-host/fs/filesystem.js'
import { createMemFs, memFsFromTree } from '../../../wasi-host/fs/mem-fs.js'
import { createQuotaUsage, LINK_NAME_BYTES, withQuota, type QuotaFilesystem, type QuotaUsage } from '../../../wasi-host/fs/quota.js'
import { createHostDirFs } from '../../../wasi-host/node/host-dir-fs.js'
import { errnoOrOk as errnoOf, runBackendSuite } from './fs-backend.case.js'

const BIG_QUOTA = { bytes: 1 << 30, inodes: 1 << 20 }
/** Fixed seeds: a failure reproduces; `FUZZ_SEED` explores others. */
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x9a07a)
const RUNS = Number(process.env['QUOTA_RUNS'] ?? 150)
/** Long runs (`scripts/fuzz.mjs --quota`) take as long as they need. */
const PROPERTY_TIMEOUT = Math.max(30_000, RUNS * 100)

runBackendSuite('withQuota(MemFs) contract', () => ({ fs: withQuota(createMemFs(), BIG_QUOTA) }))

runBackendSuite('withQuota(HostDirFs) contract', () => {
  const tmp = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'caplet-quota-'))
  const mounted = createHostDirFs(tmp)
  return {
    fs: withQuota(mounted, BIG_QUOTA),
    cleanup: () => {
      mounted.close()
      nodeFs.rmSync(tmp, { recursive: true, force: true })
    },
  }
})

// ---- helpers ----------------------------------------------------------------------------

const enc = new TextEncoder()
const dec = new TextDecoder()

function opts(o: Partial<OpenFileOptions>): OpenFileOptions {
  return { read: false, write: false, create: false, exclusive: false, truncate: false, ...o }
}
const READ = opts({ read: true })
const RW = opts({ read: true, write: true })
const CREATE = opts({ read: true, write: true, create: true })
const CREATE_TRUNC = opts({ read: true, write: true, create: true, truncate: true })

/** The errno name a call throws, or `'ok'`; anything but a `WasiError` fails the test. */

function bytes(n: number, fill = 0x61): Uint8Array {
  return new Uint8Array(n).fill(fill)
}

function writeAll(dir: DirHandle, name: string, content: Uint8Array | string): void {
  const f = dir.openFile(name, CREATE_TRUNC)
  try {
    const b = typeof content === 'string' ? enc.encode(content) : content
    if (b.length > 0) expect(f.write(b, 0n)).toBe(b.length)
  } finally {
    f.close()
  }
}

function readAll(dir: DirHandle, name: string): Uint8Array {
  const f = dir.openFile(name, READ)
  try {
    const buf = new Uint8Array(Number(f.stat().size))
    let off = 0
    while (off < buf.length) {
      const n = f.read(buf.subarray(off), BigInt(off))
      if (n === 0) break
      off += n
    }
    return buf.subarray(0, off)
  } finally {
    f.close()
  }
}

interface Tap {
  fs: Filesystem
  /** Every backend call made through the tap, by name. */
  log: string[]
  /** The raw file handles currently open (to measure open-but-unlinked files without the wrapper). */
  open: Set<FileHandle>
}

/**
 * A transparent layer *below* the quota wrapper: logs each backend call and keeps the raw open
 * file handles, so tests can tell whether the backend was asked, and measure what it holds.
 * Two-handle calls unwrap the target so the backend's brand check sees its own handle.
 */
function tapFs(inner: Filesystem): Tap {
  const log: string[] = []
  const open = new Set<FileHandle>()
  const innerOf = new WeakMap<DirHandle, DirHandle>()
  const file = (f: FileHandle): FileHandle => {
    open.add(f)
    return {
      kind: 'file',
      get filetype() {
        return f.filetype
      },
      stat: () => {
        log.push('file.stat')
        return f.stat()
      },
      read: (d, p) => {
        log.push('read')
        return f.read(d, p)
      },
      write: (s, p) => {
        log.push('write')
        return f.write(s, p)
      },
      setSize: (s) => {
        log.push('setSize')
        f.setSize(s)
      },
      setTimes: (a: TimeSpec, m: TimeSpec) => f.setTimes(a, m),
      allocate: (o, l) => {
        log.push('allocate')
        f.allocate(o, l)
      },
      sync: () => f.sync(),
      datasync: () => f.datasync(),
      close: () => {
        open.delete(f)
        f.close()
      },
    }
  }
  const dir = (d: DirHandle): DirHandle => {
    const unwrap = (h: DirHandle): DirHandle => innerOf.get(h) ?? h
    const w: DirHandle = {
      kind: 'dir',
      stat: () => d.stat(),
      setTimes: (a, m) => d.setTimes(a, m),
      statChild: (n) => {
        log.push('statChild')
        return d.statChild(n)
      },
      openDir: (n) => {
        log.push('openDir')
        return dir(d.openDir(n))
      },
      openFile: (n, o) => {
        log.push('openFile')
        return file(d.openFile(n, o))
      },
      readlink: (n) => d.readlink(n),
      mkdir: (n) => {
        log.push('mkdir')
        d.mkdir(n)
      },
      symlink: (t, n) => {
        log.push('symlink')
        d.symlink(t, n)
      },
      unlink: (n) => {
        log.push('unlink')
        d.unlink(n)
      },
      rmdir: (n) => {
        log.push('rmdir')
        d.rmdir(n)
      },
      rename: (n, to, tn) => {
        log.push('rename')
        d.rename(n, unwrap(to), tn)
      },
      link: (n, to, tn) => {
        log.push('link')
        d.link(n, unwrap(to), tn)
      },
      setTimesChild: (n, a, m) => d.setTimesChild(n, a, m),
      readdir: (): readonly DirEntry[] => d.readdir(),
      close: () => d.close(),
    }
    innerOf.set(w, d)
    return w
  }
  return { fs: { caps: inner.caps, root: () => dir(inner.root()) }, log, open }
}

/**
 * What the backend really holds, seen without the wrapper: the sizes of regular files and
 * symlinks and the number of nodes (root excluded), reachable from the root or held open
 * (unlinked), each node once.
 */
function measure(raw: Filesystem, open: Iterable<FileHandle> = []): { bytes: number; fileBytes: number; inodes: number } {
  const seen = new Map<bigint, { filetype: number; size: number }>()
  const walk = (d: DirHandle): void => {
    for (const e of d.readdir()) {
      const st = d.statChild(e.name)
      if (!seen.has(st.ino)) seen.set(st.ino, { filetype: st.filetype, size: Number(st.size) })
      if (st.filetype === Filetype.DIRECTORY) {
        const sub = d.openDir(e.name)
        try {
          walk(sub)
        } finally {
          sub.close()
        }
      }
    }
  }
  const root = raw.root()
  try {
    walk(root)
  } finally {
    root.close()
  }
  for (const h of open) {
    const st = h.stat()
    if (!seen.has(st.ino)) seen.set(st.ino, { filetype: st.filetype, size: Number(st.size) })
  }
  let b = 0
  let fileBytes = 0
  for (const n of seen.values()) {
    if (n.filetype === Filetype.REGULAR_FILE) fileBytes += n.size
    if (n.filetype !== Filetype.DIRECTORY) b += n.size
  }
  return { bytes: b, fileBytes, inodes: seen.size }
}

/** A quota over a tapped MemFs. */
function setup(bytesLimit: number | undefined, inodes?: number, usage?: QuotaUsage) {
  const raw = createMemFs()
  const tap = tapFs(raw)
  const q = withQuota(tap.fs, { bytes: bytesLimit, inodes, usage })
  return { raw, tap, q, root: q.root() }
}

// ---- filling the disk -------------------------------------------------------------------

describe('withQuota: a guest filling the disk', () => {
  it('writes until DQUOT; everything written before is intact and usage never passes the quota', () => {
    const QUOTA = 10_000
    const { raw, q, root } = setup(QUOTA)
    const written = new Map<string, Uint8Array>()
    let refused = ''
    outer: for (let i = 0; i < 100; i++) {
      const name = `f${i}`
      const f = root.openFile(name, CREATE)
      let content = new Uint8Array(0)
      for (let chunk = 0; chunk < 3; chunk++) {
        const data = bytes(700, 0x30 + ((i + chunk) % 10))
        let n: number
        try {
          n = f.write(data, BigInt(content.length))
        } catch (e) {
          refused = e instanceof WasiError ? errnoName(e.errno) : String(e)
          f.close()
          written.set(name, content)
          break outer
        }
        expect(n).toBeGreaterThan(0)
        const next = new Uint8Array(content.length + n)
        next.set(content)
        next.set(data.subarray(0, n), content.length)
        content = next
        expect(q.usage.bytes).toBeLessThanOrEqual(QUOTA)
      }
      f.close()
      written.set(name, content)
    }
    expect(refused).toBe('DQUOT')
    expect(q.usage.bytes).toBe(QUOTA) // the last write was cut short to fill it exactly
    let total = 0
    for (const [name, content] of written) {
      expect(readAll(root, name), name).toEqual(content)
      total += content.length
    }
    expect(total).toBe(QUOTA)
    expect(measure(raw).fileBytes).toBe(QUOTA)
  })

  it('a write that does not fit is shortened to what fits (POSIX short count), then DQUOT', () => {
    const { root, q } = setup(10)
    const f = root.openFile('f', CREATE)
    expect(f.write(enc.encode('0123456789abcdef'), 0n)).toBe(10)
    expect(errnoOf(() => f.write(enc.encode('x'), 10n))).toBe('DQUOT')
    // Overwriting inside the file costs nothing, even with the quota full.
    expect(f.write(enc.encode('AB'), 3n)).toBe(2)
    expect(dec.decode(readAll(root, 'f'))).toBe('012AB56789')
    expect(q.usage).toEqual({ bytes: 10, inodes: 1 })
    f.close()
  })

  it('a hole counts: a write far past the end is refused when the gap does not fit', () => {
    const { root, q } = setup(100)
    const f = root.openFile('f', CREATE)
    expect(errnoOf(() => f.write(enc.encode('x'), 1000n))).toBe('DQUOT')
    expect(f.stat().size).toBe(0n)
    expect(f.write(enc.encode('xyz'), 98n)).toBe(2) // the hole (98) plus what fits
    expect(f.stat().size).toBe(100n)
    expect(q.usage.bytes).toBe(100)
    f.close()
  })

  it('setSize and allocate are all-or-nothing and refused before the backend is asked', () => {
    const { root, q, tap } = setup(100)
    const f = root.openFile('f', CREATE)
    f.write(bytes(40), 0n)
    tap.log.length = 0
    expect(errnoOf(() => f.setSize(141n))).toBe('DQUOT')
    expect(errnoOf(() => f.allocate(100n, 41n))).toBe('DQUOT')
    expect(errnoOf(() => f.write(bytes(1), 100n))).toBe('DQUOT')
    expect(tap.log).toEqual([]) // not even a stat: the handle knows the size it made
    expect(f.stat().size).toBe(40n)
    f.setSize(100n)
    expect(q.usage.bytes).toBe(100)
    f.setSize(10n)
    expect(q.usage.bytes).toBe(10)
    expect(errnoOf(() => f.allocate(0n, 101n))).toBe('DQUOT')
    f.allocate(0n, 100n)
    expect(q.usage.bytes).toBe(100)
    expect(f.stat().size).toBe(100n)
    f.close()
  })

  it('range errors keep their errno (INVAL, FBIG) rather than DQUOT', () => {
    const { root } = setup(0)
    const f = root.openFile('f', CREATE)
    expect(errnoOf(() => f.write(enc.encode('x'), -1n))).toBe('INVAL')
    expect(errnoOf(() => f.write(enc.encode('x'), 1n << 63n))).toBe('INVAL')
    expect(errnoOf(() => f.setSize(-1n))).toBe('INVAL')
    expect(errnoOf(() => f.setSize(1n << 62n))).toBe('FBIG')
    expect(errnoOf(() => f.allocate(-1n, 1n))).toBe('INVAL')
    expect(errnoOf(() => f.write(new Uint8Array(0), 5n))).toBe('ok')
    f.close()
  })
})

// ---- inodes -----------------------------------------------------------------------------

describe('withQuota: inodes', () => {
  it('counts files, directories and symlinks created, refusing the next before the backend is asked', () => {
    const { root, q, tap } = setup(undefined, 3)
    root.openFile('f', CREATE).close()
    root.mkdir('d')
    root.symlink('f', 'l')
    expect(q.usage).toEqual({ bytes: 1, inodes: 3 }) // a symlink's target counts as bytes
    tap.log.length = 0
    expect(errnoOf(() => root.openFile('g', CREATE))).toBe('DQUOT')
    expect(errnoOf(() => root.mkdir('e'))).toBe('DQUOT')
    expect(errnoOf(() => root.symlink('f', 'm'))).toBe('DQUOT')
    expect(tap.log.filter((c) => c !== 'statChild')).toEqual([])
    // An existing name is still EXIST (lookup before quota, as on Linux), and opening one is free.
    expect(errnoOf(() => root.mkdir('d'))).toBe('EXIST')
    expect(errnoOf(() => root.symlink('x', 'f'))).toBe('EXIST')
    expect(errnoOf(() => root.openFile('f', opts({ read: true, write: true, create: true, exclusive: true })))).toBe('EXIST')
    root.openFile('f', CREATE).close()
    expect(
      root
        .readdir()
        .map((e) => e.name)
        .sort(),
    ).toEqual(['d', 'f', 'l'])
    // Removing gives the inodes back.
    root.unlink('l')
    root.rmdir('d')
    expect(q.usage).toEqual({ bytes: 0, inodes: 1 })
    root.mkdir('e')
    root.openFile('g', CREATE).close()
    expect(errnoOf(() => root.mkdir('h'))).toBe('DQUOT')
  })

  it('hard links add no inode, but each costs LINK_NAME_BYTES, given back when a name goes', () => {
    const { root, q } = setup(LINK_NAME_BYTES + 10, 1)
    writeAll(root, 'a', 'hello')
    root.link('a', root, 'b')
    expect(q.usage).toEqual({ bytes: 5 + LINK_NAME_BYTES, inodes: 1 })
    expect(errnoOf(() => root.link('a', root, 'c'))).toBe('DQUOT')
    expect(errnoOf(() => root.link('a', root, 'b'))).toBe('EXIST')
    expect(errnoOf(() => root.link('zz', root, 'c'))).toBe('NOENT')
    root.unlink('a') // one name of two: only the link charge comes back
    expect(q.usage).toEqual({ bytes: 5, inodes: 1 })
    expect(dec.decode(readAll(root, 'b'))).toBe('hello')
    root.unlink('b')
    expect(q.usage).toEqual({ bytes: 0, inodes: 0 })
  })

  it('renaming a directory over an empty one it created gives that inode back', () => {
    const { root, q } = setup(undefined, 10)
    root.mkdir('a')
    root.mkdir('b')
    root.rename('a', root, 'b')
    expect(q.usage.inodes).toBe(1)
  })
})

// ---- sequences that fool naive accounting -----------------------------------------------

describe('withQuota: no sequence passes the quota', () => {
  it('write, unlink, rewrite: the space comes back only when the file is gone', () => {
    const { root, q, raw } = setup(100)
    writeAll(root, 'a', bytes(100))
    expect(errnoOf(() => writeAll(root, 'b', bytes(1)))).toBe('DQUOT')
    root.unlink('a')
    expect(q.usage.bytes).toBe(0)
    writeAll(root, 'b', bytes(100))
    expect(measure(raw).fileBytes).toBe(100)
  })

  it('an unlinked file held open (even read-only) keeps its bytes charged until closed', () => {
    const { root, q, raw, tap } = setup(100)
    writeAll(root, 'a', bytes(100))
    const reader = root.openFile('a', READ)
    root.unlink('a')
    expect(q.usage.bytes).toBe(100)
    const b = root.openFile('b', CREATE)
    expect(errnoOf(() => b.write(bytes(1), 0n))).toBe('DQUOT')
    expect(measure(raw, tap.open).fileBytes).toBe(100)
    reader.close()
    expect(q.usage.bytes).toBe(0)
    expect(b.write(bytes(100), 0n)).toBe(100)
    b.close()
    expect(q.usage).toEqual({ bytes: 100, inodes: 1 })
  })

  it('a writer on an unlinked file keeps being charged, and everything comes back at close', () => {
    const { root, q } = setup(100)
    const f = root.openFile('a', CREATE)
    f.write(bytes(50), 0n)
    root.unlink('a')
    expect(f.write(bytes(80), 50n)).toBe(50)
    expect(q.usage).toEqual({ bytes: 100, inodes: 1 })
    f.close()
    expect(q.usage).toEqual({ bytes: 0, inodes: 0 })
  })

  it('link, then unlink the original: the bytes stay charged through the other name', () => {
    const { root, q } = setup(100 + LINK_NAME_BYTES)
    writeAll(root, 'a', bytes(100))
    root.link('a', root, 'b')
    root.unlink('a') // gives back the link charge only
    expect(q.usage.bytes).toBe(100)
    const c = root.openFile('c', CREATE)
    expect(c.write(bytes(LINK_NAME_BYTES + 1), 0n)).toBe(LINK_NAME_BYTES)
    c.close()
    root.unlink('b')
    expect(q.usage.bytes).toBe(LINK_NAME_BYTES)
  })

  it('truncate up, then write into the hole: the hole was already paid for', () => {
    const { root, q } = setup(100)
    const f = root.openFile('a', CREATE)
    f.setSize(100n)
    expect(f.write(bytes(100), 0n)).toBe(100)
    expect(errnoOf(() => f.write(bytes(1), 100n))).toBe('DQUOT')
    expect(q.usage.bytes).toBe(100)
    f.close()
  })

  it('rename over an existing file gives back the replaced file only', () => {
    const { root, q, raw } = setup(100)
    writeAll(root, 'a', bytes(60))
    writeAll(root, 'b', bytes(40))
    root.rename('a', root, 'b')
    expect(q.usage).toEqual({ bytes: 60, inodes: 1 })
    writeAll(root, 'c', bytes(40))
    expect(errnoOf(() => writeAll(root, 'd', bytes(1)))).toBe('DQUOT')
    expect(measure(raw).fileBytes).toBe(100)
  })

  it('rename over a file held open defers its release to the close', () => {
    const { root, q } = setup(100)
    writeAll(root, 'a', bytes(60))
    writeAll(root, 'b', bytes(40))
    const held = root.openFile('b', READ)
    root.rename('a', root, 'b')
    expect(q.usage.bytes).toBe(100)
    held.close()
    expect(q.usage.bytes).toBe(60)
  })

  it('truncating on open gives back what this mount charged', () => {
    const { root, q } = setup(100)
    writeAll(root, 'a', bytes(100))
    writeAll(root, 'a', bytes(100)) // O_TRUNC rewrite of the same file: still 100
    expect(q.usage.bytes).toBe(100)
  })

  it('content that existed before the mount is free to keep and to overwrite, but not to regrow after a shrink', () => {
    const raw = memFsFromTree({ old: 'x'.repeat(100) })
    const q = withQuota(raw, { bytes: 10 })
    const root = q.root()
    const f = root.openFile('old', RW)
    expect(f.write(bytes(50, 0x62), 0n)).toBe(50) // overwrite: no growth
    expect(q.usage.bytes).toBe(0)
    f.setSize(0n) // nothing was charged, so nothing comes back
    expect(q.usage.bytes).toBe(0)
    expect(f.write(bytes(100), 0n)).toBe(10)
    expect(q.usage.bytes).toBe(10)
    f.close()
    // Deleting it gives back the 10 bytes grown here, never the 100 that were there before.
    root.unlink('old')
    expect(q.usage.bytes).toBe(0)
    const g = root.openFile('new', CREATE)
    expect(g.write(bytes(11), 0n)).toBe(10)
    g.close()
  })

  it('holding open a file, unlinking and re-creating the name cannot double-count or leak', () => {
    const { root, q } = setup(100, 10)
    const a1 = root.openFile('a', CREATE)
    a1.write(bytes(30), 0n)
    root.unlink('a')
    const a2 = root.openFile('a', CREATE)
    a2.write(bytes(70), 0n)
    expect(errnoOf(() => a1.write(bytes(1), 30n))).toBe('DQUOT')
    a1.close()
    a2.close()
    expect(q.usage).toEqual({ bytes: 70, inodes: 1 })
  })
})

// ---- hot path and foreign changes ---------------------------------------------------------

describe('withQuota: hot path and foreign changes', () => {
  it('does not stat per write on a file it created', () => {
    const { root, tap } = setup(1 << 20)
    const f = root.openFile('log', CREATE)
    tap.log.length = 0
    for (let i = 0; i < 1000; i++) f.write(bytes(10), BigInt(i * 10))
    f.setSize(5000n)
    f.allocate(0n, 20000n)
    expect(tap.log.filter((c) => c === 'file.stat')).toEqual([])
    f.close()
  })

  it('stats per write on a file larger than it has charged (pre-existing), and is exact there', () => {
    const raw = memFsFromTree({ old: 'x'.repeat(100) })
    const tap = tapFs(raw)
    const q = withQuota(tap.fs, { bytes: 1000 })
    const f = q.root().openFile('old', RW)
    tap.log.length = 0
    f.write(bytes(10), 95n)
    expect(tap.log).toEqual(['file.stat', 'write'])
    expect(q.usage.bytes).toBe(5)
    f.close()
  })

  it('a shrink by another handle (through a second mount of the same tree) cannot be regrown for free', () => {
    const raw = createMemFs()
    const usage = createQuotaUsage()
    const a = withQuota(raw, { bytes: 1000, usage }).root()
    const b = withQuota(raw, { bytes: 1000, usage }).root()
    const fa = a.openFile('g', CREATE)
    fa.write(bytes(1000), 0n)
    const fb = b.openFile('g', RW)
    fa.setSize(0n) // A gives back what it charged
    expect(usage.bytes).toBe(0)
    // B saw 1000 bytes at open; a stale size would make this regrowth free.
    expect(fb.write(bytes(1000), 0n)).toBe(1000)
    expect(usage.bytes).toBe(1000)
    expect(measure(raw).fileBytes).toBeLessThanOrEqual(usage.bytes)
    fa.close()
    fb.close()
  })

  it('documented limit: across overlapping mounts, a file unlinked through one while held open through the other is given back early', () => {
    // quota.ts, "SECURITY (residual)": the excess is what the other mount holds open, and it ends
    // when that handle closes. The policy layer should not give a guest overlapping writable mounts.
    const raw = createMemFs()
    const usage = createQuotaUsage()
    const a = withQuota(raw, { bytes: 100, usage }).root()
    const b = withQuota(raw, { bytes: 100, usage }).root()
    writeAll(a, 'f', bytes(100))
    const held = b.openFile('f', READ)
    a.unlink('f')
    expect(usage.bytes).toBe(0)
    writeAll(a, 'g', bytes(100))
    expect(measure(raw).fileBytes).toBe(100) // reachable: within the quota
    expect(Number(held.stat().size)).toBe(100) // plus what b holds open, until it closes
    held.close()
  })

  it('two mounts of one backend cannot move nodes between them (XDEV), nor with the raw backend', () => {
    const raw = createMemFs()
    const a = withQuota(raw, BIG_QUOTA).root()
    const b = withQuota(raw, BIG_QUOTA).root()
    const r = raw.root()
    writeAll(a, 'f', 'x')
    expect(errnoOf(() => a.rename('f', b, 'g'))).toBe('XDEV')
    expect(errnoOf(() => a.link('f', b, 'g'))).toBe('XDEV')
    expect(errnoOf(() => a.rename('f', r, 'g'))).toBe('XDEV')
    expect(errnoOf(() => r.rename('f', a, 'g'))).toBe('XDEV')
    expect(errnoOf(() => r.link('f', a, 'g'))).toBe('XDEV')
    // A look-alike object is not a handle of ours either.
    const fake = { ...a, kind: 'dir' } as DirHandle
    expect(errnoOf(() => a.rename('f', fake, 'g'))).toBe('XDEV')
    expect(r.readdir().map((e) => e.name)).toEqual(['f'])
  })
})

// ---- shared usage -------------------------------------------------------------------------

describe('withQuota: a total shared by several mounts', () => {
  it('charges one counter across mounts; each mount enforces its own limit against it', () => {
    const usage = createQuotaUsage()
    const a = withQuota(createMemFs(), { bytes: 100, inodes: 3, usage }).root()
    const b = withQuota(createMemFs(), { bytes: 100, inodes: 3, usage }).root()
    writeAll(a, 'x', bytes(60))
    const f = b.openFile('y', CREATE)
    expect(f.write(bytes(60), 0n)).toBe(40)
    expect(usage).toEqual({ bytes: 100, inodes: 2 })
    b.mkdir('d')
    expect(errnoOf(() => a.mkdir('d'))).toBe('DQUOT')
    a.unlink('x')
    expect(f.write(bytes(60), 40n)).toBe(60)
    f.close()
    expect(usage).toEqual({ bytes: 100, inodes: 2 })
  })

  it('rejects malformed limits', () => {
    expect(() => withQuota(createMemFs(), { bytes: -1 })).toThrow(RangeError)
    expect(() => withQuota(createMemFs(), { inodes: 1.5 })).toThrow(RangeError)
    expect(() => withQuota(createMemFs(), { usage: { bytes: Number.NaN, inodes: 0 } })).toThrow(RangeError)
    const q = withQuota(createMemFs(), {})
    expect(q.limits).toEqual({ bytes: Infinity, inodes: Infinity })
  })
})

// ---- property tests -------------------------------------------------------------------------

const NAMES = ['a', 'b', 'c', 'd'] as const
/** A place: a name in the root (`dir` 0) or in the directory `d` (`dir` 1). */
interface Place {
  dir: 0 | 1
  name: (typeof NAMES)[number]
}
type Op =
  | { op: 'open'; at: Place; create: boolean; truncate: boolean; write: boolean; mount: number }
  | { op: 'write'; h: number; pos: number; len: number }
  | { op: 'setSize'; h: number; size: number }
  | { op: 'allocate'; h: number; offset: number; len: number }
  | { op: 'close'; h: number }
  | { op: 'unlink'; at: Place; mount: number }
  | { op: 'rmdir'; at: Place; mount: number }
  | { op: 'mkdir'; at: Place; mount: number }
  | { op: 'symlink'; at: Place; target: string; mount: number }
  | { op: 'link'; from: Place; to: Place; mount: number }
  | { op: 'rename'; from: Place; to: Place; mount: number }

const place: fc.Arbitrary<Place> = fc.oneof(
  fc.record({ dir: fc.constant(0 as const), name: fc.constantFrom(...NAMES) }),
  fc.record({ dir: fc.constant(1 as const), name: fc.constantFrom('a' as const, 'b' as const) }),
)
const mount = fc.nat(1)
/** true three times out of four: most opens should create or write, or little happens. */
const likely = fc.integer({ min: 0, max: 3 }).map((n) => n > 0)
const size = (max: number) => fc.oneof(fc.nat(max), fc.constantFrom(0, 1, max))
const opArb = (maxSize: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ op: fc.constant('open' as const), at: place, create: likely, truncate: fc.boolean(), write: likely, mount }),
    },
    { weight: 6, arbitrary: fc.record({ op: fc.constant('write' as const), h: fc.nat(7), pos: size(maxSize), len: size(maxSize) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('setSize' as const), h: fc.nat(7), size: size(maxSize) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('allocate' as const), h: fc.nat(7), offset: size(maxSize), len: size(maxSize) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('close' as const), h: fc.nat(7) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('unlink' as const), at: place, mount }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('rmdir' as const), at: place, mount }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('mkdir' as const), at: place, mount }) },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('symlink' as const), at: place, target: fc.constantFrom('a', 'd/b', 'xyzzy'), mount }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('link' as const), from: place, to: place, mount }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('rename' as const), from: place, to: place, mount }) },
  )

/** Runs `ops` against `mounts` (wrappers of one or more trees); calls `check` after each step. */
function runOps(roots: DirHandle[], ops: readonly Op[], check: (handles: FileHandle[]) => void, tally?: Map<string, number>): FileHandle[] {
  const handles: FileHandle[] = []
  const dirOf = (root: DirHandle, at: Place): { dir: DirHandle; close(): void } => {
    if (at.dir === 0) return { dir: root, close() {} }
    const d = root.openDir('d')
    return { dir: d, close: () => d.close() }
  }
  let current = ''
  const attempt = (fn: () => void): void => {
    let outcome: string
    try {
      fn()
      outcome = 'ok'
    } catch (e) {
      if (!(e instanceof WasiError)) throw e
      outcome = errnoName(e.errno)
    }
    const key = `${current} ${outcome}`
    tally?.set(key, (tally.get(key) ?? 0) + 1)
  }
  const pick = (h: number): FileHandle | undefined => (handles.length === 0 ? undefined : handles[h % handles.length])
  for (const op of ops) {
    const root = roots[('mount' in op ? op.mount : 0) % roots.length]!
    current = op.op
    switch (op.op) {
      case 'open':
        if (handles.length >= 8) break
        attempt(() => {
          const d = dirOf(root, op.at)
          try {
            handles.push(
              d.dir.openFile(op.at.name, opts({ read: true, write: op.write, create: op.create, truncate: op.truncate && op.write })),
            )
          } finally {
            d.close()
          }
        })
        break
      case 'write': {
        const f = pick(op.h)
        if (f)
          attempt(() => {
            f.write(bytes(op.len, 0x41 + (op.pos % 26)), BigInt(op.pos))
          })
        break
      }
      case 'setSize': {
        const f = pick(op.h)
        if (f) attempt(() => f.setSize(BigInt(op.size)))
        break
      }
      case 'allocate': {
        const f = pick(op.h)
        if (f) attempt(() => f.allocate(BigInt(op.offset), BigInt(op.len)))
        break
      }
      case 'close': {
        const f = pick(op.h)
        if (f) {
          handles.splice(handles.indexOf(f), 1)
          f.close()
        }
        break
      }
      case 'unlink':
      case 'rmdir':
      case 'mkdir':
        attempt(() => {
          const d = dirOf(root, op.at)
          try {
            if (op.op === 'unlink') d.dir.unlink(op.at.name)
            else if (op.op === 'rmdir') d.dir.rmdir(op.at.name)
            else d.dir.mkdir(op.at.name)
          } finally {
            d.close()
          }
        })
        break
      case 'symlink':
        attempt(() => {
          const d = dirOf(root, op.at)
          try {
            d.dir.symlink(op.target, op.at.name)
          } finally {
            d.close()
          }
        })
        break
      case 'link':
      case 'rename':
        attempt(() => {
          const from = dirOf(root, op.from)
          try {
            const to = dirOf(root, op.to)
            try {
              if (op.op === 'link') from.dir.link(op.from.name, to.dir, op.to.name)
              else from.dir.rename(op.from.name, to.dir, op.to.name)
            } finally {
              to.close()
            }
          } finally {
            from.close()
          }
        })
        break
    }
    check(handles)
  }
  return handles
}

/** Removes everything beneath `dir` through the wrapper. */
function removeAll(dir: DirHandle): void {
  for (const e of dir.readdir()) {
    if (e.filetype === Filetype.DIRECTORY) {
      const sub = dir.openDir(e.name)
      removeAll(sub)
      sub.close()
      dir.rmdir(e.name)
    } else {
      dir.unlink(e.name)
    }
  }
}

// Small enough to hit the limits often, large enough for a link (LINK_NAME_BYTES) to fit at times.
const quotaArb = fc.record({
  bytes: fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 200, max: 700 })),
  inodes: fc.integer({ min: 0, max: 8 }),
})
const opsArb = fc.array(opArb(600), { minLength: 10, maxLength: 60, size: 'max' })

describe('withQuota: properties (fast-check)', () => {
  it(
    'on MemFs: after every step usage <= quota and what the backend holds <= usage; all of it comes back at the end',
    () => {
      const tally = new Map<string, number>()
      fc.assert(
        fc.property(quotaArb, opsArb, (quota, ops) => {
          const raw = memFsFromTree({ d: {} }) // the subdirectory the plans use, there before the mount
          const initial = measure(raw)
          const tap = tapFs(raw)
          const q = withQuota(tap.fs, quota)
          const root = q.root()
          const check = (): void => {
            expect(q.usage.bytes).toBeLessThanOrEqual(quota.bytes)
            expect(q.usage.inodes).toBeLessThanOrEqual(quota.inodes)
            const real = measure(raw, tap.open)
            expect(real.bytes).toBeLessThanOrEqual(q.usage.bytes)
            expect(real.inodes - initial.inodes).toBeLessThanOrEqual(q.usage.inodes)
          }
          const handles = runOps([root], ops, check, tally)
          for (const h of handles) h.close()
          removeAll(root)
          // Net accounting: a guest that removes what it made gets every byte and inode back.
          expect(q.usage).toEqual({ bytes: 0, inodes: 0 })
        }),
        { seed: SEED, numRuns: RUNS },
      )
      // Not vacuous: the plans did reach the quota, and did link, rename and remove.
      for (const key of [
        'write ok',
        'write DQUOT',
        'setSize DQUOT',
        'allocate DQUOT',
        'open DQUOT',
        'mkdir DQUOT',
        'symlink DQUOT',
        'link ok',
        'link DQUOT',
        'rename ok',
        'unlink ok',
        'rmdir ok',
      ]) {
        expect(tally.get(key) ?? 0, key).toBeGreaterThan(3)
      }
    },
    PROPERTY_TIMEOUT,
  )

  it(
    'stacked (a per-mount quota inside a shared total, as runtime/mounts.ts does): both hold, both come back',
    () => {
      fc.assert(
        fc.property(quotaArb, quotaArb, opsArb, (inner, outer, ops) => {
          const raw = memFsFromTree({ d: {} })
          const tap = tapFs(raw)
          const perMount = withQuota(tap.fs, inner)
          const total = withQuota(perMount, { ...outer, usage: createQuotaUsage() })
          const root = total.root()
          const check = (): void => {
            expect(perMount.usage.bytes).toBeLessThanOrEqual(inner.bytes)
            expect(total.usage.bytes).toBeLessThanOrEqual(outer.bytes)
            expect(perMount.usage.inodes).toBeLessThanOrEqual(inner.inodes)
            expect(total.usage.inodes).toBeLessThanOrEqual(outer.inodes)
            const real = measure(raw, tap.open)
            expect(real.bytes).toBeLessThanOrEqual(Math.min(perMount.usage.bytes, total.usage.bytes))
          }
          const handles = runOps([root], ops, check)
          for (const h of handles) h.close()
          removeAll(root)
          expect(perMount.usage).toEqual({ bytes: 0, inodes: 0 })
          expect(total.usage).toEqual({ bytes: 0, inodes: 0 })
        }),
        { seed: SEED + 3, numRuns: RUNS },
      )
    },
    PROPERTY_TIMEOUT,
  )

  it(
    'on two overlapping mounts of one MemFs sharing a usage: reachable bytes never pass the usage',
    () => {
      fc.assert(
        fc.property(quotaArb, opsArb, (quota, ops) => {
          const raw = memFsFromTree({ d: {} })
          const usage = createQuotaUsage()
          const mounts: QuotaFilesystem[] = [withQuota(raw, { ...quota, usage }), withQuota(raw, { ...quota, usage })]
          const check = (): void => {
            expect(usage.bytes).toBeLessThanOrEqual(quota.bytes)
            expect(usage.inodes).toBeLessThanOrEqual(quota.inodes)
            // Reachable only: see the module comment of quota.ts on files held open across mounts.
            const real = measure(raw)
            expect(real.bytes).toBeLessThanOrEqual(usage.bytes)
            expect(real.inodes - 1).toBeLessThanOrEqual(usage.inodes)
          }
          const handles = runOps(
            mounts.map((m) => m.root()),
            ops,
            check,
          )
          for (const h of handles) h.close()
        }),
        { seed: SEED + 1, numRuns: RUNS },
      )
    },
    PROPERTY_TIMEOUT,
  )

  it(
    'on a real host directory with content: the bytes on disk never exceed the initial bytes plus the quota',
    () => {
      const base = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'caplet-quota-prop-'))
      let run = 0
      try {
        fc.assert(
          fc.property(quotaArb, fc.array(opArb(600), { minLength: 10, maxLength: 40, size: 'max' }), (quota, ops) => {
            const dir = path.join(base, String(run++))
            nodeFs.mkdirSync(path.join(dir, 'd'), { recursive: true })
            nodeFs.writeFileSync(path.join(dir, 'a'), 'x'.repeat(300)) // pre-existing: in doubt, stat per write
            nodeFs.writeFileSync(path.join(dir, 'd', 'b'), 'y'.repeat(200))
            const initial = diskBytes(dir)
            const mounted = createHostDirFs(dir)
            const tap = tapFs(mounted)
            const q = withQuota(tap.fs, quota)
            const root = q.root()
            try {
              const check = (): void => {
                expect(q.usage.bytes).toBeLessThanOrEqual(quota.bytes)
                expect(q.usage.inodes).toBeLessThanOrEqual(quota.inodes)
                let held = 0
                const seen = new Set<bigint>()
                for (const h of tap.open) {
                  const st = h.stat()
                  if (st.nlink === 0n && !seen.has(st.ino)) {
                    seen.add(st.ino)
                    held += Number(st.size)
                  }
                }
                expect(diskBytes(dir) + held).toBeLessThanOrEqual(initial + quota.bytes)
              }
              const handles = runOps([root], ops, check)
              for (const h of handles) h.close()
            } finally {
              root.close()
              mounted.close()
              nodeFs.rmSync(dir, { recursive: true, force: true })
            }
          }),
          { seed: SEED + 2, numRuns: Math.max(10, Math.floor(RUNS / 3)) },
        )
      } finally {
        nodeFs.rmSync(base, { recursive: true, force: true })
      }
    },
    PROPERTY_TIMEOUT,
  )
})

/** The sizes of the regular files and symlinks under `dir`, each host inode once. */
function diskBytes(dir: string): number {
  const seen = new Set<string>()
  let total = 0
  const walk = (p: string): void => {
    for (const name of nodeFs.readdirSync(p)) {
      const full = path.join(p, name)
      const st = nodeFs.lstatSync(full)
      if (st.isDirectory()) walk(full)
      else if (!seen.has(`${st.dev}:${st.ino}`)) {
        seen.add(`${st.dev}:${st.ino}`)
        total += st.size
      }
    }
  }
  walk(dir)
  return total
}
