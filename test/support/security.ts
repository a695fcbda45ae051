/**
 * @module Helpers for the escape and abuse tests in `test/security/`: a host layout with canary
 * files beside and above the mounts, snapshots of host trees and of in-memory backends that
 * detect any change (and, on the host, any read or listing through atime), the guest's
 * `label: outcome` lines, open host descriptor counts, and the "host still works" probe.
 *
 * Nothing here grants a guest anything: the tests pass these layouts as explicit mounts.
 */
import {
  closeSync,
  constants as fsc,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  rmSync,
  utimesSync,
  writeFileSync,
  lutimesSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { expect } from 'vitest'
import { runSync, type Filesystem, type MountSpec, type RunOptions, type RunResult } from '../../runtime/index.js'
import { createMemFs, Filetype, memFsFromTree } from '../../wasi-host/index.js'
import { DATA_TREE, GUEST_ENV, sampleWasm, text } from './guest.js'

/** Markers written into the canaries: none may ever appear in anything the guest can output. */
export const CANARY_TOP = 'CANARY-TOP-0b5e8f1d\n'
export const CANARY_M = 'CANARY-BESIDE-6c2a94e7\n'
export const CANARY_OUTSIDE = 'CANARY-OUTSIDE-DIR-93d1f0aa\n'
export const CANARY_MARKERS = [CANARY_TOP, CANARY_M, CANARY_OUTSIDE].map((s) => s.trim())

/** Times every outside entry is reset to, so that a later read or listing moves its atime (relatime). */
const PAST = new Date('2001-02-03T04:05:06Z')

export interface CanaryLayout {
  /** `<tmp>`: holds `canary` (CANARY_TOP) and `m/`. */
  root: string
  /** `<tmp>/m`: holds `canary` (CANARY_M), `outside/` (secret.txt = CANARY_OUTSIDE), `emptyout/`, and the mounts. */
  m: string
  /** `<tmp>/m/sandbox`, mounted writable at /sandbox. */
  sandbox: string
  /** `<tmp>/m/data`, mounted read-only at /data, holding DATA_TREE. */
  data: string
  mounts: MountSpec[]
  cleanup(): void
}

/** A fresh host layout with canaries beside and above the two mounts. */
export function makeCanaryLayout(): CanaryLayout {
  const root = mkdtempSync(join(tmpdir(), 'caplet-sec-'))
  const m = join(root, 'm')
  const sandbox = join(m, 'sandbox')
  const data = join(m, 'data')
  mkdirSync(sandbox, { recursive: true })
  mkdirSync(join(data, 'sub'), { recursive: true })
  mkdirSync(join(data, 'empty'))
  writeFileSync(join(data, 'a.txt'), 'alpha\n')
  writeFileSync(join(data, 'sub', 'b.txt'), 'bravo bravo\n')
  writeFileSync(join(root, 'canary'), CANARY_TOP)
  writeFileSync(join(m, 'canary'), CANARY_M)
  mkdirSync(join(m, 'outside'))
  writeFileSync(join(m, 'outside', 'secret.txt'), CANARY_OUTSIDE)
  mkdirSync(join(m, 'emptyout'))
  return {
    root,
    m,
    sandbox,
    data,
    mounts: [
      { guest: '/sandbox', host: sandbox },
      { guest: '/data', host: data, mode: 'ro' },
    ],
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  }
}

/** Reads a file without moving its atime (O_NOATIME where the platform has it). */
function readQuietly(path: string): Buffer {
  const noatime = (fsc as Record<string, number>).O_NOATIME ?? 0
  let fd: number
  try {
    fd = openSync(path, fsc.O_RDONLY | noatime)
  } catch {
    fd = openSync(path, fsc.O_RDONLY)
  }
  try {
    const chunks: Buffer[] = []
    const buf = Buffer.alloc(65536)
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      chunks.push(Buffer.from(buf.subarray(0, n)))
    }
    return Buffer.concat(chunks)
  } finally {
    closeSync(fd)
  }
}

interface TypedStat {
  isSymbolicLink(): boolean
  isDirectory(): boolean
  isFile(): boolean
}

function typeOf(st: TypedStat): string {
  return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'
}

/** Every path under `dir`, absolute, in sorted walk order, not descending into the directories in `skip`. */
function listTree(dir: string, skip: readonly string[] = []): string[] {
  const out: string[] = []
  const walk = (abs: string) => {
    for (const name of readdirSync(abs).sort()) {
      const child = join(abs, name)
      out.push(child)
      if (skip.includes(child)) continue
      if (lstatSync(child).isDirectory()) walk(child)
    }
  }
  walk(dir)
  return out
}

const rel = (root: string, p: string) => relative(root, p).split(sep).join('/')

/**
 * The content view of a host tree: every path with its type, size, content (files) or target
 * (symlinks). Directories in `opaque` are listed as entries but not descended into or described.
 * Note: listing directories moves their atime; take `hostMeta` first when atime matters.
 */
