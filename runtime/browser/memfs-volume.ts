/**
 * @module Mounts over a `memfs` volume (the in-memory tree many web IDEs keep their project in):
 * the subtree is copied out before the run and, for a read-write mount whose run ended (not
 * killed), the guest's changes are applied back to the volume afterwards, on the page's thread.
 * Only the volume's synchronous fs methods are used, so any object with them serves (memfs
 * `Volume`, `createFsFromVolume(vol)`); caplet does not depend on memfs.
 * SECURITY: entry paths are checked component by component and joined beneath the mount's
 * subtree; symlinks the guest made here could not climb with `..` (the mount is host-visible, as
 * a host directory is), so writing them into the volume points nowhere outside the subtree.
 */
import { diffEntries, entryComponents, type FileEntry } from './snapshot.js'

interface Stats {
  isDirectory(): boolean
  isSymbolicLink(): boolean
  isFile(): boolean
  size: number
}

/** The synchronous part of the `fs` API a volume must offer. */
export interface VolumeLike {
  readdirSync(path: string): unknown[]
  lstatSync(path: string): Stats
  readFileSync(path: string): unknown
  readlinkSync(path: string): unknown
  writeFileSync(path: string, data: Uint8Array): void
  mkdirSync(path: string, options?: { recursive?: boolean }): unknown
  symlinkSync(target: string, path: string): void
  rmSync?(path: string, options?: { recursive?: boolean; force?: boolean }): void
  unlinkSync(path: string): void
  rmdirSync(path: string, options?: { recursive?: boolean }): void
}

export function isVolume(v: unknown): v is VolumeLike {
  const o = v as Record<string, unknown> | null
  return (
    typeof o === 'object' &&
    o !== null &&
    ['readdirSync', 'lstatSync', 'readFileSync', 'writeFileSync', 'mkdirSync', 'unlinkSync'].every((k) => typeof o[k] === 'function')
  )
}

const join = (base: string, rel: string) => (rel === '' ? base : `${base.replace(/\/+$/, '')}/${entryComponents(rel).join('/')}`)

/** Everything beneath `base` in the volume, parents first. */
export function readVolume(vol: VolumeLike, base: string, maxBytes: number): FileEntry[] {
  const out: FileEntry[] = []
  let total = 0
  const walk = (rel: string) => {
    const names = vol.readdirSync(join(base, rel)).map(String).sort()
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`
      const abs = join(base, path)
      const st = vol.lstatSync(abs)
      if (st.isSymbolicLink()) out.push({ path, kind: 'symlink', target: String(vol.readlinkSync(abs)) })
      else if (st.isDirectory()) {
        out.push({ path, kind: 'dir' })
        walk(path)
      } else if (st.isFile()) {
        total += st.size
        if (total > maxBytes) throw new RangeError(`the volume at ${base} holds more than the mount's size (${maxBytes} bytes)`)
        const raw = vol.readFileSync(abs) as Uint8Array
        out.push({ path, kind: 'file', data: new Uint8Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) })
      }
    }
  }
  walk('')
  return out
}

/** Applies the difference between `before` and `after` beneath `base`. */
export function writeBackVolume(vol: VolumeLike, base: string, before: readonly FileEntry[], after: readonly FileEntry[]): void {
  const { removed, written } = diffEntries(before, after)
  for (const e of removed) {
    const abs = join(base, e.path)
    try {
      if (e.kind === 'dir') vol.rmSync ? vol.rmSync(abs, { recursive: true, force: true }) : vol.rmdirSync(abs, { recursive: true })
      else vol.unlinkSync(abs)
    } catch {
      /* already gone with its parent */
    }
  }
  for (const e of written) {
    const abs = join(base, e.path)
    if (e.kind === 'dir') vol.mkdirSync(abs, { recursive: true })
    else if (e.kind === 'symlink') {
      try {
        vol.unlinkSync(abs)
      } catch {
        /* new */
      }
      vol.symlinkSync(e.target ?? '', abs)
    } else vol.writeFileSync(abs, e.data ?? new Uint8Array(0))
  }
}
