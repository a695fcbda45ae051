/**
 * @module Escape corpus, driven by the `escape` guest (test/fixtures/src/escape.c): every
 * scenario on both backends (a host directory and the in-memory backend), compared line by line
 * with the outcomes pinned below, so a regression names the scenario and the operation.
 *
 * What the pinned outcomes say (docs/security.md invariants 4 and 5, docs/decisions.md 5):
 * leaving a capability is PERM (absolute paths, `..` past the root, a symlink leading out, also
 * when the guest tries to create one); a file followed by a component is NOTDIR, never a lexical
 * `..`; more than 40 links is LOOP; any change under the read-only /data is ROFS; link and rename
 * between /data and /sandbox are refused (ghsa-4ch3). Lines that are NOENT are the after-effects
 * of a refusal (the link was never created).
 *
 * On the host backend the mounts live at `<tmp>/m/sandbox` and `<tmp>/m/data`, with canaries
 * beside (`<tmp>/m/canary`) and above (`<tmp>/canary`) them: after every run nothing outside the
 * mounts was read, listed or changed (lstat metadata including atime, then the content of every
 * path), no canary text or host path appears in the guest's output, and /data is unchanged.
 */
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { runSync } from '../../runtime/index.js'
import { fixtureWasm, GUEST_ENV } from '../support/guest.js'
import {
  assertHostAlive,
  assertNoLeak,
  fsDigest,
  hostTreeDigest,
  makeCanaryLayout,
  openFdCount,
  refusalsThatSucceeded,
  runInMemory,
  transcriptMismatches,
  watchOutside,
  type Transcript,
} from '../support/security.js'

const ESCAPE = 'PERM'
const NOTDIR = 'NOTDIR'
const LOOP = 'LOOP'
const ROFS = 'ROFS'

