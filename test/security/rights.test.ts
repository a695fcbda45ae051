/**
 * @module Rights corpus, driven by the `rights` guest (test/fixtures/src/rights.c) on both
 * backends, compared line by line with the outcomes pinned below; plus the ghsa-4ch3 check
 * through the `escape` guest.
 *
 * What the pinned outcomes say (docs/security.md invariant 4, docs/decisions.md 2-5): rights only shrink (`fd_fdstat_set_rights` adding a bit is NOTCAPABLE); a
 * descriptor's base rights are exact; a read-only mount refuses any change with ROFS, at
 * `path_open` for write rights, TRUNC (GHSA-2r75) and CREAT, and on a read-only descriptor for
 * set_size, allocate, set_times; reading or writing a descriptor never opened for it is BADF
 * (POSIX, the denial table's `not-open-for-io`); a forged or closed descriptor is BADF; a
 * directory's inheriting rights cap what is opened below it (NOTCAPABLE). On the host the files
 * of /data keep their size, content and times whatever the guest tried.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runSync } from '../../runtime/index.js'
import { fixtureWasm, GUEST_ENV, text } from '../support/guest.js'
import {
  assertHostAlive,
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

const NOTCAPABLE = 'NOTCAPABLE'
const ROFS = 'ROFS'
const BADF = 'BADF'

const stdio = (rights: string) => ['char', 'unknown'].map((t) => `ok ${t} flags=0x0 ${rights}`)

/** The pinned transcript of each rights.c scenario; identical on every backend. */
const EXPECTED: Record<string, Transcript> = {
  fdstat: [
    // stdio is a character device only when it is a terminal; captured, it is unknown. The rights are what matter.
    ['fdstat 0', stdio('base=0x820000a inheriting=0x0')],
    ['fdstat 1', stdio('base=0x8200048 inheriting=0x0')],
    ['fdstat 2', stdio('base=0x8200048 inheriting=0x0')],
    ['fdstat 3 (/sandbox)', 'ok dir flags=0x0 base=0xfbffe99 inheriting=0xfffffff'],
    ['fdstat 4 (/data)', 'ok dir flags=0x0 base=0x824e099 inheriting=0xfffffff'],
    ['/data base write rights', 'fd_datasync'],
    [
      '/data inheriting write rights',
      'fd_datasync,fd_write,fd_allocate,path_create_directory,path_create_file,path_link_target,path_rename_source,path_rename_target,path_filestat_set_size,path_filestat_set_times,fd_filestat_set_size,fd_filestat_set_times,path_symlink,path_remove_directory,path_unlink_file',
    ],
    ['fdstat /data/a.txt opened with R_READ', 'ok file flags=0x0 base=0x200026 inheriting=0x0'],
    ['  write rights', 'none'],
    ['fdstat /sandbox/w.txt opened with R_WRITE', 'ok file flags=0x0 base=0x200066 inheriting=0x0'],
  ],
  widen: [
    ['open w.txt R_WRITE', 'ok'],
    ['set_rights drop fd_write', 'ok'],
    ['fdstat after drop', 'ok file flags=0x0 base=0x200026 inheriting=0x0'],
    ['set_rights add fd_write back', NOTCAPABLE],
    ['set_rights add everything', NOTCAPABLE],
    ['fd_write after drop', NOTCAPABLE],
    ['set_rights same again', 'ok'],
    ['fdstat at end', 'ok file flags=0x0 base=0x200026 inheriting=0x0'],
    ['/data: set_rights add path_create_file to base', NOTCAPABLE],
    // not a widening: directories advertise generous inheriting rights (Decisions taken 7)
    ['/data: set_rights add fd_write to inheriting', 'ok'],
    ['/data: set_rights all', NOTCAPABLE],
    ['/data: set_rights unknown bit 40', NOTCAPABLE],
    ['setup: create widened.txt', ROFS],
    ['/data/widened.txt', 'NOENT'],
    ['/data/a.txt', 'size 6'],
  ],
  'drop-read': [
    ['open /data/a.txt R_READ', 'ok'],
    ['fd_read before drop', 'ok 6 bytes'],
    ['set_rights drop fd_read', 'ok'],
    ['fd_read after drop', NOTCAPABLE],
    ['fd_pread after drop', NOTCAPABLE],
    ['fd_seek (still allowed)', 'ok'],
    ['set_rights drop fd_seek', 'ok'],
    ['fd_seek after drop', NOTCAPABLE],
    ['fd_tell (still allowed)', 'ok'],
    ['set_rights drop everything', 'ok'],
    ['fd_tell after drop', NOTCAPABLE],
    ['fd_filestat_get after drop', NOTCAPABLE],
    ['fd_fdstat_get after drop (needs no right)', 'ok file flags=0x0 base=0x0 inheriting=0x0'],
    ['fd_close after drop (needs no right)', 'ok'],
    ['open /data/sub as dir', 'ok'],
    ['dir: set_rights drop path_open', 'ok'],
    ['dir: path_open after drop', NOTCAPABLE],
    ['dir: fd_readdir (still allowed)', 'ok'],
    ['dir: path_filestat_get after drop', NOTCAPABLE],
  ],
  'trunc-ro': [
    ['ro: open a.txt TRUNC with R_READ', ROFS],
    ['  size after', 'size 6'],
    ['ro: open a.txt TRUNC with no rights', ROFS],
    ['  size after', 'size 6'],
    ['ro: open a.txt TRUNC with fd_filestat_set_size', ROFS],
    ['  size after', 'size 6'],
    ['ro: open a.txt with R_WRITE', ROFS],
    ['  size after', 'size 6'],
    ['ro: open a.txt with every right', ROFS],
    ['  size after', 'size 6'],
    ['ro: open a.txt CREAT with R_READ', ROFS],
    ['  size after', 'size 6'],
    ['ro: open a.txt CREAT|EXCL with R_READ', ROFS],
    ['  size after', 'size 6'],
    ['ro: open new.txt CREAT with R_READ', ROFS],
    ['  size after', 'NOENT'],
    ['ro: open sub/b.txt TRUNC with R_READ', ROFS],
    ['  size after', 'size 12'],
    ['ro: a.txt content', '"alpha|"'],
    ['rw: open t.txt TRUNC with R_READ', 'ok'],
    ['  size after', 'size 0'],
  ],
  'ro-fd': [
    ['ro: open a.txt R_READ', 'ok'],
    ['fd_filestat_set_size 0', ROFS],
    ['fd_filestat_set_size 1 GiB', ROFS],
    ['fd_allocate 0+100', ROFS],
    // never opened for writing: POSIX EBADF (the denial table's not-open-for-io)
    ['fd_write', BADF],
    ['fd_pwrite at 0', BADF],
    ['fd_filestat_set_times explicit', ROFS],
    ['fd_filestat_set_times now', ROFS],
    ['fd_fdstat_set_flags APPEND', NOTCAPABLE],
    ['fd_datasync', NOTCAPABLE],
    ['fd_sync', NOTCAPABLE],
    ['ro: open a.txt with every right', ROFS],
    ['/data: fd_filestat_set_times', ROFS],
    ['/data: fd_filestat_set_size', BADF],
    ['ro: a.txt', 'size 6'],
    ['ro: a.txt content', '"alpha|"'],
  ],
  'ro-path': [
    ['path_filestat_set_times a.txt', ROFS],
    ['path_filestat_set_times a.txt now', ROFS],
    ['path_create_directory newdir', ROFS],
    ['path_create_directory sub/newdir', ROFS],
    ['path_unlink_file a.txt', ROFS],
    ['path_unlink_file sub/b.txt', ROFS],
    ['path_remove_directory empty', ROFS],
    ['path_symlink a.txt -> ln', ROFS],
    ['path_rename a.txt -> renamed.txt', ROFS],
    ['path_rename sub -> sub2', ROFS],
    ['path_link a.txt -> a2.txt', ROFS],
    ['path_unlink_file missing', ROFS],
    ['path_create_directory empty (exists)', ROFS],
    ['a.txt', 'size 6'],
    ['sub/b.txt', 'size 12'],
    ['stat empty', 'ok'],
    ['stat newdir', 'NOENT'],
    ['stat ln', 'NOENT'],
    ['stat renamed.txt', 'NOENT'],
    ['stat a2.txt', 'NOENT'],
  ],
  inherit: [
    ['ro: open sub as dir (inheriting: all)', 'ok'],
    ['  fdstat sub', 'ok dir flags=0x0 base=0x6000 inheriting=0xfffffff'],
    ['  open sub/b.txt with R_WRITE via sub', ROFS],
    ['  open sub/b.txt TRUNC via sub', ROFS],
    ['  create sub/new.txt via sub', ROFS],
    ['ro: sub/b.txt', 'size 12'],
    ['rw: open box as dir (inheriting: R_READ)', 'ok'],
    ['  create box/f.txt asking R_WRITE', NOTCAPABLE],
    ['  open box/sub (missing) as dir', 'NOENT'],
  ],
  forged: [
    ['fd 5: fd_read', BADF],
    ['fd 5: fd_write', BADF],
    ['fd 5: fd_close', BADF],
    ['fd 5: fd_fdstat_get', BADF],
    ['fd 5: fd_prestat_get', BADF],
    ['fd 5: path_open', BADF],
    ['fd 99: fd_read', BADF],
    ['fd 99: fd_write', BADF],
    ['fd 99: fd_close', BADF],
    ['fd 99: fd_fdstat_get', BADF],
    ['fd 99: fd_prestat_get', BADF],
    ['fd 99: path_open', BADF],
    ['fd 1024: fd_read', BADF],
    ['fd 1024: fd_write', BADF],
    ['fd 1024: fd_close', BADF],
    ['fd 1024: fd_fdstat_get', BADF],
    ['fd 1024: fd_prestat_get', BADF],
    ['fd 1024: path_open', BADF],
    ['fd 2147483647: fd_read', BADF],
    ['fd 2147483647: fd_write', BADF],
    ['fd 2147483647: fd_close', BADF],
    ['fd 2147483647: fd_fdstat_get', BADF],
    ['fd 2147483647: fd_prestat_get', BADF],
    ['fd 2147483647: path_open', BADF],
    ['fd 2147483648: fd_read', BADF],
    ['fd 2147483648: fd_write', BADF],
    ['fd 2147483648: fd_close', BADF],
    ['fd 2147483648: fd_fdstat_get', BADF],
    ['fd 2147483648: fd_prestat_get', BADF],
    ['fd 2147483648: path_open', BADF],
    ['fd 4294967295: fd_read', BADF],
    ['fd 4294967295: fd_write', BADF],
    ['fd 4294967295: fd_close', BADF],
    ['fd 4294967295: fd_fdstat_get', BADF],
    ['fd 4294967295: fd_prestat_get', BADF],
    ['fd 4294967295: path_open', BADF],
    ['open a.txt', 'ok'],
    ['close it', 'ok'],
    ['closed fd: fd_read', BADF],
    ['closed fd: fd_close again', BADF],
    ['closed fd: fd_filestat_get', BADF],
    ['closed fd: fd_seek', BADF],
    ['file fd as dir: path_open', 'NOTDIR'],
    ['file fd as dir: path_filestat_get', 'NOTDIR'],
    ['file fd: fd_readdir', 'NOTDIR'],
  ],
  renumber: [
    ['renumber a -> a', 'ok'],
    ['renumber a -> b', 'ok'],
    ['a is gone after renumber: fd_close', BADF],
    // onto a free number below the descriptor limit: allowed, as dup2; the table stays bounded
    ['renumber b -> 99 (free, below the limit)', 'ok'],
    ['b is free afterwards: fd_close', BADF],
    ['renumber 99 -> b (back)', 'ok'],
    ['renumber 98 -> b (free source)', BADF],
    ['renumber b -> 0x7fffffff (past the limit)', BADF],
    // the guest may give up its own preopen (the file takes fd 3, b is gone): no authority is gained,
    // so the next calls on b are BADF, and fd 3 is now a file
    ['renumber b -> 3 (onto /sandbox preopen)', 'ok'],
    ['fd 3 still /sandbox: stat r.txt', 'NOTDIR'],
    ['renumber 98 -> 4 (free source onto a preopen)', BADF],
    ['fd 4 still /data: stat a.txt', 'ok'],
    ['renumber 0xffffffff -> b', BADF],
    ['renumber b -> 2 (b was moved away)', BADF],
    ['fd_write to fd 2 afterwards', 'ok'],
    ['fd_close b', BADF],
  ],
}

