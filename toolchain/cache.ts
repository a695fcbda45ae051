/**
 * @module The compile cache: content-addressed, on disk, size-bounded. The key is the sha256 of
 * the language, the compiler's identity, the normalised options, the entry and every source
 * file's name and bytes. An entry holds the module and the diagnostics (warnings) of the compile
 * that made it, behind a header with the sha256 of its payload: an entry that is truncated,
 * corrupt or tampered with (its digest or its module does not check out) is deleted and the
 * source recompiled, never trusted. Writes are atomic (a private temp file, then rename), so a
 * reader never sees half an entry. Least recently used entries are evicted past `maxBytes`.
 * The directory must belong to this user and not be writable by others, or it is not used.
 *
 * Location: `CAPLET_CACHE_DIR`, else `$XDG_CACHE_HOME/caplet`, else `~/.cache/caplet`.
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  constants as fsc,
} from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Diagnostic } from './diagnostics.js'
import { bound } from './diagnostics.js'

export const DEFAULT_CACHE_MAX_BYTES = 512 * 1024 * 1024
// Part of every key: bump it when caplet's own compile steps change what a source compiles to
// (v2: `--lang` for an entry whose extension names another language was ignored before).
const MAGIC = 'caplet-compile-cache-v2\n'
const ENTRY = /^[0-9a-f]{64}\.entry$/
/** An entry larger than this is not read (the largest module a compile may produce, plus room). */
const MAX_ENTRY_BYTES = 512 * 1024 * 1024

export interface CacheSettings {
  /** The cache directory (default: see the module comment). */
  dir?: string
  /** Evict least recently used entries past this many bytes (default 512 MiB). */
  maxBytes?: number
}

export interface CachedCompile {
  module: Uint8Array<ArrayBuffer>
  diagnostics: Diagnostic[]
}

export function defaultCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.CAPLET_CACHE_DIR) return env.CAPLET_CACHE_DIR
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'caplet')
  return join(homedir(), '.cache', 'caplet')
}

/** sha256 over a canonical encoding of everything that determines the compile's output. */
export function cacheKey(parts: {
  language: string
  compiler: string
  options: unknown
  entry: string | undefined
  files: ReadonlyMap<string, Uint8Array>
}): string {
  const h = createHash('sha256')
  const field = (s: string | Uint8Array) => {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s
    const len = Buffer.alloc(8)
    len.writeBigUInt64LE(BigInt(b.byteLength))
    h.update(len)
    h.update(b)
  }
  field(MAGIC)
  field(parts.language)
  field(parts.compiler)
  field(canonicalJson(parts.options))
  field(parts.entry ?? '')
  for (const [name, bytes] of [...parts.files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    field(name)
    field(bytes)
  }
  return h.digest('hex')
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}

export class CompileCache {
  readonly dir: string
  readonly maxBytes: number
  #usable: boolean | undefined

  constructor(settings: CacheSettings = {}) {
    this.dir = settings.dir ?? defaultCacheDir()
    this.maxBytes = settings.maxBytes ?? DEFAULT_CACHE_MAX_BYTES
  }

  /** Creates the directory (0700) if needed; false when it cannot be used safely. */
  #ready(): boolean {
    if (this.#usable !== undefined) return this.#usable
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 })
      const st = lstatSync(this.dir)
      const uid = process.getuid?.()
      this.#usable = st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0
    } catch {
      this.#usable = false
    }
    return this.#usable
  }

  #path(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`bad cache key ${key}`)
    return join(this.dir, `${key}.entry`)
  }

  /** The entry for `key`, or undefined when absent, unreadable or failing its checks (then deleted). */
  get(key: string): CachedCompile | undefined {
    return this.#load(key, decodeEntry)
  }

  /**
   * Raw bytes stored by `putBytes` under `key` (any other caplet cache, e.g. the module analysis
   * cache), or undefined when absent or failing the digest check (then deleted). The digest
   * catches corruption, not a forger: the caller still checks that what it reads makes sense.
   */
  getBytes(key: string): Uint8Array | undefined {
    return this.#load(key, decodeBytes)
  }

  /** Stores raw bytes under `key` (see `getBytes`), atomically, then evicts past `maxBytes`. */
  putBytes(key: string, value: Uint8Array): void {
    this.#store(key, () => encodeBytes(value))
  }

  #load<T>(key: string, decode: (bytes: Buffer) => T | undefined): T | undefined {
    if (!this.#ready()) return undefined
    const file = this.#path(key)
    let fd: number
    try {
      fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW)
    } catch {
      return undefined
    }
    let bytes: Buffer
    try {
      const st = fstatSync(fd)
      if (!st.isFile() || st.size > MAX_ENTRY_BYTES) {
        this.#drop(file)
        return undefined
      }
      bytes = Buffer.alloc(st.size)
      let off = 0
      while (off < bytes.length) {
        const n = readSync(fd, bytes, off, bytes.length - off, off)
        if (n === 0) break
        off += n
      }
      if (off !== bytes.length) {
        this.#drop(file)
        return undefined
      }
    } catch {
      return undefined
    } finally {
      closeSync(fd)
    }
    const entry = decode(bytes)
    if (entry === undefined) {
      this.#drop(file)
      return undefined
    }
    try {
      const now = new Date()
      utimesSync(file, now, now)
    } catch {
      /* LRU order is a hint */
    }
    return entry
  }

  /** Stores an entry atomically, then evicts past `maxBytes`. Failures are ignored (a cache). */
  put(key: string, value: CachedCompile): void {
    this.#store(key, () => encodeEntry(value))
  }

  #store(key: string, encode: () => Buffer): void {
    if (!this.#ready()) return
    const file = this.#path(key)
    const tmp = join(this.dir, `.tmp-${randomBytes(8).toString('hex')}`)
    try {
      writeFileSync(tmp, encode(), { flag: 'wx', mode: 0o600 })
      renameSync(tmp, file)
    } catch {
      try {
        unlinkSync(tmp)
      } catch {
        /* not created */
      }
      return
    }
    this.#evict(file)
  }

  #drop(file: string): void {
    try {
      unlinkSync(file)
    } catch {
      /* gone already */
    }
  }

  #evict(keep: string): void {
    let entries: { file: string; size: number; used: number }[]
    try {
      entries = readdirSync(this.dir)
        .filter((n) => ENTRY.test(n))
        .flatMap((n) => {
          const file = join(this.dir, n)
          try {
            const st = statSync(file)
            return [{ file, size: st.size, used: st.mtimeMs }]
          } catch {
            return []
          }
        })
    } catch {
      return
    }
    let total = entries.reduce((s, e) => s + e.size, 0)
    if (total <= this.maxBytes) return
    entries.sort((a, b) => a.used - b.used)
    for (const e of entries) {
      if (total <= this.maxBytes) break
      if (e.file === keep && entries.length > 1) continue
      this.#drop(e.file)
      total -= e.size
    }
  }
}

