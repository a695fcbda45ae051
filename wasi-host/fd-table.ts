/**
 * @module Descriptors and the descriptor table: number → { handle, rights, fdflags }.
 *
 * A descriptor is a discriminated union on `kind`. Rights are plain numbers (all 30 preview1
 * bits fit in an int32). Numbers are allocated lowest-free-first, as POSIX does, and the table
 * never holds more than `maxFds` descriptors (`MFILE`).
 */
import type { Filetype } from './abi/constants.js'
import type { DirentListing } from './abi/structs.js'
import type { DirHandle, FileHandle, Filesystem } from './fs/filesystem.js'
import type { SocketHandle } from './net/sockets.js'
import { denial, type MountMode } from './rights.js'

/** One granted directory tree as the guest sees it. */
export interface Mount {
  readonly fs: Filesystem
  readonly mode: MountMode
  /** The sandbox's own device number for this mount (never the host's). */
  readonly dev: bigint
  readonly guestPath: string
  /** Links created here are seen by host programs: no absolute or `..` targets (see PreopenSpec). */
  readonly hostVisible: boolean
  /** Small writes to files here may be held and written later (`FilesystemCaps.writeBehind`). */
  readonly writeBehind: boolean
}

/** A directory handle shared by several descriptors (`path_open(".")`, `fd_renumber`). */
export interface DirRef {
  readonly handle: DirHandle
  refs: number
}

interface DescriptorBase {
  /** The base rights the descriptor was created with; `rightsBase` only ever loses bits from it. */
  readonly rightsAtOpen: number
  rightsBase: number
  rightsInheriting: number
  fdflags: number
  readonly filetype: Filetype
}

export interface FileDescriptor extends DescriptorBase {
  readonly kind: 'file'
  readonly handle: FileHandle
  readonly mount: Mount
  position: bigint
}

export interface DirDescriptor extends DescriptorBase {
  readonly kind: 'dir'
  readonly dir: DirRef
  readonly mount: Mount
  /** The guest path of a preopen; undefined for directories opened later. */
  readonly preopenPath: string | undefined
  /**
   * Directories between this one and the mount's root when it was opened (0 for a preopen);
   * used only for the lexical refusal of escaping symlink targets, which traversal re-checks.
   */
  readonly depth: number
  /** The listing `fd_readdir` serves cookies from; taken afresh at cookie 0. */
  listing: DirentListing | undefined
}

/** Reads up to `dst.length` bytes; returns 0 at end of input. */
export type StreamReader = (dst: Uint8Array) => number
/** Receives a view of guest memory that is valid only during the call. */
export type StreamWriter = (chunk: Uint8Array) => void
/**
 * The writer of a discarded stream. `fd_write` recognises it and skips making a view per
 * buffer for a writer that would ignore it; the guest sees the same result either way.
 */
export const discardWriter: StreamWriter = () => {}

export interface StreamDescriptor extends DescriptorBase {
  readonly kind: 'stream'
  readonly name: 'stdin' | 'stdout' | 'stderr'
  readonly read: StreamReader | undefined
  readonly write: StreamWriter | undefined
}

/** A granted socket (a listener or a connection), or a connection accepted from one. */
export interface SocketDescriptor extends DescriptorBase {
  readonly kind: 'socket'
  readonly socket: SocketHandle
}

export type Descriptor = FileDescriptor | DirDescriptor | StreamDescriptor | SocketDescriptor

export class FdTable {
  readonly #slots: (Descriptor | undefined)[] = []
  #count = 0
  #lowestFree = 0
  /** Directory listings kept for `fd_readdir` cookies, oldest first, and their total entries. */
  readonly #listings = new Map<DirDescriptor, number>()
  #listedEntries = 0

  /**
   * @param maxListedEntries SECURITY: entries all cached listings together may hold. Without a
   *   bound, a guest holding many descriptors on a big directory makes the host keep
   *   (descriptors × entries) in memory, which the guest's own quotas never charge.
   */
  constructor(
    readonly maxFds: number,
    readonly maxListedEntries = 100_000,
  ) {}

  /**
   * Keeps `listing` on `d` for later cookies, evicting the oldest other listings while the total
   * is over budget (an evicted descriptor lists again at its next call: cookies stay valid
   * positions, only entries removed meanwhile may shift).
   */
  cacheListing(d: DirDescriptor, listing: DirentListing): void {
    this.forgetListing(d)
    d.listing = listing
    // The backend's entries, as before the listing was laid out ("." and ".." are not counted).
    const entries = listing.count - 2
    this.#listings.set(d, entries)
    this.#listedEntries += entries
    for (const [other, n] of this.#listings) {
      if (this.#listedEntries <= this.maxListedEntries) break
      if (other === d) continue
      other.listing = undefined
      this.#listings.delete(other)
      this.#listedEntries -= n
    }
  }

  forgetListing(d: Descriptor): void {
    if (d.kind !== 'dir') return
    const n = this.#listings.get(d)
    if (n === undefined) return
    this.#listings.delete(d)
    this.#listedEntries -= n
    d.listing = undefined
  }

  get size(): number {
    return this.#count
  }

  get(fd: number): Descriptor | undefined {
    return this.#slots[fd]
  }

  /** @throws WasiError MFILE when no descriptor can be added; call before any side effect. */
  assertRoom(): void {
    if (this.#count >= this.maxFds) throw denial('descriptor-limit', 'descriptor limit reached')
  }

  /** Inserts at the lowest free number. @throws WasiError MFILE */
  insert(d: Descriptor): number {
    if (this.#count >= this.maxFds) throw denial('descriptor-limit', 'descriptor limit reached')
    let fd = this.#lowestFree
    while (this.#slots[fd] !== undefined) fd++
    this.#slots[fd] = d
    this.#count++
    this.#lowestFree = fd + 1
    return fd
  }

  /** Removes `fd` from the table and returns it, without closing its handle. */
  take(fd: number): Descriptor | undefined {
    const d = this.#slots[fd]
    if (d === undefined) return undefined
    this.forgetListing(d)
    this.#slots[fd] = undefined
    this.#count--
    if (fd < this.#lowestFree) this.#lowestFree = fd
    while (this.#slots.length > 0 && this.#slots[this.#slots.length - 1] === undefined) this.#slots.pop()
    return d
  }

  /** Puts `d` at exactly `fd`, which must be free. */
  place(fd: number, d: Descriptor): void {
    if (this.#slots[fd] !== undefined) throw new Error(`fd ${fd} is in use`)
    this.#slots[fd] = d
    this.#count++
  }

  /** Every open descriptor number, ascending. */
  numbers(): number[] {
    const out: number[] = []
    for (let i = 0; i < this.#slots.length; i++) if (this.#slots[i] !== undefined) out.push(i)
    return out
  }
}

/** Closes the backend handle of a descriptor taken out of the table. */
export function releaseDescriptor(d: Descriptor): void {
  if (d.kind === 'file') d.handle.close()
  else if (d.kind === 'dir') {
    if (--d.dir.refs === 0) d.dir.handle.close()
  } else if (d.kind === 'socket') d.socket.close()
}
