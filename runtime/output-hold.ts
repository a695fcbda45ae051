/**
 * @module Held stdout/stderr for an in-process run: small writes collect in one buffer and go out
 * in one write, for sinks whose per-call cost dwarfs the copy (a host fd). One buffer holds one
 * stream at a time, so the streams still reach their sinks in the order the guest wrote them;
 * the host flushes before every other call and at the end of the run (trap and limit included).
 * It must never reorder, drop, or report an error to a call other than a write to its stream.
 */
import { WasiError } from '../wasi-host/errors.js'
import type { HeldOutput } from '../wasi-host/host-state.js'
import type { Sink } from './output.js'

/** The most bytes held at once; a write this large or larger goes straight out (after a flush). */
export const OUTPUT_HOLD_BYTES = 16 * 1024

export class OutputHold implements HeldOutput {
  pending = false
  readonly #buf = new Uint8Array(OUTPUT_HOLD_BYTES)
  #len = 0
  /** The sink the held bytes are for. */
  #target: Sink | undefined
  /** A flush that failed with an errno (EPIPE): reported by the next write to that stream. */
  readonly #errors = new Map<Sink, WasiError>()

  /** A sink that holds what it is given for `target`. */
  sink(target: Sink): Sink {
    return (chunk) => {
      if (this.#errors.size !== 0) this.#report(target)
      const n = chunk.byteLength
      if (this.#target !== target || this.#len + n > OUTPUT_HOLD_BYTES) {
        if (this.#len !== 0) {
          this.flush()
          if (this.#errors.size !== 0) this.#report(target)
        }
        if (n >= OUTPUT_HOLD_BYTES) {
          target(chunk)
          return
        }
        this.#target = target
      }
      const buf = this.#buf
      const at = this.#len
      // Small chunks by hand: a native copy costs more than the loop below 64 bytes.
      if (n <= 64) for (let i = 0; i < n; i++) buf[at + i] = chunk[i]!
      else buf.set(chunk, at)
      this.#len = at + n
      this.pending = true
    }
  }

  flush(): void {
    const n = this.#len
    if (n === 0) return
    const target = this.#target!
    this.#len = 0
    this.pending = false
    try {
      target(this.#buf.subarray(0, n))
    } catch (e) {
      // An errno belongs to the stream's next write, not to whatever call flushed.
      if (!(e instanceof WasiError)) throw e
      this.#errors.set(target, e)
    }
  }

  #report(target: Sink): void {
    const e = this.#errors.get(target)
    if (e === undefined) return
    this.#errors.delete(target)
    throw e
  }
}
