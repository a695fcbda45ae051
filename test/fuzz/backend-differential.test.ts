/**
 * @module Differential fuzzing of the filesystem backends through the real WASI import object
 * (a reference model, as cap-std's fuzz targets in spirit).
 *
 * A plan is a random sequence of path operations written in a small token grammar
 * (components `a b ab . .. la up abs`, where `la -> a`, `up -> ..`, `abs -> /` and
 * `a/up -> ../..` are planted in the tree before the run, as a host user or attacker could),
 * starting from the preopen or from directories the plan opened and may since have moved or
 * removed.
 * Each plan runs, step by step, against `WasiHost` import objects over (A) a MemFs, (B) the host
 * directory backend on a fresh temp dir, once per strategy (`proc-fd` where available, and the
 * lstat-checking `fallback`), and (C) `withQuota(MemFs)` with a large quota, exactly as a guest
 * calls them (raw pointers into a bound `WebAssembly.Memory`). Asserted:
 * - every step gives the same errno and the same observable result on all three;
 * - the final trees are equal (names, types, contents, symlink targets, link counts);
 * - a reference model (a pure resolver over a snapshot of the tree, written independently of
 *   `path-resolver.ts`) agrees: a path the model sees escaping never succeeds, and every
 *   successful open or stat reached the node the model reaches;
 * - nothing outside the host mount changes: the temp dir around the mount holds a canary and
 *   decoys named like the plan's tokens (`a`, `ab`, …) with marked content, whose bytes and
 *   times (an old atime shows any read) are compared before and after, and no read ever returns
 *   the marker.
 *
 * `FUZZ_RUNS` and `FUZZ_SEED` override the run count and seed (`scripts/fuzz.mjs` does this for
 * long runs). A failure prints the seed and the shrunk plan.
 */
import * as nodeFs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Errno, Filetype, Rights, RIGHTS_ALL, errnoName } from '../../wasi-host/abi/constants.js'
import type { DirHandle, Filesystem } from '../../wasi-host/fs/filesystem.js'
import { createMemFs } from '../../wasi-host/fs/mem-fs.js'
import { withQuota } from '../../wasi-host/fs/quota.js'
import { WasiHost } from '../../wasi-host/host.js'
import { createHostDirFs, type HostDirFs } from '../../wasi-host/node/host-dir-fs.js'

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 200)
const SEED = Number(process.env['FUZZ_SEED'] ?? 0xd1ff)
/** A long run (`scripts/fuzz.mjs`) may take as long as it needs. */
const TIMEOUT = Math.max(60_000, RUNS * 300)

const MARK = 'OUTSIDE-THE-MOUNT'
const enc = new TextEncoder()
const dec = new TextDecoder()

// ---- the plan grammar ----------------------------------------------------------------------

const COMPONENTS = ['a', 'b', 'ab', '.', '..', 'la', 'up', 'abs'] as const
/** Paths that name something or a fresh name, so that creations and two-path calls succeed often. */
const NAMES = ['a', 'b', 'c', 'ab', 'la', 'a/b', 'a/c', 'la/c', 'la/b'] as const
const TARGETS = ['a', 'b', 'ab', '.', '..', 'a/b', '../a', '/', 'la', 'up/a', 'ab/', 'b/..'] as const

/** Where a path starts: 0 is the preopen, 1 and 2 are directory descriptors the plan opened. */
type Base = 0 | 1 | 2
type Step = { at?: Base; at2?: Base } & (
  | { op: 'opendir'; p: string; slot: 1 | 2 }
  | { op: 'closedir'; slot: 1 | 2 }
  | { op: 'mkdir'; p: string }
  | { op: 'write'; p: string; data: string; trunc: boolean; excl: boolean; follow: boolean }
  | { op: 'read'; p: string; follow: boolean }
  | { op: 'unlink'; p: string }
  | { op: 'rmdir'; p: string }
  | { op: 'rename'; p: string; q: string }
  | { op: 'link'; p: string; q: string; follow: boolean }
  | { op: 'symlink'; target: string; p: string }
  | { op: 'stat'; p: string; follow: boolean }
  | { op: 'readdir'; p: string }
  | { op: 'setSize'; p: string; size: number }
  | { op: 'readlink'; p: string }
)

const pathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...NAMES) },
  fc
    .tuple(fc.array(fc.constantFrom(...COMPONENTS), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 5 }))
    .map(([cs, slash]) => cs.join('/') + (slash === 0 ? '/' : '')),
)

