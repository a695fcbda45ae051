/**
 * @module The change list of an overlay: what differs between the merged view (upper layer plus
 * whiteouts) and the lower layer, path by path, comparing the trees as they are now, not a log
 * (docs/internals.md, "Overlay change lists").
 *
 * What it must not do: change either layer (every open here is read-only), or follow a symlink
 * (it only ever calls the one-component `DirHandle` methods, which never follow).
 */
import { Filetype } from '../abi/constants.js'
import { READ_ONLY, type DirEntry, type DirHandle, type FileHandle } from './filesystem.js'
import { HostInvariantError } from '../errors.js'

/** One difference between an overlay's merged view and its lower layer. */
export interface OverlayChange {
  /** Components joined with `/`, relative to the mount root (no leading slash). */
  path: string
  /**
   * `added`: absent from the lower layer (or there with another type, which also gives a
   * `deleted` entry for the same path, listed first). `modified`: a file or symlink whose
   * content, target or mtime differs. `deleted`: in the lower layer, not in the merged view.
   */
  kind: 'added' | 'modified' | 'deleted'
  /** Devices, FIFOs and sockets (lower layer only) are reported as `file`. */
  type: 'file' | 'directory' | 'symlink'
}

/** What the diff needs to know of a merged directory that has an upper directory. */
export interface LayeredDir {
  /** The upper directory; `undefined` if this directory was never changed. */
  readonly upper: DirHandle | undefined
  /** Whether entries of the lower directory at the same path show through. */
  readonly hasLower: boolean
  /** Whether the lower entry `name` is hidden by a whiteout. */
  hidesLower(name: string): boolean
  /** The merged directory behind the upper directory entry `name`. */
  upperChild(name: string): LayeredDir | undefined
}

const READ = READ_ONLY
const CHUNK = 64 * 1024

/** The change-list spelling of a filetype. */
export function changeType(filetype: number): OverlayChange['type'] {
  if (filetype === Filetype.DIRECTORY) return 'directory'
  if (filetype === Filetype.SYMBOLIC_LINK) return 'symlink'
  return 'file'
}

/**
 * Every difference between the merged tree under `root` and the lower tree under `lowerRoot`,
 * sorted by path (a `deleted` entry before an `added` one for the same path).
 */
export function diffLayers(root: LayeredDir, lowerRoot: DirHandle): OverlayChange[] {
  const out: OverlayChange[] = []
  if (root.upper !== undefined) diffDir(root, lowerRoot, '', out)
  // Parents sort before their children (a prefix sorts first), which is the order to create in.
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : kindRank(a.kind) - kindRank(b.kind)))
  return out
}

