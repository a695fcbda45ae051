/**
 * @module `readOnly(fs)`: the contract suite's read tests and ROFS checks over a seeded MemFs,
 * then the wrapper's own promises: every mutating method refused before the backend is asked,
 * reads passed through, two-handle operations refused from either side (ghsa-4ch3), and the
 * GHSA-2r75 class (`O_TRUNC` through a read open) closed.
 */
import { describe, expect, it } from 'vitest'
import type { DirHandle, Filesystem, OpenFileOptions } from '../../../wasi-host/fs/filesystem.js'
import { createMemFs, memFsFromTree } from '../../../wasi-host/fs/mem-fs.js'
import { readOnly } from '../../../wasi-host/fs/read-only.js'
import { errnoOf, readText, runBackendSuite, seedBackendFixture } from './fs-backend.case.js'

runBackendSuite(
  'readOnly(MemFs) contract',
  () => {
    const inner = createMemFs()
    const root = inner.root()
    seedBackendFixture(root, inner.caps)
    root.close()
    return { fs: readOnly(inner) }
  },
  { readOnly: true },
)

const enc = new TextEncoder()
const dec = new TextDecoder()
const NONE: OpenFileOptions = { read: false, write: false, create: false, exclusive: false, truncate: false }
const READ: OpenFileOptions = { ...NONE, read: true }

function setup(): { raw: Filesystem; ro: Filesystem; rawRoot: DirHandle; roRoot: DirHandle } {
  const raw = memFsFromTree({ 'a.txt': 'alpha', d: { 'b.txt': 'beta', e: {} }, l: { symlink: 'a.txt' } })
  const ro = readOnly(raw)
  return { raw, ro, rawRoot: raw.root(), roRoot: ro.root() }
}

/** Everything observable about the tree, to show a refused call changed nothing. */
function snapshot(dir: DirHandle): unknown {
  return dir.readdir().map((e) => {
    const st = dir.statChild(e.name)
    const base = { name: e.name, st }
    if (e.filetype === 4) return { ...base, content: readText(dir, e.name) }
    if (e.filetype === 3) {
      const sub = dir.openDir(e.name)
      const inner = snapshot(sub)
      sub.close()
      return { ...base, inner }
    }
    return { ...base, target: dir.readlink(e.name) }
  })
}

