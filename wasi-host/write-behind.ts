/**
 * @module Write-behind: small sequential `fd_write`s to a file are held in one host-wide buffer
 * and written to the backend in one call, for backends whose per-call cost dwarfs the copy (a
 * host directory). The guest must never observe the difference: the dispatcher flushes before
 * every other syscall, `WasiHost.close()` at the end of any run, and a failed flush is reported
 * by the descriptor's next write, sync or close (or as a run warning). Nothing is held for a
 * reactor or a shared memory. The one gap (a run stopped by timeout or abort loses what is still
 * held) and the details: docs/internals.md, "Write-behind".
 */
import { Fdflags, Filetype } from './abi/constants.js'
import { HostInvariantError, WasiError } from './errors.js'
import type { FileDescriptor } from './fd-table.js'
import type { GuestMemory } from './abi/guest-memory.js'

/** A write whose total is this or more goes straight to the backend (after a flush). */
export const WRITE_BEHIND_MAX_WRITE = 1024
/** The most bytes held at once (one descriptor at a time, per host). */
export const WRITE_BEHIND_CAP = 4096
/**
 * Bytes are held only below this offset: far out, a backend refuses a write by its position
 * (`FBIG`), and that refusal belongs to the write itself, not to a later call.
 */
const MAX_HELD_END = 1n << 40n
/** Flags that ask for each write to reach the file now (SYNC family) or at its end (APPEND). */
const WRITE_THROUGH = Fdflags.APPEND | Fdflags.DSYNC | Fdflags.RSYNC | Fdflags.SYNC
/** Unreported failures kept as warnings; beyond, only counted (the guest may cause many). */
const MAX_UNREPORTED = 8

export class WriteBehind {
  /** The descriptor whose bytes are held; null when none are (all the dispatcher checks). */
  pending: FileDescriptor | null = null
  /**
   * Whether writes may be held at all. Off for a reactor (`WasiHost.initialize`): each export
   * returns to the embedder, who may read the file next, and no call of the host comes last.
   */
  enabled = true
  /** Made at the first held write: most runs hold none, and a host is built per run. */
  #buf: Uint8Array | undefined
  #len = 0
  /** File offset of the first held byte; `#end` is where the next held write must start. */
  #start = 0n
  #end = 0n
  /**
   * Flush failures not yet reported, by descriptor. Bounded by the descriptor table: an entry
   * leaves when reported, or when its descriptor leaves the table (`forget`, `unreported`).
   */
  readonly #errors = new Map<FileDescriptor, WasiError>()
  readonly #lost: string[] = []
  #lostCount = 0

  /**
   * Holds the write `iovs` (already validated, `length` bytes in all) on `d`, advancing its
   * position, if it qualifies; flushes another descriptor's bytes first. Returns false when the
   * caller must write through (after `flush()`, which then has nothing or `d`'s bytes to write).
   */
  hold(m: GuestMemory, d: FileDescriptor, iovs: number, iovsLen: number, length: number): boolean {
    if (!d.mount.writeBehind || (d.fdflags & WRITE_THROUGH) !== 0 || length === 0 || length >= WRITE_BEHIND_MAX_WRITE) return false
    // SECURITY: the copy below reads the iovecs again; in a shared memory another thread may have
    // changed them since `length` was counted (the write path takes what it reads, and is right).
    if (!this.enabled || m.isShared) return false
    // Regular files only: a FIFO or a device refuses positioned writes (SPIPE), or acts on each.
    if (d.filetype !== Filetype.REGULAR_FILE) return false
    // A failure waiting to be reported goes out through the write path (the caller's `takeError`).
    if (this.#errors.size !== 0) return false
    const pos = d.position
    const end = pos + BigInt(length)
    if (end > MAX_HELD_END) return false
    if (this.pending !== d || pos !== this.#end || this.#len + length > WRITE_BEHIND_CAP) {
      if (this.pending !== null) {
        this.flush()
        if (this.#errors.size !== 0) return false
      }
      this.pending = d
      this.#start = pos
      this.#end = pos
    }
    const dv = m.dataView
    const src = m.bytes
    const buf = (this.#buf ??= new Uint8Array(WRITE_BEHIND_CAP))
    let at = this.#len
    for (let i = 0; i < iovsLen; i++) {
      const p = dv.getUint32(iovs + i * 8, true)
      const l = dv.getUint32(iovs + i * 8 + 4, true)
      // Small buffers by hand: a view per buffer costs more than the copy.
      if (l <= 32) for (let k = 0; k < l; k++) buf[at + k] = src[p + k]!
      else buf.set(src.subarray(p, p + l), at)
      at += l
    }
    this.#len = at
    this.#end = end
    d.position = end
    return true
  }

  /**
   * Writes the held bytes out. A `WasiError` from the backend is recorded for the descriptor
   * (see `takeError`); anything else is a host fault and propagates, the bytes still held: the
   * fault ends the run, and `WasiHost.close()` tries them once more (a stack exhausted by a deep
   * guest under this call is not exhausted there), then reports them lost (`discard`).
   * Writing some of them twice, at the same offsets, changes nothing.
   */
  flush(): void {
    const d = this.pending
    if (d === null) return
    const len = this.#len
    let done = 0
    let pos = this.#start
    // NOTE: the bytes stay held until the end of this call: on a stack that ran out, anything
    // can throw, even `instanceof` in the handler below.
    try {
      while (done < len) {
        const n = d.handle.write(this.#buf!.subarray(done, len), pos)
        if (n <= 0) throw new HostInvariantError(`backend wrote ${n} of ${len - done} held bytes`)
        done += n
        pos += BigInt(n)
      }
    } catch (e) {
      if (!(e instanceof WasiError)) throw e
      this.#errors.set(d, e)
    }
    this.pending = null
    this.#len = 0
  }

  /** Drops what is held (a flush at the end of a run failed for good; the caller reports it). */
  discard(): void {
    this.pending = null
    this.#len = 0
  }

  /** The flush failure `d` has not reported yet, which this call now reports (and forgets). */
  takeError(d: FileDescriptor): WasiError | undefined {
    if (this.#errors.size === 0) return undefined
    const e = this.#errors.get(d)
    if (e !== undefined) this.#errors.delete(d)
    return e
  }

  /** `d` left the table without reporting (e.g. replaced by `fd_renumber`): keep it as a warning. */
  forget(d: FileDescriptor): void {
    const e = this.takeError(d)
    if (e !== undefined) this.#note(d, e)
  }

  /** Records a failure no guest call will report (a flush at the end of a run that failed). */
  lost(message: string): void {
    if (this.#lost.length < MAX_UNREPORTED) this.#lost.push(message)
    this.#lostCount++
  }

  /**
   * At the end of a run: failures still waiting on descriptors become warnings (no guest call
   * will report them now), so closing the descriptors afterwards reports nothing to nobody.
   */
  settle(): void {
    for (const [d, e] of this.#errors) this.#note(d, e)
    this.#errors.clear()
  }

  /** Every failure the guest never saw, as warnings (see `settle`). */
  unreported(): string[] {
    const out = [...this.#lost]
    if (this.#lostCount > out.length) out.push(`…and ${this.#lostCount - out.length} more failed writes`)
    return out
  }

  #note(d: FileDescriptor, e: WasiError): void {
    this.lost(`${d.mount.guestPath}: buffered writes to a file there failed after fd_write had returned: ${e.message}`)
  }
}
