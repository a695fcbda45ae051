/**
 * @module Escape corpus: symlinks that the HOST planted inside the writable mount, pointing out
 * (the guest cannot make them itself: path_symlink refuses targets that leave, see escape.test).
 * A host user, an earlier tool or an unpacked archive can leave such links behind (wazero#2321).
 *
 * The `sec_hostlinks` guest (test/fixtures/src/sec_hostlinks.c) tries, through each link and
 * path variant, to open, read, list, stat, readlink, write, truncate, create, set times, create
 * inside, hard-link, rename into, rename, rmdir and finally unlink. docs/security.md invariant 5: a
 * symlink is followed only if its target stays beneath the capability root (absolute targets
 * fail), so every access through an out-pointing link is PERM, and readlink of one is PERM too
 * rather than revealing a host path (invariant 6). What stays allowed concerns the link itself:
 * lstat, renaming it, and unlinking it, which removes the link and never its target.
 *
 * The same links are planted in the in-memory backend too; the outcomes must be identical.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runSync, type Filesystem } from '../../runtime/index.js'
import { createMemFs, memFsFromTree } from '../../wasi-host/index.js'
import { DATA_TREE, fixtureWasm, GUEST_ENV, text } from '../support/guest.js'
import {
  assertHostAlive,
  assertNoLeak,
  CANARY_M,
  CANARY_OUTSIDE,
  CANARY_TOP,
  fsDigest,
  hostTreeDigest,
  makeCanaryLayout,
  openFdCount,
  refusalsThatSucceeded,
  transcriptMismatches,
  watchOutside,
  type CanaryLayout,
  type Outcome,
  type Transcript,
} from '../support/security.js'

const wasm = fixtureWasm('sec_hostlinks')

/** Links planted in /sandbox that lead out, by name -> target (`@root`/`@m` = the host temp dirs). */
const OUT_LINKS: readonly (readonly [string, string])[] = [
  ['abs-canary', '@root/canary'], // absolute, to the canary above
  ['abs-mcanary', '@m/canary'], // absolute, to the canary beside
  ['rel-canary', '../canary'],
  ['rel2-canary', '../../canary'],
  ['dd-chain', './../sandbox/../canary'], // out, back in, out again
  ['sub-chain', 'sub/../../canary'],
  ['outin', '../sandbox/inside.txt'], // out and back in: still refused, like cap-std
  ['link1', 'link2'], // chain: link1 -> link2 -> ../canary
  ['link2', '../canary'],
  ['slash', '../canary/'],
  ['dotslash', '../outside/.'],
  ['updir', '../'],
  ['outdir-rel', '../outside'], // an outside directory
  ['outdir-abs', '@m/outside'],
  ['emptyout', '../emptyout'], // an empty outside directory (rmdir through it must fail)
  ['root', '/'],
  ['dangling-out', '../created-outside'], // creating through it would create outside
  ['up', '..'],
  ['upup', '../..'],
  ['sub/esc', '../../canary'],
]

/** Paths through the links rather than the links themselves. */
const THROUGH = [
  'rel-canary/.',
  'outdir-rel/.',
  'outdir-rel/secret.txt',
  'outdir-abs/secret.txt',
  'dotslash/secret.txt',
  'root/etc/passwd',
  'up/canary',
  'upup/canary',
  'updir/canary',
  'link1/x',
]
/** A trailing slash on a link: resolving it means following it. */
const TRAILING = ['rel-canary/', 'outdir-rel/', 'abs-canary/', 'emptyout/']

/** Inside-only links, as a control that the guest and the links work at all. */
const IN_LINKS: readonly (readonly [string, string])[] = [['inlink', 'inside.txt']]

const OPS = [
  'open',
  'open-nofollow',
  'readdir',
  'stat',
  'lstat',
  'readlink',
  'write',
  'trunc',
  'creat',
  'times',
  'mkdir-in',
  'creat-in',
  'symlink-in',
  'link-follow',
  'link-into',
  'rename-into',
  'rename-out',
  'rmdir',
] as const
type Op = (typeof OPS)[number] | 'unlink'

const REFUSED = 'PERM'

