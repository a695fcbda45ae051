/**
 * @module The memories this thread keeps between runs, for modules whose memory caplet made an
 * import (`instrument/memory.ts`, `importMemory`). A finished run's memory that did not grow is
 * kept and, before the next run gets it, zeroed: the guest then sees what a fresh memory holds
 * (zeroes, then its data segments, which instantiation writes). A fresh memory would cost an
 * address-space reservation, its page faults, a GC triggered by its external bytes, and an unmap.
 */

/** Memories larger than this are not kept (zeroing them would cost more than a fresh one saves). */
const MAX_KEPT_BYTES = 16 * 2 ** 20
/** Distinct (minimum, maximum) shapes kept at once per thread. */
const MAX_SHAPES = 4

const kept = new Map<string, WebAssembly.Memory>()
let reused = 0

export interface MemoryShape {
  minPages: number
  maxPages: number
}

const keyOf = (s: MemoryShape) => `${s.minPages}:${s.maxPages}`

/** A memory of `shape` holding only zeroes: a kept one, or a new one. */
export function takeGuestMemory(shape: MemoryShape): WebAssembly.Memory {
  const key = keyOf(shape)
  const memory = kept.get(key)
  if (memory === undefined) return new WebAssembly.Memory({ initial: shape.minPages, maximum: shape.maxPages })
  kept.delete(key)
  // SECURITY: every byte the previous run could write, before this run's guest exists.
  new Uint8Array(memory.buffer).fill(0)
  reused++
  return memory
}

/** Keeps a finished run's memory for the next run of the same shape, unless it grew or is large. */
export function keepGuestMemory(memory: WebAssembly.Memory, shape: MemoryShape): void {
  const bytes = memory.buffer.byteLength
  if (bytes !== shape.minPages * 65536 || bytes > MAX_KEPT_BYTES) return
  const key = keyOf(shape)
  kept.delete(key)
  if (kept.size >= MAX_SHAPES) kept.delete(kept.keys().next().value!)
  kept.set(key, memory)
}

/** How many runs on this thread got a kept memory (tests). */
export function reusedGuestMemories(): number {
  return reused
}