const slotArb = fc.constantFrom(1 as const, 2 as const)
/** Mostly the preopen; sometimes a held directory, which may since have been moved or removed. */
const baseArb: fc.Arbitrary<Base> = fc.oneof({ weight: 3, arbitrary: fc.constant(0 as const) }, { weight: 2, arbitrary: slotArb })

const opArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('opendir' as const), p: pathArb, slot: slotArb }),
  fc.record({ op: fc.constant('closedir' as const), slot: slotArb }),
  fc.record({ op: fc.constant('mkdir' as const), p: pathArb }),
  fc.record({
    op: fc.constant('write' as const),
    p: pathArb,
    data: fc.constantFrom('', 'x', 'hello', 'ABCDEFGH'),
    trunc: fc.boolean(),
    excl: fc.boolean(),
    follow: fc.boolean(),
  }),
  fc.record({ op: fc.constant('read' as const), p: pathArb, follow: fc.boolean() }),
  fc.record({ op: fc.constant('unlink' as const), p: pathArb }),
  fc.record({ op: fc.constant('rmdir' as const), p: pathArb }),
  fc.record({ op: fc.constant('rename' as const), p: pathArb, q: pathArb }),
  fc.record({ op: fc.constant('link' as const), p: pathArb, q: pathArb, follow: fc.boolean() }),
  fc.record({ op: fc.constant('symlink' as const), target: fc.constantFrom(...TARGETS), p: pathArb }),
  fc.record({ op: fc.constant('stat' as const), p: pathArb, follow: fc.boolean() }),
  fc.record({ op: fc.constant('readdir' as const), p: pathArb }),
  fc.record({ op: fc.constant('setSize' as const), p: pathArb, size: fc.constantFrom(0, 3, 20) }),
  fc.record({ op: fc.constant('readlink' as const), p: pathArb }),
)

const stepArb: fc.Arbitrary<Step> = fc.tuple(opArb, baseArb, baseArb).map(([step, at, at2]) => ({ ...step, at, at2 }))

/** The tree every backend starts from; the symlinks are planted as a host user could, unchecked. */
function seedTree(root: DirHandle): void {
  root.mkdir('a')
  const a = root.openDir('a')
  try {
    writeRaw(a, 'b', 'in a/b')
    a.symlink('../..', 'up')
  } finally {
    a.close()
  }
  writeRaw(root, 'ab', 'in ab')
  root.mkdir('b')
  root.symlink('a', 'la')
  root.symlink('..', 'up')
  root.symlink('/', 'abs')
}

function writeRaw(dir: DirHandle, name: string, content: string): void {
  const f = dir.openFile(name, { read: false, write: true, create: true, exclusive: true, truncate: false })
  try {
    f.write(enc.encode(content), 0n)
  } finally {
    f.close()
  }
}

// ---- a guest: raw calls into the import object ------------------------------------------------

const PATH_PTR = 1024
const PATH2_PTR = 2048
const FD_PTR = 3072
const N_PTR = 3076
const IOV_PTR = 3080
const STAT_PTR = 3136
const BUF_PTR = 4096
const BUF_LEN = 8192
const MOUNT_FD = 3
const LOOKUP_FOLLOW = 1
const O_CREAT = 1
const O_DIRECTORY = 2
const O_EXCL = 4
const O_TRUNC = 8
const ALL = BigInt(RIGHTS_ALL)
const READ_ONLY = BigInt(RIGHTS_ALL & ~(Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_DATASYNC))

type Wasi = Record<string, (...args: (number | bigint)[]) => number>

/** What one step gave: the errno name, and what the guest could read back on success. */
interface Outcome {
  errno: string
  data?: unknown
}

/** One guest over one backend, calling the preview1 imports as compiled code would. */
class Guest {
  readonly host: WasiHost
  readonly mem = new WebAssembly.Memory({ initial: 1 })
  readonly wasi: Wasi
  /** The descriptors of the plan's held directories (-1: none). */
  readonly #slots = [MOUNT_FD, -1, -1]

  constructor(fs: Filesystem) {
    this.host = new WasiHost({ preopens: [{ guestPath: '/m', fs, mode: 'rw', hostVisible: true }] })
    this.host.memory.bind(this.mem)
    this.wasi = this.host.imports.wasi_snapshot_preview1 as unknown as Wasi
  }

