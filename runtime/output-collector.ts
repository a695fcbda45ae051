/**
 * @module A captured stream's bytes, collected chunk by chunk and joined once, at the end. Shared
 * by the in-process run (`launch.ts`) and the browser runtime, so it must stay free of Node.
 */
import { concatBytes } from '../wasi-host/abi/bytes.js'

export class OutputCollector {
  readonly #chunks: Uint8Array[] = []
  #total = 0

  /** Bytes collected so far. */
  get total(): number {
    return this.#total
  }

  /** Keeps `chunk` itself: for a buffer no one writes again (a posted message's). */
  keep(chunk: Uint8Array): void {
    this.#chunks.push(chunk)
    this.#total += chunk.byteLength
  }

  /** A sink that keeps a copy of each chunk: its writer may reuse the buffer (guest memory, a held buffer). */
  readonly sink = (chunk: Uint8Array): void => this.keep(chunk.slice())

  /** Everything collected, end to end. */
  bytes(): Uint8Array {
    return concatBytes(this.#chunks, this.#total)
  }
}