export function hostContent(dir: string, opaque: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {}
  for (const p of listTree(dir, opaque)) {
    const st = lstatSync(p)
    const k = rel(dir, p)
    if (opaque.includes(p)) out[k] = 'mount'
    else if (st.isSymbolicLink()) out[k] = `symlink -> ${readlinkSync(p)}`
    else if (st.isFile()) out[k] = `file ${st.size} ${JSON.stringify(readQuietly(p).toString('latin1'))}`
    else out[k] = typeOf(st)
  }
  return out
}

/**
 * The metadata view of the given host paths, from lstat only (reads nothing, lists nothing):
 * type, mode, size, nlink, inode, and atime/mtime/ctime in ns. A read of a file or a listing of a
 * directory moves its atime (after `resetTimes`, relatime updates it on the next access); a
 * write, truncate, link, rename or set-times moves mtime or ctime.
 */
export function hostMeta(paths: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const p of paths) {
    let st
    try {
      st = lstatSync(p, { bigint: true })
    } catch {
      out[p] = 'missing'
      continue
    }
    out[p] =
      typeOf(st) +
      ` mode=${st.mode.toString(8)} size=${st.size} nlink=${st.nlink} ino=${st.ino}` +
      ` atime=${st.atimeNs} mtime=${st.mtimeNs} ctime=${st.ctimeNs}`
  }
  return out
}

/**
 * Snapshot of everything in `layout.root` outside the two mounts (the mount directories are
 * entries, their contents are not). Call `before()` after any setup the test does, run the guest,
 * then `assertUnchanged()`: metadata is compared first (lstat only, so the check cannot disturb
 * atimes), then content, so a read, listing, write, link, rename, create or delete outside shows.
 */
export function watchOutside(layout: CanaryLayout): { assertUnchanged(what: string): void } {
  const opaque = [layout.sandbox, layout.data]
  const content0 = hostContent(layout.root, opaque)
  const outsidePaths = [layout.root, ...Object.keys(content0).map((k) => join(layout.root, k))].filter((p) => !opaque.includes(p))
  // Old times on every outside entry: under relatime the next read or readdir moves atime.
  for (const p of outsidePaths) {
    if (lstatSync(p).isSymbolicLink()) lutimesSync(p, PAST, PAST)
    else utimesSync(p, PAST, PAST)
  }
  const meta0 = hostMeta(outsidePaths)
  return {
    assertUnchanged(what: string) {
      expect(hostMeta(outsidePaths), `${what}: outside metadata (read, listed or changed?)`).toEqual(meta0)
      expect(hostContent(layout.root, opaque), `${what}: outside tree`).toEqual(content0)
    },
  }
}

/** A content-and-mtime view of a host tree (for /data, which the guest may read but never change). */
export function hostTreeDigest(dir: string): Record<string, string> {
  const out = hostContent(dir)
  for (const p of listTree(dir)) {
    const st = lstatSync(p, { bigint: true })
    const k = rel(dir, p)
    out[k] += ` mode=${st.mode.toString(8)} nlink=${st.nlink} ino=${st.ino} mtime=${st.mtimeNs} ctime=${st.ctimeNs}`
  }
  const st = lstatSync(dir, { bigint: true })
  out['.'] = `dir mode=${st.mode.toString(8)} mtime=${st.mtimeNs} ctime=${st.ctimeNs}`
  return out
}