const SCENARIOS = Object.keys(EXPECTED)
const rightsWasm = fixtureWasm('rights')
const escapeWasm = fixtureWasm('escape')

function checkTranscript(scenario: string, stdout: Uint8Array) {
  expect(refusalsThatSucceeded(scenario, stdout, EXPECTED[scenario]!), 'SECURITY: refused operations that succeeded').toEqual([])
  expect(transcriptMismatches(scenario, stdout, EXPECTED[scenario]!)).toEqual([])
}

/** What the renumber scenario writes to fd 2 once its attempt to replace stderr has failed. */
const STDERR: Record<string, string> = { renumber: 'rights: stderr line\n' }

interface HostRun {
  r: ReturnType<typeof runSync>
  sandboxHas(path: string): boolean
  data: string
}

/** One run on a fresh host layout; checks that /data and everything outside are unchanged. */
function runOnHost(wasm: string, args: string[], inspect?: (run: HostRun) => void) {
  const layout = makeCanaryLayout()
  try {
    const outside = watchOutside(layout)
    const data0 = hostTreeDigest(layout.data)
    const r = runSync(wasm, { args, env: GUEST_ENV, mounts: layout.mounts })
    outside.assertUnchanged(args.join(' '))
    expect(hostTreeDigest(layout.data), '/data changed (size, content, times, links or entries)').toEqual(data0)
    inspect?.({ r, sandboxHas: (p) => existsSync(join(layout.sandbox, p)), data: layout.data })
    return r
  } finally {
    layout.cleanup()
  }
}

