/**
 * @module The module analysis cache: what caplet derives from a module's bytes alone (the engine-tier
 * hints), kept on disk between CLI runs, keyed by a sha256 of the module's digest, its
 * instrumentation, the tier and caplet's version. Storage is the toolchain's cache (size-bounded,
 * atomic writes, digest-checked). An entry is never trusted: it must fit the module it is applied
 * to (`tierHintsFit`), else it is recomputed and replaced. Off unless the embedder (the CLI) turns
 * it on. Why hints can be cached safely: docs/internals.md, "Engine tiers".
 */
import { createHash } from 'node:crypto'
import { CompileCache, type CacheSettings } from '../toolchain/cache.js'
import { tierHints, tierHintsFit, type Tier, type TierHints } from './instrument/index.js'
import { CAPLET_VERSION } from './version.js'

/** Modules smaller than this are analysed afresh: reading an entry would cost about as much. */
export const MIN_CACHED_MODULE_BYTES = 256 * 1024

export interface ModuleCacheSettings extends CacheSettings {
  /** Only modules of at least this many bytes are cached (default `MIN_CACHED_MODULE_BYTES`). */
  minModuleBytes?: number
}

let store: CompileCache | undefined
let minBytes = MIN_CACHED_MODULE_BYTES

/** What the cache did in this process: entries used, computed afresh, and found not to fit. */
export const moduleCacheStats = { hits: 0, misses: 0, rejected: 0 }

/** Turns the on-disk cache on (with its settings) or off (`false`, the default). */
export function useModuleCache(settings: ModuleCacheSettings | false): void {
  store = settings === false ? undefined : new CompileCache(settings)
  minBytes = settings === false ? MIN_CACHED_MODULE_BYTES : (settings.minModuleBytes ?? MIN_CACHED_MODULE_BYTES)
}

/**
 * `tierHints(code, tier)`, from the cache when an entry fits `code`. `identity` names the bytes
 * `code` was made from and how (the module's digest and its instrumentation).
 */
export function cachedTierHints(code: Uint8Array, identity: string, tier: Tier): TierHints | undefined {
  if (store === undefined || code.byteLength < minBytes) return tierHints(code, tier)
  const key = createHash('sha256').update(`caplet-tier-hints\0${CAPLET_VERSION}\0${identity}\0${tier}`).digest('hex')
  const raw = store.getBytes(key)
  if (raw !== undefined) {
    const entry = decodeHints(raw)
    if (entry === 'none') {
      moduleCacheStats.hits++
      return undefined
    }
    if (entry !== undefined && tierHintsFit(code, entry)) {
      moduleCacheStats.hits++
      return entry
    }
    moduleCacheStats.rejected++
  }
  moduleCacheStats.misses++
  const hints = tierHints(code, tier)
  store.putBytes(key, encodeHints(hints))
  return hints
}

/** 0 (no hints), or 1, the code section's offset (u32 LE) and one byte per function. */
function encodeHints(h: TierHints | undefined): Uint8Array {
  if (h === undefined) return new Uint8Array([0])
  const out = new Uint8Array(5 + h.hints.length)
  out[0] = 1
  new DataView(out.buffer).setUint32(1, h.codeSectionAt, true)
  out.set(h.hints, 5)
  return out
}

function decodeHints(raw: Uint8Array): TierHints | 'none' | undefined {
  if (raw.length === 1 && raw[0] === 0) return 'none'
  if (raw.length < 5 || raw[0] !== 1) return undefined
  return { codeSectionAt: new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(1, true), hints: raw.subarray(5) }
}
