/**
 * @module Keeping an overlay's result on the host: `applyOverlay` writes the changes into a host
 * directory (normally the overlay's own lower directory), `exportOverlay` writes them into a new
 * directory with a manifest that also records the deletions.
 * SECURITY: nothing is ever written outside the target directory: every path is reached one
 * component at a time through `createHostDirFs(target)`, symlinks are created only with targets
 * that stay beneath it, files are written under a temporary name and renamed into place, and a
 * change set that could escape is refused whole before anything is written. Details:
 * docs/internals.md, "Applying overlays".
 */
import * as fs from 'node:fs'
import { Errno, Filetype } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import { assertComponent, CREATE_NEW, READ_ONLY, type DirHandle, type FileHandle, type NodeStat } from '../fs/filesystem.js'
import type { OverlayChange, OverlayFs } from '../fs/overlay.js'
import { createHostDirFs } from './host-dir-fs.js'

/** The manifest `exportOverlay` writes at the top of its output directory. */
export const OVERLAY_MANIFEST = '.caplet-overlay.json'

/** What `exportOverlay` writes into `OVERLAY_MANIFEST`. */
export interface OverlayManifest {
  changes: OverlayChange[]
}

/** Refusal or failure of an apply or export; `cause` holds the underlying error, if any. */
export class OverlayApplyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'OverlayApplyError'
  }
}

const READ = READ_ONLY
const NEW_FILE = CREATE_NEW
const CHUNK = 256 * 1024
const TMP_PREFIX = '.caplet-tmp-'

/** One change, checked and split into components. */
interface Step {
  change: OverlayChange
  parent: string[]
  name: string
  /** For an added or modified symlink: its target, already checked. */
  target?: string
}

/**
 * Applies `overlay.changes()` to the host directory `hostDir`, so that it then holds what the
 * guest saw. Meant for the overlay's own lower directory, after the run; the overlay should be
 * discarded afterwards (its lower layer has changed under it).
 *
 * @returns the changes applied.
 * @throws OverlayApplyError if a change cannot be applied safely (a symlink target leading out,
 *   host content in the way that the overlay never saw); checks that need no host access run
 *   before anything is written.
 * @example
 * const overlay = createOverlayFs(readOnly(createHostDirFs('./site')))
 * // ... run the guest ...
 * applyOverlay(overlay, './site')
 */
export function applyOverlay(overlay: OverlayFs, hostDir: string): OverlayChange[] {
  const changes = overlay.changes()
  const overlayRoot = overlay.root()
  try {
    const steps = plan(overlayRoot, changes)
    const partners = linkPartners(overlay, steps)
    const mount = openTarget(hostDir)
    const root = mount.root()
    try {
      // Children before parents for removals, parents before children for creations.
      for (const step of [...steps].reverse()) if (step.change.kind === 'deleted') remove(root, step)
      const writer = new Writer(root, overlayRoot)
      for (const step of steps) if (step.change.kind !== 'deleted') writer.place(step)
      for (const step of partners) writer.place(step)
    } catch (err) {
      throw wrap(err, `cannot apply the overlay to ${hostDir}`)
    } finally {
      root.close()
      mount.close()
    }
  } finally {
    overlayRoot.close()
  }
  return changes
}

/**
 * Writes the overlay's added and modified files, directories and symlinks into `outDir` (which
 * must be absent or an empty directory), plus `OVERLAY_MANIFEST` holding every change, so that
 * deletions are recorded too.
 *
 * @returns the changes exported.
 * @throws OverlayApplyError if `outDir` is not empty, a change path is the manifest's name, or a
 *   symlink target leads out of the directory.
 * @example
 * exportOverlay(overlay, './out') // ./out/<changed files>, ./out/.caplet-overlay.json
 */