/** The pinned transcript of each escape.c scenario; identical on every backend. */
const EXPECTED: Record<string, Transcript> = {
  dotdot: [
    ['open ..', ESCAPE],
    ['open ../x', ESCAPE],
    ['open ./..', ESCAPE],
    ['open ../sandbox', ESCAPE],
    ['open a/../../x', ESCAPE],
    ['open a/b/../../../x', ESCAPE],
    ['open ../../../../etc/passwd', ESCAPE],
    ['open ../../../../../../../../../../../../etc/passwd', ESCAPE],
    ['create ../created', ESCAPE],
    ['create a/../../created', ESCAPE],
    ['mkdir ../newdir', ESCAPE],
    ['stat ..', ESCAPE],
    ['stat ../..', ESCAPE],
    ['open a/..', 'ok dir'],
    ['open a/../a', 'ok dir'],
    ['open a/b/../..', 'ok dir'],
    ['ro: open ../sandbox', ESCAPE],
    ['ro: open ../data/a.txt', ESCAPE],
    ['ro: open sub/../../data/a.txt', ESCAPE],
    ['ro: open sub/../a.txt', 'ok file'],
    ['stat ../canary', ESCAPE],
  ],
  absolute: [
    ['open /etc/passwd', ESCAPE],
    ['open /sandbox/x', ESCAPE],
    ['open /', ESCAPE],
    ['open //etc/passwd', ESCAPE],
    ['open /.', ESCAPE],
    ['open /..', ESCAPE],
    ['ro: open /data/a.txt', ESCAPE],
    ['create /tmp/caplet-escape', ESCAPE],
    ['stat /etc', ESCAPE],
    ['mkdir /tmp/caplet-escape-dir', ESCAPE],
    ['unlink /tmp/caplet-nothing', ESCAPE],
  ],
  notdir: [
    ['open f/../x', NOTDIR],
    ['open f/..', NOTDIR],
    ['open f/.', NOTDIR],
    ['open f/', NOTDIR],
    ['open f/x', NOTDIR],
    ['open f/../f', NOTDIR],
    ['create f/new', NOTDIR],
    ['mkdir f/d', NOTDIR],
    ['stat f/..', NOTDIR],
    ['open f with O_DIRECTORY', NOTDIR],
    ['ro: open a.txt/../sub', NOTDIR],
  ],
  trailing: [
    ['open .', 'ok dir'],
    ['open ./', 'ok dir'],
    ['open d/', 'ok dir'],
    ['open d//', 'ok dir'],
    ['open d/.', 'ok dir'],
    ['open d/..', 'ok dir'],
    ['open d/./..', 'ok dir'],
    ['open d/../..', ESCAPE],
    ['open d/../../', ESCAPE],
    ['open .//d', 'ok dir'],
    ['open (empty path)', 'NOENT'],
    ['create new/ (trailing slash)', 'ISDIR'],
    ['mkdir d2/ (trailing slash)', 'ok'],
    ['stat d2', 'ok dir'],
    ['stat ./.', 'ok dir'],
    ['ro: stat empty/', 'ok dir'],
    ['ro: stat empty/..', 'ok dir'],
    ['ro: stat empty/../..', ESCAPE],
  ],
  symlinks: [
    ['symlink up1 -> ..', ESCAPE],
    ['symlink up2 -> ../..', ESCAPE],
    ['symlink root -> /', ESCAPE],
    ['symlink passwd -> /etc/passwd', ESCAPE],
    ['symlink canary -> ../canary', ESCAPE],
    ['symlink loop1 -> loop2', 'ok'],
    ['symlink loop2 -> loop1', 'ok'],
    ['symlink dangling -> nonexistent', 'ok'],
    ['symlink inside -> secret', 'ok'],
    ['symlink dirlink -> dir', 'ok'],
    ['symlink dotlink -> .', 'ok'],
    ['symlink dir/back -> ../secret', 'ok'],
    ['symlink dir/out -> ../../x', ESCAPE],
    ['up1: open follow', 'NOENT'],
    ['up1: open nofollow', 'NOENT'],
    ['up1: stat follow', 'NOENT'],
    ['up1: stat nofollow', 'NOENT'],
    ['up1: readlink', 'NOENT'],
    ['up2: open follow', 'NOENT'],
    ['up2: open nofollow', 'NOENT'],
    ['up2: stat follow', 'NOENT'],
    ['up2: stat nofollow', 'NOENT'],
    ['up2: readlink', 'NOENT'],
    ['root: open follow', 'NOENT'],
    ['root: open nofollow', 'NOENT'],
    ['root: stat follow', 'NOENT'],
    ['root: stat nofollow', 'NOENT'],
    ['root: readlink', 'NOENT'],
    ['passwd: open follow', 'NOENT'],
    ['passwd: open nofollow', 'NOENT'],
    ['passwd: stat follow', 'NOENT'],
    ['passwd: stat nofollow', 'NOENT'],
    ['passwd: readlink', 'NOENT'],
    ['canary: open follow', 'NOENT'],
    ['canary: open nofollow', 'NOENT'],
    ['canary: stat follow', 'NOENT'],
    ['canary: stat nofollow', 'NOENT'],
    ['canary: readlink', 'NOENT'],
    ['loop1: open follow', LOOP],
    ['loop1: open nofollow', LOOP],
    ['loop1: stat follow', LOOP],
    ['loop1: stat nofollow', 'ok symlink'],
    ['loop1: readlink', 'ok "loop2"'],
    ['loop2: open follow', LOOP],
    ['loop2: open nofollow', LOOP],
    ['loop2: stat follow', LOOP],
    ['loop2: stat nofollow', 'ok symlink'],
    ['loop2: readlink', 'ok "loop1"'],
    ['dangling: open follow', 'NOENT'],
    ['dangling: open nofollow', LOOP],
    ['dangling: stat follow', 'NOENT'],
    ['dangling: stat nofollow', 'ok symlink'],
    ['dangling: readlink', 'ok "nonexistent"'],
    ['inside: open follow', 'ok file'],
    ['inside: open nofollow', LOOP],
    ['inside: stat follow', 'ok file'],
    ['inside: stat nofollow', 'ok symlink'],
    ['inside: readlink', 'ok "secret"'],
    ['dirlink: open follow', 'ok dir'],
    ['dirlink: open nofollow', LOOP],
    ['dirlink: stat follow', 'ok dir'],
    ['dirlink: stat nofollow', 'ok symlink'],
    ['dirlink: readlink', 'ok "dir"'],
    ['dotlink: open follow', 'ok dir'],
    ['dotlink: open nofollow', LOOP],
    ['dotlink: stat follow', 'ok dir'],
    ['dotlink: stat nofollow', 'ok symlink'],
    ['dotlink: readlink', 'ok "."'],
    ['dir/back: open follow', 'ok file'],
    ['dir/back: open nofollow', LOOP],
    ['dir/back: stat follow', 'ok file'],
    ['dir/back: stat nofollow', 'ok symlink'],
    ['dir/back: readlink', 'ok "../secret"'],
    ['dir/out: open follow', 'NOENT'],
    ['dir/out: open nofollow', 'NOENT'],
    ['dir/out: stat follow', 'NOENT'],
    ['dir/out: stat nofollow', 'NOENT'],
    ['dir/out: readlink', 'NOENT'],
    ['open up1/x', 'NOENT'],
    ['open up1/sandbox/secret', 'NOENT'],
    ['open up2/etc/passwd', 'NOENT'],
    ['open root/etc/passwd', 'NOENT'],
    ['open dirlink/../secret', 'ok file'],
    ['open dotlink/secret', 'ok file'],
    ['open dotlink/../x', ESCAPE],
    ['open loop1/x', LOOP],
    ['create up1/newfile', 'NOENT'],
    ['create canary (follow)', 'ok file'],
    ['create dangling (follow: makes nonexistent)', 'ok file'],
    ['stat nonexistent', 'ok file'],
    ['create dir/out (follow)', 'ok file'],
    ['mkdir up1/newdir', 'NOENT'],
    ['symlink up1/ln -> secret', 'NOENT'],
    ['rmdir up1 (a symlink)', 'NOENT'],
    // rmdir acts on the link itself, never on the directory it names (Linux: NOTDIR)
    ['rmdir dirlink/ (a symlink)', NOTDIR],
    ['unlink up1', 'NOENT'],
    ['unlink up2', 'NOENT'],
    ['unlink root', 'NOENT'],
    ['unlink passwd', 'NOENT'],
    ['unlink canary', 'ok'],
    ['unlink loop1', 'ok'],
    ['unlink loop2', 'ok'],
    ['unlink dangling', 'ok'],
    ['unlink inside', 'ok'],
    ['unlink dirlink', 'ok'],
    ['unlink dotlink', 'ok'],
    ['unlink dir/back', 'ok'],
    ['unlink dir/out', 'ok'],
    ['stat secret after unlinks', 'ok file'],
    ['stat dir after unlinks', 'ok dir'],
    ['stat ../canary', ESCAPE],
  ],
  chain: [
    ['chain created, failures', '0'],
    ['open c45 (1 link)', 'ok file'],
    ['open c10 (36 links)', 'ok file'],
    ['open c06 (40 links)', 'ok file'],
    ['open c05 (41 links)', LOOP],
    ['open c00 (46 links)', LOOP],
    ['stat c00 follow', LOOP],
    ['stat c00 nofollow', 'ok symlink'],
  ],
  middle: [
    ['symlink mid/in -> ..', 'ok'],
    ['symlink mid/out -> ../..', ESCAPE],
    ['symlink mid/abs -> /', ESCAPE],
    ['symlink mid/inup -> in/..', 'ok'],
    ['open mid/in/secret', 'ok file'],
    ['open mid/in/mid/in/secret', 'ok file'],
    ['open mid/in/../x', ESCAPE],
    ['open mid/out/secret', 'NOENT'],
    ['open mid/out/sandbox/secret', 'NOENT'],
    ['open mid/abs/etc/passwd', 'NOENT'],
    ['open mid/inup/x (in/.. -> ..)', ESCAPE],
    ['stat mid/out/ nofollow', 'NOENT'],
    ['create mid/out/pwned', 'NOENT'],
    ['rename secret -> mid/out/secret', 'NOENT'],
    ['link secret -> mid/abs/tmp/x', 'NOENT'],
    ['stat secret still there', 'ok file'],
  ],
  remove: [
    ['rmdir .', 'INVAL'],
    ['rmdir x/..', 'INVAL'],
    ['rmdir ..', ESCAPE],
    ['rmdir /', ESCAPE],
    ['rmdir (empty path)', 'NOENT'],
    ['rmdir x/.', 'INVAL'],
    ['unlink .', 'ISDIR'],
    ['unlink ..', ESCAPE],
    ['rename x -> .', 'BUSY'],
    ['rename . -> y', 'BUSY'],
    ['rename x -> ..', ESCAPE],
    ['rename x -> ../x', ESCAPE],
    ['rename .. -> z', ESCAPE],
    ['rename x/.. -> z', 'BUSY'],
    ['ro: rmdir .', ROFS],
    ['ro: rmdir empty', ROFS],
    ['stat . still a dir', 'ok dir'],
    ['stat x still there', 'ok dir'],
    ['ro: stat empty still there', 'ok dir'],
  ],
  crossdomain: [
    ['link /data/a.txt -> /sandbox/stolen', ROFS],
    ['link (follow) /data/a.txt -> /sandbox/stolen2', ROFS],
    ['link /sandbox/own.txt -> /data/own', ROFS],
    ['rename /data/a.txt -> /sandbox/moved', ROFS],
    ['rename /data/sub -> /sandbox/subdir', ROFS],
    ['rename /sandbox/own.txt -> /data/own.txt', ROFS],
    ['symlink /sandbox/todata -> ../data/a.txt', ESCAPE],
    ['open todata (follow)', 'NOENT'],
    ['open stolen for write', 'NOENT'],
    ['open stolen2 for write', 'NOENT'],
    ['open moved for write', 'NOENT'],
    ['ro: a.txt after', 'size 6 nlink 1'],
    ['ro: stat own.txt', 'NOENT'],
    ['ro: stat own', 'NOENT'],
    ['ro: stat sub', 'ok dir'],
    ['stat own.txt', 'ok file'],
  ],
}

