/**
 * @module Applying and exporting an overlay on real temp directories: the host directory ends up
 * holding exactly what the guest saw, an export holds exactly the changed entries and a
 * manifest, and nothing is ever written outside the target (canaries beside it, a host symlink
 * swapped in, a host hard link to an outside file, escaping symlink targets). Ends with a real
 * guest (`diff_fileio.wasm`) run on an overlay over a pre-seeded host directory, compared with
 * the same guest run on a plain copy of that directory.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Filetype } from '../../../wasi-host/abi/constants.js'
import { WasiError } from '../../../wasi-host/errors.js'
import type { DirHandle, FileHandle, OpenFileOptions } from '../../../wasi-host/fs/filesystem.js'
import { memFsFromTree } from '../../../wasi-host/fs/mem-fs.js'
import { createOverlayFs, type OverlayChange, type OverlayFs } from '../../../wasi-host/fs/overlay.js'
import { readOnly } from '../../../wasi-host/fs/read-only.js'
import { WasiHost } from '../../../wasi-host/host.js'
import { createHostDirFs, type HostDirFs } from '../../../wasi-host/node/host-dir-fs.js'
import {
  applyOverlay,
  exportOverlay,
  OVERLAY_MANIFEST,
  OverlayApplyError,
  type OverlayManifest,
} from '../../../wasi-host/node/overlay-apply.js'
import { fixtureWasm } from '../../support/guest.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const NONE: OpenFileOptions = { read: false, write: false, create: false, exclusive: false, truncate: false }
const READ: OpenFileOptions = { ...NONE, read: true }
const RW: OpenFileOptions = { ...NONE, read: true, write: true }
const CREATE_TRUNC: OpenFileOptions = { ...NONE, write: true, create: true, truncate: true }
const T1 = 1_100_000_000n * 1_000_000_000n

function readAll(file: FileHandle): Uint8Array {
  const size = Number(file.stat().size)
  const buf = new Uint8Array(size)
  let off = 0
  while (off < size) {
    const n = file.read(buf.subarray(off), BigInt(off))
    if (n === 0) break
    off += n
  }
  return buf.subarray(0, off)
}

function writeText(dir: DirHandle, name: string, text: string): void {
  const f = dir.openFile(name, CREATE_TRUNC)
  try {
    f.write(enc.encode(text), 0n)
  } finally {
    f.close()
  }
}

function withDir<T>(root: DirHandle, path: string, fn: (d: DirHandle) => T): T {
  const opened: DirHandle[] = []
  try {
    let d = root
    for (const c of path.split('/').filter((s) => s.length > 0)) {
      d = d.openDir(c)
      opened.push(d)
    }
    return fn(d)
  } finally {
    for (const h of opened.reverse()) h.close()
  }
}

/**
 * Names, types, content (hashed), symlink targets and hard-link groups, through the
 * one-component API, so an overlay view and a host directory compare directly. With `times`,
 * the mtime of every file and symlink by path (see `expectSameTimes`).
 */
function listing(root: DirHandle, times?: Map<string, bigint>): string[] {
  const out: string[] = []
  const groups = new Map<bigint, string[]>()
  const walk = (dir: DirHandle, prefix: string): void => {
    for (const e of [...dir.readdir()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = prefix + e.name
      const st = dir.statChild(e.name)
      if (e.filetype === Filetype.DIRECTORY) {
        out.push(`${p}/`)
        withDir(dir, e.name, (sub) => walk(sub, `${p}/`))
      } else if (e.filetype === Filetype.SYMBOLIC_LINK) {
        out.push(`${p} -> ${dir.readlink(e.name)}`)
        times?.set(p, st.mtim)
      } else {
        const f = dir.openFile(e.name, READ)
        const bytes = readAll(f)
        f.close()
        out.push(`${p} ${bytes.length}B ${createHash('sha1').update(bytes).digest('hex').slice(0, 12)}`)
        times?.set(p, st.mtim)
        if (st.nlink > 1n) groups.set(st.ino, [...(groups.get(st.ino) ?? []), p])
      }
    }
  }
  walk(root, '')
  for (const g of groups.values()) out.push(`links: ${g.sort().join(' ')}`)
  return out.sort()
}

function hostListing(dir: string, times?: Map<string, bigint>): string[] {
  const mount = createHostDirFs(dir)
  const root = mount.root()
  try {
    return listing(root, times)
  } finally {
    root.close()
    mount.close()
  }
}

/**
 * The host takes times through a double (see `hostTime` in host-dir-fs.ts), which can move them
 * by a microsecond: equal within 2 µs.
 */
function expectSameTimes(got: Map<string, bigint>, want: Map<string, bigint>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort())
  for (const [p, t] of want) {
    const d = got.get(p)! - t
    expect(d < 0n ? -d : d, p).toBeLessThanOrEqual(2_000n)
  }
}