function runOnMemory(wasm: string, args: string[]) {
  const r = runInMemory(wasm, { args })
  expect(fsDigest(r.data), '/data changed').toEqual(r.dataBefore)
  return r
}

describe.each(['host', 'memory'] as const)('rights.c on the %s backend', (backend) => {
  it.each(SCENARIOS)('%s', (scenario) => {
    const args = ['rights', scenario]
    const r = backend === 'host' ? runOnHost(rightsWasm, args) : runOnMemory(rightsWasm, args)
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(0)
    checkTranscript(scenario, r.stdout)
    expect(text(r.stderr)).toBe(STDERR[scenario] ?? '')
    assertHostAlive()
  })
})

describe('read-only bypasses, checked on the host files', () => {
  it('GHSA-2r75: path_open TRUNC with read-only rights leaves /data/a.txt whole', () => {
    runOnHost(rightsWasm, ['rights', 'trunc-ro'], ({ data, sandboxHas }) => {
      expect(statSync(join(data, 'a.txt')).size).toBe(6)
      expect(readFileSync(join(data, 'a.txt'), 'utf8')).toBe('alpha\n')
      expect(readFileSync(join(data, 'sub/b.txt'), 'utf8')).toBe('bravo bravo\n')
      expect(existsSync(join(data, 'new.txt'))).toBe(false)
      // TRUNC in the writable mount is a write the mount allows
      expect(sandboxHas('t.txt')).toBe(true)
    })
  })

  it('set_size, allocate, write, pwrite and set_times on a read-only descriptor change nothing', () => {
    runOnHost(rightsWasm, ['rights', 'ro-fd'], ({ data }) => {
      const st = statSync(join(data, 'a.txt'))
      expect(st.size).toBe(6)
      expect(st.mtimeMs).toBeGreaterThan(Date.parse('2020-01-01')) // not set to 1 s after the epoch
      expect(readFileSync(join(data, 'a.txt'), 'utf8')).toBe('alpha\n')
    })
  })

  it('path_* changes in /data leave its entries as they were', () => {
    runOnHost(rightsWasm, ['rights', 'ro-path'], ({ data }) => {
      for (const p of ['newdir', 'sub/newdir', 'ln', 'renamed.txt', 'sub2', 'a2.txt']) expect(existsSync(join(data, p)), p).toBe(false)
      expect(statSync(join(data, 'a.txt')).nlink).toBe(1)
    })
  })

  it('a denied create below a directory without inheriting FD_WRITE creates nothing', () => {
    runOnHost(rightsWasm, ['rights', 'inherit'], ({ sandboxHas }) => {
      expect(sandboxHas('box')).toBe(true)
      expect(sandboxHas('box/f.txt'), 'NOTCAPABLE must come before the file is created').toBe(false)
    })
  })
})