/** What each operation must give for an out-pointing link named as is. */
function bareOutLink(name: string, op: Op): Outcome {
  switch (op) {
    case 'open-nofollow':
      return 'LOOP' // O_NOFOLLOW on a symlink
    case 'lstat':
      return 'ok symlink' // the link itself is inside
    case 'readlink':
      return name === 'link1' ? 'ok "link2"' : REFUSED // one hop that stays inside is fine
    // Renames the link, not its target; on a host-visible mount a link whose target climbs or is
    // absolute may not be moved at all (moved elsewhere it could lead out, or reveal its target).
    case 'rename-out':
      return name === 'link1' ? 'ok' : ['ok', REFUSED]
    case 'rmdir':
      return 'NOTDIR' // a link is not a directory, whatever it points at
    case 'unlink':
      return 'ok' // removes the link, never the target
    default:
      return REFUSED
  }
}

/** `link/`: following is refused; rename, rmdir and unlink act on the link itself, not a directory. */
function trailingOutLink(op: Op): Outcome {
  return op === 'rename-out' || op === 'rmdir' || op === 'unlink' ? 'NOTDIR' : REFUSED
}

const INLINK: Record<Op, Outcome> = {
  open: 'ok file "inside\\n"',
  'open-nofollow': 'LOOP',
  readdir: 'NOTDIR',
  stat: 'ok file 7',
  lstat: 'ok symlink',
  readlink: 'ok "inside.txt"',
  write: 'ok, fd_write ok',
  trunc: 'ok',
  creat: 'ok',
  times: 'ok',
  'mkdir-in': 'NOTDIR',
  'creat-in': 'NOTDIR',
  'symlink-in': 'NOTDIR',
  'link-follow': 'ok',
  'link-into': 'NOTDIR',
  'rename-into': 'NOTDIR',
  'rename-out': 'ok',
  rmdir: 'NOTDIR',
  unlink: 'ok',
}

/** The argv order: variants first, so that the unlink phase removes the bare links last. */
const PATHS = [...THROUGH, ...TRAILING, ...OUT_LINKS.map(([n]) => n), ...IN_LINKS.map(([n]) => n)]

function expectedFor(path: string, op: Op): Outcome {
  if (IN_LINKS.some(([n]) => n === path)) return INLINK[op]
  if (THROUGH.includes(path)) return REFUSED
  if (TRAILING.includes(path)) return trailingOutLink(op)
  return bareOutLink(path, op)
}

const EXPECTED: Transcript = [
  ...PATHS.flatMap((p) => OPS.map((op) => [`${p}: ${op}`, expectedFor(p, op)] as const)),
  ...PATHS.map((p) => [`${p}: unlink`, expectedFor(p, 'unlink')] as const),
]

function targetOf(target: string, layout: { root: string; m: string }): string {
  return target.replace(/^@root/, layout.root).replace(/^@m/, layout.m)
}

function plantOnHost(layout: CanaryLayout): void {
  mkdirSync(join(layout.sandbox, 'sub'))
  for (const [name, target] of [...OUT_LINKS, ...IN_LINKS]) symlinkSync(targetOf(target, layout), join(layout.sandbox, name))
}

function checkTranscript(stdout: Uint8Array): void {
  expect(refusalsThatSucceeded('sec_hostlinks', stdout, EXPECTED), 'SECURITY: access through an out-pointing link').toEqual([])
  expect(transcriptMismatches('sec_hostlinks', stdout, EXPECTED)).toEqual([])
}

