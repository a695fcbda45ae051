/**
 * Red-team: a guest against a real host directory (proc-fd strategy on Linux), by direct calls
 * on the import object. Canary files sit above and beside the mount; after every attack the
 * tree outside the mount (and the whole read-only mount) must be byte-for-byte what it was.
 *
 * Layout (per test, in a fresh temp dir):
 *   root/above.txt                  canary above the mount
 *   root/beside/secret.txt          canary beside the mount
 *   root/mount/                     fd 5, read-write
 *     a/b/c/  f.txt  hostlink -> ../beside/secret.txt  abslink -> <root>/beside/secret.txt
 *   root/romount/                   fd 6, read-only
 *     r.txt  d/
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  linkSync,
  realpathSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve, sep } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createHostDirFs } from '../../wasi-host/node/host-dir-fs.js'
import { createOverlayFs } from '../../wasi-host/fs/overlay.js'
import { readOnly } from '../../wasi-host/fs/read-only.js'
import { applyOverlay } from '../../wasi-host/node/overlay-apply.js'
import {
  ALL_RIGHTS,
  Errno,
  errnoName,
  harness,
  LOOKUP_FOLLOW,
  O_CREAT,
  O_DIRECTORY,
  O_TRUNC,
  READ_RIGHTS,
  Rights,
  type Harness,
} from '../wasi-host/harness.js'

const RW = 5
const RO = 6

interface Layout {
  root: string
  mount: string
  romount: string
  cleanup(): void
}

function makeLayout(): Layout {
  const root = mkdtempSync(join(tmpdir(), 'caplet-redteam-'))
  const mount = join(root, 'mount')
  const romount = join(root, 'romount')
  writeFileSync(join(root, 'above.txt'), 'ABOVE-CANARY\n')
  mkdirSync(join(root, 'beside'))
  writeFileSync(join(root, 'beside', 'secret.txt'), 'BESIDE-CANARY\n')
  mkdirSync(join(mount, 'a', 'b', 'c'), { recursive: true })
  writeFileSync(join(mount, 'f.txt'), 'mount file\n')
  symlinkSync('../beside/secret.txt', join(mount, 'hostlink'))
  symlinkSync(join(root, 'beside', 'secret.txt'), join(mount, 'abslink'))
  mkdirSync(join(romount, 'd'), { recursive: true })
  writeFileSync(join(romount, 'r.txt'), 'read only\n')
  return { root, mount, romount, cleanup: () => rmSync(root, { recursive: true, force: true }) }
}

/** Every path under `dir` (lstat: type, size, mtime, content or link target), skipping `skip`. */
function snapshot(dir: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      if (skip.includes(p)) continue
      const st = lstatSync(p, { bigint: true })
      const rel = p.slice(dir.length + 1)
      if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)} ${st.mtimeNs}`
      else if (st.isDirectory()) {
        out[rel] = `dir ${st.mtimeNs}`
        walk(p)
      } else out[rel] = `file ${st.size} ${st.mtimeNs} ${st.mode} ${readFileSync(p, 'latin1')}`
    }
  }
  walk(dir)
  return out
}

/**
 * Symlinks under `dir` whose target lies outside `dir` as the host resolves it: physically
 * (realpath) when it exists, else lexically from where the link is.
 */
function escapingLinks(dir: string): string[] {
  const bad: string[] = []
  const real = realpathSync.native(dir)
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      const st = lstatSync(p)
      if (st.isSymbolicLink()) {
        let target: string
        try {
          target = realpathSync.native(p)
        } catch {
          target = resolve(dirname(p), readlinkSync(p))
        }
        const inside = (t: string, root: string) => t === root || t.startsWith(root + sep)
        if (!inside(target, real) && !inside(target, dir)) bad.push(`${p.slice(dir.length + 1)} -> ${readlinkSync(p)}`)
      } else if (st.isDirectory()) walk(p)
    }
  }
  walk(dir)
  return bad
}

const DIR_RIGHTS = READ_RIGHTS

class HostGuest {
  readonly h: Harness
  readonly rwFs: ReturnType<typeof createHostDirFs>
  readonly roFs: ReturnType<typeof createHostDirFs>
  constructor(readonly layout: Layout) {
    this.rwFs = createHostDirFs(layout.mount)
    this.roFs = createHostDirFs(layout.romount)
    expect(this.rwFs.strategy).toBe('proc-fd')
    this.h = harness({
      memoryPages: 2,
      maximumPages: 4,
      extraPreopens: [
        { guestPath: '/m', fs: this.rwFs, mode: 'rw' },
        { guestPath: '/ro', fs: this.roFs, mode: 'ro' },
      ],
    })
  }

  close(): void {
    this.h.host.close()
    this.rwFs.close()
    this.roFs.close()
  }

  /** Runs a raw call with fresh scratch memory; returns the errno name (or 'TRAP: ...'). */
  call(fn: (h: Harness) => number): string {
    this.h.resetAlloc()
    try {
      return errnoName(fn(this.h))
    } catch (e) {
      return `TRAP: ${(e as Error).name}`
    }
  }

  open(dirfd: number, path: string, oflags = 0, base: bigint = READ_RIGHTS, lookup = LOOKUP_FOLLOW): { errno: string; fd: number } {
    this.h.resetAlloc()
    const r = this.h.open(path, { dirfd, oflags, base, inheriting: ALL_RIGHTS, lookup })
    return { errno: errnoName(r.errno), fd: r.fd }
  }

  p2(fn: (a: { ptr: number; len: number }, b: { ptr: number; len: number }) => number, a: string, b: string): string {
    return this.call((h) => fn(h.str(a), h.str(b)))
  }

  symlink(target: string, dirfd: number, name: string): string {
    return this.p2((t, n) => this.h.wasi.path_symlink(t.ptr, t.len, dirfd, n.ptr, n.len), target, name)
  }

  rename(fd: number, from: string, fd2: number, to: string): string {
    return this.p2((a, b) => this.h.wasi.path_rename(fd, a.ptr, a.len, fd2, b.ptr, b.len), from, to)
  }

  link(fd: number, from: string, fd2: number, to: string, follow = 0): string {
    return this.p2((a, b) => this.h.wasi.path_link(fd, follow, a.ptr, a.len, fd2, b.ptr, b.len), from, to)
  }

  readlink(dirfd: number, path: string): { errno: string; target: string } {
    this.h.resetAlloc()
    const p = this.h.str(path)
    const buf = this.h.alloc(512, 1)
    const used = this.h.alloc(4, 4)
    try {
      const rc = this.h.wasi.path_readlink(dirfd, p.ptr, p.len, buf, 512, used)
      return { errno: errnoName(rc), target: rc === 0 ? this.h.readString(buf, this.h.u32(used)) : '' }
    } catch (e) {
      return { errno: `TRAP: ${(e as Error).name}`, target: '' }
    }
  }

  pathStat(dirfd: number, path: string, lookup = 0): { errno: string; size: bigint; ino: bigint; dev: bigint } {
    this.h.resetAlloc()
    const r = this.h.pathStat(path, dirfd, lookup)
    return { errno: errnoName(r.errno), size: r.stat.size, ino: r.stat.ino, dev: r.stat.dev }
  }

  one(fn: (fd: number, p: number, l: number) => number, dirfd: number, path: string): string {
    return this.call((h) => {
      const p = h.str(path)
      return fn(dirfd, p.ptr, p.len)
    })
  }
}

let layout: Layout
let g: HostGuest
let outside: Record<string, string>

beforeEach(() => {
  layout = makeLayout()
  g = new HostGuest(layout)
  outside = snapshot(layout.root, [layout.mount])
})

afterEach(() => {
  g.close()
  layout.cleanup()
})

function expectOutsideUnchanged(): void {
  expect(snapshot(layout.root, [layout.mount])).toEqual(outside)
}

describe('redteam host dir: lookups that would leave the mount', () => {
  it('every path that names something outside /m or /ro is refused, and nothing outside changes', () => {
    const escapes = [
      '..',
      '../above.txt',
      '../beside/secret.txt',
      'a/../../above.txt',
      'a/b/c/../../../../above.txt',
      '/etc/passwd',
      '//etc',
      'hostlink',
      'abslink',
      'a/../hostlink',
      './hostlink/',
      'f.txt/../../above.txt',
      `..${'/..'.repeat(50)}/etc/passwd`,
      '../mount/f.txt',
      '../romount/r.txt',
    ]
    const results: Record<string, string[]> = {}
    for (const p of escapes) {
      const r: string[] = []
      r.push(`open:${g.open(RW, p).errno}`)
      r.push(`openw:${g.open(RW, p, O_CREAT | O_TRUNC, ALL_RIGHTS).errno}`)
      r.push(`opendir:${g.open(RW, p, O_DIRECTORY, DIR_RIGHTS).errno}`)
      r.push(`stat:${g.pathStat(RW, p, LOOKUP_FOLLOW).errno}`)
      r.push(`mkdir:${g.one((fd, a, l) => g.h.wasi.path_create_directory(fd, a, l), RW, `${p}/newdir`)}`)
      // The host links themselves may legitimately be removed, renamed or linked (no follow):
      // those calls act on the link inside the mount, so they are left out here.
      const ownLink = /^(a\/\.\.\/)?(hostlink|abslink)$/.test(p)
      if (!ownLink) r.push(`unlink:${g.one((fd, a, l) => g.h.wasi.path_unlink_file(fd, a, l), RW, p)}`)
      r.push(`rmdir:${g.one((fd, a, l) => g.h.wasi.path_remove_directory(fd, a, l), RW, p)}`)
      r.push(
        `times:${g.call((h) => {
          const s = h.str(p)
          return h.wasi.path_filestat_set_times(RW, LOOKUP_FOLLOW, s.ptr, s.len, 1n, 1n, 1 | 4)
        })}`,
      )
      if (!ownLink) r.push(`rename-in:${g.rename(RW, p, RW, 'stolen')}`)
      r.push(`link-in:${g.link(RW, p, RW, 'stolen-link', LOOKUP_FOLLOW)}`)
      r.push(`rename-out:${g.rename(RW, 'f.txt', RW, `${p}/x`)}`)
      results[p] = r
    }
    for (const [p, r] of Object.entries(results)) {
      for (const x of r) {
        expect(x, `${p} ${x}`).not.toMatch(/:SUCCESS$/)
        expect(x, `${p} ${x}`).not.toMatch(/TRAP/)
      }
    }
    expect(existsSync(join(layout.root, 'stolen'))).toBe(false)
    expectOutsideUnchanged()
  })

  it('guest-made symlinks that point out are refused at creation, whatever the spelling', () => {
    const targets = ['..', '../above.txt', '../../x', 'a/../../above.txt', '/etc', 'a/b/../../../beside', './..', 'a/b/c/../../../..']
    for (const t of targets) expect(g.symlink(t, RW, 'l'), t).not.toBe('SUCCESS')
    // From a subdirectory fd the climb is counted from that directory's depth.
    const sub = g.open(RW, 'a/b', O_DIRECTORY, DIR_RIGHTS)
    expect(sub.errno).toBe('SUCCESS')
    expect(g.symlink('../../../above.txt', sub.fd, 'l')).toBe('PERM')
    // On a host directory even a contained climb is refused: host programs see the link, and a
    // lexical check cannot stay true once directories move (see the findings below).
    expect(g.symlink('../../f.txt', sub.fd, 'climbs')).toBe('PERM')
    expect(g.symlink('c', sub.fd, 'ok')).toBe('SUCCESS')
    expect(escapingLinks(layout.mount).filter((l) => !/^(hostlink|abslink) /.test(l))).toEqual([])
    expectOutsideUnchanged()
  })

  // FINDING: the lexical symlink check trusts `DirDescriptor.depth`, fixed at open time. Moving
  // the directory up afterwards (or any ancestor of it) makes the recorded depth too large, so a
  // target with more `..` than the real depth passes the check and is stored on the host.
  it('path_symlink through a directory fd whose directory was moved up cannot plant a link leading out of the mount', () => {
    const c = g.open(RW, 'a/b/c', O_DIRECTORY, DIR_RIGHTS)
    expect(c.errno).toBe('SUCCESS')
    // The directory moves from depth 3 to depth 1; the fd still says 3.
    expect(g.rename(RW, 'a/b/c', RW, 'c')).toBe('SUCCESS')
    const rc = g.symlink('../../beside/secret.txt', c.fd, 'evil')
    const planted = escapingLinks(layout.mount).filter((l) => !/^(hostlink|abslink) /.test(l))
    // What a host process following root/mount/c/evil would read.
    const hostView = existsSync(join(layout.mount, 'c', 'evil')) ? readFileSync(join(layout.mount, 'c', 'evil'), 'utf8') : ''
    expect({ rc, planted, hostView }).toEqual({ rc: 'PERM', planted: [], hostView: '' })
    expectOutsideUnchanged()
  })
})

describe('redteam host dir: links the guest leaves on the host never lead out of the mount', () => {
  // FINDING (same root cause as the stale-depth test above): a rename moves a symlink without
  // looking at its target; `../beside/secret.txt` is contained at depth 1 and leads out at 0.
  it('renaming a symlink to a shallower directory cannot turn it into one leading out', () => {
    // Fixed at the root: a link that climbs cannot be created on a host-visible mount at all.
    expect(g.symlink('../beside/secret.txt', RW, 'a/l')).toBe('PERM')
    const rc = g.rename(RW, 'a/l', RW, 'l')
    const planted = escapingLinks(layout.mount).filter((l) => !/^(hostlink|abslink) /.test(l))
    const hostView = existsSync(join(layout.mount, 'l')) ? readFileSync(join(layout.mount, 'l'), 'utf8') : ''
    expect({ rc, planted, hostView }).toEqual({ rc: expect.not.stringMatching(/^SUCCESS$/), planted: [], hostView: '' })
    expectOutsideUnchanged()
  })

  // FINDING: the check is lexical and treats every component as a directory one level down, but
  // the host resolves `..` physically after following a symlink: with `dot -> .`, the target
  // `dot/../beside/secret.txt` counts as depth 1, 0, 1, 2 and is accepted; on the host it is
  // root/beside/secret.txt. No rename needed.
  it('a target that climbs through another symlink ("dot -> .", then "dot/../…") is refused', () => {
    expect(g.symlink('.', RW, 'dot')).toBe('SUCCESS')
    const rc = g.symlink('dot/../beside/secret.txt', RW, 'x')
    // The guest itself cannot follow it (the resolver is handle-based)...
    expect(g.open(RW, 'x').errno).not.toBe('SUCCESS')
    // ...but a host process can.
    const planted = escapingLinks(layout.mount).filter((l) => !/^(hostlink|abslink) /.test(l))
    const hostView = existsSync(join(layout.mount, 'x')) ? readFileSync(join(layout.mount, 'x'), 'utf8') : ''
    expect({ rc, planted, hostView }).toEqual({ rc: 'PERM', planted: [], hostView: '' })
    expectOutsideUnchanged()
  })
})

describe('redteam host dir: host-made links never reveal where they lead (invariant 6)', () => {
  it('readlink and stat of a host link leading out are refused or blank where it stands', () => {
    expect(g.readlink(RW, 'hostlink').errno).toBe('PERM')
    expect(g.readlink(RW, 'abslink').errno).toBe('PERM')
    expect(g.pathStat(RW, 'hostlink').size).toBe(0n)
    expect(g.pathStat(RW, 'abslink').size).toBe(0n)
  })

  // FINDING: the "does it lead out" test uses the link's *current* depth, and the guest may move
  // a host-made link (rename, or hard-link it: link(2) does not follow) deeper into the mount,
  // where the same `../…` no longer climbs out lexically: its target string is then shown.
  it('a host link leading out keeps its target secret after the guest moves it deeper', () => {
    // A link whose target climbs or is absolute may not be moved or linked on a host-visible mount.
    expect(g.rename(RW, 'hostlink', RW, 'a/b/moved')).toBe('PERM')
    expect(g.link(RW, 'abslink', RW, 'a/b/abs-hardlink')).toBe('PERM')
    expect(g.readlink(RW, 'hostlink').errno).toBe('PERM')
    expect(g.pathStat(RW, 'hostlink').size).toBe(0n)
    expect(g.readlink(RW, 'a/b/moved').errno).toBe('NOENT')
    expect(g.readlink(RW, 'a/b/abs-hardlink').errno).toBe('NOENT')
  })
})

describe('redteam host dir: directory handles whose directory moved or vanished', () => {
  it('a held handle on a moved directory still cannot climb: ".." from it is an escape', () => {
    const d = g.open(RW, 'a/b', O_DIRECTORY, DIR_RIGHTS)
    expect(g.rename(RW, 'a', RW, 'z')).toBe('SUCCESS')
    expect(g.open(d.fd, '..', O_DIRECTORY, DIR_RIGHTS).errno).toBe('PERM')
    expect(g.open(d.fd, '../../../above.txt').errno).toBe('PERM')
    expect(g.open(d.fd, 'new.txt', O_CREAT, ALL_RIGHTS).errno).toBe('SUCCESS')
    expect(existsSync(join(layout.mount, 'z', 'b', 'new.txt'))).toBe(true)
    expectOutsideUnchanged()
  })

  it('a held handle on a removed directory creates nothing anywhere', () => {
    const d = g.open(RW, 'a/b/c', O_DIRECTORY, DIR_RIGHTS)
    expect(g.one((fd, p, l) => g.h.wasi.path_remove_directory(fd, p, l), RW, 'a/b/c')).toBe('SUCCESS')
    const before = snapshot(layout.mount)
    expect(g.open(d.fd, 'x', O_CREAT, ALL_RIGHTS).errno).not.toBe('SUCCESS')
    expect(g.one((fd, p, l) => g.h.wasi.path_create_directory(fd, p, l), d.fd, 'y')).not.toBe('SUCCESS')
    expect(g.symlink('x', d.fd, 'z')).not.toBe('SUCCESS')
    expect(snapshot(layout.mount)).toEqual(before)
    expectOutsideUnchanged()
  })

  it('the preopen root cannot be removed, renamed, replaced or moved into itself', () => {
    expect(g.one((fd, p, l) => g.h.wasi.path_remove_directory(fd, p, l), RW, '.')).not.toBe('SUCCESS')
    expect(g.one((fd, p, l) => g.h.wasi.path_remove_directory(fd, p, l), RW, 'a/..')).not.toBe('SUCCESS')
    expect(g.rename(RW, '.', RW, 'x')).not.toBe('SUCCESS')
    expect(g.rename(RW, 'a', RW, '.')).not.toBe('SUCCESS')
    expect(g.rename(RW, 'a', RW, 'a/b/c/a')).not.toBe('SUCCESS')
    expect(g.rename(RW, 'a/b', RW, 'a/..')).not.toBe('SUCCESS')
    expect(statSync(layout.mount).isDirectory()).toBe(true)
    expectOutsideUnchanged()
  })

  it('closed and renumbered descriptors: a freed number never reaches the old node', () => {
    const f = g.open(RW, 'f.txt', 0, ALL_RIGHTS)
    expect(f.errno).toBe('SUCCESS')
    expect(g.call((h) => h.wasi.fd_close(f.fd))).toBe('SUCCESS')
    expect(g.call((h) => h.writeFd(f.fd, 'x').errno)).toBe('BADF')
    // Renumber a read-only file over the rw preopen: the number now reads r.txt, writes nothing.
    const r = g.open(RO, 'r.txt')
    expect(g.call((h) => h.wasi.fd_renumber(r.fd, RW))).toBe('SUCCESS')
    expect(g.call((h) => h.writeFd(RW, 'x').errno)).not.toBe('SUCCESS')
    expect(g.open(RW, 'f.txt').errno).toBe('NOTDIR')
    expect(readFileSync(join(layout.mount, 'f.txt'), 'utf8')).toBe('mount file\n')
    expectOutsideUnchanged()
  })
})

describe('redteam host dir: the read-only mount changes in no way', () => {
  it('every mutating call on /ro, directly, through reopened directories and through renumber, leaves it as it was', () => {
    const res: string[] = []
    const push = (what: string, r: string) => res.push(`${what}:${r}`)
    push('trunc', g.open(RO, 'r.txt', O_TRUNC).errno)
    push('creat', g.open(RO, 'new', O_CREAT).errno)
    push('write-open', g.open(RO, 'r.txt', 0, ALL_RIGHTS).errno)
    const rf = g.open(RO, 'r.txt', 0, ALL_RIGHTS & ~BigInt(Rights.FD_WRITE))
    push('ro-open', rf.errno === 'SUCCESS' ? 'SUCCESS-expected' : rf.errno)
    const r = g.open(RO, 'r.txt')
    // APPEND on a read-only fd is allowed (it grants nothing); the write after it must still fail.
    expect(g.call((h) => h.wasi.fd_fdstat_set_flags(r.fd, 1))).toBe('SUCCESS')
    push(
      'write',
      g.call((h) => h.writeFd(r.fd, 'x').errno),
    )
    push(
      'pwrite',
      g.call((h) => {
        const b = h.str('x')
        const iov = h.iovecs([[b.ptr, 1]])
        return h.wasi.fd_pwrite(r.fd, iov, 1, 0n, h.alloc(4, 4))
      }),
    )
    push(
      'set_size',
      g.call((h) => h.wasi.fd_filestat_set_size(r.fd, 0n)),
    )
    push(
      'allocate',
      g.call((h) => h.wasi.fd_allocate(r.fd, 0n, 100n)),
    )
    push(
      'fd_times',
      g.call((h) => h.wasi.fd_filestat_set_times(r.fd, 1n, 1n, 1 | 4)),
    )
    push(
      'widen',
      g.call((h) => h.wasi.fd_fdstat_set_rights(r.fd, ALL_RIGHTS, ALL_RIGHTS)),
    )
    const dot = g.open(RO, '.', O_DIRECTORY, DIR_RIGHTS)
    push('dot-open', dot.errno === 'SUCCESS' ? 'SUCCESS-expected' : dot.errno)
    for (const dirfd of [RO, dot.fd]) {
      push(
        'mkdir',
        g.one((fd, p, l) => g.h.wasi.path_create_directory(fd, p, l), dirfd, 'nd'),
      )
      push(
        'unlink',
        g.one((fd, p, l) => g.h.wasi.path_unlink_file(fd, p, l), dirfd, 'r.txt'),
      )
      push(
        'rmdir',
        g.one((fd, p, l) => g.h.wasi.path_remove_directory(fd, p, l), dirfd, 'd'),
      )
      push('symlink', g.symlink('r.txt', dirfd, 'sl'))
      push('rename', g.rename(dirfd, 'r.txt', dirfd, 'r2.txt'))
      push('link', g.link(dirfd, 'r.txt', dirfd, 'r3.txt'))
      push(
        'ptimes',
        g.call((h) => {
          const s = h.str('r.txt')
          return h.wasi.path_filestat_set_times(dirfd, 0, s.ptr, s.len, 1n, 1n, 1 | 4)
        }),
      )
      push(
        'dtimes',
        g.call((h) => h.wasi.fd_filestat_set_times(dirfd, 1n, 1n, 1 | 4)),
      )
      push('creat-sub', g.open(dirfd, 'd/new', O_CREAT).errno)
      // Across mounts in both directions (ghsa-4ch3).
      push('rename-to-rw', g.rename(dirfd, 'r.txt', RW, 'took'))
      push('link-to-rw', g.link(dirfd, 'r.txt', RW, 'took2'))
      push('rename-from-rw', g.rename(RW, 'f.txt', dirfd, 'gift'))
      push('link-from-rw', g.link(RW, 'f.txt', dirfd, 'gift2'))
    }
    // A directory fd with inheriting rights still "generous": opening a child for write fails.
    const sub = g.open(RO, 'd', O_DIRECTORY, DIR_RIGHTS)
    push('sub-write', g.open(sub.fd, '../r.txt', 0, ALL_RIGHTS).errno)
    for (const x of res) {
      expect(x).not.toMatch(/:SUCCESS$/)
      expect(x).not.toMatch(/TRAP/)
    }
    expect(existsSync(join(layout.mount, 'took'))).toBe(false)
    expect(existsSync(join(layout.mount, 'took2'))).toBe(false)
    expectOutsideUnchanged()
  })
})

describe('redteam host dir: no host detail reaches the guest (invariant 6)', () => {
  it("inode and device numbers are the sandbox's own, never the host's", () => {
    const hostIno = statSync(join(layout.mount, 'f.txt'), { bigint: true }).ino
    const hostDev = statSync(join(layout.mount, 'f.txt'), { bigint: true }).dev
    const st = g.pathStat(RW, 'f.txt')
    expect(st.ino).not.toBe(hostIno)
    expect(st.dev).not.toBe(hostDev)
    expect(st.ino < 1000n).toBe(true)
    const f = g.open(RW, 'f.txt')
    const fst = g.call((h) => h.fdStat(f.fd).errno)
    expect(fst).toBe('SUCCESS')
    g.h.resetAlloc()
    const rd = g.h.readdir(RW, 4096)
    const hostInos = new Set(readdirSync(layout.mount).map((n) => lstatSync(join(layout.mount, n), { bigint: true }).ino))
    hostInos.add(statSync(layout.mount, { bigint: true }).ino)
    for (const e of rd.entries) expect(hostInos.has(e.ino), e.name).toBe(false)
  })
})

describe('redteam host dir: overlay apply writes nothing outside the target', () => {
  function overlaySetup(): { h: Harness; apply: () => void; close: () => void } {
    const lowerFs = createHostDirFs(layout.mount)
    const overlay = createOverlayFs(readOnly(lowerFs))
    const h = harness({ memoryPages: 2, maximumPages: 4, extraPreopens: [{ guestPath: '/o', fs: overlay, mode: 'rw' }] })
    return {
      h,
      apply: () => applyOverlay(overlay, layout.mount) as unknown as void,
      close: () => {
        h.host.close()
        lowerFs.close()
      },
    }
  }

  it('a link moved up so that it leads out makes the whole apply refuse; a stale-depth link too', () => {
    const o = overlaySetup()
    const call = (fn: () => number) => {
      o.h.resetAlloc()
      return errnoName(fn())
    }
    const s = (x: string) => o.h.str(x)
    // depth 2: ../../f.txt stays inside, but after moving a/b up to b it would lead out: an
    // overlay over a host directory refuses climbing targets at creation, so apply has nothing to refuse.
    expect(
      call(() => {
        const t = s('../../f.txt'),
          n = s('a/b/l')
        return o.h.wasi.path_symlink(t.ptr, t.len, RW, n.ptr, n.len)
      }),
    ).toBe('PERM')
    expect(
      call(() => {
        const a = s('a/b'),
          b = s('b')
        return o.h.wasi.path_rename(RW, a.ptr, a.len, RW, b.ptr, b.len)
      }),
    ).toBe('SUCCESS')
    expect(() => o.apply()).not.toThrow()
    o.close()
    expect(escapingLinks(layout.mount).filter((l) => !/^(hostlink|abslink) /.test(l))).toEqual([])
    expectOutsideUnchanged()
  })

  it('a stale-depth link planted in the overlay (see the finding above) is refused by apply', () => {
    const o = overlaySetup()
    o.h.resetAlloc()
    const c = o.h.open('a/b/c', { dirfd: RW, oflags: O_DIRECTORY, base: DIR_RIGHTS })
    expect(errnoName(c.errno)).toBe('SUCCESS')
    o.h.resetAlloc()
    const a = o.h.str('a/b/c'),
      b = o.h.str('c')
    expect(errnoName(o.h.wasi.path_rename(RW, a.ptr, a.len, RW, b.ptr, b.len))).toBe('SUCCESS')
    o.h.resetAlloc()
    const t = o.h.str('../../beside/secret.txt'),
      n = o.h.str('evil')
    const rc = errnoName(o.h.wasi.path_symlink(t.ptr, t.len, c.fd, n.ptr, n.len))
    if (rc === 'SUCCESS') expect(() => o.apply()).toThrow(/leads out/)
    o.close()
    expect(escapingLinks(layout.mount).filter((l) => !/^(hostlink|abslink) /.test(l))).toEqual([])
    expectOutsideUnchanged()
  })

  // FINDING: overlay-apply.ts promises "Symlinks are only created with a relative target that
  // stays beneath the target directory (checked lexically from the link's own depth)"; the same
  // lexical check accepts `x -> dot/../beside/secret.txt` beside `dot -> .`, and apply writes both
  // into the host directory (the same for exportOverlay into --overlay-out).
  it('apply never writes a symlink that leads out of the target, even one composed with another link', () => {
    const o = overlaySetup()
    const sym = (t: string, n: string) => {
      o.h.resetAlloc()
      const a = o.h.str(t),
        b = o.h.str(n)
      return errnoName(o.h.wasi.path_symlink(a.ptr, a.len, RW, b.ptr, b.len))
    }
    expect(sym('.', 'dot')).toBe('SUCCESS')
    const rc = sym('dot/../beside/secret.txt', 'x')
    let applied = 'applied'
    try {
      o.apply()
    } catch (e) {
      applied = (e as Error).message
    }
    o.close()
    const planted = escapingLinks(layout.mount).filter((l) => !/^(hostlink|abslink) /.test(l))
    expect({ rc, applied: applied === 'applied' ? 'applied' : 'refused', planted }).toEqual({
      rc: expect.any(String),
      applied: expect.any(String),
      planted: [],
    })
    expectOutsideUnchanged()
  })

  it('a host file hard-linked to one outside keeps the outside content when the guest rewrites it', () => {
    rmSync(join(layout.mount, 'f.txt'))
    linkSync(join(layout.root, 'beside', 'secret.txt'), join(layout.mount, 'f.txt'))
    outside = snapshot(layout.root, [layout.mount])
    const o = overlaySetup()
    o.h.resetAlloc()
    const r = o.h.open('f.txt', { dirfd: RW, oflags: O_TRUNC, base: ALL_RIGHTS })
    expect(errnoName(r.errno)).toBe('SUCCESS')
    o.h.resetAlloc()
    expect(errnoName(o.h.writeFd(r.fd, 'guest bytes').errno)).toBe('SUCCESS')
    // And a guest link of it, and a delete of the escaping host link.
    o.h.resetAlloc()
    const a = o.h.str('f.txt'),
      b = o.h.str('g.txt')
    expect(errnoName(o.h.wasi.path_link(RW, 0, a.ptr, a.len, RW, b.ptr, b.len))).toBe('SUCCESS')
    o.h.resetAlloc()
    const hl = o.h.str('hostlink')
    expect(errnoName(o.h.wasi.path_unlink_file(RW, hl.ptr, hl.len))).toBe('SUCCESS')
    o.apply()
    o.close()
    expect(readFileSync(join(layout.mount, 'f.txt'), 'utf8')).toBe('guest bytes')
    expect(readFileSync(join(layout.root, 'beside', 'secret.txt'), 'utf8')).toBe('BESIDE-CANARY\n')
    expectOutsideUnchanged()
  })
})

describe('redteam host dir: descriptors', () => {
  it('a batch of failing and succeeding calls leaks no host fd once the host is closed', () => {
    const count = () => readdirSync('/proc/self/fd').length
    g.close()
    const before = count()
    for (let i = 0; i < 5; i++) {
      const x = new HostGuest(layout)
      for (let j = 0; j < 20; j++) {
        x.open(RW, 'a/b/c', O_DIRECTORY, DIR_RIGHTS)
        x.open(RW, 'f.txt', 0, ALL_RIGHTS)
        x.open(RW, 'hostlink')
        x.open(RW, '../above.txt')
        x.open(RO, 'r.txt', O_TRUNC)
        x.open(RW, 'a/b/c/../../../../x')
        x.call((h) => h.wasi.path_open(RW, 1, -8, 4, 0, ALL_RIGHTS, ALL_RIGHTS, 0, 0))
        x.call((h) => {
          const p = h.str('f.txt')
          return h.wasi.path_open(RW, 1, p.ptr, p.len, 0, ALL_RIGHTS, ALL_RIGHTS, 0, -4)
        })
      }
      x.close()
    }
    expect(count()).toBe(before)
    g = new HostGuest(layout)
  })
})