describe('ghsa-4ch3: link and rename between /data and /sandbox', () => {
  const CROSSDOMAIN: Transcript = [
    ['link /data/a.txt -> /sandbox/stolen', ROFS],
    ['link (follow) /data/a.txt -> /sandbox/stolen2', ROFS],
    ['link /sandbox/own.txt -> /data/own', ROFS],
    ['rename /data/a.txt -> /sandbox/moved', ROFS],
    ['rename /data/sub -> /sandbox/subdir', ROFS],
    ['rename /sandbox/own.txt -> /data/own.txt', ROFS],
    ['symlink /sandbox/todata -> ../data/a.txt', 'PERM'],
    ['open todata (follow)', 'NOENT'],
    ['open stolen for write', 'NOENT'],
    ['open stolen2 for write', 'NOENT'],
    ['open moved for write', 'NOENT'],
    ['ro: a.txt after', 'size 6 nlink 1'],
    ['ro: stat own.txt', 'NOENT'],
    ['ro: stat own', 'NOENT'],
    ['ro: stat sub', 'ok dir'],
    ['stat own.txt', 'ok file'],
  ]

  it.each(['host', 'memory'] as const)('%s: refused both ways, and /data/a.txt stays read-only', (backend) => {
    const args = ['escape', 'crossdomain']
    const r =
      backend === 'host'
        ? runOnHost(escapeWasm, args, ({ data, sandboxHas }) => {
            for (const p of ['stolen', 'stolen2', 'moved', 'subdir', 'todata']) expect(sandboxHas(p), p).toBe(false)
            expect(sandboxHas('own.txt')).toBe(true)
            expect(statSync(join(data, 'a.txt')).nlink).toBe(1)
            expect(existsSync(join(data, 'own.txt')) || existsSync(join(data, 'own'))).toBe(false)
          })
        : runOnMemory(escapeWasm, args)
    expect(r.exitCode).toBe(0)
    expect(refusalsThatSucceeded('crossdomain', r.stdout, CROSSDOMAIN), 'SECURITY').toEqual([])
    expect(transcriptMismatches('crossdomain', r.stdout, CROSSDOMAIN)).toEqual([])
  })
})

