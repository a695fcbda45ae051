/**
 * @module A backend that declares `writeBehind` (as a host directory does) over any other, logs
 * every write that reaches it and fails writes on demand: to see when held writes are handed
 * over, and to provoke a failure the guest can only learn of later.
 */
import type { Filetype } from '../../wasi-host/abi/constants.js'
import type { DirHandle, FileHandle, Filesystem } from '../../wasi-host/fs/filesystem.js'
import { createMemFs } from '../../wasi-host/fs/mem-fs.js'

export interface WriteLog {
  /** Every write that reached the backend, in order (failed ones too). */
  writes: { at: bigint; text: string }[]
  /** While set, every write throws it (a `WasiError` for a full disk, anything else for a bug). */
  failWith: unknown
}

const dec = new TextDecoder()

/** @param filetype what opened files claim to be (a FIFO, a device), instead of what they are. */
export function writeLogFs(inner: Filesystem = createMemFs(), filetype?: Filetype): { fs: Filesystem; log: WriteLog } {
  const log: WriteLog = { writes: [], failWith: undefined }
  const unwrapped = new WeakMap<object, DirHandle>()
  const bound = (t: object, k: string | symbol): unknown => {
    const v: unknown = Reflect.get(t, k, t)
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v
  }
  const wrapFile = (f: FileHandle): FileHandle =>
    new Proxy(f, {
      get: (t, k) =>
        filetype !== undefined && k === 'filetype'
          ? filetype
          : k === 'stat' && filetype !== undefined
            ? () => ({ ...t.stat(), filetype })
            : k !== 'write'
              ? bound(t, k)
              : (src: Uint8Array, at: bigint) => {
                  log.writes.push({ at, text: dec.decode(src) })
                  if (log.failWith !== undefined) throw log.failWith
                  return t.write(src, at)
                },
    })
  const wrapDir = (d: DirHandle): DirHandle => {
    const w = new Proxy(d, {
      get: (t, k) => {
        if (k === 'openFile') return (n: string, o: Parameters<DirHandle['openFile']>[1]) => wrapFile(t.openFile(n, o))
        if (k === 'openDir') return (n: string) => wrapDir(t.openDir(n))
        // Two-handle calls: the backend's brand check must see its own handle.
        if (k === 'rename' || k === 'link') return (n: string, to: DirHandle, tn: string) => t[k](n, unwrapped.get(to) ?? to, tn)
        return bound(t, k)
      },
    })
    unwrapped.set(w, d)
    return w
  }
  return { fs: { caps: Object.freeze({ ...inner.caps, writeBehind: true }), root: () => wrapDir(inner.root()) }, log }
}