/** What the overlay shows now, to compare with a host directory later (`expectHostShows`). */
function view(root: DirHandle): { tree: string[]; times: Map<string, bigint> } {
  const times = new Map<string, bigint>()
  return { tree: listing(root, times), times }
}

/** The host directory holds the tree `seen` (times included). */
function expectHostShows(dir: string, seen: { tree: string[]; times: Map<string, bigint> }): void {
  const got = new Map<string, bigint>()
  expect(hostListing(dir, got)).toEqual(seen.tree)
  expectSameTimes(got, seen.times)
}

/** Hash of a host tree (names, modes, sizes, mtimes, content, targets), for "nothing changed". */
function hashTree(dir: string): string {
  const h = createHash('sha256')
  const walk = (p: string, rel: string): void => {
    for (const name of fs.readdirSync(p).sort()) {
      const full = join(p, name)
      const st = fs.lstatSync(full, { bigint: true })
      h.update(`${rel}${name}\0${st.mode}\0${st.mtimeNs}\0${st.size}\0${st.nlink}\0`)
      if (st.isDirectory()) walk(full, `${rel}${name}/`)
      else if (st.isSymbolicLink()) h.update(fs.readlinkSync(full))
      else h.update(fs.readFileSync(full))
    }
  }
  walk(dir, '')
  return h.digest('hex')
}

function seedHost(dir: string): void {
  fs.mkdirSync(join(dir, 'docs/deep'), { recursive: true })
  fs.mkdirSync(join(dir, 'empty'))
  fs.writeFileSync(join(dir, 'a.txt'), 'alpha')
  fs.writeFileSync(join(dir, 'b.txt'), 'bravo')
  fs.writeFileSync(join(dir, 'docs/readme.md'), '# readme')
  fs.writeFileSync(join(dir, 'docs/deep/big.bin'), Buffer.alloc(300_000, 9))
  fs.symlinkSync('../a.txt', join(dir, 'docs/link'))
  fs.symlinkSync('b.txt', join(dir, 'ln'))
}

let tmp: string
let site: string
let outside: string
let mounts: HostDirFs[]

beforeEach(() => {
  tmp = fs.mkdtempSync(join(os.tmpdir(), 'caplet-overlay-apply-'))
  site = join(tmp, 'site')
  outside = join(tmp, 'outside')
  fs.mkdirSync(site)
  fs.mkdirSync(outside)
  fs.writeFileSync(join(tmp, 'canary.txt'), 'canary')
  fs.writeFileSync(join(outside, 'secret.txt'), 'secret')
  seedHost(site)
  mounts = []
})

