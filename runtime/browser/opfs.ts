/**
 * @module Mounts over the browser's Origin Private File System: the directory is read into a
 * snapshot before the guest starts and, for a read-write mount whose run ended (not killed),
 * the guest's changes are written back afterwards: removed entries removed, new directories
 * created, new or changed files rewritten; unchanged files are not touched. OPFS stores no
 * symlinks or hard links (the mount refuses them with `NOTSUP`, see `no-links.ts`).
 * Runs in the guest's worker, where synchronous access handles make writing cheap.
 * SECURITY: names come from the guest's MemFs, whose names are single components, and are
 * checked again here (`entryComponents`); a handle is only ever descended into, never climbed.
 */
import { diffEntries, entryComponents, type FileEntry } from './snapshot.js'

/** The directory `path` (components under the origin's root, created if missing) or the handle itself. */
export async function opfsDirectory(where: FileSystemDirectoryHandle | string): Promise<FileSystemDirectoryHandle> {
  if (typeof where !== 'string') return where
  let dir = await navigator.storage.getDirectory()
  const trimmed = where.replace(/^\/+|\/+$/g, '')
  if (trimmed === '') return dir
  for (const part of entryComponents(trimmed)) dir = await dir.getDirectoryHandle(part, { create: true })
  return dir
}

type DirWithEntries = FileSystemDirectoryHandle & { entries(): AsyncIterable<[string, FileSystemHandle]> }

/** Everything beneath `dir`, parents first. `maxBytes` bounds what is copied into memory. */
export async function readOpfs(dir: FileSystemDirectoryHandle, maxBytes: number): Promise<FileEntry[]> {
  const out: FileEntry[] = []
  let total = 0
  const walk = async (d: FileSystemDirectoryHandle, prefix: string) => {
    const children: [string, FileSystemHandle][] = []
    for await (const pair of (d as DirWithEntries).entries()) children.push(pair)
    children.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    for (const [name, h] of children) {
      const path = prefix === '' ? name : `${prefix}/${name}`
      if (h.kind === 'directory') {
        out.push({ path, kind: 'dir' })
        await walk(h as FileSystemDirectoryHandle, path)
      } else {
        const file = await (h as FileSystemFileHandle).getFile()
        total += file.size
        if (total > maxBytes) throw new RangeError(`the OPFS directory holds more than the mount's size (${maxBytes} bytes)`)
        out.push({ path, kind: 'file', data: new Uint8Array(await file.arrayBuffer()) })
      }
    }
  }
  await walk(dir, '')
  return out
}

async function parentOf(
  root: FileSystemDirectoryHandle,
  path: string,
  create: boolean,
): Promise<{ dir: FileSystemDirectoryHandle; name: string }> {
  const parts = entryComponents(path)
  const name = parts.pop()!
  let dir = root
  for (const p of parts) dir = await dir.getDirectoryHandle(p, { create })
  return { dir, name }
}

type SyncHandle = { truncate(n: number): void; write(b: Uint8Array, o: { at: number }): number; flush(): void; close(): void }

async function writeFile(dir: FileSystemDirectoryHandle, name: string, data: Uint8Array): Promise<void> {
  const fh = await dir.getFileHandle(name, { create: true })
  const sync = (fh as unknown as { createSyncAccessHandle?: () => Promise<SyncHandle> }).createSyncAccessHandle
  if (typeof sync === 'function') {
    const h = await sync.call(fh)
    try {
      h.truncate(0)
      let at = 0
      while (at < data.byteLength) at += h.write(data.subarray(at), { at })
      h.flush()
    } finally {
      h.close()
    }
    return
  }
  const w = await fh.createWritable()
  await w.write(data as Uint8Array<ArrayBuffer>)
  await w.close()
}

/** Writes the difference between `before` and `after` into `root`. */
export async function writeBackOpfs(
  root: FileSystemDirectoryHandle,
  before: readonly FileEntry[],
  after: readonly FileEntry[],
): Promise<void> {
  const { removed, written } = diffEntries(before, after)
  for (const e of removed) {
    const { dir, name } = await parentOf(root, e.path, false).catch(() => ({ dir: undefined, name: '' }))
    if (dir !== undefined)
      await dir.removeEntry(name, { recursive: true }).catch((err: unknown) => {
        if ((err as DOMException)?.name !== 'NotFoundError') throw err
      })
  }
  for (const e of written) {
    const { dir, name } = await parentOf(root, e.path, true)
    if (e.kind === 'dir') await dir.getDirectoryHandle(name, { create: true })
    else if (e.kind === 'file') await writeFile(dir, name, e.data ?? new Uint8Array(0))
    // Symlinks cannot arise: the mount refuses them.
  }
}