describe('fd_renumber onto preopens and stdio (sec_renumber.c)', () => {
  const STDOUT: Transcript = [
    ['open /data/a.txt', 'ok'],
    ['fd 4 (/data) before', 'ok dir base=0x824e099 inheriting=0xfffffff'],
    // a read-only file replaces the /sandbox preopen: fd 3 is that file, nothing more
    ['renumber file -> 3', 'ok'],
    ['old number after renumber: fd_close', BADF],
    ['fd 3: prestat', BADF],
    ['fd 3: fd_write', BADF],
    ['fd 3: create x', 'NOTDIR'],
    ['fd 3: fdstat', 'ok file base=0x200026 inheriting=0x0'],
    // the read-only /data preopen moves onto fd 3 with its mode: still read-only there
    ['renumber 4 -> 3', 'ok'],
    ['fd 3: prestat', 'ok "/data"'],
    ['fd 3: fdstat', 'ok dir base=0x824e099 inheriting=0xfffffff'],
    ['fd 3: create pwned.txt', ROFS],
    ['fd 3: mkdir d', ROFS],
    ['fd 3: unlink a.txt', ROFS],
    ['fd 3: read a.txt', 'ok "alpha|"'],
    ['fd 4: prestat', BADF],
    ['fd 4: fd_close', BADF],
    ['open a.txt again via fd 3', 'ok'],
  ]
  const STDERR: Transcript = [
    // a read-only file over stdout: writing to fd 1 cannot write the file
    ['renumber file -> 1', 'ok'],
    ['fd 1: fd_write', BADF],
    ['fd 3: read a.txt after', 'ok "alpha|"'],
  ]
  const wasm = fixtureWasm('sec_renumber')

  it.each(['host', 'memory'] as const)("%s: a descriptor moves with its rights and its mount's mode", (backend) => {
    const args = ['sec_renumber']
    const r =
      backend === 'host'
        ? runOnHost(wasm, args, ({ sandboxHas }) => {
            for (const p of ['x', 'pwned.txt', 'd']) expect(sandboxHas(p), p).toBe(false)
          })
        : runOnMemory(wasm, args)
    expect(r.exitCode).toBe(0)
    expect(refusalsThatSucceeded('sec_renumber', r.stdout, STDOUT), 'SECURITY').toEqual([])
    expect(transcriptMismatches('sec_renumber', r.stdout, STDOUT)).toEqual([])
    expect(refusalsThatSucceeded('sec_renumber stderr', r.stderr, STDERR), 'SECURITY').toEqual([])
    expect(transcriptMismatches('sec_renumber stderr', r.stderr, STDERR)).toEqual([])
  })
})

describe('rights.c: the host survives (invariant 8)', () => {
  it('leaks no host descriptor over a batch of runs, and an ordinary guest still runs', () => {
    runOnHost(rightsWasm, ['rights', 'fdstat'])
    const before = openFdCount()
    for (const scenario of SCENARIOS) {
      runOnHost(rightsWasm, ['rights', scenario])
      runOnMemory(rightsWasm, ['rights', scenario])
    }
    runOnHost(rightsWasm, ['rights', 'all'])
    expect(openFdCount()).toBeLessThanOrEqual(before)
    assertHostAlive()
  })
})