afterEach(() => {
  for (const m of mounts) m.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

function overlayOn(dir: string): { overlay: OverlayFs; root: DirHandle } {
  const lower = createHostDirFs(dir)
  mounts.push(lower)
  const overlay = createOverlayFs(readOnly(lower))
  return { overlay, root: overlay.root() }
}

/** The canaries beside the target: their hash must never change. */
function outsideHash(): string {
  return createHash('sha256')
    .update(fs.readFileSync(join(tmp, 'canary.txt')))
    .update(hashTree(outside))
    .digest('hex')
}

/** A scripted run touching every kind of change. */
function script(root: DirHandle): void {
  writeText(root, 'a.txt', 'ALPHA, rewritten')
  root.unlink('b.txt')
  root.rename('docs', root, 'documents')
  withDir(root, 'documents/deep', (d) => {
    const f = d.openFile('big.bin', RW)
    f.write(enc.encode('patched'), 150_000n)
    f.close()
  })
  root.mkdir('new')
  withDir(root, 'new', (d) => {
    writeText(d, 'n.txt', 'new file')
    d.symlink('n.txt', 'nl')
    d.mkdir('sub')
    root.link('a.txt', d, 'hard')
  })
  root.unlink('ln')
  root.symlink('a.txt', 'ln')
  root.rmdir('empty')
  writeText(root, 'empty', 'a file where a directory was')
  root.setTimesChild('a.txt', T1, T1)
}

describe('applyOverlay', () => {
  it('leaves the host directory holding exactly what the guest saw', () => {
    const { overlay, root } = overlayOn(site)
    const before = hashTree(site)
    const guard = outsideHash()
    script(root)
    expect(hashTree(site)).toBe(before)
    const changes = overlay.changes()
    const seen = view(root)
    expect(applyOverlay(overlay, site)).toEqual(changes)
    expectHostShows(site, seen)
    expect(outsideHash()).toBe(guard)
    // No temporary names are left behind.
    expect(fs.readdirSync(site).filter((n) => n.startsWith('.caplet-tmp-'))).toEqual([])
    root.close()
  })

  it('reproduces hard links among the files it writes', () => {
    const { overlay, root } = overlayOn(site)
    writeText(root, 'x', 'shared')
    root.link('x', root, 'y')
    applyOverlay(overlay, site)
    expect(fs.statSync(join(site, 'x')).ino).toBe(fs.statSync(join(site, 'y')).ino)
    root.close()
  })

  it('replaces a host file rather than writing through it: an outside hard link keeps its content', () => {
    fs.linkSync(join(outside, 'secret.txt'), join(site, 'linked.txt'))
    const { overlay, root } = overlayOn(site)
    writeText(root, 'linked.txt', 'guest content')
    applyOverlay(overlay, site)
    expect(fs.readFileSync(join(site, 'linked.txt'), 'utf8')).toBe('guest content')
    expect(fs.readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret')
    root.close()
  })

  it('a lower directory swapped for a symlink after the run is replaced, never followed', () => {
    const { overlay, root } = overlayOn(site)
    withDir(root, 'docs', (d) => writeText(d, 'readme.md', 'guest readme'))
    root.close()
    const guard = outsideHash()
    fs.renameSync(join(site, 'docs'), join(tmp, 'docs-away'))
    fs.symlinkSync(outside, join(site, 'docs'))
    // The change list is taken against the lower layer as it is now: the symlink is deleted
    // (itself, not its target) and the guest's directory created in its place.
    expect(overlay.changes()).toContainEqual({ path: 'docs', kind: 'deleted', type: 'symlink' })
    applyOverlay(overlay, site)
    expect(outsideHash()).toBe(guard)
    expect(fs.lstatSync(join(site, 'docs')).isDirectory()).toBe(true)
    expect(fs.readFileSync(join(site, 'docs/readme.md'), 'utf8')).toBe('guest readme')
  })

  it('applied to another directory, never follows a symlink where the change list expects a directory', () => {
    const { overlay, root } = overlayOn(site)
    withDir(root, 'docs', (d) => writeText(d, 'readme.md', 'guest readme'))
    root.close()
    const target = join(tmp, 'target')
    fs.mkdirSync(target)
    fs.symlinkSync(outside, join(target, 'docs'))
    const guard = outsideHash()
    expect(() => applyOverlay(overlay, target)).toThrow(/NOTDIR/)
    expect(outsideHash()).toBe(guard)
    expect(fs.readdirSync(outside)).toEqual(['secret.txt'])
  })

  it('applied to another directory, refuses to remove content the overlay never saw', () => {
    const { overlay, root } = overlayOn(site)
    withDir(root, 'docs/deep', (d) => d.unlink('big.bin'))
    withDir(root, 'docs', (d) => d.rmdir('deep'))
    root.close()
    const target = join(tmp, 'target')
    fs.mkdirSync(join(target, 'docs/deep'), { recursive: true })
    fs.writeFileSync(join(target, 'docs/deep/big.bin'), 'x')
    fs.writeFileSync(join(target, 'docs/deep/appeared.txt'), 'host data')
    expect(() => applyOverlay(overlay, target)).toThrow(/NOTEMPTY/)
    expect(fs.readFileSync(join(target, 'docs/deep/appeared.txt'), 'utf8')).toBe('host data')
  })

  it('refuses, before writing anything, a symlink whose target a rename made climb out', () => {
    const { overlay, root } = overlayOn(site)
    writeText(root, 'written.txt', 'x')
    // `../a.txt` is fine in docs/, but one level up it points beside the mount.
    root.rename('ln', root, 'ln-old')
    withDir(root, 'docs', (d) => d.rename('link', root, 'climbs'))
    expect(root.readlink('climbs')).toBe('../a.txt')
    const before = hashTree(site)
    expect(() => applyOverlay(overlay, site)).toThrow(/leads out of the directory/)
    expect(hashTree(site)).toBe(before)
    root.close()
  })

  it('property: random operations on an overlay of a host dir, applied, give the host the same tree', () => {
    let run = 0
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 3, maxLength: 25, size: 'max' }), (ops) => {
        const dir = join(tmp, `prop-${run++}`)
        fs.mkdirSync(dir)
        seedHost(dir)
        const { overlay, root } = overlayOn(dir)
        try {
          for (const op of ops) runOp(root, op)
          const seen = view(root)
          applyOverlay(overlay, dir)
          expectHostShows(dir, seen)
        } finally {
          root.close()
        }
      }),
      { seed: Number(process.env['FUZZ_SEED'] ?? 0xa991), numRuns: Number(process.env['OVERLAY_RUNS'] ?? 60) },
    )
  })
})

