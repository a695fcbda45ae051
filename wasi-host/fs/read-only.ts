/**
 * @module `readOnly(fs)`: a view of a `Filesystem` whose handles refuse every change with `ROFS`,
 * defence in depth behind the rights check (docs/internals.md, "Read-only views").
 *
 * What it must not do: hand out the inner handles (they live in `#private` fields), or let a
 * two-handle operation (`rename`, `link`) through when either side is read-only.
 */
import { Errno, type Filetype } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import {
  type DirEntry,
  type DirHandle,
  type FileHandle,
  type Filesystem,
  type FilesystemCaps,
  type NodeStat,
  type OpenFileOptions,
  type TimeSpec,
  wrapperCaps,
} from './filesystem.js'

function refused(what: string): WasiError {
  return new WasiError(Errno.ROFS, `${what} on a read-only filesystem`)
}

class ReadOnlyFile implements FileHandle {
  readonly kind = 'file' as const
  readonly #inner: FileHandle

  constructor(inner: FileHandle) {
    this.#inner = inner
  }

  get filetype(): Filetype | undefined {
    return this.#inner.filetype
  }

  stat(): NodeStat {
    return this.#inner.stat()
  }

  read(dst: Uint8Array, position: bigint): number {
    return this.#inner.read(dst, position)
  }

  write(_src: Uint8Array, _position: bigint): number {
    throw refused('write')
  }

  setSize(_size: bigint): void {
    throw refused('setSize')
  }

  setTimes(_atim: TimeSpec, _mtim: TimeSpec): void {
    throw refused('setTimes')
  }

  allocate(_offset: bigint, _len: bigint): void {
    throw refused('allocate')
  }

  sync(): void {
    this.#inner.sync()
  }

  datasync(): void {
    this.#inner.datasync()
  }

  close(): void {
    this.#inner.close()
  }
}

class ReadOnlyDir implements DirHandle {
  readonly kind = 'dir' as const
  readonly #inner: DirHandle

  constructor(inner: DirHandle) {
    this.#inner = inner
  }

  stat(): NodeStat {
    return this.#inner.stat()
  }

  setTimes(_atim: TimeSpec, _mtim: TimeSpec): void {
    throw refused('setTimes')
  }

  statChild(name: string): NodeStat {
    return this.#inner.statChild(name)
  }

  openDir(name: string): DirHandle {
    return new ReadOnlyDir(this.#inner.openDir(name))
  }

  openFile(name: string, options: OpenFileOptions): FileHandle {
    // SECURITY: judged by effect, not by the read/write split alone: O_TRUNC and O_CREAT change
    // the tree even on a read-only open (GHSA-2r75), so they are refused before the backend runs.
    if (options.write || options.create || options.truncate) throw refused('openFile for writing')
    // A fresh options object: the caller's cannot be swapped for a writable one after the check.
    return new ReadOnlyFile(
      this.#inner.openFile(name, { read: options.read, write: false, create: false, exclusive: false, truncate: false }),
    )
  }

  readlink(name: string): string {
    return this.#inner.readlink(name)
  }

  mkdir(_name: string): void {
    throw refused('mkdir')
  }

  symlink(_target: string, _name: string): void {
    throw refused('symlink')
  }

  unlink(_name: string): void {
    throw refused('unlink')
  }

  rmdir(_name: string): void {
    throw refused('rmdir')
  }

  rename(_name: string, _toDir: DirHandle, _toName: string): void {
    throw refused('rename')
  }

  link(_name: string, _toDir: DirHandle, _toName: string): void {
    // Linking changes the source node too (its link count), and a link out of a read-only tree
    // into a writable one is the ghsa-4ch3 escalation: refused whatever `toDir` is.
    throw refused('link')
  }

  setTimesChild(_name: string, _atim: TimeSpec, _mtim: TimeSpec): void {
    throw refused('setTimesChild')
  }

  readdir(): readonly DirEntry[] {
    return this.#inner.readdir()
  }

  close(): void {
    this.#inner.close()
  }
}

/**
 * Wraps `fs` so that its handles pass reads through and refuse every mutation with `ROFS`.
 * The view is live: changes made through `fs` itself remain visible.
 *
 * @example
 * const ro = readOnly(memFsFromTree({ 'a.txt': 'hi' }))
 * ro.root().mkdir('x') // throws WasiError(ROFS)
 */
export function readOnly(fs: Filesystem): Filesystem {
  const caps: FilesystemCaps = wrapperCaps(fs.caps)
  return {
    caps,
    root: () => new ReadOnlyDir(fs.root()),
  }
}
