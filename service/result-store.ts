/**
 * @module Finished runs kept outside the V8 heap: each run's view JSON as UTF-8 bytes in 1 MiB
 * chunks (`Buffer`s, external memory), indexed by run id, oldest first out. What stays on the
 * heap per run is its id, its owner (the string given, kept as is: the token's name, shared by
 * all its runs) and a slot in typed arrays, so a full GC of a busy server no longer marks and
 * copies every result it keeps (bench: p99 at 50% of peak). Bounded by count (`maxEntries`) and
 * by the bytes of live entries (`maxBytes`): past either the oldest go, those dropped for bytes
 * through `onEvict`. The newest entry is always kept, whatever its size.
 *
 * SECURITY: the owner is never put through UTF-8. A string with a lone surrogate comes back
 * from UTF-8 as U+FFFD, so an owner "a\ud800" read back as "a\ufffd" and a token of that name
 * could read its runs (red team, wave 3). The JSON is safe there: `JSON.stringify` escapes lone
 * surrogates, so its output is well-formed and survives the round trip exactly.
 */

const CHUNK_BYTES = 2 ** 20

interface Chunk {
  /** Position (in the store's byte log) of `bytes[0]`. */
  start: number
  bytes: Buffer
}

export interface StoredResult {
  owner: string
  json: string
  expiresAt: number
}

export class ResultStore {
  /** Run id -> slot (sequence number modulo `maxEntries`). */
  readonly #index = new Map<string, number>()
  readonly #ids: (string | undefined)[]
  readonly #owners: (string | undefined)[]
  readonly #pos: Float64Array
  /** Bytes of each entry's JSON in the log, and what it counts against `maxBytes` (owner too). */
  readonly #bytes: Uint32Array
  readonly #counted: Float64Array
  readonly #expires: Float64Array
  /** Sequence numbers of the oldest live entry and of the next one. */
  #head = 0
  #tail = 0
  readonly #chunks: Chunk[] = []
  /** Where the next entry goes in the byte log. */
  #end = 0
  #liveBytes = 0

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
    /** Called with an entry dropped to stay under `maxBytes` (not for count or expiry). */
    readonly onEvict: (id: string, entry: StoredResult) => void = () => {},
  ) {
    this.#ids = new Array<string | undefined>(maxEntries)
    this.#owners = new Array<string | undefined>(maxEntries)
    this.#pos = new Float64Array(maxEntries)
    this.#bytes = new Uint32Array(maxEntries)
    this.#counted = new Float64Array(maxEntries)
    this.#expires = new Float64Array(maxEntries)
  }

  /** Entries kept. */
  get size(): number {
    return this.#tail - this.#head
  }

  /** Bytes of the entries kept (owner and JSON, UTF-8: the owner is counted, though kept as a string). */
  get bytes(): number {
    return this.#liveBytes
  }

  /** Bytes of the chunks held (live entries, plus the unused tails of their chunks). */
  get heldBytes(): number {
    return this.#chunks.reduce((a, c) => a + c.bytes.length, 0)
  }

  /** Keeps a run's result; an id already kept is replaced (the old entry reads as gone). */
  put(id: string, owner: string, json: string, expiresAt: number): void {
    this.#unindex(id)
    if (this.size >= this.maxEntries) this.#dropHead()
    const jsonBytes = Buffer.byteLength(json)
    const n = Buffer.byteLength(owner) + jsonBytes
    const chunk = this.#room(jsonBytes)
    chunk.bytes.write(json, this.#end - chunk.start)
    const slot = this.#tail % this.maxEntries
    this.#ids[slot] = id
    this.#owners[slot] = owner
    this.#pos[slot] = this.#end
    this.#bytes[slot] = jsonBytes
    this.#counted[slot] = n
    this.#expires[slot] = expiresAt
    this.#index.set(id, slot)
    this.#tail++
    this.#end += jsonBytes
    this.#liveBytes += n
    while (this.#liveBytes > this.maxBytes && this.size > 1) {
      const victim = this.#head % this.maxEntries
      const dropped = this.#ids[victim]
      const entry = dropped === undefined ? undefined : this.#read(victim)
      this.#dropHead()
      if (dropped !== undefined && entry !== undefined) this.onEvict(dropped, entry)
    }
  }

  /** The entry kept for `id`, unless it expired before `now`. */
  get(id: string, now = Date.now()): StoredResult | undefined {
    const slot = this.#index.get(id)
    if (slot === undefined || this.#expires[slot]! < now) return undefined
    return this.#read(slot)
  }

  /** Drops the entries that expired before `now` (oldest first: they were kept in expiry order). */
  expire(now = Date.now()): void {
    while (this.size > 0 && this.#expires[this.#head % this.maxEntries]! < now) this.#dropHead()
  }

  #read(slot: number): StoredResult {
    const pos = this.#pos[slot]!
    const chunk = this.#chunkAt(pos)
    const at = pos - chunk.start
    return {
      owner: this.#owners[slot]!,
      json: chunk.bytes.toString('utf8', at, at + this.#bytes[slot]!),
      expiresAt: this.#expires[slot]!,
    }
  }

  /** The chunk with room for `n` more bytes at `#end`: the last one, or a new one. */
  #room(n: number): Chunk {
    const last = this.#chunks.at(-1)
    if (last !== undefined && this.#end + n <= last.start + last.bytes.length) return last
    const start = last === undefined ? this.#end : Math.max(this.#end, last.start + last.bytes.length)
    const chunk = { start, bytes: Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, n)) }
    this.#chunks.push(chunk)
    this.#end = start
    return chunk
  }

  #chunkAt(pos: number): Chunk {
    let lo = 0
    let hi = this.#chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.#chunks[mid]!.start <= pos) lo = mid
      else hi = mid - 1
    }
    return this.#chunks[lo]!
  }

  #unindex(id: string): void {
    const slot = this.#index.get(id)
    if (slot === undefined) return
    this.#index.delete(id)
    this.#ids[slot] = undefined
  }

  #dropHead(): void {
    const slot = this.#head % this.maxEntries
    const id = this.#ids[slot]
    if (id !== undefined && this.#index.get(id) === slot) this.#index.delete(id)
    this.#ids[slot] = undefined
    this.#owners[slot] = undefined
    this.#liveBytes -= this.#counted[slot]!
    this.#counted[slot] = 0
    this.#bytes[slot] = 0
    this.#head++
    // Chunks wholly before the oldest live entry hold nothing any more.
    const oldest = this.size > 0 ? this.#pos[this.#head % this.maxEntries]! : this.#end
    while (this.#chunks.length > 0 && this.#chunks[0]!.start + this.#chunks[0]!.bytes.length <= oldest) this.#chunks.shift()
  }
}
