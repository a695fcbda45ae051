/**
 * @module A mount's contents as plain data that crosses `postMessage`: a flat list of entries,
 * parents before children, paths relative to the mount root. Browser storage is asynchronous and
 * a guest's host calls are not, so every browser mount is copied into an in-memory `MemFs` before
 * the guest starts and, for writable mounts, read back when it ends (`copy in, write back`);
 * this module does both conversions and the diff between two snapshots.
 * SECURITY: every path is split and checked component by component (no empty, `.`, `..`, NUL);
 * a snapshot can only ever describe a tree beneath its own root, whoever built it.
 */
import { Errno, Filetype, WasiError, type DirHandle, type Filesystem } from '../../wasi-host/index.js'

export interface FileEntry {
  /** Relative to the mount root, components joined by `/`. */
  path: string
  kind: 'file' | 'dir' | 'symlink'
  /** File contents (files only). */
  data?: Uint8Array
  /** Link target as stored (symlinks only). */
  target?: string
}

/** The components of a relative entry path. @throws WasiError INVAL for anything that is not one */
export function entryComponents(path: string): string[] {
  const parts = path.split('/')
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..' || p.includes('\0'))
      throw new WasiError(Errno.INVAL, `not a relative path beneath the mount: ${JSON.stringify(path)}`)
  }
  return parts
}

/** Writes `entries` into the directory `root` (which the caller owns and closes). */
export function writeEntries(root: DirHandle, entries: readonly FileEntry[]): void {
  for (const e of entries) {
    const parts = entryComponents(e.path)
    const name = parts.pop()!
    const dirs: DirHandle[] = []
    let dir = root
    try {
      for (const p of parts) {
        if (!dirExists(dir, p)) dir.mkdir(p)
        dir = dir.openDir(p)
        dirs.push(dir)
      }
      if (e.kind === 'dir') {
        if (!dirExists(dir, name)) dir.mkdir(name)
      } else if (e.kind === 'symlink') {
        dir.symlink(e.target ?? '', name)
      } else {
        const f = dir.openFile(name, { read: false, write: true, create: true, exclusive: false, truncate: true })
        try {
          const data = e.data ?? new Uint8Array(0)
          let at = 0
          while (at < data.byteLength) at += f.write(data.subarray(at), BigInt(at))
        } finally {
          f.close()
        }
      }
    } finally {
      for (const d of dirs.reverse()) d.close()
    }
  }
}

function dirExists(dir: DirHandle, name: string): boolean {
  try {
    const st = dir.statChild(name)
    if (st.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, `${name} is not a directory`)
    return true
  } catch (e) {
    if (e instanceof WasiError && e.errno === Errno.NOENT) return false
    throw e
  }
}

/** Reads a whole tree back, parents first, names sorted. `maxBytes` bounds what is copied. */
export function readEntries(fs: Filesystem, maxBytes = Number.MAX_SAFE_INTEGER): FileEntry[] {
  const out: FileEntry[] = []
  let total = 0
  const walk = (dir: DirHandle, prefix: string) => {
    const names = [...dir.readdir()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const d of names) {
      const path = prefix === '' ? d.name : `${prefix}/${d.name}`
      if (d.filetype === Filetype.DIRECTORY) {
        out.push({ path, kind: 'dir' })
        const sub = dir.openDir(d.name)
        try {
          walk(sub, path)
        } finally {
          sub.close()
        }
      } else if (d.filetype === Filetype.SYMBOLIC_LINK) {
        out.push({ path, kind: 'symlink', target: dir.readlink(d.name) })
      } else {
        const f = dir.openFile(d.name, { read: true, write: false, create: false, exclusive: false, truncate: false })
        try {
          const size = Number(f.stat().size)
          total += size
          if (total > maxBytes) throw new RangeError(`the mount holds more than ${maxBytes} bytes`)
          const data = new Uint8Array(size)
          let at = 0
          while (at < size) {
            const n = f.read(data.subarray(at), BigInt(at))
            if (n === 0) break
            at += n
          }
          out.push({ path, kind: 'file', data: at === size ? data : data.slice(0, at) })
        } finally {
          f.close()
        }
      }
    }
  }
  const root = fs.root()
  try {
    walk(root, '')
  } finally {
    root.close()
  }
  return out
}

export interface SnapshotDiff {
  /** Entries to remove, deepest first. */
  removed: FileEntry[]
  /** Entries to create or rewrite, parents first. */
  written: FileEntry[]
}

/** What turns `before` into `after`: removals (deepest first), then creations and rewrites. */
export function diffEntries(before: readonly FileEntry[], after: readonly FileEntry[]): SnapshotDiff {
  const old = new Map(before.map((e) => [e.path, e]))
  const now = new Map(after.map((e) => [e.path, e]))
  const removed = before.filter((e) => {
    const n = now.get(e.path)
    return n === undefined || n.kind !== e.kind
  })
  removed.sort((a, b) => b.path.split('/').length - a.path.split('/').length)
  const written = after.filter((e) => {
    const o = old.get(e.path)
    if (o === undefined || o.kind !== e.kind) return true
    if (e.kind === 'symlink') return o.target !== e.target
    if (e.kind === 'file') return !sameBytes(o.data, e.data)
    return false
  })
  return { removed, written }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  const x = a ?? new Uint8Array(0)
  const y = b ?? new Uint8Array(0)
  if (x.byteLength !== y.byteLength) return false
  for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return false
  return true
}

/** A tree of strings, bytes and `{ symlink }` objects (the `TreeSpec` of MemFs) as entries. */
export function entriesFromTree(tree: Readonly<Record<string, unknown>>, prefix = '', out: FileEntry[] = []): FileEntry[] {
  for (const name of Object.keys(tree)) {
    entryComponents(name)
    const path = prefix === '' ? name : `${prefix}/${name}`
    const v = tree[name]
    if (typeof v === 'string') out.push({ path, kind: 'file', data: new TextEncoder().encode(v) })
    else if (v instanceof Uint8Array) out.push({ path, kind: 'file', data: v.slice() })
    else if (v instanceof ArrayBuffer) out.push({ path, kind: 'file', data: new Uint8Array(v.slice(0)) })
    else if (
      typeof v === 'object' &&
      v !== null &&
      Object.keys(v).length === 1 &&
      typeof (v as { symlink?: unknown }).symlink === 'string'
    ) {
      out.push({ path, kind: 'symlink', target: (v as { symlink: string }).symlink })
    } else if (typeof v === 'object' && v !== null) {
      out.push({ path, kind: 'dir' })
      entriesFromTree(v as Record<string, unknown>, path, out)
    } else throw new TypeError(`${path}: a tree entry must be a string, bytes, { symlink } or a directory object`)
  }
  return out
}
