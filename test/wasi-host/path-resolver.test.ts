/**
 * The one path resolver, driven directly with MemFs handles (wrapped to count open and closed
 * handles and to log what the backend is asked): `.`/`..` handling, symlink chains and the
 * 40-link limit, `file/../x`, trailing slashes, escapes, limits, and handle release.
 */
import { describe, expect, it } from 'vitest'
import { Errno, Filetype } from '../../wasi-host/abi/constants.js'
import { WasiError } from '../../wasi-host/errors.js'
import type { DirHandle } from '../../wasi-host/fs/filesystem.js'
import { memFsFromTree, type TreeSpec } from '../../wasi-host/fs/mem-fs.js'
import { DEFAULT_RESOLVER_LIMITS, resolve, validatePath, type Resolution, type ResolverLimits } from '../../wasi-host/fs/path-resolver.js'
import { countingFs, errnoName, type HandleCounter } from './harness.js'

const TREE: TreeSpec = {
  'a.txt': 'alpha',
  sub: { 'b.txt': 'bravo', deeper: { 'c.txt': 'charlie' }, back: { symlink: '../a.txt' }, dot: { symlink: '.' } },
  link: { symlink: 'a.txt' },
  sl: { symlink: 'sub' },
  slslash: { symlink: 'sub/' },
  chain1: { symlink: 'chain2' },
  chain2: { symlink: 'sub/deeper/../back' },
  loopa: { symlink: 'loopb' },
  loopb: { symlink: 'loopa' },
  self: { symlink: 'self' },
  abs: { symlink: '/etc/passwd' },
  up: { symlink: '..' },
  up2: { symlink: '../..' },
  dangling: { symlink: 'nope' },
  empty: {},
}

interface Fixture {
  start: DirHandle
  counter: HandleCounter
  log: string[]
  run(path: string, follow?: boolean, limits?: ResolverLimits): Resolution
  fail(path: string, follow?: boolean, limits?: ResolverLimits): string
}

function fixture(tree: TreeSpec = TREE): Fixture {
  const log: string[] = []
  const { fs, counter } = countingFs(memFsFromTree(tree), log)
  const start = fs.root()
  return {
    start,
    counter,
    log,
    run: (path, follow = true, limits = DEFAULT_RESOLVER_LIMITS) => resolve(start, path, { follow }, limits),
    fail: (path, follow = true, limits = DEFAULT_RESOLVER_LIMITS) => {
      const before = counter.open
      try {
        const r = resolve(start, path, { follow }, limits)
        r.release()
      } catch (e) {
        expect(e).toBeInstanceOf(WasiError)
        // SECURITY: a failed walk releases every handle it opened.
        expect(counter.open).toBe(before)
        return errnoName((e as WasiError).errno)
      }
      throw new Error(`expected ${JSON.stringify(path)} to fail`)
    },
  }
}

/** Resolves, checks and releases; returns what a caller would use. */
function look(
  f: Fixture,
  path: string,
  follow = true,
): { name: string | undefined; type: number | undefined; depth: number; trailingSlash: boolean; dirIsStart: boolean } {
  const before = f.counter.open
  const r = f.run(path, follow)
  const out = {
    name: r.name,
    type: r.stat?.filetype,
    depth: r.depth,
    trailingSlash: r.trailingSlash,
    dirIsStart: r.dir === f.start,
  }
  r.release()
  expect(f.counter.open).toBe(before)
  return out
}