function kindRank(kind: OverlayChange['kind']): number {
  return kind === 'deleted' ? 0 : 1
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}/${name}`
}

function byName(entries: readonly DirEntry[]): Map<string, DirEntry> {
  const map = new Map<string, DirEntry>()
  for (const e of entries) map.set(e.name, e)
  return map
}

/** Compares the merged directory `dir` (which has an upper directory) with `lower` at `path`. */
function diffDir(dir: LayeredDir, lower: DirHandle | undefined, path: string, out: OverlayChange[]): void {
  const upper = dir.upper!
  const uppers = byName(upper.readdir())
  const lowers = lower === undefined ? new Map<string, DirEntry>() : byName(lower.readdir())
  for (const [name, l] of lowers) {
    if (uppers.has(name)) continue
    // Not in the upper layer: unchanged if it shows through, deleted if something hides it.
    if (dir.hasLower && !dir.hidesLower(name)) continue
    deleted(lower!, l, join(path, name), out)
  }
  for (const [name, u] of uppers) {
    const p = join(path, name)
    const l = lowers.get(name)
    if (l === undefined) {
      added(dir, u, p, out)
      continue
    }
    // Compare the lower stat, not the readdir type: host readdir types can be coarser.
    const ltype = lower!.statChild(name).filetype
    if (ltype !== u.filetype) {
      deleted(lower!, l, p, out)
      added(dir, u, p, out)
    } else if (u.filetype === Filetype.DIRECTORY) {
      const child = dir.upperChild(name)
      if (child === undefined || child.upper === undefined)
        throw new HostInvariantError(`[overlay] invariant: upper directory ${p} has no merged node`)
      const lowerChild = lower!.openDir(name)
      try {
        diffDir(child, lowerChild, p, out)
      } finally {
        lowerChild.close()
      }
    } else if (u.filetype === Filetype.SYMBOLIC_LINK) {
      if (upper.readlink(name) !== lower!.readlink(name) || upper.statChild(name).mtim !== lower!.statChild(name).mtim) {
        out.push({ path: p, kind: 'modified', type: 'symlink' })
      }
    } else if (!sameFile(upper, lower!, name)) {
      out.push({ path: p, kind: 'modified', type: changeType(u.filetype) })
    }
  }
}

/** Reports `entry` (in the upper directory of `dir`) and, for a directory, everything beneath it as added. */
function added(dir: LayeredDir, entry: DirEntry, path: string, out: OverlayChange[]): void {
  out.push({ path, kind: 'added', type: changeType(entry.filetype) })
  if (entry.filetype !== Filetype.DIRECTORY) return
  const child = dir.upperChild(entry.name)
  if (child?.upper === undefined) throw new HostInvariantError(`[overlay] invariant: upper directory ${path} has no merged node`)
  for (const e of child.upper.readdir()) added(child, e, join(path, e.name), out)
}

/** Reports the lower `entry` of `lower` and, for a directory, everything beneath it as deleted. */
function deleted(lower: DirHandle, entry: DirEntry, path: string, out: OverlayChange[]): void {
  const type = lower.statChild(entry.name).filetype
  out.push({ path, kind: 'deleted', type: changeType(type) })
  if (type !== Filetype.DIRECTORY) return
  const sub = lower.openDir(entry.name)
  try {
    for (const e of sub.readdir()) deleted(sub, e, join(path, e.name), out)
  } finally {
    sub.close()
  }
}

/** Same bytes and same mtime (see the module comment for why mtime counts). */
function sameFile(upper: DirHandle, lower: DirHandle, name: string): boolean {
  const us = upper.statChild(name)
  const ls = lower.statChild(name)
  if (us.size !== ls.size || us.mtim !== ls.mtim) return false
  // Only regular files have comparable content; a device or FIFO of the same type is "the same".
  if (us.filetype !== Filetype.REGULAR_FILE) return true
  const a = upper.openFile(name, READ)
  try {
    const b = lower.openFile(name, READ)
    try {
      return sameContent(a, b, us.size)
    } finally {
      b.close()
    }
  } finally {
    a.close()
  }
}

/** Whether two files hold the same `size` bytes. */
export function sameContent(a: FileHandle, b: FileHandle, size: bigint): boolean {
  const bufA = new Uint8Array(CHUNK)
  const bufB = new Uint8Array(CHUNK)
  let pos = 0n
  while (pos < size) {
    const want = Number(size - pos < BigInt(CHUNK) ? size - pos : BigInt(CHUNK))
    const na = readFully(a, bufA.subarray(0, want), pos)
    const nb = readFully(b, bufB.subarray(0, want), pos)
    if (na !== nb) return false
    for (let i = 0; i < na; i++) if (bufA[i] !== bufB[i]) return false
    if (na < want) return true // both ended early (a host file shrank): equal so far
    pos += BigInt(na)
  }
  return true
}

/** Reads until `dst` is full or the file ends; returns the bytes read. */
export function readFully(file: FileHandle, dst: Uint8Array, position: bigint): number {
  let got = 0
  while (got < dst.length) {
    const n = file.read(dst.subarray(got), position + BigInt(got))
    if (n === 0) break
    got += n
  }
  return got
}