/** The same view of an in-memory backend: every path, type, size, content or target, nlink, mtime. */
export function fsDigest(fs: Filesystem): Record<string, string> {
  const out: Record<string, string> = {}
  const root = fs.root()
  const walk = (dir: ReturnType<Filesystem['root']>, prefix: string) => {
    const rs = dir.stat()
    out[prefix || '.'] = `dir nlink=${rs.nlink} mtime=${rs.mtim}`
    for (const e of [...dir.readdir()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = prefix ? `${prefix}/${e.name}` : e.name
      const st = dir.statChild(e.name)
      if (st.filetype === Filetype.DIRECTORY) {
        const sub = dir.openDir(e.name)
        try {
          walk(sub, path)
        } finally {
          sub.close()
        }
      } else if (st.filetype === Filetype.SYMBOLIC_LINK) {
        out[path] = `symlink -> ${dir.readlink(e.name)}`
      } else {
        const f = dir.openFile(e.name, { read: true, write: false, create: false, exclusive: false, truncate: false })
        try {
          const buf = new Uint8Array(Number(st.size))
          let at = 0
          while (at < buf.length) {
            const n = f.read(buf.subarray(at), BigInt(at))
            if (n === 0) break
            at += n
          }
          out[path] = `file ${st.size} nlink=${st.nlink} mtime=${st.mtim} ${JSON.stringify(new TextDecoder().decode(buf))}`
        } finally {
          f.close()
        }
      }
    }
  }
  try {
    walk(root, '')
  } finally {
    root.close()
  }
  return out
}

/** Runs a guest on an in-memory layout whose /data backend the test keeps, to inspect afterwards. */
export function runInMemory(
  wasm: string,
  options: RunOptions = {},
): RunResult & {
  sandbox: Filesystem
  data: Filesystem
  dataBefore: Record<string, string>
} {
  const sandbox = createMemFs()
  const data = memFsFromTree(DATA_TREE)
  const dataBefore = fsDigest(data)
  const mounts: MountSpec[] = [
    { guest: '/sandbox', fs: sandbox },
    { guest: '/data', fs: data, mode: 'ro' },
  ]
  return { ...runSync(wasm, { env: GUEST_ENV, ...options, mounts }), sandbox, data, dataBefore }
}

/** The guest's stdout as its non-empty lines. */
export function guestLines(stdout: Uint8Array | string): string[] {
  const s = typeof stdout === 'string' ? stdout : text(stdout)
  return s.split('\n').filter((l) => l.length > 0)
}

/** What a transcript line must say after `label: `: one outcome, or any of a few equivalent ones. */
export type Outcome = string | readonly string[]
/** The expected transcript of one scenario: each guest line as `[label, outcome]`, in order. */
export type Transcript = readonly (readonly [label: string, outcome: Outcome])[]

const outcomeOk = (want: Outcome, got: string) => (typeof want === 'string' ? [want] : want).includes(got)
const show = (want: Outcome) => (typeof want === 'string' ? want : want.join(' | '))

/**
 * Compares the guest's lines with a pinned transcript, line by line, and returns one readable
 * message per difference (`[scenario] line 3 "open ../x": expected PERM, got ok dir`), so a
 * regression names the scenario and the operation. An empty list means it matched.
 */
export function transcriptMismatches(scenario: string, stdout: Uint8Array | string, expected: Transcript): string[] {
  const lines = guestLines(stdout)
  const problems: string[] = []
  const n = Math.max(lines.length, expected.length)
  for (let i = 0; i < n; i++) {
    const line = lines[i]
    const entry = expected[i]
    if (entry === undefined) {
      problems.push(`[${scenario}] line ${i + 1}: unexpected extra line ${JSON.stringify(line)}`)
      continue
    }
    const [label, want] = entry
    if (line === undefined) {
      problems.push(`[${scenario}] line ${i + 1} "${label}": missing (expected ${show(want)})`)
      continue
    }
    if (!line.startsWith(`${label}: `)) {
      problems.push(`[${scenario}] line ${i + 1}: expected "${label}: ${show(want)}", got ${JSON.stringify(line)}`)
      continue
    }
    const got = line.slice(label.length + 2)
    if (!outcomeOk(want, got)) problems.push(`[${scenario}] line ${i + 1} "${label}": expected ${show(want)}, got ${got}`)
  }
  return problems
}

/**
 * SECURITY: the lines the transcript says must be refused (an outcome that does not start with
 * `ok`) but that the guest reports as `ok …`: each one is a capability that was not enforced.
 */
export function refusalsThatSucceeded(scenario: string, stdout: Uint8Array | string, expected: Transcript): string[] {
  const lines = guestLines(stdout)
  const out: string[] = []
  const seen = new Map<string, number>()
  for (const [label, want] of expected) {
    // the k-th line with this label, wherever it landed (an inserted line must not hide it)
    const k = seen.get(label) ?? 0
    seen.set(label, k + 1)
    const line = lines.filter((l) => l.startsWith(`${label}: `))[k]
    const refusal = (typeof want === 'string' ? [want] : want).every((w) => !w.startsWith('ok'))
    if (refusal && line !== undefined && line.startsWith(`${label}: ok`)) out.push(`[${scenario}] ${line} (must be refused: ${show(want)})`)
  }
  return out
}

/** Number of open descriptors of this process (Linux: entries of /proc/self/fd). */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length
}

/** Invariant 8: after whatever the previous guest did, an ordinary guest still runs normally. */
export function assertHostAlive(): void {
  const r = runSync(sampleWasm('hello'))
  expect(r.trap, 'hello after abuse: trap').toBeUndefined()
  expect(r.exitCode, 'hello after abuse: exit code').toBe(0)
  expect(text(r.stdout)).toBe('hello from caplet\n')
}

/** Asserts that nothing the guest wrote contains a canary marker or the host's temp path. */
export function assertNoLeak(r: RunResult, layout?: CanaryLayout): void {
  const out = text(r.stdout) + text(r.stderr)
  for (const marker of CANARY_MARKERS) expect(out, `canary ${marker} leaked`).not.toContain(marker)
  if (layout) {
    expect(out, 'host temp path leaked').not.toContain(layout.root)
    expect(out, 'host temp dir name leaked').not.toContain(layout.root.split(sep).pop()!)
  }
}
