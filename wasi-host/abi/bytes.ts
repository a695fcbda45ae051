/** @module Joining byte chunks: one copy into a buffer of the summed length (none for one chunk). */

const EMPTY = new Uint8Array(0)

/** The chunks end to end; `total`, when the caller counted it, saves a pass. A single chunk is returned as is. */
export function concatBytes(chunks: readonly Uint8Array[], total?: number): Uint8Array {
  if (chunks.length === 0) return EMPTY
  if (chunks.length === 1) return chunks[0]!
  let n = total
  if (n === undefined) {
    n = 0
    for (const c of chunks) n += c.byteLength
  }
  const out = new Uint8Array(n)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}