const BYTES_MAGIC = 'caplet-bytes-v1\n'

/** BYTES_MAGIC, sha256(payload) as 64 hex digits and '\n', then the payload. */
function encodeBytes(value: Uint8Array): Buffer {
  const digest = createHash('sha256').update(value).digest('hex')
  return Buffer.concat([Buffer.from(`${BYTES_MAGIC}${digest}\n`, 'latin1'), value])
}

function decodeBytes(bytes: Buffer): Uint8Array | undefined {
  const head = BYTES_MAGIC.length + 65
  if (bytes.length < head || bytes.subarray(0, BYTES_MAGIC.length).toString('latin1') !== BYTES_MAGIC) return undefined
  if (bytes[head - 1] !== 0x0a) return undefined
  const payload = bytes.subarray(head)
  if (createHash('sha256').update(payload).digest('hex') !== bytes.subarray(BYTES_MAGIC.length, head - 1).toString('latin1'))
    return undefined
  return new Uint8Array(payload)
}

/** MAGIC, sha256(payload) as 64 hex digits and '\n', then payload = u32 json length, json, module. */
function encodeEntry(value: CachedCompile): Buffer {
  const json = Buffer.from(JSON.stringify(value.diagnostics), 'utf8')
  const len = Buffer.alloc(4)
  len.writeUInt32LE(json.length)
  const payload = Buffer.concat([len, json, value.module])
  const digest = createHash('sha256').update(payload).digest('hex')
  return Buffer.concat([Buffer.from(MAGIC, 'latin1'), Buffer.from(`${digest}\n`, 'latin1'), payload])
}

function decodeEntry(bytes: Buffer): CachedCompile | undefined {
  const head = MAGIC.length + 65
  if (bytes.length < head + 4) return undefined
  if (bytes.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) return undefined
  const digest = bytes.subarray(MAGIC.length, MAGIC.length + 64).toString('latin1')
  if (bytes[MAGIC.length + 64] !== 0x0a) return undefined
  const payload = bytes.subarray(head)
  if (createHash('sha256').update(payload).digest('hex') !== digest) return undefined
  const jsonLen = payload.readUInt32LE(0)
  if (4 + jsonLen > payload.length) return undefined
  let diagnostics: Diagnostic[]
  try {
    const parsed = JSON.parse(payload.subarray(4, 4 + jsonLen).toString('utf8')) as unknown
    if (!Array.isArray(parsed) || !parsed.every(isDiagnostic)) return undefined
    diagnostics = bound(parsed)
  } catch {
    return undefined
  }
  const module = new Uint8Array(payload.subarray(4 + jsonLen))
  // A WebAssembly module, or a script program (JSON, checked again by compile()).
  if (!WebAssembly.validate(module) && module[0] !== 0x7b) return undefined
  return { module, diagnostics }
}

function isDiagnostic(d: unknown): d is Diagnostic {
  if (typeof d !== 'object' || d === null) return false
  const o = d as Record<string, unknown>
  return (
    (o.severity === 'error' || o.severity === 'warning' || o.severity === 'note') &&
    typeof o.message === 'string' &&
    (o.file === undefined || typeof o.file === 'string') &&
    (o.line === undefined || Number.isSafeInteger(o.line)) &&
    (o.column === undefined || Number.isSafeInteger(o.column))
  )
}