export function exportOverlay(overlay: OverlayFs, outDir: string): OverlayChange[] {
  const changes = overlay.changes()
  if (changes.some((c) => c.path === OVERLAY_MANIFEST)) {
    throw new OverlayApplyError(`cannot export the overlay: it has its own ${OVERLAY_MANIFEST}, which the manifest would replace`)
  }
  const overlayRoot = overlay.root()
  try {
    const steps = plan(overlayRoot, changes)
    prepareEmptyDir(outDir)
    const mount = openTarget(outDir)
    const root = mount.root()
    try {
      const writer = new Writer(root, overlayRoot)
      for (const step of steps) if (step.change.kind !== 'deleted') writer.place(step)
      const manifest: OverlayManifest = { changes }
      writeBytes(root, OVERLAY_MANIFEST, new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'))
    } catch (err) {
      throw wrap(err, `cannot export the overlay to ${outDir}`)
    } finally {
      root.close()
      mount.close()
    }
  } finally {
    overlayRoot.close()
  }
  return changes
}

function wrap(err: unknown, message: string): Error {
  if (err instanceof OverlayApplyError) return err
  const detail = err instanceof Error ? err.message : String(err)
  return new OverlayApplyError(`${message}: ${detail}`, { cause: err })
}

function openTarget(dir: string): ReturnType<typeof createHostDirFs> {
  try {
    return createHostDirFs(dir)
  } catch (err) {
    throw wrap(err, 'cannot open the target directory')
  }
}

/** `outDir` must be absent (it is created) or an empty directory. */
function prepareEmptyDir(outDir: string): void {
  let entries: string[]
  try {
    entries = fs.readdirSync(outDir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw wrap(err, `cannot use ${outDir} as the export directory`)
    fs.mkdirSync(outDir, { recursive: true })
    return
  }
  if (entries.length > 0) throw new OverlayApplyError(`the export directory ${outDir} is not empty`)
}

/** Splits and checks every change, and reads and checks symlink targets, before any write. */
function plan(overlayRoot: DirHandle, changes: OverlayChange[]): Step[] {
  return changes.map((change) => {
    const comps = change.path.split('/')
    for (const c of comps) {
      try {
        assertComponent(c)
      } catch (err) {
        throw new OverlayApplyError(`change path ${JSON.stringify(change.path)} is not a relative path of plain components`, { cause: err })
      }
    }
    const step: Step = { change, parent: comps.slice(0, -1), name: comps[comps.length - 1]! }
    if (change.type === 'symlink' && change.kind !== 'deleted') {
      const target = withDir(overlayRoot, step.parent, false, (d) => d.readlink(step.name))
      assertContainedTarget(change.path, step.parent.length, target)
      step.target = target
    }
    return step
  })
}

/**
 * Unchanged names of files that share an inode with a written file (a guest `link` to a lower
 * file copies it up unchanged, so only the new name is a change): they are rewritten too, as
 * links, so the host ends up with the link structure the guest saw. Every name of an upper inode
 * is in the upper layer, so walking it finds them all.
 */
function linkPartners(overlay: OverlayFs, steps: Step[]): Step[] {
  const groups = new Map<bigint, string[]>()
  const walk = (dir: DirHandle, prefix: string[]): void => {
    for (const e of dir.readdir()) {
      if (e.filetype === Filetype.DIRECTORY) {
        const sub = dir.openDir(e.name)
        try {
          walk(sub, [...prefix, e.name])
        } finally {
          sub.close()
        }
      } else if (e.filetype === Filetype.REGULAR_FILE && dir.statChild(e.name).nlink > 1n) {
        groups.set(e.ino, [...(groups.get(e.ino) ?? []), [...prefix, e.name].join('/')])
      }
    }
  }
  const upperRoot = overlay.upper.root()
  try {
    walk(upperRoot, [])
  } finally {
    upperRoot.close()
  }
  const written = new Set(steps.filter((s) => s.change.kind !== 'deleted' && s.change.type === 'file').map((s) => s.change.path))
  const extra: Step[] = []
  for (const paths of groups.values()) {
    if (!paths.some((p) => written.has(p))) continue
    for (const path of paths) {
      if (written.has(path)) continue
      const comps = path.split('/')
      extra.push({ change: { path, kind: 'modified', type: 'file' }, parent: comps.slice(0, -1), name: comps[comps.length - 1]! })
    }
  }
  return extra
}

/**
 * SECURITY: a symlink at depth `depth` (components of its parent below the root) may only point
 * beneath the root: not absolute, and no `..` that climbs above the root on the way.
 */
function assertContainedTarget(path: string, depth: number, target: string): void {
  if (target.startsWith('/')) throw new OverlayApplyError(`symlink ${JSON.stringify(path)} has an absolute target`)
  // NOTE: lexical, from where the link will stand. Links that climb only reach the upper layer
  // as host-made links carried along by a directory rename: a guest cannot create a target with
  // ".." on a host-visible mount, so it cannot compose one with another link ("dot -> .").
  let level = depth
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') {
      if (--level < 0)
        throw new OverlayApplyError(`symlink ${JSON.stringify(path)} -> ${JSON.stringify(target)} leads out of the directory`)
    } else {
      level++
    }
  }
}

/** Runs `fn` on the directory at `comps` below `root`, creating missing directories if asked. */
function withDir<T>(root: DirHandle, comps: readonly string[], create: boolean, fn: (dir: DirHandle) => T): T {
  const opened: DirHandle[] = []
  try {
    let dir = root
    for (const c of comps) {
      let next: DirHandle
      try {
        next = dir.openDir(c)
      } catch (err) {
        if (!create || !(err instanceof WasiError) || err.errno !== Errno.NOENT) throw err
        dir.mkdir(c)
        next = dir.openDir(c)
      }
      opened.push(next)
      dir = next
    }
    return fn(dir)
  } finally {
    for (const h of opened.reverse()) h.close()
  }
}

