/**
 * @module Uploaded modules, by id: the sha256 of their bytes. Uploading the same bytes twice
 * stores them once. A store is bounded in total bytes (oldest unused go first) and refuses a
 * module above the operator's cap before keeping anything. Two stores: this process's memory
 * (`caplet serve` alone) and Redis (the queue: workers on other machines fetch modules by id).
 * Bytes are checked to be a WebAssembly command before they get an id; compiling them (off the
 * event loop, `WebAssembly.compile`) is the check.
 */
import type { Redis } from 'ioredis'
import { sha256Hex } from './config.js'
import { ApiError } from './errors.js'

export interface ModuleStore {
  /** Stores the bytes (checked); resolves with their id and whether they were new. */
  put(bytes: Uint8Array): Promise<{ id: string; created: boolean; size: number }>
  get(id: string): Promise<Uint8Array | undefined>
}

/** Checks that `bytes` are a WebAssembly command. @throws ApiError 413/422 */
export async function checkModule(bytes: Uint8Array, maxBytes: number): Promise<void> {
  if (bytes.byteLength > maxBytes)
    throw new ApiError(413, 'module-too-large', `the module is ${bytes.byteLength} bytes, above this server's ${maxBytes}`)
  let mod: WebAssembly.Module
  try {
    mod = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>)
  } catch (e) {
    throw new ApiError(
      422,
      'invalid-module',
      `not a valid WebAssembly module: ${String((e as Error).message).replace(/^WebAssembly\.compile\(\): /, '')}`,
    )
  }
  if (!WebAssembly.Module.exports(mod).some((e) => e.name === '_start' && e.kind === 'function')) {
    throw new ApiError(422, 'invalid-module', 'the module has no "_start" export: it is not a WASI command')
  }
}

/** A bounded least-recently-used map of bytes. */
class ByteLru {
  readonly #map = new Map<string, Uint8Array>()
  #bytes = 0
  constructor(readonly maxBytes: number) {}
  get(id: string): Uint8Array | undefined {
    const v = this.#map.get(id)
    if (v) {
      this.#map.delete(id)
      this.#map.set(id, v)
    }
    return v
  }
  set(id: string, v: Uint8Array): void {
    if (this.#map.has(id)) {
      this.get(id)
      return
    }
    while (this.#bytes + v.byteLength > this.maxBytes && this.#map.size > 0) {
      const [oldest, ob] = this.#map.entries().next().value as [string, Uint8Array]
      this.#map.delete(oldest)
      this.#bytes -= ob.byteLength
    }
    this.#map.set(id, v)
    this.#bytes += v.byteLength
  }
}

export class MemoryModuleStore implements ModuleStore {
  readonly #lru: ByteLru
  constructor(
    readonly maxModuleBytes: number,
    maxStoredBytes: number,
  ) {
    this.#lru = new ByteLru(maxStoredBytes)
  }

  async put(bytes: Uint8Array) {
    const id = sha256Hex(bytes)
    if (this.#lru.get(id)) return { id, created: false, size: bytes.byteLength }
    await checkModule(bytes, this.maxModuleBytes)
    this.#lru.set(id, new Uint8Array(bytes))
    return { id, created: true, size: bytes.byteLength }
  }

  async get(id: string) {
    return this.#lru.get(id)
  }
}

export const moduleKey = (prefix: string, id: string) => `${prefix}:module:${id}`

/**
 * Modules in Redis (`<prefix>:module:<id>`, expiring `ttlMs` after their last use), with a
 * bounded local copy so a hot module is not fetched for every run. Redis itself should be run
 * with a `maxmemory` policy; each module is capped here.
 */
export class RedisModuleStore implements ModuleStore {
  readonly #local: ByteLru
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    readonly maxModuleBytes: number,
    readonly ttlMs: number,
    localBytes = 64 * 2 ** 20,
  ) {
    this.#local = new ByteLru(localBytes)
  }

  async put(bytes: Uint8Array) {
    const id = sha256Hex(bytes)
    if (!this.#local.get(id)) await checkModule(bytes, this.maxModuleBytes)
    const copy = new Uint8Array(bytes)
    const set = await this.redis.set(moduleKey(this.prefix, id), Buffer.from(copy), 'PX', this.ttlMs, 'NX')
    if (set === null) await this.redis.pexpire(moduleKey(this.prefix, id), this.ttlMs)
    this.#local.set(id, copy)
    return { id, created: set !== null, size: bytes.byteLength }
  }

  async get(id: string) {
    const local = this.#local.get(id)
    if (local) {
      void this.redis.pexpire(moduleKey(this.prefix, id), this.ttlMs).catch(() => {})
      return local
    }
    const b = await this.redis.getBuffer(moduleKey(this.prefix, id))
    if (b === null || b.byteLength > this.maxModuleBytes) return undefined
    const bytes = new Uint8Array(b)
    this.#local.set(id, bytes)
    return bytes
  }

  /** Puts a module this process still holds back into Redis (after Redis lost its data). */
  async restore(id: string): Promise<boolean> {
    const local = this.#local.get(id)
    if (!local) return (await this.redis.exists(moduleKey(this.prefix, id))) === 1
    await this.redis.set(moduleKey(this.prefix, id), Buffer.from(local), 'PX', this.ttlMs, 'NX')
    return true
  }
}

/** `source` in a run request. */
export interface SourceRequest {
  language: string
  files: Record<string, string>
}

/** Compiles `source: { language, files }` to a module (see compile-source.ts). @throws ApiError */
export type CompileSource = (source: SourceRequest) => Promise<Uint8Array>
