/**
 * @module The overlay backend: the shared contract suite over several lower layers, then the
 * overlay's own promises (the lower layer never changes, whiteouts, opaque directories, copy-up,
 * renames of lower directories, links to lower files, the exact change list).
 */
import * as childProcess from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { errnoName, Filetype } from '../../../wasi-host/abi/constants.js'
import { WasiError } from '../../../wasi-host/errors.js'
import type { DirHandle, FileHandle, Filesystem, OpenFileOptions } from '../../../wasi-host/fs/filesystem.js'
import { createMemFs, memFsFromTree, type TreeSpec } from '../../../wasi-host/fs/mem-fs.js'
import { createOverlayFs, type OverlayChange, type OverlayFs } from '../../../wasi-host/fs/overlay.js'
import { readOnly } from '../../../wasi-host/fs/read-only.js'
import { createHostDirFs } from '../../../wasi-host/node/host-dir-fs.js'
import { errnoOrOk as errnoOf, readText, runBackendSuite, seedBackendFixture } from './fs-backend.case.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

const NONE: OpenFileOptions = { read: false, write: false, create: false, exclusive: false, truncate: false }
const READ: OpenFileOptions = { ...NONE, read: true }
const RW: OpenFileOptions = { ...NONE, read: true, write: true }
const WRITE: OpenFileOptions = { ...NONE, write: true }
const CREATE: OpenFileOptions = { ...NONE, read: true, write: true, create: true }
const TRUNC: OpenFileOptions = { ...NONE, write: true, truncate: true }

const T1 = 1_000_000_000n * 1_000_000_000n
const T2 = 1_200_000_000n * 1_000_000_000n

/** Removes everything under `dir` through the handle API (so, on an overlay, as whiteouts). */
function emptyDir(dir: DirHandle): void {
  for (const e of dir.readdir()) {
    if (e.filetype === Filetype.DIRECTORY) {
      const sub = dir.openDir(e.name)
      try {
        emptyDir(sub)
      } finally {
        sub.close()
      }
      dir.rmdir(e.name)
    } else {
      dir.unlink(e.name)
    }
  }
}

function seededMemFs(): Filesystem {
  const fs = createMemFs()
  const root = fs.root()
  seedBackendFixture(root, fs.caps)
  root.close()
  return fs
}

// (a) Over an empty in-memory lower layer: everything the suite does lives in the upper layer.
runBackendSuite('Overlay over an empty MemFs: contract', () => ({ fs: createOverlayFs(readOnly(createMemFs())) }))

// (b) Over a lower layer seeded with the fixture. The suite's write tests need an empty root and
// its read tests seed the fixture themselves, so the suite runs twice: read-only over the seeded
// lower (every lookup and read goes to the lower layer), and read-write after removing the whole
// fixture through the overlay (every name the suite uses then sits on a whiteout, and every
// directory it makes over one is opaque).
runBackendSuite('Overlay over a seeded MemFs, read through: contract', () => ({ fs: readOnly(createOverlayFs(readOnly(seededMemFs()))) }), {
  readOnly: true,
})
runBackendSuite('Overlay over a seeded MemFs, fixture whited out: contract', () => {
  const overlay = createOverlayFs(readOnly(seededMemFs()))
  const root = overlay.root()
  emptyDir(root)
  root.close()
  return { fs: overlay }
})