function tryStat(dir: DirHandle, name: string): NodeStat | undefined {
  try {
    return dir.statChild(name)
  } catch (err) {
    if (err instanceof WasiError && err.errno === Errno.NOENT) return undefined
    throw err
  }
}

/** Removes the entry a `deleted` change names, if it is still there and of the expected kind. */
function remove(root: DirHandle, step: Step): void {
  try {
    withDir(root, step.parent, false, (dir) => {
      const st = tryStat(dir, step.name)
      if (st === undefined) return
      const isDir = st.filetype === Filetype.DIRECTORY
      if (isDir !== (step.change.type === 'directory')) {
        throw new OverlayApplyError(`${step.change.path} on the host is not the ${step.change.type} the overlay deleted`)
      }
      if (isDir) dir.rmdir(step.name)
      else dir.unlink(step.name)
    })
  } catch (err) {
    // Already gone, or a parent already gone: what the change asks for holds.
    if (err instanceof WasiError && err.errno === Errno.NOENT) return
    throw err
  }
}

/** Places added and modified entries, reproducing hard links among the files it writes. */
class Writer {
  readonly #root: DirHandle
  readonly #overlayRoot: DirHandle
  /** Overlay inode of a multiply-linked file -> where it was first written. */
  readonly #written = new Map<bigint, Step>()
  #tmpCount = 0

  constructor(root: DirHandle, overlayRoot: DirHandle) {
    this.#root = root
    this.#overlayRoot = overlayRoot
  }

  place(step: Step): void {
    const { change, parent, name } = step
    withDir(this.#root, parent, true, (dir) => {
      if (change.type === 'directory') {
        const st = tryStat(dir, name)
        if (st === undefined) dir.mkdir(name)
        else if (st.filetype !== Filetype.DIRECTORY) throw new OverlayApplyError(`${change.path} on the host is in the way of a directory`)
        return
      }
      withDir(this.#overlayRoot, parent, false, (src) => {
        const st = src.statChild(name)
        if (change.type === 'symlink') {
          this.#replace(dir, name, (tmp) => {
            dir.symlink(step.target!, tmp)
            dir.setTimesChild(tmp, st.atim, st.mtim)
          })
          return
        }
        const first = st.nlink > 1n ? this.#written.get(st.ino) : undefined
        if (first !== undefined) {
          this.#replace(dir, name, (tmp) => withDir(this.#root, first.parent, false, (d) => d.link(first.name, dir, tmp)))
          return
        }
        this.#replace(dir, name, (tmp) => {
          const from = src.openFile(name, READ)
          try {
            copyInto(dir, tmp, from, st.size)
          } finally {
            from.close()
          }
          dir.setTimesChild(tmp, st.atim, st.mtim)
        })
        if (st.nlink > 1n) this.#written.set(st.ino, step)
      })
    })
  }

  /** Creates the entry under a fresh temporary name with `make`, then renames it over `name`. */
  #replace(dir: DirHandle, name: string, make: (tmp: string) => void): void {
    let tmp: string
    do tmp = `${TMP_PREFIX}${this.#tmpCount++}`
    while (tryStat(dir, tmp) !== undefined)
    if (tryStat(dir, name)?.filetype === Filetype.DIRECTORY) {
      throw new OverlayApplyError(`a directory on the host is in the way of ${JSON.stringify(name)}`)
    }
    try {
      make(tmp)
      dir.rename(tmp, dir, name)
    } catch (err) {
      try {
        if (tryStat(dir, tmp) !== undefined) dir.unlink(tmp)
      } catch {
        // The original failure is the one to report.
      }
      throw err
    }
  }
}

function copyInto(dir: DirHandle, name: string, src: FileHandle, size: bigint): void {
  const dst = dir.openFile(name, NEW_FILE)
  try {
    const buf = new Uint8Array(CHUNK)
    let pos = 0n
    while (pos < size) {
      const want = size - pos < BigInt(CHUNK) ? Number(size - pos) : CHUNK
      const n = src.read(buf.subarray(0, want), pos)
      if (n === 0) break
      writeAll(dst, buf.subarray(0, n), pos)
      pos += BigInt(n)
    }
    if (pos < size) dst.setSize(size)
  } finally {
    dst.close()
  }
}

function writeBytes(dir: DirHandle, name: string, bytes: Uint8Array): void {
  const f = dir.openFile(name, NEW_FILE)
  try {
    writeAll(f, bytes, 0n)
  } finally {
    f.close()
  }
}

function writeAll(f: FileHandle, bytes: Uint8Array, at: bigint): void {
  let done = 0
  while (done < bytes.length) {
    const n = f.write(bytes.subarray(done), at + BigInt(done))
    if (n <= 0) throw new OverlayApplyError('a write on the host made no progress')
    done += n
  }
}