  #view(): DataView {
    return new DataView(this.mem.buffer)
  }

  #put(ptr: number, s: string): number {
    const b = enc.encode(s)
    new Uint8Array(this.mem.buffer).set(b, ptr)
    return b.length
  }

  #bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.mem.buffer).slice(ptr, ptr + len)
  }

  /** The descriptor a path starts from: a held directory, or the preopen when that slot is empty. */
  #base(at: Base | undefined): number {
    const fd = this.#slots[at ?? 0]!
    return fd < 0 ? MOUNT_FD : fd
  }

  #open(p: string, follow: boolean, oflags: number, rights: bigint, at: Base | undefined): { errno: number; fd: number } {
    const len = this.#put(PATH_PTR, p)
    const errno = this.wasi['path_open']!(this.#base(at), follow ? LOOKUP_FOLLOW : 0, PATH_PTR, len, oflags, rights, ALL, 0, FD_PTR)
    return { errno, fd: errno === Errno.SUCCESS ? this.#view().getUint32(FD_PTR, true) : -1 }
  }

  #close(fd: number): void {
    const rc = this.wasi['fd_close']!(fd)
    if (rc !== Errno.SUCCESS) throw new Error(`fd_close failed: ${errnoName(rc)}`)
  }

  #path1(name: string, p: string, at: Base | undefined): Outcome {
    const len = this.#put(PATH_PTR, p)
    return { errno: errnoName(this.wasi[name]!(this.#base(at), PATH_PTR, len)) }
  }

  #release(slot: 1 | 2): void {
    const fd = this.#slots[slot]!
    if (fd >= 0) this.#close(fd)
    this.#slots[slot] = -1
  }

  run(step: Step): Outcome {
    const v = () => this.#view()
    const at = step.at
    switch (step.op) {
      case 'opendir': {
        const o = this.#open(step.p, true, O_DIRECTORY, READ_ONLY, at)
        if (o.errno === Errno.SUCCESS) {
          this.#release(step.slot)
          this.#slots[step.slot] = o.fd
        }
        return { errno: errnoName(o.errno) }
      }
      case 'closedir':
        this.#release(step.slot)
        return { errno: 'SUCCESS' }
      case 'mkdir':
        return this.#path1('path_create_directory', step.p, at)
      case 'unlink':
        return this.#path1('path_unlink_file', step.p, at)
      case 'rmdir':
        return this.#path1('path_remove_directory', step.p, at)
      case 'write': {
        const oflags = O_CREAT | (step.trunc ? O_TRUNC : 0) | (step.excl ? O_EXCL : 0)
        const o = this.#open(step.p, step.follow, oflags, ALL, at)
        if (o.errno !== Errno.SUCCESS) return { errno: errnoName(o.errno) }
        try {
          const n = this.#put(BUF_PTR, step.data)
          v().setUint32(IOV_PTR, BUF_PTR, true)
          v().setUint32(IOV_PTR + 4, n, true)
          const rc = this.wasi['fd_write']!(o.fd, IOV_PTR, 1, N_PTR)
          return { errno: errnoName(rc), data: rc === Errno.SUCCESS ? v().getUint32(N_PTR, true) : undefined }
        } finally {
          this.#close(o.fd)
        }
      }
      case 'read': {
        const o = this.#open(step.p, step.follow, 0, READ_ONLY, at)
        if (o.errno !== Errno.SUCCESS) return { errno: errnoName(o.errno) }
        try {
          v().setUint32(IOV_PTR, BUF_PTR, true)
          v().setUint32(IOV_PTR + 4, 256, true)
          const rc = this.wasi['fd_read']!(o.fd, IOV_PTR, 1, N_PTR)
          return {
            errno: errnoName(rc),
            data: rc === Errno.SUCCESS ? dec.decode(this.#bytes(BUF_PTR, v().getUint32(N_PTR, true))) : undefined,
          }
        } finally {
          this.#close(o.fd)
        }
      }
      case 'rename':
      case 'link': {
        const a = this.#put(PATH_PTR, step.p)
        const b = this.#put(PATH2_PTR, step.q)
        const rc =
          step.op === 'rename'
            ? this.wasi['path_rename']!(this.#base(at), PATH_PTR, a, this.#base(step.at2), PATH2_PTR, b)
            : this.wasi['path_link']!(this.#base(at), step.follow ? LOOKUP_FOLLOW : 0, PATH_PTR, a, this.#base(step.at2), PATH2_PTR, b)
        return { errno: errnoName(rc) }
      }
      case 'symlink': {
        const t = this.#put(PATH2_PTR, step.target)
        const p = this.#put(PATH_PTR, step.p)
        return { errno: errnoName(this.wasi['path_symlink']!(PATH2_PTR, t, this.#base(at), PATH_PTR, p)) }
      }
      case 'stat': {
        const len = this.#put(PATH_PTR, step.p)
        const rc = this.wasi['path_filestat_get']!(this.#base(at), step.follow ? LOOKUP_FOLLOW : 0, PATH_PTR, len, STAT_PTR)
        if (rc !== Errno.SUCCESS) return { errno: errnoName(rc) }
        const filetype = v().getUint8(STAT_PTR + 16)
        return {
          errno: 'SUCCESS',
          data: {
            filetype,
            nlink: v().getBigUint64(STAT_PTR + 24, true),
            // A directory's size is the host file system's business (4096 on ext4, 0 in MemFs).
            size: filetype === Filetype.DIRECTORY ? undefined : v().getBigUint64(STAT_PTR + 32, true),
          },
        }
      }
      case 'readdir': {
        const o = this.#open(step.p, true, O_DIRECTORY, READ_ONLY, at)
        if (o.errno !== Errno.SUCCESS) return { errno: errnoName(o.errno) }
        try {
          const rc = this.wasi['fd_readdir']!(o.fd, BUF_PTR, BUF_LEN, 0n, N_PTR)
          if (rc !== Errno.SUCCESS) return { errno: errnoName(rc) }
          const used = v().getUint32(N_PTR, true)
          const names: string[] = []
          for (let at = 0; at + 24 <= used;) {
            const namlen = v().getUint32(BUF_PTR + at + 16, true)
            const type = v().getUint8(BUF_PTR + at + 20)
            names.push(`${dec.decode(this.#bytes(BUF_PTR + at + 24, namlen))}:${type}`)
            at += 24 + namlen
          }
          // Order is each backend's own (insertion in MemFs, sorted on the host): compare sets.
          return { errno: 'SUCCESS', data: names.sort() }
        } finally {
          this.#close(o.fd)
        }
      }
      case 'setSize': {
        const o = this.#open(step.p, true, 0, ALL, at)
        if (o.errno !== Errno.SUCCESS) return { errno: errnoName(o.errno) }
        try {
          return { errno: errnoName(this.wasi['fd_filestat_set_size']!(o.fd, BigInt(step.size))) }
        } finally {
          this.#close(o.fd)
        }
      }
      case 'readlink': {
        const len = this.#put(PATH_PTR, step.p)
        const rc = this.wasi['path_readlink']!(this.#base(at), PATH_PTR, len, BUF_PTR, 256, N_PTR)
        return {
          errno: errnoName(rc),
          data: rc === Errno.SUCCESS ? dec.decode(this.#bytes(BUF_PTR, v().getUint32(N_PTR, true))) : undefined,
        }
      }
    }
  }

  close(): void {
    this.host.close()
  }
}

// ---- the reference model ------------------------------------------------------------------------

type RefNode =
  { t: 'dir'; entries: Map<string, RefNode> } | { t: 'file'; content: string; nlink: number; id: string } | { t: 'symlink'; target: string }

/** A snapshot of a backend's tree, through its own API (files identified by `ino`). */
function snapshot(fs: Filesystem): RefNode {
  const root = fs.root()
  try {
    return snapDir(root)
  } finally {
    root.close()
  }
}

function snapDir(dir: DirHandle): RefNode {
  const entries = new Map<string, RefNode>()
  for (const e of dir.readdir()) {
    const st = dir.statChild(e.name)
    if (st.filetype === Filetype.DIRECTORY) {
      const sub = dir.openDir(e.name)
      try {
        entries.set(e.name, snapDir(sub))
      } finally {
        sub.close()
      }
    } else if (st.filetype === Filetype.SYMBOLIC_LINK) {
      entries.set(e.name, { t: 'symlink', target: dir.readlink(e.name) })
    } else {
      const f = dir.openFile(e.name, { read: true, write: false, create: false, exclusive: false, truncate: false })
      try {
        const buf = new Uint8Array(Number(st.size))
        const n = buf.length === 0 ? 0 : f.read(buf, 0n)
        entries.set(e.name, { t: 'file', content: dec.decode(buf.subarray(0, n)), nlink: Number(st.nlink), id: String(st.ino) })
      } finally {
        f.close()
      }
    }
  }
  return { t: 'dir', entries }
}

/** A canonical, comparable form of a snapshot: sorted names; hard links as link counts. */
function canonical(node: RefNode): unknown {
  if (node.t === 'dir') {
    return Object.fromEntries([...node.entries.keys()].sort().map((k) => [k, canonical(node.entries.get(k)!)]))
  }
  if (node.t === 'symlink') return { symlink: node.target }
  return { content: node.content, nlink: node.nlink }
}

type RefResult = { kind: 'node'; node: RefNode } | { kind: 'missing' } | { kind: 'escape' } | { kind: 'error' }

/**
 * The reference resolver: a pure function over a snapshot, written from the rules in docs/security.md
 * ("Path resolution") rather than from `path-resolver.ts`. `..` pops the directories walked so
 * far (never a lexical rewrite), a symlink is expanded wherever it is met (at the end only when
 * followed or followed by a slash), an absolute path or target or a `..` at the root escapes.
 */
function refResolve(root: RefNode, p: string, follow: boolean): RefResult {
  if (p.length === 0) return { kind: 'error' }
  if (p.startsWith('/')) return { kind: 'escape' }
  const stack: RefNode[] = []
  let cur = root
  let slash = p.endsWith('/')
  const work = p
    .split('/')
    .filter((c) => c !== '')
    .reverse()
  let links = 0
  while (work.length > 0) {
    const c = work.pop()!
    const last = work.length === 0
    if (c === '.') {
      if (last) return { kind: 'node', node: cur }
      continue
    }
    if (c === '..') {
      const up = stack.pop()
      if (up === undefined) return { kind: 'escape' }
      cur = up
      if (last) return { kind: 'node', node: cur }
      continue
    }
    if (cur.t !== 'dir') return { kind: 'error' }
    const next = cur.entries.get(c)
    if (next === undefined) return last ? { kind: 'missing' } : { kind: 'error' }
    if (next.t === 'symlink' && (!last || follow || slash)) {
      if (++links > 40) return { kind: 'error' }
      if (next.target.startsWith('/')) return { kind: 'escape' }
      if (last) slash = slash || next.target.endsWith('/')
      work.push(
        ...next.target
          .split('/')
          .filter((x) => x !== '')
          .reverse(),
      )
      if (work.length === 0) return { kind: 'error' }
      continue
    }
    if (last) return { kind: 'node', node: next }
    if (next.t !== 'dir') return { kind: 'error' }
    stack.push(cur)
    cur = next
  }
  return { kind: 'node', node: cur }
}

/** The model's view of one step, checked against what the guest got (on MemFs). */
function checkAgainstModel(before: RefNode, step: Step, got: Outcome): void {
  // The model walks from the mount's root; a held directory may have moved since it was opened.
  if (step.op === 'closedir' || (step.at ?? 0) !== 0 || ((step.op === 'rename' || step.op === 'link') && (step.at2 ?? 0) !== 0)) return
  const paths: [string, boolean][] =
    step.op === 'read' || step.op === 'stat'
      ? [[step.p, step.follow]]
      : step.op === 'readdir' || step.op === 'setSize' || step.op === 'opendir'
        ? [[step.p, true]]
        : step.op === 'write'
          ? [[step.p, step.follow && !step.excl]]
          : step.op === 'rename' || step.op === 'link'
            ? [
                [step.p, false],
                [step.q, false],
              ]
            : [[step.p, false]]
  for (const [p, follow] of paths) {
    const ref = refResolve(before, p, follow)
    // SECURITY: a lookup the model sees leaving the mount must never succeed.
    if (ref.kind === 'escape') expect(got.errno, `${JSON.stringify(step)}: escapes in the model`).not.toBe('SUCCESS')
  }
  const ref = refResolve(before, paths[0]![0], paths[0]![1])
  // And the converse for pure lookups: `PERM` there means an escape, which the model must see too.
  if ((step.op === 'read' || step.op === 'stat' || step.op === 'readdir') && got.errno === 'PERM') {
    expect(ref.kind, `${JSON.stringify(step)}: PERM without an escape in the model`).toBe('escape')
  }
  if (got.errno !== 'SUCCESS') return
  if (step.op === 'read') {
    expect(ref.kind, JSON.stringify(step)).toBe('node')
    const node = (ref as { node: RefNode }).node
    expect(node.t, JSON.stringify(step)).toBe('file')
    expect(got.data, JSON.stringify(step)).toBe((node as { content: string }).content.slice(0, 256))
  } else if (step.op === 'stat') {
    expect(ref.kind, JSON.stringify(step)).toBe('node')
    const node = (ref as { node: RefNode }).node
    const type = node.t === 'dir' ? Filetype.DIRECTORY : node.t === 'file' ? Filetype.REGULAR_FILE : Filetype.SYMBOLIC_LINK
    expect((got.data as { filetype: number }).filetype, JSON.stringify(step)).toBe(type)
  } else if (step.op === 'readdir') {
    expect(ref.kind, JSON.stringify(step)).toBe('node')
    const node = (ref as { node: RefNode }).node
    expect(node.t, JSON.stringify(step)).toBe('dir')
    const names = [...(node as { entries: Map<string, RefNode> }).entries.keys()]
    expect(
      (got.data as string[])
        .map((n) => n.slice(0, n.lastIndexOf(':')))
        .filter((n) => n !== '.' && n !== '..')
        .sort(),
    ).toEqual(names.sort())
  }
}

// ---- the host side: a mount beside a canary ------------------------------------------------------

interface HostMount {
  fs: HostDirFs
  base: string
  /** Identity, size, times (atime included) of everything beside the mount, without reading it. */
  fingerprint(): string
  /** The names and contents beside the mount, as created (run after the last `fingerprint`). */
  contents(): string[]
  dispose(): void
}

const DECOY_FILES = ['canary.txt', 'a', 'b', 'ab', 'outside/a']
const DECOYS = [...DECOY_FILES, 'outside']

/**
 * `<base>/m` is mounted. Beside it: a canary, decoys named like the grammar's tokens (so a lookup
 * that escaped by one `..` finds something), and a directory; all hold `MARK`. Their atime is set
 * far in the past, so a read (relatime) would show.
 */
function hostMount(mode: 'auto' | 'fallback'): HostMount {
  const base = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'caplet-fuzz-'))
  const mountDir = path.join(base, 'm')
  nodeFs.mkdirSync(mountDir)
  nodeFs.mkdirSync(path.join(base, 'outside'))
  for (const name of DECOY_FILES) nodeFs.writeFileSync(path.join(base, name), `${MARK} ${name}`)
  const old = new Date(1_000_000_000)
  for (const name of DECOYS) nodeFs.utimesSync(path.join(base, name), old, old)
  const fs = createHostDirFs(mountDir, { mode })
  // lstat only: reading or listing here would itself move the atimes this is meant to watch.
  const fingerprint = (): string =>
    DECOYS.concat('.')
      .map((name) => {
        const st = nodeFs.lstatSync(path.join(base, name), { bigint: true })
        const atime = name === '.' ? '' : st.atimeNs // listing the base (below) reads it
        return `${name} ${st.mode} ${st.size} ${atime} ${st.mtimeNs} ${st.ctimeNs} ${st.nlink} ${st.ino}`
      })
      .join('\n')
  const contents = (): string[] => {
    const out: string[] = []
    const walk = (p: string, rel: string): void => {
      for (const name of nodeFs.readdirSync(p).sort()) {
        if (rel === '' && name === 'm') continue
        const full = path.join(p, name)
        if (nodeFs.lstatSync(full).isDirectory()) walk(full, `${rel}${name}/`)
        else out.push(`${rel}${name}: ${nodeFs.readFileSync(full, 'utf8')}`)
      }
    }
    walk(base, '')
    return out
  }
  return {
    fs,
    base,
    fingerprint,
    contents,
    dispose: () => {
      fs.close()
      nodeFs.rmSync(base, { recursive: true, force: true })
    },
  }
}

// ---- the property ---------------------------------------------------------------------------------

/**
 * Differences POSIX allows, each with its reason. Anything else is a discrepancy to fix.
 * - `rename(file, dir)` where the directory is a non-empty ancestor of the file: POSIX allows
 *   `EISDIR` (new is a directory, old is not) and `ENOTEMPTY` (new is a non-empty directory);
 *   Linux checks "target is an ancestor of source" first (`ENOTEMPTY`), MemFs the types (`EISDIR`).
 */
const TOLERATED: { op: Step['op']; errnos: [string, string] }[] = [{ op: 'rename', errnos: ['ISDIR', 'NOTEMPTY'] }]

function tolerated(step: Step, a: Outcome, b: Outcome): boolean {
  return TOLERATED.some(
    (t) =>
      t.op === step.op &&
      a.data === undefined &&
      b.data === undefined &&
      ((a.errno === t.errnos[0] && b.errno === t.errnos[1]) || (a.errno === t.errnos[1] && b.errno === t.errnos[0])),
  )
}

/** Runs `plan` on every backend and fails (an `expect`) at the first disagreement. */
function runPlan(plan: readonly Step[]): void {
  const mem = createMemFs()
  const hosts = [hostMount('auto'), hostMount('fallback')]
  try {
    const others: { name: string; fs: Filesystem; host?: HostMount }[] = [
      { name: 'withQuota(MemFs)', fs: withQuota(createMemFs(), { bytes: 1 << 20, inodes: 1 << 10 }) },
      ...hosts.map((h) => ({ name: `HostDirFs (${h.fs.strategy})`, fs: h.fs, host: h })),
    ]
    for (const fs of [mem, ...others.map((o) => o.fs)]) {
      const root = fs.root()
      try {
        seedTree(root)
      } finally {
        root.close()
      }
    }
    const outside = hosts.map((h) => h.fingerprint())
    const reference = new Guest(mem)
    const guests = others.map((o) => new Guest(o.fs))
    try {
      plan.forEach((step, i) => {
        const before = snapshot(mem)
        const a = reference.run(step)
        const where = `step ${i}: ${JSON.stringify(step)}`
        others.forEach((o, k) => {
          const b = guests[k]!.run(step)
          if (o.host === undefined || !tolerated(step, a, b)) expect(b, `${where} (${o.name} vs MemFs)`).toEqual(a)
          if (typeof b.data === 'string') expect(b.data, `${where} (${o.name})`).not.toContain(MARK)
        })
        checkAgainstModel(before, step, a)
      })
    } finally {
      for (const g of [reference, ...guests]) g.close()
    }
    const final = canonical(snapshot(mem))
    for (const o of others) expect(canonical(snapshot(o.fs)), `final tree (${o.name} vs MemFs)`).toEqual(final)
    hosts.forEach((h, k) => {
      // Nothing beside the mount was read, written, created, removed or re-timed.
      expect(h.fingerprint(), `the tree outside the mount (${h.fs.strategy})`).toBe(outside[k])
      expect(h.contents(), `the files outside the mount (${h.fs.strategy})`).toEqual(DECOY_FILES.map((n) => `${n}: ${MARK} ${n}`).sort())
    })
  } finally {
    for (const h of hosts) h.dispose()
  }
}

describe('backend differential (MemFs, host dir with both strategies, withQuota) through the WASI imports', () => {
  it(
    `${RUNS} random plans agree step by step, with the reference model, and never touch the outside`,
    () => {
      fc.assert(
        fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25, size: 'max' }), (plan) => runPlan(plan)),
        {
          seed: SEED,
          numRuns: RUNS,
        },
      )
    },
    TIMEOUT,
  )

  it('the grammar reaches the interesting cases (not a vacuous property)', () => {
    // Escapes, symlink-through lookups and successful mutations must all occur within the runs.
    const tally = new Map<string, number>()
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25, size: 'max' }), (plan) => {
        const fs = createMemFs()
        const root = fs.root()
        seedTree(root)
        root.close()
        const g = new Guest(fs)
        for (const step of plan) {
          const r = g.run(step)
          const key = `${step.op} ${r.errno}`
          tally.set(key, (tally.get(key) ?? 0) + 1)
        }
        g.close()
      }),
      { seed: SEED, numRuns: 200 },
    )
    for (const key of [
      'opendir SUCCESS',
      'read SUCCESS',
      'read PERM',
      'write SUCCESS',
      'mkdir SUCCESS',
      'rename SUCCESS',
      'link SUCCESS',
      'symlink SUCCESS',
      'symlink PERM',
      'unlink SUCCESS',
      'rmdir SUCCESS',
      'readdir SUCCESS',
      'setSize SUCCESS',
      'readlink SUCCESS',
      'stat SUCCESS',
      'stat PERM',
    ]) {
      expect(tally.get(key) ?? 0, key).toBeGreaterThan(3)
    }
  })
})