// (c) Over a host directory on a real temp dir, empty and seeded the same two ways.
function hostLower(seed: boolean): { fs: Filesystem; dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'caplet-overlay-'))
  const mounted = createHostDirFs(dir)
  if (seed) {
    const root = mounted.root()
    seedBackendFixture(root, mounted.caps)
    root.close()
  }
  return {
    fs: mounted,
    dir,
    cleanup: () => {
      mounted.close()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

runBackendSuite('Overlay over an empty host dir: contract', () => {
  const lower = hostLower(false)
  return { fs: createOverlayFs(readOnly(lower.fs)), cleanup: lower.cleanup }
})
runBackendSuite(
  'Overlay over a seeded host dir, read through: contract',
  () => {
    const lower = hostLower(true)
    return { fs: readOnly(createOverlayFs(readOnly(lower.fs))), cleanup: lower.cleanup }
  },
  { readOnly: true },
)
runBackendSuite('Overlay over a seeded host dir, fixture whited out: contract', () => {
  const lower = hostLower(true)
  const overlay = createOverlayFs(readOnly(lower.fs))
  const root = overlay.root()
  emptyDir(root)
  root.close()
  return { fs: overlay, cleanup: lower.cleanup }
})

// ---------------------------------------------------------------------------------------------
// Helpers for the overlay's own tests

function readAll(file: FileHandle): string {
  const size = Number(file.stat().size)
  const buf = new Uint8Array(size)
  let off = 0
  while (off < size) {
    const n = file.read(buf.subarray(off), BigInt(off))
    if (n === 0) break
    off += n
  }
  return dec.decode(buf.subarray(0, off))
}

function writeText(dir: DirHandle, name: string, text: string, o: OpenFileOptions = { ...CREATE, truncate: true }): void {
  const f = dir.openFile(name, o)
  try {
    if (text.length > 0) f.write(enc.encode(text), 0n)
  } finally {
    f.close()
  }
}

/** Opens the directory at `path` ('' is `root` itself); the caller closes it (unless it is `root`). */
function openPath(root: DirHandle, path: string): DirHandle {
  let dir = root
  for (const c of path.split('/').filter((s) => s.length > 0)) {
    const next = dir.openDir(c)
    if (dir !== root) dir.close()
    dir = next
  }
  return dir
}

function withDir<T>(root: DirHandle, path: string, fn: (d: DirHandle) => T): T {
  const d = openPath(root, path)
  try {
    return fn(d)
  } finally {
    if (d !== root) d.close()
  }
}

/** Everything observable of a tree except times: names, types, contents, targets, link counts. */
function snapshot(dir: DirHandle, prefix = ''): string[] {
  const out: string[] = []
  for (const e of [...dir.readdir()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = prefix + e.name
    const st = dir.statChild(e.name)
    expect(st.filetype, p).toBe(e.filetype)
    expect(st.ino, p).toBe(e.ino)
    if (e.filetype === Filetype.DIRECTORY) {
      out.push(`${p}/`)
      const sub = dir.openDir(e.name)
      try {
        out.push(...snapshot(sub, p + '/'))
      } finally {
        sub.close()
      }
    } else if (e.filetype === Filetype.SYMBOLIC_LINK) {
      out.push(`${p} -> ${dir.readlink(e.name)}`)
    } else {
      out.push(`${p} = ${JSON.stringify(readText(dir, e.name))} x${st.nlink}`)
    }
  }
  return out
}

/** The inode numbers of every entry, by path, to check uniqueness and stability. */
function inodes(dir: DirHandle, prefix = '', out = new Map<string, bigint>()): Map<string, bigint> {
  for (const e of dir.readdir()) {
    out.set(prefix + e.name, e.ino)
    if (e.filetype === Filetype.DIRECTORY) withDir(dir, e.name, (sub) => inodes(sub, `${prefix}${e.name}/`, out))
  }
  return out
}

const LOWER_TREE: TreeSpec = {
  'a.txt': 'alpha',
  'b.txt': 'bravo',
  docs: { 'readme.md': '# readme', deep: { 'x.bin': new Uint8Array([0, 1, 2, 3]), 'y.txt': 'why' }, link: { symlink: '../a.txt' } },
  empty: {},
  ln: { symlink: 'a.txt' },
}

/** An overlay over a read-only view of a MemFs holding LOWER_TREE; `raw` is the lower itself. */
function setup(): { raw: Filesystem; overlay: OverlayFs; root: DirHandle; lowerSnapshot: () => string[] } {
  const raw = memFsFromTree(LOWER_TREE, { now: () => T1 })
  const overlay = createOverlayFs(readOnly(raw))
  const lowerSnapshot = () => {
    const r = raw.root()
    try {
      return snapshot(r)
    } finally {
      r.close()
    }
  }
  return { raw, overlay, root: overlay.root(), lowerSnapshot }
}

const change = (path: string, kind: OverlayChange['kind'], type: OverlayChange['type']): OverlayChange => ({ path, kind, type })

describe('overlay: the lower layer never changes', () => {
  it('a lower wrapped in readOnly() is never asked to change anything (it would throw ROFS)', () => {
    const { overlay, root, lowerSnapshot } = setup()
    const before = lowerSnapshot()
    writeText(root, 'a.txt', 'changed')
    writeText(root, 'new.txt', 'new')
    root.unlink('b.txt')
    root.rename('docs', root, 'documents')
    root.rmdir('empty')
    root.mkdir('empty')
    root.symlink('new.txt', 'ln2')
    root.link('ln', root, 'ln3')
    root.setTimesChild('ln', T2, T2)
    root.setTimes(T2, T2)
    withDir(root, 'documents/deep', (d) => {
      const f = d.openFile('x.bin', RW)
      f.allocate(0n, 100n)
      f.setSize(2n)
      f.close()
    })
    expect(lowerSnapshot()).toEqual(before)
    expect(overlay.changes().length).toBeGreaterThan(0)
  })

  it('a host directory stays byte-identical (names, types, content, targets, mtimes)', () => {
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'caplet-overlay-hash-'))
    try {
      fs.mkdirSync(join(dir, 'sub/deeper'), { recursive: true })
      fs.writeFileSync(join(dir, 'a.txt'), 'alpha')
      fs.writeFileSync(join(dir, 'sub/b.txt'), 'bravo')
      fs.writeFileSync(join(dir, 'sub/deeper/c.bin'), Buffer.alloc(200_000, 7))
      fs.symlinkSync('a.txt', join(dir, 'ln'))
      fs.symlinkSync('../../outside', join(dir, 'sub/escape'))
      const hashBefore = hashTree(dir)
      const lower = createHostDirFs(dir)
      const overlay = createOverlayFs(lower)
      const root = overlay.root()
      writeText(root, 'a.txt', 'rewritten')
      root.unlink('ln')
      root.rename('sub', root, 'moved')
      withDir(root, 'moved/deeper', (d) => {
        const f = d.openFile('c.bin', RW)
        f.write(enc.encode('patch'), 100_000n)
        f.close()
        d.setTimesChild('c.bin', T1, T1)
      })
      root.mkdir('sub')
      writeText(root, 'z', 'z')
      root.link('z', root, 'z2')
      root.setTimes(T1, T1)
      root.close()
      expect(overlay.changes()).toContainEqual(change('sub/b.txt', 'deleted', 'file'))
      expect(overlay.changes()).toContainEqual(change('moved/deeper/c.bin', 'added', 'file'))
      lower.close()
      expect(hashTree(dir)).toBe(hashBefore)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

/** A hash of a host tree: names, types, content, symlink targets, and mtimes (not atimes). */
function hashTree(dir: string): string {
  const h = createHash('sha256')
  const walk = (p: string, rel: string): void => {
    for (const name of fs.readdirSync(p).sort()) {
      const full = join(p, name)
      const st = fs.lstatSync(full, { bigint: true })
      h.update(`${rel}${name}\0${st.mode}\0${st.mtimeNs}\0${st.size}\0`)
      if (st.isDirectory()) walk(full, `${rel}${name}/`)
      else if (st.isSymbolicLink()) h.update(fs.readlinkSync(full))
      else h.update(fs.readFileSync(full))
    }
  }
  const st = fs.lstatSync(dir, { bigint: true })
  h.update(`root\0${st.mtimeNs}\0`)
  walk(dir, '')
  return h.digest('hex')
}

describe('overlay: whiteouts and opaque directories', () => {
  it('an unlinked lower file is hidden from lookups and listings, and can be re-created', () => {
    const { root, lowerSnapshot } = setup()
    const before = lowerSnapshot()
    root.unlink('a.txt')
    expect(errnoOf(() => root.statChild('a.txt'))).toBe('NOENT')
    expect(errnoOf(() => root.openFile('a.txt', READ))).toBe('NOENT')
    expect(errnoOf(() => root.unlink('a.txt'))).toBe('NOENT')
    expect(root.readdir().map((e) => e.name)).not.toContain('a.txt')
    writeText(root, 'a.txt', 'again', CREATE)
    expect(readText(root, 'a.txt')).toBe('again')
    root.unlink('a.txt')
    expect(errnoOf(() => root.statChild('a.txt'))).toBe('NOENT')
    expect(lowerSnapshot()).toEqual(before)
  })

  it('a copied-up file that is unlinked does not let the lower original show through', () => {
    const { root } = setup()
    writeText(root, 'b.txt', 'mine')
    root.unlink('b.txt')
    expect(errnoOf(() => root.statChild('b.txt'))).toBe('NOENT')
    expect(root.readdir().map((e) => e.name)).toEqual(['a.txt', 'docs', 'empty', 'ln'])
  })

  it('a lower directory emptied, removed and re-created is opaque: its old entries stay gone', () => {
    const { root, overlay } = setup()
    withDir(root, 'docs', (d) => emptyDir(d))
    root.rmdir('docs')
    expect(errnoOf(() => root.openDir('docs'))).toBe('NOENT')
    root.mkdir('docs')
    withDir(root, 'docs', (d) => {
      expect(d.readdir()).toEqual([])
      expect(errnoOf(() => d.statChild('readme.md'))).toBe('NOENT')
      writeText(d, 'readme.md', 'new readme', CREATE)
    })
    expect(withDir(root, 'docs', (d) => snapshot(d))).toEqual(['readme.md = "new readme" x1'])
    expect(overlay.changes()).toEqual([
      change('docs/deep', 'deleted', 'directory'),
      change('docs/deep/x.bin', 'deleted', 'file'),
      change('docs/deep/y.txt', 'deleted', 'file'),
      change('docs/link', 'deleted', 'symlink'),
      change('docs/readme.md', 'modified', 'file'),
    ])
  })

  it('rmdir of a lower directory that still shows entries is NOTEMPTY; whiteouts count as empty', () => {
    const { root } = setup()
    expect(errnoOf(() => root.rmdir('docs'))).toBe('NOTEMPTY')
    withDir(root, 'docs/deep', (d) => {
      d.unlink('x.bin')
      expect(errnoOf(() => d.statChild('x.bin'))).toBe('NOENT')
    })
    expect(errnoOf(() => withDir(root, 'docs', (d) => d.rmdir('deep')))).toBe('NOTEMPTY')
    withDir(root, 'docs/deep', (d) => d.unlink('y.txt'))
    withDir(root, 'docs', (d) => d.rmdir('deep'))
    expect(withDir(root, 'docs', (d) => d.readdir().map((e) => e.name))).toEqual(['link', 'readme.md'])
  })

  it('a handle on a lower directory removed through another handle lists nothing and refuses creation', () => {
    const { root } = setup()
    const held = root.openDir('empty')
    root.rmdir('empty')
    expect(held.readdir()).toEqual([])
    expect(errnoOf(() => held.openFile('f', CREATE))).toBe('NOENT')
    expect(errnoOf(() => held.mkdir('d'))).toBe('NOENT')
    expect(held.stat().nlink).toBe(0n)
    held.close()
  })
})

describe('overlay: copy-up', () => {
  it('keeps content, mtime, atime and inode number, and leaves the parent directory times alone', () => {
    const { root } = setup()
    const before = withDir(root, 'docs/deep', (d) => ({ st: d.statChild('y.txt'), dir: root.statChild('docs'), deep: d.stat() }))
    withDir(root, 'docs/deep', (d) => {
      const f = d.openFile('y.txt', RW) // copy-up at open time, nothing written
      expect(f.stat().ino).toBe(before.st.ino)
      f.close()
      const st = d.statChild('y.txt')
      expect(st.mtim).toBe(before.st.mtim)
      expect(st.atim).toBe(before.st.atim)
      expect(st.ino).toBe(before.st.ino)
      expect(readText(d, 'y.txt')).toBe('why')
      expect(d.stat().mtim).toBe(before.deep.mtim)
      expect(d.stat().ino).toBe(before.deep.ino)
    })
    expect(root.statChild('docs').mtim).toBe(before.dir.mtim)
    expect(root.statChild('docs').ino).toBe(before.dir.ino)
  })

  it('a write handle writes the copy; the lower file keeps its bytes', () => {
    const { root, raw } = setup()
    const f = root.openFile('a.txt', WRITE)
    f.write(enc.encode('ALP'), 0n)
    f.close()
    expect(readText(root, 'a.txt')).toBe('ALPha')
    expect(root.statChild('a.txt').mtim).toBeGreaterThan(T1)
    const r = raw.root()
    expect(readText(r, 'a.txt')).toBe('alpha')
    r.close()
  })

  it('a truncating open copies up an empty file', () => {
    const { root } = setup()
    const f = root.openFile('a.txt', TRUNC)
    expect(f.stat().size).toBe(0n)
    f.close()
    expect(readText(root, 'a.txt')).toBe('')
  })

  it('a handle reading a lower file in place sees the copy once another handle writes', () => {
    const { root } = setup()
    const reader = root.openFile('b.txt', READ)
    const ino = reader.stat().ino
    expect(readAll(reader)).toBe('bravo')
    const writer = root.openFile('b.txt', RW)
    writer.write(enc.encode('BRAVO!'), 0n)
    expect(readAll(reader)).toBe('BRAVO!')
    expect(reader.stat().ino).toBe(ino)
    expect(errnoOf(() => reader.write(enc.encode('x'), 0n))).toBe('BADF')
    reader.close()
    writer.close()
  })

  it('set-times through a read-only handle copies the file up and applies the times there', () => {
    const { root, overlay } = setup()
    const f = root.openFile('a.txt', READ)
    f.setTimes(T2, T2)
    expect(f.stat().mtim).toBe(T2)
    expect(root.statChild('a.txt').mtim).toBe(T2)
    expect(readAll(f)).toBe('alpha')
    f.close()
    expect(overlay.changes()).toEqual([change('a.txt', 'modified', 'file')])
  })

  it('a read handle opened without read rights cannot read, even though the lower is read in place', () => {
    const { root } = setup()
    const f = root.openFile('a.txt', NONE)
    expect(errnoOf(() => f.read(new Uint8Array(4), 0n))).toBe('BADF')
    f.close()
  })

  it('setTimesChild copies up a lower symlink and directory without following or filling them', () => {
    const { root, overlay } = setup()
    root.setTimesChild('ln', T2, T2)
    expect(root.statChild('ln').mtim).toBe(T2)
    expect(root.readlink('ln')).toBe('a.txt')
    expect(root.statChild('a.txt').mtim).toBe(T1)
    root.setTimesChild('docs', T2, T2)
    expect(root.statChild('docs').mtim).toBe(T2)
    expect(withDir(root, 'docs', (d) => snapshot(d))).toEqual([
      'deep/',
      'deep/x.bin = "\\u0000\\u0001\\u0002\\u0003" x1',
      'deep/y.txt = "why" x1',
      'link -> ../a.txt',
      'readme.md = "# readme" x1',
    ])
    // Times alone: a symlink's new mtime is a change, a directory's is not (see overlay-changes).
    expect(overlay.changes()).toEqual([change('ln', 'modified', 'symlink')])
  })

  it('inode numbers are unique across layers and stable across copy-up', () => {
    const { root } = setup()
    const before = inodes(root)
    expect(new Set(before.values()).size).toBe(before.size)
    writeText(root, 'a.txt', 'x')
    root.setTimesChild('docs', T2, T2)
    withDir(root, 'docs/deep', (d) => writeText(d, 'y.txt', 'y'))
    writeText(root, 'fresh', 'f')
    root.mkdir('newdir')
    const after = inodes(root)
    for (const [p, ino] of before) expect(after.get(p), p).toBe(ino)
    expect(new Set(after.values()).size).toBe(after.size)
  })

  it('special files of a host lower cannot be written (no copy-up), but stay readable in listings', () => {
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'caplet-overlay-fifo-'))
    try {
      try {
        execMkfifo(join(dir, 'pipe'))
      } catch {
        return // no mkfifo on this platform: nothing to test
      }
      const lower = createHostDirFs(dir)
      const root = createOverlayFs(lower).root()
      expect(root.readdir().map((e) => e.name)).toEqual(['pipe'])
      expect(errnoOf(() => root.openFile('pipe', RW))).toBe('NOTSUP')
      root.close()
      lower.close()
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

function execMkfifo(path: string): void {
  if (process.platform === 'win32') throw new Error('no FIFOs')
  // node:fs has no mkfifo; the coreutils binary is the portable way on POSIX systems.
  childProcess.execFileSync('mkfifo', [path])
}

describe('overlay: renames and links involving the lower layer', () => {
  it('renaming a lower directory moves its whole subtree; handles opened before follow it', () => {
    const { root, overlay, lowerSnapshot } = setup()
    const lowerBefore = lowerSnapshot()
    const inosBefore = inodes(root)
    const docs = root.openDir('docs')
    const deep = docs.openDir('deep')
    const reader = deep.openFile('y.txt', READ)
    root.mkdir('dest')
    const dest = root.openDir('dest')
    root.rename('docs', dest, 'moved')
    expect(errnoOf(() => root.statChild('docs'))).toBe('NOENT')
    expect(withDir(root, 'dest/moved', (d) => snapshot(d))).toEqual([
      'deep/',
      'deep/x.bin = "\\u0000\\u0001\\u0002\\u0003" x1',
      'deep/y.txt = "why" x1',
      'link -> ../a.txt',
      'readme.md = "# readme" x1',
    ])
    // Handles opened before the rename act on the moved directory.
    writeText(deep, 'new.txt', 'via old handle', CREATE)
    expect(withDir(root, 'dest/moved/deep', (d) => readText(d, 'new.txt'))).toBe('via old handle')
    expect(docs.stat().ino).toBe(inosBefore.get('docs'))
    expect(readAll(reader)).toBe('why')
    // Inode numbers move with the nodes.
    const after = inodes(root)
    expect(after.get('dest/moved')).toBe(inosBefore.get('docs'))
    expect(after.get('dest/moved/deep/y.txt')).toBe(inosBefore.get('docs/deep/y.txt'))
    // The moved directory is opaque and self-contained; the old path is gone for good.
    root.mkdir('docs')
    expect(withDir(root, 'docs', (d) => d.readdir())).toEqual([])
    for (const h of [reader, deep, docs, dest]) h.close()
    expect(lowerSnapshot()).toEqual(lowerBefore)
    expect(overlay.changes()).toEqual([
      change('dest', 'added', 'directory'),
      change('dest/moved', 'added', 'directory'),
      change('dest/moved/deep', 'added', 'directory'),
      change('dest/moved/deep/new.txt', 'added', 'file'),
      change('dest/moved/deep/x.bin', 'added', 'file'),
      change('dest/moved/deep/y.txt', 'added', 'file'),
      change('dest/moved/link', 'added', 'symlink'),
      change('dest/moved/readme.md', 'added', 'file'),
      change('docs/deep', 'deleted', 'directory'),
      change('docs/deep/x.bin', 'deleted', 'file'),
      change('docs/deep/y.txt', 'deleted', 'file'),
      change('docs/link', 'deleted', 'symlink'),
      change('docs/readme.md', 'deleted', 'file'),
    ])
  })

  it('renaming a lower directory with whiteouts and upper entries inside keeps exactly the merged view', () => {
    const { root } = setup()
    withDir(root, 'docs', (d) => {
      d.unlink('readme.md')
      writeText(d, 'added.txt', 'added', CREATE)
    })
    withDir(root, 'docs/deep', (d) => writeText(d, 'x.bin', 'replaced'))
    const view = withDir(root, 'docs', (d) => snapshot(d))
    root.rename('docs', root, 'docs2')
    expect(withDir(root, 'docs2', (d) => snapshot(d))).toEqual(view)
    expect(view).not.toContain('readme.md = "# readme" x1')
  })

  it('renaming a lower file over a lower file: POSIX replace, both originals stay below', () => {
    const { root, overlay, lowerSnapshot } = setup()
    const before = lowerSnapshot()
    const ino = root.statChild('a.txt').ino
    const heldTarget = root.openFile('b.txt', READ)
    root.rename('a.txt', root, 'b.txt')
    expect(errnoOf(() => root.statChild('a.txt'))).toBe('NOENT')
    expect(readText(root, 'b.txt')).toBe('alpha')
    expect(root.statChild('b.txt').ino).toBe(ino)
    // The replaced file stays readable through a handle opened before, and is unlinked.
    expect(readAll(heldTarget)).toBe('bravo')
    expect(heldTarget.stat().nlink).toBe(0n)
    heldTarget.close()
    expect(lowerSnapshot()).toEqual(before)
    expect(overlay.changes()).toEqual([change('a.txt', 'deleted', 'file'), change('b.txt', 'modified', 'file')])
  })

  it('renaming a lower directory into its own subtree is INVAL and copies nothing up', () => {
    const { root, overlay } = setup()
    const deep = withDir(root, 'docs', (d) => d.openDir('deep'))
    expect(errnoOf(() => root.rename('docs', deep, 'x'))).toBe('INVAL')
    deep.close()
    expect(errnoOf(() => root.rename('empty', root, 'docs'))).toBe('NOTEMPTY')
    expect(errnoOf(() => root.rename('a.txt', root, 'docs'))).toBe('ISDIR')
    expect(errnoOf(() => root.rename('docs', root, 'a.txt'))).toBe('NOTDIR')
    expect(overlay.changes()).toEqual([])
  })

  it('renaming a lower directory over an empty lower directory replaces it', () => {
    const { root, overlay } = setup()
    const held = root.openDir('empty')
    root.rename('docs', root, 'empty')
    expect(held.readdir()).toEqual([])
    expect(errnoOf(() => held.mkdir('x'))).toBe('NOENT')
    held.close()
    expect(withDir(root, 'empty', (d) => d.readdir().map((e) => e.name))).toEqual(['deep', 'link', 'readme.md'])
    expect(overlay.changes().filter((c) => c.path.startsWith('empty'))).toEqual([
      change('empty/deep', 'added', 'directory'),
      change('empty/deep/x.bin', 'added', 'file'),
      change('empty/deep/y.txt', 'added', 'file'),
      change('empty/link', 'added', 'symlink'),
      change('empty/readme.md', 'added', 'file'),
    ])
  })

  it('a hard link to a lower file is a link to its upper copy: same inode, shared content', () => {
    const { root, overlay, lowerSnapshot } = setup()
    const before = lowerSnapshot()
    const ino = root.statChild('a.txt').ino
    root.mkdir('d')
    withDir(root, 'd', (d) => root.link('a.txt', d, 'hard'))
    const hard = withDir(root, 'd', (d) => d.statChild('hard'))
    expect(hard.ino).toBe(ino)
    expect(hard.nlink).toBe(2n)
    expect(root.statChild('a.txt').nlink).toBe(2n)
    withDir(root, 'd', (d) => writeText(d, 'hard', 'through the link', RW))
    expect(readText(root, 'a.txt')).toBe('through the link')
    root.unlink('a.txt')
    expect(withDir(root, 'd', (d) => d.statChild('hard').nlink)).toBe(1n)
    expect(lowerSnapshot()).toEqual(before)
    expect(overlay.changes()).toEqual([
      change('a.txt', 'deleted', 'file'),
      change('d', 'added', 'directory'),
      change('d/hard', 'added', 'file'),
    ])
  })

  it('a hard link to a lower symlink links the symlink itself', () => {
    const { root } = setup()
    root.link('ln', root, 'ln2')
    expect(root.readlink('ln2')).toBe('a.txt')
    expect(root.statChild('ln2').ino).toBe(root.statChild('ln').ino)
  })

  it('rename and link to a handle of another overlay, or of the lower layer itself, are XDEV', () => {
    const { root, raw, overlay } = setup()
    const other = createOverlayFs(readOnly(raw)).root()
    const lowerRoot = raw.root()
    for (const to of [other, lowerRoot]) {
      expect(errnoOf(() => root.rename('a.txt', to, 'x'))).toBe('XDEV')
      expect(errnoOf(() => root.link('a.txt', to, 'x'))).toBe('XDEV')
    }
    expect(overlay.changes()).toEqual([])
    other.close()
    lowerRoot.close()
  })
})

describe('overlay: unlink while open', () => {
  it('a lower file unlinked while open for reading stays readable, reports nlink 0, and can take new times', () => {
    const { root, overlay, lowerSnapshot } = setup()
    const before = lowerSnapshot()
    const f = root.openFile('a.txt', READ)
    root.unlink('a.txt')
    expect(errnoOf(() => root.statChild('a.txt'))).toBe('NOENT')
    expect(readAll(f)).toBe('alpha')
    expect(f.stat().nlink).toBe(0n)
    f.setTimes(T2, T2) // lands in a private unlinked copy, never in the lower layer
    expect(f.stat().mtim).toBe(T2)
    expect(readAll(f)).toBe('alpha')
    writeText(root, 'a.txt', 'new file', CREATE)
    expect(readAll(f)).toBe('alpha')
    f.close()
    expect(lowerSnapshot()).toEqual(before)
    expect(overlay.changes()).toEqual([change('a.txt', 'modified', 'file')])
  })

  it('a copied-up file unlinked while open for writing stays writable', () => {
    const { root } = setup()
    const f = root.openFile('b.txt', RW)
    root.unlink('b.txt')
    f.write(enc.encode('!'), 5n)
    expect(readAll(f)).toBe('bravo!')
    expect(f.stat().nlink).toBe(0n)
    f.close()
    expect(errnoOf(() => root.statChild('b.txt'))).toBe('NOENT')
  })
})

describe('overlay: changes()', () => {
  it('is empty for an untouched overlay and after reads, lookups and listings', () => {
    const { root, overlay } = setup()
    snapshot(root)
    expect(overlay.changes()).toEqual([])
  })

  it('is exact for a scripted sequence of files, directories and symlinks', () => {
    const { root, overlay } = setup()
    // Created then deleted: nothing.
    writeText(root, 'tmp', 'tmp', CREATE)
    root.unlink('tmp')
    root.mkdir('tmpdir')
    root.rmdir('tmpdir')
    root.symlink('x', 'tmplink')
    root.unlink('tmplink')
    // Opened for writing but never written (copied up unchanged): nothing.
    root.openFile('b.txt', RW).close()
    // Files: added, modified, deleted; restored bytes still count (the mtime moved).
    writeText(root, 'new.txt', 'new', CREATE)
    writeText(root, 'a.txt', 'ALPHA')
    withDir(root, 'docs/deep', (d) => {
      writeText(d, 'y.txt', 'other')
      writeText(d, 'y.txt', 'why')
      d.unlink('x.bin')
    })
    // Directories: added (with content), deleted (with content).
    root.mkdir('nd')
    withDir(root, 'nd', (d) => {
      d.mkdir('sub')
      d.symlink('../new.txt', 'l')
    })
    root.rmdir('empty')
    // Symlinks: re-pointed (modified), added, deleted.
    root.unlink('ln')
    root.symlink('b.txt', 'ln')
    withDir(root, 'docs', (d) => d.unlink('link'))
    // Type changes: a file becomes a directory.
    root.unlink('b.txt')
    root.mkdir('b.txt')
    expect(overlay.changes()).toEqual([
      change('a.txt', 'modified', 'file'),
      change('b.txt', 'deleted', 'file'),
      change('b.txt', 'added', 'directory'),
      change('docs/deep/x.bin', 'deleted', 'file'),
      change('docs/deep/y.txt', 'modified', 'file'),
      change('docs/link', 'deleted', 'symlink'),
      change('empty', 'deleted', 'directory'),
      change('ln', 'modified', 'symlink'),
      change('nd', 'added', 'directory'),
      change('nd/l', 'added', 'symlink'),
      change('nd/sub', 'added', 'directory'),
      change('new.txt', 'added', 'file'),
    ])
  })

  it('a lower file restored with its original bytes and mtime is no change', () => {
    const { root, overlay } = setup()
    const st = root.statChild('a.txt')
    writeText(root, 'a.txt', 'other')
    writeText(root, 'a.txt', 'alpha')
    root.setTimesChild('a.txt', st.atim, st.mtim)
    expect(overlay.changes()).toEqual([])
  })

  it('the upper layer must start empty', () => {
    expect(() => createOverlayFs(createMemFs(), { upper: memFsFromTree({ x: 'y' }) })).toThrow(/upper layer must start empty/)
  })

  it('uses the given clock for the default upper layer', () => {
    const overlay = createOverlayFs(memFsFromTree({}), { now: () => T2 })
    const root = overlay.root()
    writeText(root, 'f', 'x', CREATE)
    expect(root.statChild('f').mtim).toBe(T2)
    expect(overlay.upper.root().statChild('f').mtim).toBe(T2)
    root.close()
  })
})

// ---------------------------------------------------------------------------------------------
// Differential property test: the overlay over a seeded lower behaves like a plain MemFs seeded
// with the same tree, operation by operation, and its change list rebuilds exactly its view.

/** Fixed seed: a failure reproduces; `FUZZ_SEED` explores others. */
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x0e1a7)
const RUNS = Number(process.env['OVERLAY_RUNS'] ?? 100)

const FUZZ_TREE: TreeSpec = {
  a: { b: 'a/b', c: { a: 'a/c/a' }, l: { symlink: '../b' } },
  b: 'b',
  c: { symlink: 'a' },
  e: {},
}

type FuzzOp =
  | { op: 'write'; path: string; data: string; at: number }
  | { op: 'trunc' | 'mkdir' | 'rmdir' | 'unlink' | 'times' | 'hold' | 'holdDir'; path: string }
  | { op: 'setSize'; path: string; size: number }
  | { op: 'rename' | 'link'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'holdRW'; path: string }
  | { op: 'readHeld' | 'closeHeld' | 'timesHeld'; i: number }
  | { op: 'writeHeld'; i: number; data: string }
  | { op: 'createInHeld' | 'renameFromHeld'; i: number; name: string }

const nameArb = fc.constantFrom('a', 'b', 'c', 'e')
// Mostly one or two components: deeper paths through this small tree mostly end in NOTDIR.
const pathArb = fc.oneof(
  { arbitrary: nameArb, weight: 3 },
  { arbitrary: fc.tuple(fc.constantFrom('a', 'e', 'a/c'), nameArb).map(([d, n]) => `${d}/${n}`), weight: 4 },
  { arbitrary: fc.array(nameArb, { minLength: 2, maxLength: 3 }).map((c) => c.join('/')), weight: 1 },
)
const heldArb = fc.record({ op: fc.constantFrom('hold', 'holdRW', 'holdDir'), path: pathArb }) as fc.Arbitrary<FuzzOp>
const fuzzOpArb: fc.Arbitrary<FuzzOp> = fc.oneof(
  heldArb,
  fc.record({ op: fc.constant('write' as const), path: pathArb, data: fc.string({ maxLength: 6 }), at: fc.nat(8) }),
  fc.record({ op: fc.constantFrom('trunc', 'mkdir', 'rmdir', 'unlink', 'times', 'hold', 'holdDir'), path: pathArb }),
  fc.record({ op: fc.constant('setSize' as const), path: pathArb, size: fc.nat(10) }),
  fc.record({ op: fc.constantFrom('rename', 'link'), from: pathArb, to: pathArb }),
  fc.record({ op: fc.constant('symlink' as const), target: fc.constantFrom('a', '../b', 'x/y'), path: pathArb }),
  fc.record({ op: fc.constant('holdRW' as const), path: pathArb }),
  fc.record({ op: fc.constantFrom('readHeld', 'closeHeld', 'timesHeld'), i: fc.nat(5) }),
  fc.record({ op: fc.constant('writeHeld' as const), i: fc.nat(5), data: fc.string({ minLength: 1, maxLength: 4 }) }),
  fc.record({ op: fc.constantFrom('createInHeld', 'renameFromHeld'), i: fc.nat(5), name: nameArb }),
)

interface World {
  root: DirHandle
  files: FileHandle[]
  dirs: DirHandle[]
}

function split(path: string): { parent: string; name: string } {
  const i = path.lastIndexOf('/')
  return i < 0 ? { parent: '', name: path } : { parent: path.slice(0, i), name: path.slice(i + 1) }
}

/** Runs one operation and describes its outcome (an errno name, or what it returned). */
function runFuzzOp(w: World, op: FuzzOp): string {
  const at = (path: string, fn: (d: DirHandle, name: string) => unknown): string => {
    const { parent, name } = split(path)
    return errnoOr(() => withDir(w.root, parent, (d) => fn(d, name)))
  }
  switch (op.op) {
    case 'write':
      return at(op.path, (d, n) => {
        const f = d.openFile(n, CREATE)
        try {
          return f.write(enc.encode(op.data), BigInt(op.at))
        } finally {
          f.close()
        }
      })
    case 'trunc':
      return at(op.path, (d, n) => d.openFile(n, TRUNC).close())
    case 'setSize':
      return at(op.path, (d, n) => {
        const f = d.openFile(n, RW)
        try {
          f.setSize(BigInt(op.size))
        } finally {
          f.close()
        }
      })
    case 'mkdir':
      return at(op.path, (d, n) => d.mkdir(n))
    case 'rmdir':
      return at(op.path, (d, n) => d.rmdir(n))
    case 'unlink':
      return at(op.path, (d, n) => d.unlink(n))
    case 'times':
      return at(op.path, (d, n) => d.setTimesChild(n, T2, T2))
    case 'symlink':
      return at(op.path, (d, n) => d.symlink(op.target, n))
    case 'hold':
      return at(op.path, (d, n) => w.files.push(d.openFile(n, READ)))
    case 'holdRW':
      return at(op.path, (d, n) => w.files.push(d.openFile(n, RW)))
    case 'holdDir':
      return errnoOr(() => w.dirs.push(openPath(w.root, op.path)))
    case 'timesHeld': {
      const f = w.files[op.i % Math.max(1, w.files.length)]
      return f === undefined
        ? 'none'
        : errnoOr(() => {
            f.setTimes(T1, T2)
            const st = f.stat()
            return `${st.atim === T1 && st.mtim === T2} ${st.size} x${st.nlink}`
          })
    }
    case 'writeHeld': {
      const f = w.files[op.i % Math.max(1, w.files.length)]
      return f === undefined ? 'none' : errnoOr(() => f.write(enc.encode(op.data), 1n))
    }
    case 'rename':
    case 'link': {
      const from = split(op.from)
      const to = split(op.to)
      return errnoOr(() =>
        withDir(w.root, from.parent, (fd) =>
          withDir(w.root, to.parent, (td) => (op.op === 'rename' ? fd.rename(from.name, td, to.name) : fd.link(from.name, td, to.name))),
        ),
      )
    }
    case 'readHeld': {
      const f = w.files[op.i % Math.max(1, w.files.length)]
      return f === undefined ? 'none' : errnoOr(() => `${readAll(f)} x${f.stat().nlink}`)
    }
    case 'closeHeld': {
      const f = w.files.splice(op.i % Math.max(1, w.files.length), 1)[0]
      return f === undefined ? 'none' : errnoOr(() => f.close())
    }
    case 'createInHeld': {
      const d = w.dirs[op.i % Math.max(1, w.dirs.length)]
      return d === undefined ? 'none' : errnoOr(() => writeText(d, op.name, 'held', CREATE))
    }
    case 'renameFromHeld': {
      const d = w.dirs[op.i % Math.max(1, w.dirs.length)]
      return d === undefined ? 'none' : errnoOr(() => d.rename(op.name, w.root, `${op.name}${op.name}`))
    }
  }
}

function errnoOr(fn: () => unknown): string {
  try {
    const r = fn()
    return `ok ${typeof r === 'number' || typeof r === 'string' ? r : ''}`
  } catch (e) {
    if (e instanceof WasiError) return errnoName(e.errno)
    throw e
  }
}

/** Groups of paths sharing an inode number: the link structure, independent of the numbers. */
function linkGroups(root: DirHandle): string[][] {
  const byIno = new Map<bigint, string[]>()
  for (const [p, ino] of inodes(root)) byIno.set(ino, [...(byIno.get(ino) ?? []), p])
  return [...byIno.values()].map((g) => g.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1))
}

/** Rebuilds the merged view on a copy of the lower layer from `changes()` alone. */
function applyInMemory(overlayRoot: DirHandle, target: DirHandle, changes: OverlayChange[]): void {
  for (const c of [...changes].reverse()) {
    if (c.kind !== 'deleted') continue
    const { parent, name } = split(c.path)
    withDir(target, parent, (d) => (c.type === 'directory' ? d.rmdir(name) : d.unlink(name)))
  }
  for (const c of changes) {
    if (c.kind === 'deleted') continue
    const { parent, name } = split(c.path)
    withDir(target, parent, (d) =>
      withDir(overlayRoot, parent, (o) => {
        if (c.type === 'directory') {
          if (c.kind === 'added') d.mkdir(name)
        } else if (c.type === 'symlink') {
          if (c.kind === 'modified') d.unlink(name)
          d.symlink(o.readlink(name), name)
        } else {
          writeText(d, name, readText(o, name))
        }
      }),
    )
  }
}

describe('overlay: differential against a plain MemFs (fast-check)', () => {
  it('every operation gives the same outcome and the same tree; changes() rebuilds the view', () => {
    fc.assert(
      fc.property(fc.array(fuzzOpArb, { minLength: 5, maxLength: 40, size: 'max' }), (ops) => {
        const lower = memFsFromTree(FUZZ_TREE)
        const overlay = createOverlayFs(readOnly(lower))
        const ref = memFsFromTree(FUZZ_TREE)
        const o: World = { root: overlay.root(), files: [], dirs: [] }
        const r: World = { root: ref.root(), files: [], dirs: [] }
        try {
          for (const op of ops) {
            const got = runFuzzOp(o, op)
            const want = runFuzzOp(r, op)
            expect(got, JSON.stringify(op)).toBe(want)
            expect(snapshot(o.root), JSON.stringify(op)).toEqual(snapshot(r.root))
          }
          expect(linkGroups(o.root)).toEqual(linkGroups(r.root))
          const rebuilt = memFsFromTree(FUZZ_TREE)
          const rebuiltRoot = rebuilt.root()
          applyInMemory(o.root, rebuiltRoot, overlay.changes())
          expect(snapshot(rebuiltRoot).map((l) => l.replace(/ x\d+$/, ''))).toEqual(snapshot(o.root).map((l) => l.replace(/ x\d+$/, '')))
          rebuiltRoot.close()
          const lowerRoot = lower.root()
          expect(snapshot(lowerRoot)).toEqual(snapshot(memFsFromTree(FUZZ_TREE).root()))
          lowerRoot.close()
        } finally {
          for (const w of [o, r]) for (const h of [...w.files, ...w.dirs, w.root]) errnoOr(() => h.close())
        }
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })
})
