/**
 * @module The module pipeline: load (path, bytes, URL), validate, compile once per process
 * (cached by content hash), and check imports against what the host provides before anything
 * runs, so an unknown import is refused by name rather than failing at link time.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { WASI_PREVIEW1_FUNCTIONS } from '../wasi-host/index.js'
import { ModuleError } from './errors.js'

export type ModuleSource = string | URL | Uint8Array | ArrayBuffer | WebAssembly.Module

const PROVIDED = new Set(WASI_PREVIEW1_FUNCTIONS)
const cache = new Map<string, WebAssembly.Module>()
const CACHE_MAX = 64

function readSource(source: string | URL): Uint8Array {
  const path = source instanceof URL ? fileURLToPath(source) : source
  try {
    return readFileSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : String(code ?? e)
    throw new ModuleError(`cannot read module ${JSON.stringify(path)}: ${why}`, { cause: e })
  }
}

/** Compiles (or reuses) a module and checks its imports. @throws ModuleError */
export function loadModule(source: ModuleSource): WebAssembly.Module {
  if (source instanceof WebAssembly.Module) {
    checkImports(source)
    return source
  }
  const bytes = typeof source === 'string' || source instanceof URL ? readSource(source) : new Uint8Array(source)
  const key = createHash('sha256').update(bytes).digest('hex')
  let mod = cache.get(key)
  if (mod === undefined) {
    if (bytes.byteLength < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new ModuleError('not a WebAssembly module (no "\\0asm" header); compile it for wasm32-wasi first')
    }
    try {
      mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>)
    } catch (e) {
      throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
    }
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
    cache.set(key, mod)
  }
  checkImports(mod)
  return mod
}

/** @throws ModuleError naming every import the host does not provide. */
export function checkImports(mod: WebAssembly.Module): void {
  const unknown: string[] = []
  for (const imp of WebAssembly.Module.imports(mod)) {
    if (imp.module !== 'wasi_snapshot_preview1' || imp.kind !== 'function' || !PROVIDED.has(imp.name)) {
      unknown.push(`${imp.module}.${imp.name} (${imp.kind})`)
    }
  }
  if (unknown.length > 0) {
    throw new ModuleError(`module imports what caplet does not provide: ${unknown.join(', ')}`)
  }
  const exports = WebAssembly.Module.exports(mod)
  if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory')) {
    throw new ModuleError('module does not export its memory as "memory"')
  }
}