type Op =
  | { op: 'write'; path: string; data: string }
  | { op: 'mkdir' | 'rmdir' | 'unlink' | 'times'; path: string }
  | { op: 'rename' | 'link'; from: string; to: string }
  | { op: 'symlink'; path: string }

const nameArb = fc.constantFrom('a.txt', 'docs', 'deep', 'empty', 'ln', 'n')
const pathArb = fc.array(nameArb, { minLength: 1, maxLength: 3 }).map((c) => c.join('/'))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('write' as const), path: pathArb, data: fc.string({ maxLength: 5 }) }),
  fc.record({ op: fc.constantFrom('mkdir', 'rmdir', 'unlink', 'times'), path: pathArb }),
  fc.record({ op: fc.constantFrom('rename', 'link'), from: pathArb, to: pathArb }),
  fc.record({ op: fc.constant('symlink' as const), path: pathArb }),
)

function splitPath(path: string): [string, string] {
  const i = path.lastIndexOf('/')
  return i < 0 ? ['', path] : [path.slice(0, i), path.slice(i + 1)]
}

/** Runs `op`; a refusal (any errno) is a normal outcome here. */
function runOp(root: DirHandle, op: Op): void {
  try {
    if ('from' in op) {
      const [fp, fn] = splitPath(op.from)
      const [tp, tn] = splitPath(op.to)
      const rename = op.op === 'rename'
      withDir(root, fp, (f) => withDir(root, tp, (t) => (rename ? f.rename(fn, t, tn) : f.link(fn, t, tn))))
      return
    }
    const [parent, name] = splitPath(op.path)
    withDir(root, parent, (d) => {
      switch (op.op) {
        case 'write':
          return writeText(d, name, op.data)
        case 'mkdir':
          return d.mkdir(name)
        case 'rmdir':
          return d.rmdir(name)
        case 'unlink':
          return d.unlink(name)
        case 'times':
          return d.setTimesChild(name, T1, T1)
        // A target inside the directory the link is made in: it stays contained wherever it is.
        case 'symlink':
          return d.symlink('a.txt', name)
      }
    })
  } catch (e) {
    if (!(e instanceof WasiError)) throw e
  }
}