/**
 * On a host directory, links the guest creates are seen by host programs, so targets that climb
 * with `..` are refused at creation (PreopenSpec.hostVisible); what would have used them finds
 * nothing. These are the only lines that differ from the in-memory backend.
 */
const HOST_VISIBLE: Record<string, Record<string, string>> = {
  symlinks: {
    'symlink dir/back -> ../secret': ESCAPE,
    'dir/back: open follow': 'NOENT',
    'dir/back: open nofollow': 'NOENT',
    'dir/back: stat follow': 'NOENT',
    'dir/back: stat nofollow': 'NOENT',
    'dir/back: readlink': 'NOENT',
    'unlink dir/back': 'NOENT',
  },
  middle: {
    'symlink mid/in -> ..': ESCAPE,
    'symlink mid/inup -> in/..': ESCAPE,
    'open mid/in/secret': 'NOENT',
    'open mid/in/mid/in/secret': 'NOENT',
    'open mid/in/../x': 'NOENT',
    'open mid/inup/x (in/.. -> ..)': 'NOENT',
  },
}

function expectedOn(backend: 'host' | 'memory', scenario: string): Transcript {
  const base = EXPECTED[scenario]!
  if (backend === 'memory') return base
  const o = HOST_VISIBLE[scenario] ?? {}
  return base.map(([label, outcome]) => [label, o[label] ?? outcome] as const)
}