describe('host-made symlinks that point out of /sandbox', () => {
  it('host directory backend: nothing outside is read, stat-ed, listed or changed', () => {
    const layout = makeCanaryLayout()
    try {
      plantOnHost(layout)
      const outside = watchOutside(layout)
      const data0 = hostTreeDigest(layout.data)
      const r = runSync(wasm, { args: ['sec_hostlinks', ...PATHS], env: GUEST_ENV, mounts: layout.mounts })
      expect(r.trap).toBeUndefined()
      expect(r.exitCode).toBe(0)
      expect(text(r.stderr)).toBe('')
      checkTranscript(r.stdout)
      // the canaries and the outside dirs are untouched: every unlink removed a link, not a target
      outside.assertUnchanged('sec_hostlinks')
      expect(hostTreeDigest(layout.data)).toEqual(data0)
      assertNoLeak(r, layout)
      for (const [name] of [...OUT_LINKS, ...IN_LINKS]) {
        expect(() => lstatSync(join(layout.sandbox, name)), `${name} was unlinked`).toThrow()
      }
      expect(lstatSync(join(layout.sandbox, 'inside.txt')).isFile()).toBe(true)
      // spelled out, though the outside check above already covers it: the targets are all still there
      expect(readFileSync(join(layout.root, 'canary'), 'utf8')).toBe(CANARY_TOP)
      expect(readFileSync(join(layout.m, 'canary'), 'utf8')).toBe(CANARY_M)
      expect(readFileSync(join(layout.m, 'outside', 'secret.txt'), 'utf8')).toBe(CANARY_OUTSIDE)
      expect(lstatSync(join(layout.m, 'emptyout')).isDirectory()).toBe(true)
      expect(existsSync(join(layout.m, 'created-outside'))).toBe(false)
    } finally {
      layout.cleanup()
    }
    assertHostAlive()
  })

  it('in-memory backend: the same links give the same outcomes', () => {
    const fakeHost = { root: '/tmp/caplet-sec-fake', m: '/tmp/caplet-sec-fake/m' }
    const sandbox: Filesystem = createMemFs()
    const root = sandbox.root()
    try {
      root.mkdir('sub')
      for (const [name, target] of [...OUT_LINKS, ...IN_LINKS]) {
        const slash = name.lastIndexOf('/')
        if (slash < 0) {
          root.symlink(targetOf(target, fakeHost), name)
        } else {
          const dir = root.openDir(name.slice(0, slash))
          try {
            dir.symlink(targetOf(target, fakeHost), name.slice(slash + 1))
          } finally {
            dir.close()
          }
        }
      }
    } finally {
      root.close()
    }
    const data = memFsFromTree(DATA_TREE)
    const data0 = fsDigest(data)
    const r = runSync(wasm, {
      args: ['sec_hostlinks', ...PATHS],
      env: GUEST_ENV,
      mounts: [
        { guest: '/sandbox', fs: sandbox },
        { guest: '/data', fs: data, mode: 'ro' },
      ],
    })
    expect(r.exitCode).toBe(0)
    checkTranscript(r.stdout)
    expect(text(r.stdout)).not.toContain(fakeHost.root)
    expect(fsDigest(data)).toEqual(data0)
    const left = fsDigest(sandbox)
    for (const [name] of [...OUT_LINKS, ...IN_LINKS]) expect(left[name], `${name} was unlinked`).toBeUndefined()
    assertHostAlive()
  })

  it('a FIFO the host left in /sandbox never blocks the host (invariant 8)', () => {
    // opening a FIFO with no writer blocks in open(2) unless the backend avoids it; an in-process
    // run would then hang the caller's thread for good
    const layout = makeCanaryLayout()
    try {
      execFileSync('mkfifo', [join(layout.sandbox, 'fifo')])
      const r = runSync(wasm, { args: ['sec_hostlinks', 'fifo'], env: GUEST_ENV, mounts: layout.mounts })
      expect(r.trap).toBeUndefined()
      expect(r.exitCode).toBe(0)
      const FIFO: Transcript = [
        ['fifo: open', 'ok unknown'],
        ['fifo: open-nofollow', 'ok unknown'],
        ['fifo: readdir', 'NOTDIR'],
        ['fifo: stat', 'ok unknown 0'],
        ['fifo: lstat', 'ok unknown'],
        ['fifo: readlink', 'INVAL'],
        ['fifo: write', 'ok, fd_write SPIPE'],
        ['fifo: trunc', 'ok'],
        ['fifo: creat', 'ok'],
        ['fifo: times', 'ok'],
        ['fifo: mkdir-in', 'NOTDIR'],
        ['fifo: creat-in', 'NOTDIR'],
        ['fifo: symlink-in', 'NOTDIR'],
        ['fifo: link-follow', 'ok'],
        ['fifo: link-into', 'NOTDIR'],
        ['fifo: rename-into', 'NOTDIR'],
        ['fifo: rename-out', 'ok'],
        ['fifo: rmdir', 'NOTDIR'],
        ['fifo: unlink', 'ok'],
      ]
      expect(transcriptMismatches('fifo', r.stdout, FIFO)).toEqual([])
    } finally {
      layout.cleanup()
    }
    assertHostAlive()
  })

  it('leaks no host descriptor over repeated runs', () => {
    const once = () => {
      const layout = makeCanaryLayout()
      try {
        plantOnHost(layout)
        runSync(wasm, { args: ['sec_hostlinks', ...PATHS], env: GUEST_ENV, mounts: layout.mounts })
      } finally {
        layout.cleanup()
      }
    }
    once()
    const before = openFdCount()
    for (let i = 0; i < 5; i++) once()
    expect(openFdCount()).toBeLessThanOrEqual(before)
  })
})