describe('exportOverlay', () => {
  it('writes exactly the added and modified entries plus a manifest, and only inside outDir', () => {
    const { overlay, root } = overlayOn(site)
    script(root)
    const guard = outsideHash()
    const siteBefore = hashTree(site)
    const out = join(tmp, 'out')
    const changes = exportOverlay(overlay, out)
    expect(outsideHash()).toBe(guard)
    expect(hashTree(site)).toBe(siteBefore)
    const manifest = JSON.parse(fs.readFileSync(join(out, OVERLAY_MANIFEST), 'utf8')) as OverlayManifest
    expect(manifest.changes).toEqual(changes)
    expect(changes).toContainEqual({ path: 'b.txt', kind: 'deleted', type: 'file' })
    // Every file and symlink in outDir is an added or modified one, with the overlay's content.
    const kept = changes.filter((c) => c.kind !== 'deleted')
    const files = new Set(kept.filter((c) => c.type !== 'directory').map((c) => c.path))
    const exported = hostListing(out).filter((l) => !l.startsWith(OVERLAY_MANIFEST) && !l.endsWith('/') && !l.startsWith('links:'))
    expect(exported.map((l) => l.split(' ')[0])).toEqual([...files].sort())
    const seen = new Map(listing(root).map((l) => [l.split(' ')[0], l]))
    for (const line of exported) expect(line).toBe(seen.get(line.split(' ')[0]!))
    // Directories: the added ones, plus parents of changed entries.
    for (const c of kept) if (c.type === 'directory') expect(fs.statSync(join(out, c.path)).isDirectory()).toBe(true)
    root.close()
  })

  it('refuses an outDir that is not empty, and a change list holding the manifest name', () => {
    const { overlay, root } = overlayOn(site)
    writeText(root, 'x', 'x')
    const out = join(tmp, 'full')
    fs.mkdirSync(out)
    fs.writeFileSync(join(out, 'keep'), 'mine')
    expect(() => exportOverlay(overlay, out)).toThrow(/not empty/)
    expect(fs.readdirSync(out)).toEqual(['keep'])
    writeText(root, OVERLAY_MANIFEST, '{}')
    expect(() => exportOverlay(overlay, join(tmp, 'other'))).toThrow(OverlayApplyError)
    expect(fs.existsSync(join(tmp, 'other'))).toBe(false)
    root.close()
  })

  it('refuses an escaping symlink target before creating anything', () => {
    const overlay = createOverlayFs(memFsFromTree({ d: { l: { symlink: '../x' } } }))
    const root = overlay.root()
    withDir(root, 'd', (d) => d.rename('l', root, 'l'))
    expect(() => exportOverlay(overlay, join(tmp, 'esc'))).toThrow(/leads out/)
    expect(fs.existsSync(join(tmp, 'esc'))).toBe(false)
    root.symlink('/etc/passwd', 'abs')
    root.unlink('l')
    expect(() => exportOverlay(overlay, join(tmp, 'esc'))).toThrow(/absolute target/)
    root.close()
  })
})

// ---------------------------------------------------------------------------------------------
// End to end: a real guest on an overlay over a pre-seeded host directory.

const SANDBOX_SEED: Record<string, string> = {
  'keep.txt': 'untouched\n',
  'f.txt': 'old f content\n',
  'r2.txt': 'old two\n',
  'large.bin': 'will be overwritten\n',
  'pre/nested.txt': 'nested\n',
  'pre/deeper/z.txt': 'zed\n',
}

function seedSandbox(dir: string): void {
  for (const [p, content] of Object.entries(SANDBOX_SEED)) {
    fs.mkdirSync(join(dir, p, '..'), { recursive: true })
    fs.writeFileSync(join(dir, p), content)
  }
  fs.symlinkSync('keep.txt', join(dir, 'link'))
}

function runGuest(sandbox: import('../../../wasi-host/fs/filesystem.js').Filesystem): { exitCode: number; stdout: string } {
  const module = new WebAssembly.Module(fs.readFileSync(fixtureWasm('diff_fileio')))
  const chunks: Uint8Array[] = []
  const host = new WasiHost({
    args: ['diff_fileio'],
    preopens: [
      { guestPath: '/sandbox', fs: sandbox },
      { guestPath: '/data', fs: memFsFromTree({ 'a.txt': 'alpha\n', sub: { 'b.txt': 'bravo bravo\n' }, empty: {} }), mode: 'ro' },
    ],
    stdout: (c) => {
      chunks.push(c.slice())
    },
    stderr: (c) => {
      chunks.push(c.slice())
    },
  })
  const instance = new WebAssembly.Instance(module, host.imports as unknown as WebAssembly.Imports)
  const exitCode = host.start(instance)
  return { exitCode, stdout: chunks.map((c) => dec.decode(c)).join('') }
}