const SCENARIOS = Object.keys(EXPECTED)
const wasm = fixtureWasm('escape')
/** Host paths the `absolute` scenario tries to create. */
const ABSOLUTE_TARGETS = ['/tmp/caplet-escape', '/tmp/caplet-escape-dir', '/tmp/caplet-nothing']

function checkTranscript(scenario: string, stdout: Uint8Array, expected: Transcript = EXPECTED[scenario]!) {
  expect(refusalsThatSucceeded(scenario, stdout, expected), 'SECURITY: refused operations that succeeded').toEqual([])
  expect(transcriptMismatches(scenario, stdout, expected)).toEqual([])
}

/** One run on a fresh host layout, with every outside check. */
function runOnHost(args: string[]) {
  const layout = makeCanaryLayout()
  try {
    const outside = watchOutside(layout)
    const data0 = hostTreeDigest(layout.data)
    const absoluteBefore = ABSOLUTE_TARGETS.map((p) => existsSync(p))
    const r = runSync(wasm, { args: ['escape', ...args], env: GUEST_ENV, mounts: layout.mounts })
    outside.assertUnchanged(`escape ${args.join(' ')}`)
    expect(hostTreeDigest(layout.data), '/data changed').toEqual(data0)
    expect(
      ABSOLUTE_TARGETS.map((p) => existsSync(p)),
      'absolute host paths created',
    ).toEqual(absoluteBefore)
    assertNoLeak(r, layout)
    return r
  } finally {
    layout.cleanup()
  }
}

function runOnMemory(args: string[]) {
  const r = runInMemory(wasm, { args: ['escape', ...args] })
  expect(fsDigest(r.data), '/data changed').toEqual(r.dataBefore)
  return r
}

const RUNNERS = { host: runOnHost, memory: runOnMemory } as const

describe.each(['host', 'memory'] as const)('escape.c on the %s backend', (backend) => {
  it.each(SCENARIOS)('%s', (scenario) => {
    const r = RUNNERS[backend]([scenario])
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(0)
    checkTranscript(scenario, r.stdout, expectedOn(backend, scenario))
    expect(new TextDecoder().decode(r.stderr)).toBe('')
    assertHostAlive()
  })

  it('all scenarios in one run (state carried from one to the next)', () => {
    const r = RUNNERS[backend](['all'])
    expect(r.exitCode).toBe(0)
    const chunks = new TextDecoder().decode(r.stdout).split(/^== (.+)\n/m)
    expect(chunks[0]).toBe('')
    const names: string[] = []
    for (let i = 1; i < chunks.length; i += 2) {
      const name = chunks[i]!
      names.push(name)
      checkTranscript(name, new TextEncoder().encode(chunks[i + 1]!), expectedOn(backend, name))
    }
    expect(names).toEqual(SCENARIOS)
    assertHostAlive()
  })
})

describe('escape.c: the host survives (invariant 8)', () => {
  it('leaks no host descriptor over a batch of runs, and an ordinary guest still runs', () => {
    runOnHost(['dotdot']) // warm-up: module compilation and lazy handles are not leaks
    const before = openFdCount()
    for (const scenario of SCENARIOS) {
      runOnHost([scenario])
      runOnMemory([scenario])
    }
    expect(openFdCount()).toBeLessThanOrEqual(before)
    assertHostAlive()
  })
})
