/**
 * @module The browser mounts' copy-in / write-back data (runtime/browser/snapshot.ts) and the
 * link-refusing wrapper of OPFS mounts, on Node (they are platform-neutral): entry paths can only
 * name places beneath the mount, a tree round-trips through MemFs, diffs remove deepest first and
 * rewrite only what changed, and an OPFS-bound mount refuses symlinks and hard links with NOTSUP.
 */
import { describe, expect, it } from 'vitest'
import { createMemFs, Errno, WasiError } from '../../../wasi-host/index.js'
import { withoutLinks } from '../../../runtime/browser/no-links.js'
import { browserProblems, toRunOptions } from '../../../runtime/browser/options.js'
import {
  diffEntries,
  entriesFromTree,
  entryComponents,
  readEntries,
  writeEntries,
  type FileEntry,
} from '../../../runtime/browser/snapshot.js'

const te = new TextEncoder()

describe('browser mount snapshots', () => {
  it('refuses entry paths that are not plainly beneath the mount', () => {
    for (const bad of ['', '/abs', '..', 'a/../b', 'a//b', './a', 'a/.', 'nul\0x', 'a/']) {
      expect(() => entryComponents(bad), JSON.stringify(bad)).toThrow(WasiError)
    }
    expect(entryComponents('a/b c/d')).toEqual(['a', 'b c', 'd'])
    expect(() => entriesFromTree({ '..': 'x' })).toThrow(WasiError)
    const fs = createMemFs()
    const root = fs.root()
    expect(() => writeEntries(root, [{ path: '../escape', kind: 'file', data: te.encode('x') }])).toThrow(WasiError)
    root.close()
    expect(readEntries(fs)).toEqual([])
  })

  it('round-trips a tree through MemFs (files, bytes, directories, symlinks) in a stable order', () => {
    const entries = entriesFromTree({
      'b.txt': 'bee',
      a: { 'x.bin': new Uint8Array([0, 255, 7]), empty: {} },
      link: { symlink: 'a/x.bin' },
    })
    const fs = createMemFs()
    const root = fs.root()
    writeEntries(root, entries)
    root.close()
    expect(readEntries(fs)).toEqual([
      { path: 'a', kind: 'dir' },
      { path: 'a/empty', kind: 'dir' },
      { path: 'a/x.bin', kind: 'file', data: new Uint8Array([0, 255, 7]) },
      { path: 'b.txt', kind: 'file', data: te.encode('bee') },
      { path: 'link', kind: 'symlink', target: 'a/x.bin' },
    ])
    expect(() => readEntries(fs, 5)).toThrow(RangeError)
  })

  it('diffs: removals deepest first, then only new or changed entries, parents first', () => {
    const before: FileEntry[] = [
      { path: 'd', kind: 'dir' },
      { path: 'd/e', kind: 'dir' },
      { path: 'd/e/f', kind: 'file', data: te.encode('1') },
      { path: 'same', kind: 'file', data: te.encode('s') },
      { path: 'changed', kind: 'file', data: te.encode('old') },
      { path: 'kind', kind: 'file', data: te.encode('was a file') },
    ]
    const after: FileEntry[] = [
      { path: 'changed', kind: 'file', data: te.encode('new') },
      { path: 'kind', kind: 'dir' },
      { path: 'kind/in', kind: 'file', data: te.encode('i') },
      { path: 'same', kind: 'file', data: te.encode('s') },
    ]
    const { removed, written } = diffEntries(before, after)
    expect(removed.map((e) => e.path)).toEqual(['d/e/f', 'd/e', 'd', 'kind'])
    expect(written.map((e) => e.path)).toEqual(['changed', 'kind', 'kind/in'])
  })

  it('an OPFS-bound mount refuses symlinks and hard links with NOTSUP, in subdirectories too, and renames still work', () => {
    const fs = withoutLinks(createMemFs())
    expect(fs.caps).toMatchObject({ symlinks: false, hardLinks: false })
    const root = fs.root()
    root.mkdir('d')
    const d = root.openDir('d')
    const f = d.openFile('f', { read: false, write: true, create: true, exclusive: false, truncate: false })
    f.close()
    const errno = (fn: () => void) => {
      try {
        fn()
        return 'ok'
      } catch (e) {
        return e instanceof WasiError ? e.errno : e
      }
    }
    expect(errno(() => root.symlink('d/f', 'ln'))).toBe(Errno.NOTSUP)
    expect(errno(() => d.symlink('f', 'ln'))).toBe(Errno.NOTSUP)
    expect(errno(() => d.link('f', root, 'hard'))).toBe(Errno.NOTSUP)
    expect(errno(() => d.rename('f', root, 'moved'))).toBe('ok')
    expect(
      root
        .readdir()
        .map((e) => e.name)
        .sort(),
    ).toEqual(['d', 'moved'])
    d.close()
    root.close()
  })
})

describe('browser options', () => {
  it('names each field a page cannot have, and passes the rest to the shared policy', () => {
    const problems = browserProblems({
      isolation: 'in-process',
      stdout: 'inherit',
      listen: ['x'],
      bogus: 1,
      stdin: 'inherit',
      mounts: [
        { guest: '/h', host: '/etc' },
        { guest: '/o', tmp: true, mode: 'overlay' },
        { guest: '/two', tmp: true, opfs: 'x' },
        { guest: '/p', tmp: true, path: '/x' },
        { guest: '/f', fs: {} },
      ],
    })
    expect(problems).toEqual([
      'isolation: the browser runs every guest in its own Web Worker',
      'stdout: a page has no stdout to inherit; output is captured, and streamed with onStdout',
      'listen: sockets are not available in the browser',
      '(options): Unrecognized key: "bogus"',
      'stdin: a page has no stdin to inherit; pass a string or bytes',
      'mounts[0].host: host directories are not available in the browser; use tmp, tree, opfs or volume',
      'mounts[1].mode: overlays are not available in the browser',
      'mounts[2]: needs exactly one of tmp, tree, opfs or volume',
      'mounts[3].path: is for volume mounts',
      "mounts[4].fs: a Filesystem object cannot cross into the guest's worker; use tree, opfs or volume",
    ])
    expect(browserProblems({ stdin: { file: '/etc/passwd' } })).toEqual(['stdin: a page has no host files; pass a string or bytes'])
    expect(
      toRunOptions({
        args: ['a'],
        limits: { memory: '1MiB' },
        mounts: [
          { guest: '/t', opfs: 'x', mode: 'ro' },
          { guest: '/u', tmp: true, size: '1MiB', inodes: 3 },
        ],
      }),
    ).toEqual({
      args: ['a'],
      limits: { memory: '1MiB' },
      isolation: 'worker',
      mounts: [
        { guest: '/t', tmp: true, mode: 'ro' },
        { guest: '/u', tmp: true, size: '1MiB', inodes: 3 },
      ],
    })
  })
})