/** What differs between two host trees by content alone (the guest's changes, as a user sees them). */
function contentDiff(before: string, after: string): OverlayChange[] {
  const read = (dir: string): Map<string, { type: OverlayChange['type']; data: string }> => {
    const m = new Map<string, { type: OverlayChange['type']; data: string }>()
    const walk = (p: string, rel: string): void => {
      for (const name of fs.readdirSync(p)) {
        const full = join(p, name)
        const st = fs.lstatSync(full)
        const key = rel + name
        if (st.isDirectory()) {
          m.set(key, { type: 'directory', data: '' })
          walk(full, `${key}/`)
        } else if (st.isSymbolicLink()) m.set(key, { type: 'symlink', data: fs.readlinkSync(full) })
        else m.set(key, { type: 'file', data: fs.readFileSync(full).toString('base64') })
      }
    }
    walk(dir, '')
    return m
  }
  const a = read(before)
  const b = read(after)
  const out: OverlayChange[] = []
  for (const [p, e] of a) {
    const f = b.get(p)
    if (f === undefined || f.type !== e.type) out.push({ path: p, kind: 'deleted', type: e.type })
  }
  for (const [p, e] of b) {
    const f = a.get(p)
    if (f === undefined || f.type !== e.type) out.push({ path: p, kind: 'added', type: e.type })
    else if (f.data !== e.data) out.push({ path: p, kind: 'modified', type: e.type })
  }
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : x.kind === 'deleted' ? -1 : 1))
}

describe('end to end: diff_fileio.wasm on an overlay over a pre-seeded host directory', () => {
  it('runs as on a plain copy, leaves the host byte-identical, lists its changes, and applies exactly', () => {
    const lowerDir = join(tmp, 'sandbox')
    const plainDir = join(tmp, 'plain')
    const pristine = join(tmp, 'pristine')
    for (const d of [lowerDir, plainDir, pristine]) {
      fs.mkdirSync(d)
      seedSandbox(d)
    }
    const lowerHash = hashTree(lowerDir)
    const guard = outsideHash()

    // Reference: the same guest on a plain read-write mount of an identical directory.
    const plainMount = createHostDirFs(plainDir)
    mounts.push(plainMount)
    const plain = runGuest(plainMount)
    expect(plain.exitCode, plain.stdout).toBe(0)

    const lower = createHostDirFs(lowerDir)
    mounts.push(lower)
    const overlay = createOverlayFs(readOnly(lower))
    const run = runGuest(overlay)
    expect(run.exitCode, run.stdout).toBe(0)
    expect(run.stdout).toBe(plain.stdout)
    expect(run.stdout).toContain('failures: 0')

    // The host directory did not change at all.
    expect(hashTree(lowerDir)).toBe(lowerHash)
    expect(outsideHash()).toBe(guard)

    // The change list is what the program did (by content: it changed no file back to its bytes).
    const changes = overlay.changes()
    expect(changes).toEqual(contentDiff(pristine, plainDir))
    expect(changes).toContainEqual({ path: 'f.txt', kind: 'modified', type: 'file' })
    expect(changes).toContainEqual({ path: 'r2.txt', kind: 'deleted', type: 'file' })
    expect(changes).toContainEqual({ path: 'd2/inside.txt', kind: 'added', type: 'file' })
    expect(changes.some((c) => c.path.startsWith('keep.txt') || c.path.startsWith('pre'))).toBe(false)

    // Applying reproduces the guest's view, which is the plain run's result.
    const viewRoot = overlay.root()
    const seen = view(viewRoot)
    viewRoot.close()
    applyOverlay(overlay, lowerDir)
    expectHostShows(lowerDir, seen)
    expect(hostListing(lowerDir)).toEqual(hostListing(plainDir))
    expect(outsideHash()).toBe(guard)
  })
})