describe('readOnly wrapper', () => {
  it('passes every read through', () => {
    const { raw, ro, roRoot } = setup()
    expect(ro.caps).toEqual(raw.caps)
    expect(roRoot.kind).toBe('dir')
    expect(roRoot.readdir().map((e) => e.name)).toEqual(['a.txt', 'd', 'l'])
    expect(roRoot.statChild('a.txt').size).toBe(5n)
    expect(roRoot.readlink('l')).toBe('a.txt')
    expect(readText(roRoot, 'a.txt')).toBe('alpha')
    const d = roRoot.openDir('d')
    expect(readText(d, 'b.txt')).toBe('beta')
    const f = d.openFile('b.txt', READ)
    expect(f.kind).toBe('file')
    f.sync()
    f.datasync()
    expect(f.stat().size).toBe(4n)
    f.close()
    d.close()
    expect(roRoot.stat().filetype).toBe(3)
  })

  it('passes the backend errors of reads through unchanged', () => {
    const { roRoot } = setup()
    expect(errnoOf(() => roRoot.statChild('nope'))).toBe('NOENT')
    expect(errnoOf(() => roRoot.openDir('a.txt'))).toBe('NOTDIR')
    expect(errnoOf(() => roRoot.openFile('d', READ))).toBe('ISDIR')
    expect(errnoOf(() => roRoot.openFile('l', READ))).toBe('LOOP')
    expect(errnoOf(() => roRoot.readlink('a.txt'))).toBe('INVAL')
    expect(errnoOf(() => roRoot.statChild('a/b'))).toBe('INVAL')
  })

  it('refuses every FileHandle mutation with ROFS', () => {
    const { rawRoot, roRoot } = setup()
    const before = snapshot(rawRoot)
    const f = roRoot.openFile('a.txt', READ)
    expect(errnoOf(() => f.write(enc.encode('x'), 0n))).toBe('ROFS')
    expect(errnoOf(() => f.write(new Uint8Array(0), 0n))).toBe('ROFS')
    expect(errnoOf(() => f.setSize(0n))).toBe('ROFS')
    expect(errnoOf(() => f.setTimes('now', 'now'))).toBe('ROFS')
    expect(errnoOf(() => f.allocate(0n, 1000n))).toBe('ROFS')
    expect(snapshot(rawRoot)).toEqual(before)
  })

  it('refuses every DirHandle mutation with ROFS, on existing and missing names alike', () => {
    const { rawRoot, roRoot } = setup()
    const before = snapshot(rawRoot)
    const d = roRoot.openDir('d')
    const calls: [string, () => unknown][] = [
      ['setTimes', () => roRoot.setTimes(1n, 1n)],
      ['mkdir', () => roRoot.mkdir('new')],
      ['mkdir existing', () => roRoot.mkdir('d')],
      ['symlink', () => roRoot.symlink('a.txt', 'new')],
      ['unlink', () => roRoot.unlink('a.txt')],
      ['unlink missing', () => roRoot.unlink('nope')],
      ['rmdir', () => d.rmdir('e')],
      ['rename within', () => roRoot.rename('a.txt', roRoot, 'z')],
      ['rename across ro dirs', () => roRoot.rename('a.txt', d, 'z')],
      ['link within', () => roRoot.link('a.txt', roRoot, 'z')],
      ['link across ro dirs', () => roRoot.link('a.txt', d, 'z')],
      ['setTimesChild', () => roRoot.setTimesChild('a.txt', 1n, 1n)],
      ['setTimesChild symlink', () => roRoot.setTimesChild('l', 1n, 1n)],
    ]
    for (const [label, call] of calls) expect(errnoOf(call), label).toBe('ROFS')
    expect(snapshot(rawRoot)).toEqual(before)
  })

  it('refuses openFile with write, create or truncate (GHSA-2r75: O_TRUNC on a read open)', () => {
    const { rawRoot, roRoot } = setup()
    const before = snapshot(rawRoot)
    for (const o of [
      { ...NONE, write: true },
      { ...NONE, read: true, write: true },
      { ...NONE, read: true, truncate: true },
      { ...NONE, truncate: true },
      { ...NONE, read: true, create: true },
      { ...NONE, read: true, create: true, exclusive: true },
    ]) {
      expect(
        errnoOf(() => roRoot.openFile('a.txt', o)),
        JSON.stringify(o),
      ).toBe('ROFS')
      expect(
        errnoOf(() => roRoot.openFile('fresh', o)),
        JSON.stringify(o),
      ).toBe('ROFS')
    }
    expect(snapshot(rawRoot)).toEqual(before)
  })

  it('handles reached through openDir are read-only too, at any depth', () => {
    const { roRoot } = setup()
    const d = roRoot.openDir('d')
    const e = d.openDir('e')
    expect(errnoOf(() => e.mkdir('x'))).toBe('ROFS')
    expect(errnoOf(() => e.openFile('x', { ...NONE, write: true, create: true }))).toBe('ROFS')
    expect(errnoOf(() => d.openFile('b.txt', READ).write(enc.encode('x'), 0n))).toBe('ROFS')
  })

  it('refuses rename and link from a read-only directory into a writable one (ghsa-4ch3)', () => {
    const { rawRoot, roRoot } = setup()
    const before = snapshot(rawRoot)
    expect(errnoOf(() => roRoot.rename('a.txt', rawRoot, 'stolen'))).toBe('ROFS')
    expect(errnoOf(() => roRoot.link('a.txt', rawRoot, 'stolen'))).toBe('ROFS')
    expect(errnoOf(() => roRoot.rename('a.txt', createMemFs().root(), 'x'))).toBe('ROFS')
    expect(snapshot(rawRoot)).toEqual(before)
  })

  it('a writable directory cannot rename or link into a read-only one (the backend sees a foreign handle)', () => {
    const { rawRoot, roRoot } = setup()
    rawRoot.openFile('w.txt', { ...NONE, write: true, create: true }).close()
    const before = snapshot(rawRoot)
    expect(['ROFS', 'XDEV']).toContain(errnoOf(() => rawRoot.rename('w.txt', roRoot, 'planted')))
    expect(['ROFS', 'XDEV']).toContain(errnoOf(() => rawRoot.link('w.txt', roRoot, 'planted')))
    expect(['ROFS', 'XDEV']).toContain(errnoOf(() => rawRoot.rename('w.txt', roRoot.openDir('d'), 'planted')))
    expect(snapshot(rawRoot)).toEqual(before)
  })

  it('is a live view: changes made through the writable filesystem show through', () => {
    const { rawRoot, roRoot } = setup()
    const held = roRoot.openFile('a.txt', READ)
    const w = rawRoot.openFile('a.txt', { ...NONE, write: true })
    w.write(enc.encode('ALPHA'), 0n)
    rawRoot.mkdir('later')
    const buf = new Uint8Array(5)
    held.read(buf, 0n)
    expect(dec.decode(buf)).toBe('ALPHA')
    expect(roRoot.statChild('later').filetype).toBe(3)
  })

  it('stacks: readOnly(readOnly(fs)) still reads and still refuses', () => {
    const { ro } = setup()
    const twice = readOnly(ro).root()
    expect(readText(twice, 'a.txt')).toBe('alpha')
    expect(errnoOf(() => twice.mkdir('x'))).toBe('ROFS')
    expect(errnoOf(() => twice.openFile('a.txt', { ...NONE, truncate: true }))).toBe('ROFS')
  })

  it('close is passed through to the backend', () => {
    const { roRoot } = setup()
    const f = roRoot.openFile('a.txt', READ)
    f.close()
    expect(errnoOf(() => f.read(new Uint8Array(1), 0n))).toBe('BADF')
    const d = roRoot.openDir('d')
    d.close()
    expect(errnoOf(() => d.readdir())).toBe('BADF')
  })

  it('does not expose the inner handle', () => {
    const { roRoot } = setup()
    expect(Object.keys(roRoot)).toEqual(['kind'])
    expect(Object.getOwnPropertyNames(roRoot)).toEqual(['kind'])
    expect(Object.getOwnPropertySymbols(roRoot)).toEqual([])
  })
})