describe('path-resolver', () => {
  describe('plain names', () => {
    it('resolves a name in the start directory without opening anything', () => {
      const f = fixture()
      const r = look(f, 'a.txt')
      expect(r).toEqual({ name: 'a.txt', type: Filetype.REGULAR_FILE, depth: 0, trailingSlash: false, dirIsStart: true })
      expect(f.counter.opened).toBe(1) // only the start handle
    })

    it('walks into subdirectories, reporting the depth', () => {
      const f = fixture()
      expect(look(f, 'sub/deeper/c.txt')).toMatchObject({ name: 'c.txt', type: Filetype.REGULAR_FILE, depth: 2, dirIsStart: false })
    })

    it('reports a missing final component with no stat (for creation)', () => {
      const f = fixture()
      expect(look(f, 'sub/new.txt')).toMatchObject({ name: 'new.txt', type: undefined, depth: 1 })
    })

    it('is NOENT for a missing directory in the middle', () => {
      expect(fixture().fail('nope/x')).toBe('NOENT')
      expect(fixture().fail('sub/nope/x')).toBe('NOENT')
    })

    it('ignores repeated slashes', () => {
      const f = fixture()
      expect(look(f, 'sub//deeper///c.txt')).toMatchObject({ name: 'c.txt', depth: 2 })
    })
  })

  describe('"." and ".."', () => {
    it('"." designates the start directory itself', () => {
      const f = fixture()
      expect(look(f, '.')).toMatchObject({ name: undefined, type: Filetype.DIRECTORY, depth: 0, dirIsStart: true })
      expect(look(f, './././a.txt')).toMatchObject({ name: 'a.txt', dirIsStart: true })
    })

    it('".." pops back to the directory walked from, never asking the backend', () => {
      const f = fixture()
      expect(look(f, 'sub/..')).toMatchObject({ name: undefined, depth: 0, dirIsStart: true })
      expect(look(f, 'sub/deeper/../../a.txt')).toMatchObject({ name: 'a.txt', depth: 0, dirIsStart: true })
      expect(look(f, 'sub/deeper/../b.txt')).toMatchObject({ name: 'b.txt', depth: 1 })
      expect(f.log.some((l) => l.includes('(..)') || l.includes('(.)'))).toBe(false)
    })

    it('".." past the start is an escape (PERM), however it is reached', () => {
      const f = fixture()
      for (const p of ['..', '../a.txt', 'sub/../..', './..', 'sub/deeper/../../..', 'empty/../../x']) {
        expect(f.fail(p)).toBe('PERM')
      }
    })

    it('"file/../x" is NOTDIR, not a lexical shortcut', () => {
      const f = fixture()
      expect(f.fail('a.txt/../sub')).toBe('NOTDIR')
      expect(f.fail('a.txt/.')).toBe('NOTDIR')
      expect(f.fail('sub/b.txt/..')).toBe('NOTDIR')
      expect(f.fail('a.txt/x')).toBe('NOTDIR')
    })
  })

  describe('absolute paths and validation', () => {
    it('an absolute path is an escape (PERM) before any lookup', () => {
      const f = fixture()
      expect(f.fail('/a.txt')).toBe('PERM')
      expect(f.fail('/')).toBe('PERM')
      expect(f.log).toEqual([])
    })

    it('empty is NOENT, NUL is INVAL, too long is NAMETOOLONG', () => {
      const f = fixture()
      expect(f.fail('')).toBe('NOENT')
      expect(f.fail('a\0b')).toBe('INVAL')
      expect(f.fail('x'.repeat(4097))).toBe('NAMETOOLONG')
      expect(f.fail('日'.repeat(1366))).toBe('NAMETOOLONG') // 4098 bytes, 1366 UTF-16 units
      expect(f.fail('x'.repeat(256))).toBe('NAMETOOLONG')
      expect(f.fail('é'.repeat(128))).toBe('NAMETOOLONG') // 256 bytes in one component
      expect(look(f, 'x'.repeat(255))).toMatchObject({ name: 'x'.repeat(255), type: undefined })
    })

    it('validatePath measures UTF-8 bytes at the 4096 boundary', () => {
      validatePath('x'.repeat(4096), DEFAULT_RESOLVER_LIMITS)
      validatePath('日'.repeat(1365), DEFAULT_RESOLVER_LIMITS) // 4095 bytes
      expect(() => validatePath('日'.repeat(1365) + 'ab', DEFAULT_RESOLVER_LIMITS)).toThrow(WasiError)
    })

    it('caps the number of components walked (NAMETOOLONG)', () => {
      const f = fixture()
      const limits = { ...DEFAULT_RESOLVER_LIMITS, maxComponents: 6 }
      expect(f.fail('sub/../sub/../sub/../a.txt', true, limits)).toBe('NAMETOOLONG')
      expect(look(f, 'sub/../sub/../a.txt')).toMatchObject({ name: 'a.txt' })
    })

    it('never hands the backend a "." , ".." or multi-component name', () => {
      const f = fixture()
      for (const p of ['sub/./deeper/../b.txt', 'sl/deeper/c.txt', 'chain1', 'sub/dot/dot/b.txt', 'x/../y']) {
        try {
          f.run(p).release()
        } catch {
          /* errors are fine here */
        }
      }
      for (const l of f.log) {
        const name = l.slice(l.indexOf('(') + 1, -1)
        expect(name === '.' || name === '..' || name.includes('/') || name === '').toBe(false)
      }
    })
  })

  describe('symlinks', () => {
    it('a final symlink is followed only with follow', () => {
      const f = fixture()
      expect(look(f, 'link', true)).toMatchObject({ name: 'a.txt', type: Filetype.REGULAR_FILE })
      expect(look(f, 'link', false)).toMatchObject({ name: 'link', type: Filetype.SYMBOLIC_LINK })
    })

    it('a symlink in the middle is always followed', () => {
      const f = fixture()
      expect(look(f, 'sl/b.txt', false)).toMatchObject({ name: 'b.txt', depth: 1 })
      expect(look(f, 'sub/dot/dot/deeper/c.txt', false)).toMatchObject({ name: 'c.txt', depth: 2 })
    })

    it('mid-path, a directory is opened at once; a symlink or a file there is refused by that open and decided by the lookup', () => {
      const f = fixture()
      f.run('sub/deeper/c.txt', false).release()
      expect(f.log).toEqual(['openDir(sub)', 'openDir(deeper)', 'statChild(c.txt)'])
      f.log.length = 0
      f.run('sl/b.txt', false).release()
      expect(f.log).toEqual(['openDir(sl)', 'statChild(sl)', 'readlink(sl)', 'openDir(sub)', 'statChild(b.txt)'])
      expect(f.fail('a.txt/x')).toBe('NOTDIR')
      expect(f.fail('nope/x')).toBe('NOENT')
      expect(f.fail('up/a.txt')).toBe('PERM')
      expect(f.fail('abs/x')).toBe('PERM')
    })

    it('follows a chain of links, resolving ".." in targets against where the link lives', () => {
      const f = fixture()
      // chain1 -> chain2 -> sub/deeper/../back -> (in sub) ../a.txt
      expect(look(f, 'chain1')).toMatchObject({ name: 'a.txt', depth: 0, dirIsStart: true })
      expect(look(f, 'sub/back')).toMatchObject({ name: 'a.txt', depth: 0 })
    })

    it('a trailing slash follows a final symlink even without follow, and must be a directory', () => {
      const f = fixture()
      expect(look(f, 'sl/', false)).toMatchObject({ name: 'sub', type: Filetype.DIRECTORY, trailingSlash: true })
      expect(look(f, 'link/', false)).toMatchObject({ name: 'a.txt', type: Filetype.REGULAR_FILE, trailingSlash: true })
    })

    it('a link whose target ends in "/" carries the trailing slash', () => {
      const f = fixture()
      expect(look(f, 'slslash')).toMatchObject({ name: 'sub', trailingSlash: true })
    })

    it('a dangling final symlink resolves to its missing target (for creation)', () => {
      const f = fixture()
      expect(look(f, 'dangling')).toMatchObject({ name: 'nope', type: undefined })
      expect(look(f, 'dangling', false)).toMatchObject({ name: 'dangling', type: Filetype.SYMBOLIC_LINK })
    })

    it('a cycle is LOOP', () => {
      const f = fixture()
      expect(f.fail('loopa')).toBe('LOOP')
      expect(f.fail('self')).toBe('LOOP')
      expect(f.fail('self/x', false)).toBe('LOOP')
    })

    it('allows exactly 40 links in one lookup; the 41st is LOOP', () => {
      const tree: TreeSpec = { end: 'ok' }
      for (let i = 0; i <= 40; i++) tree[`l${i}`] = { symlink: i === 40 ? 'end' : `l${i + 1}` }
      const f = fixture(tree)
      expect(look(f, 'l1')).toMatchObject({ name: 'end', type: Filetype.REGULAR_FILE }) // 40 links
      expect(f.fail('l0')).toBe('LOOP') // 41 links
      expect(DEFAULT_RESOLVER_LIMITS.maxSymlinks).toBe(40)
    })

    it('links in the middle count toward the same limit', () => {
      const tree: TreeSpec = { d: { f: 'x' } }
      for (let i = 0; i < 41; i++) tree[`m${i}`] = { symlink: i === 40 ? 'd' : `m${i + 1}` }
      const f = fixture(tree)
      expect(f.fail('m0/f')).toBe('LOOP')
      expect(look(f, 'm1/f')).toMatchObject({ name: 'f' })
    })

    it('an absolute target, or one climbing past the start, is an escape (PERM)', () => {
      const f = fixture()
      expect(f.fail('abs')).toBe('PERM')
      // Not followed (O_NOFOLLOW on the last component): the link itself, its target never read.
      expect(look(f, 'abs', false)).toMatchObject({ name: 'abs', type: Filetype.SYMBOLIC_LINK })
    })

    it('escaping links are refused wherever they appear', () => {
      const f = fixture()
      for (const p of ['up/a.txt', 'up2/x', 'up', 'up/', 'abs/', 'sub/../up/sub']) expect(f.fail(p)).toBe('PERM')
    })

    it('from a subdirectory handle, ".." in a link target is judged against that handle', () => {
      const log: string[] = []
      const { fs, counter } = countingFs(memFsFromTree(TREE), log)
      const root = fs.root()
      const sub = root.openDir('sub')
      const before = counter.open
      expect(() => resolve(sub, 'back', { follow: true })).toThrow(WasiError)
      expect(counter.open).toBe(before)
      const r = resolve(sub, 'deeper/../b.txt', { follow: true })
      expect(r.name).toBe('b.txt')
      expect(r.dir).toBe(sub)
      r.release()
      expect(counter.open).toBe(before)
    })
  })

  describe('handles', () => {
    it('release() closes every handle the walk opened, never the start, and is idempotent', () => {
      const f = fixture()
      const r = f.run('sub/deeper/c.txt')
      expect(f.counter.open).toBe(3)
      r.release()
      expect(f.counter.open).toBe(1)
      r.release()
      expect(f.counter.open).toBe(1)
      expect(f.counter.doubleClose).toBe(0)
    })

    it('keep() hands one handle to the caller; release() closes only the rest', () => {
      const f = fixture()
      const r = f.run('sub/deeper/..')
      expect(r.name).toBeUndefined()
      const kept = r.dir
      r.keep(kept)
      r.release()
      expect(f.counter.open).toBe(2)
      expect(kept.readdir().map((e) => e.name)).toContain('b.txt')
      kept.close()
      expect(f.counter.open).toBe(1)
      expect(f.counter.doubleClose).toBe(0)
    })

    it('every failure releases what it opened: NOENT, NOTDIR, LOOP, PERM deep in a walk', () => {
      const tree: TreeSpec = { a: { b: { c: { f: 'x', lp: { symlink: 'lp' }, out: { symlink: '../../../..' } } } } }
      const f = fixture(tree)
      expect(f.fail('a/b/c/missing/x')).toBe('NOENT')
      expect(f.fail('a/b/c/f/x')).toBe('NOTDIR')
      expect(f.fail('a/b/c/lp')).toBe('LOOP')
      expect(f.fail('a/b/c/out/x')).toBe('PERM')
      expect(f.fail('a/b/c/../../../..')).toBe('PERM')
      expect(f.counter.open).toBe(1)
      expect(f.counter.doubleClose).toBe(0)
    })

    it('a walk through many directories and links leaves nothing open after release', () => {
      const f = fixture()
      for (const p of ['chain1', 'sl/deeper/../back', 'sub/dot/dot/dot/deeper/c.txt', 'slslash', 'sub/deeper/../../sl/b.txt']) {
        f.run(p).release()
      }
      expect(f.counter.open).toBe(1)
      expect(f.counter.opened).toBe(f.counter.closed + 1)
    })
  })

  describe('probe (the final open of path_open, tried before any lookup)', () => {
    /** Resolves with a probe that records where it ran and answers `answer`. */
    function probed(f: Fixture, path: string, answer: (name: string) => boolean, follow = true): { calls: string[]; r: Resolution } {
      const calls: string[] = []
      const r = resolve(f.start, path, {
        follow,
        probe: (dir, name) => {
          calls.push(`${dir === f.start ? '' : 'sub:'}${name}`)
          return answer(name)
        },
      })
      return { calls, r }
    }

    it('runs on a plain final name instead of the lookup, and ends the walk when it settles the call', () => {
      const f = fixture()
      const { calls, r } = probed(f, 'sub/b.txt', () => true)
      expect(calls).toEqual(['sub:b.txt'])
      expect(r).toMatchObject({ name: 'b.txt', stat: undefined, probed: true, depth: 1 })
      // The directories on the way were still walked one component at a time (each opened at
      // once, no follow); the name was never looked up.
      expect(f.log).toEqual(['openDir(sub)'])
      r.release()
      expect(f.counter.open).toBe(1)
    })

    it('when it declines, the walk goes on exactly as without it: lookup, symlinks followed, then the probe at the target', () => {
      const f = fixture()
      const { calls, r } = probed(f, 'chain1', (name) => name === 'a.txt')
      // chain1 -> chain2 -> sub/deeper/../back -> ../a.txt: the probe runs at every final name reached.
      expect(calls).toEqual(['chain1', 'chain2', 'sub:back', 'a.txt'])
      expect(r).toMatchObject({ name: 'a.txt', probed: true })
      expect(r.dir).toBe(f.start)
      r.release()
      const plain = probed(f, 'a.txt', () => false)
      expect(plain.r).toMatchObject({ name: 'a.txt', probed: false })
      expect(plain.r.stat?.filetype).toBe(Filetype.REGULAR_FILE)
      const missing = probed(f, 'sub/new.txt', () => false)
      expect(missing.r).toMatchObject({ name: 'new.txt', stat: undefined, probed: false })
      missing.r.release()
      // Not following: a final symlink is reported as such after the probe declined.
      const link = probed(f, 'link', () => false, false)
      expect(link.r.stat?.filetype).toBe(Filetype.SYMBOLIC_LINK)
      expect(f.counter.open).toBe(1)
    })

    it('never runs on ".", "..", a name with a trailing slash, or the target of a link ending in "/"', () => {
      const f = fixture()
      for (const p of ['.', 'sub/..', 'sub/', 'sub/deeper/', 'a.txt/', 'new/']) {
        const { calls, r } = probed(f, p, () => true)
        expect(calls, p).toEqual([])
        expect(r.probed).toBe(false)
        r.release()
      }
      // The link itself is a plain final name (the real probe, an O_NOFOLLOW open, declines it);
      // its target "sub/" carries the slash: no probe there.
      const { calls, r } = probed(f, 'slslash', () => false)
      expect(calls).toEqual(['slslash'])
      expect(r).toMatchObject({ name: 'sub', probed: false, trailingSlash: true })
      r.release()
      expect(f.counter.open).toBe(1)
    })

    it('a probe that throws ends the walk with its error and releases every handle', () => {
      const f = fixture()
      expect(() =>
        resolve(f.start, 'sub/deeper/c.txt', {
          follow: true,
          probe: () => {
            throw new WasiError(Errno.ACCES)
          },
        }),
      ).toThrow(WasiError)
      expect(f.counter.open).toBe(1)
    })
  })
})
