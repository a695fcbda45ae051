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
import { capMemory, InstrumentError, meterFuel } from './instrument/index.js'
import { formatSize } from './units.js'

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

export interface LoadOptions {
  /** Cap linear memory at this many 64 KiB pages (the module is rewritten). */
  memoryPages?: number | undefined
  /** Instrument for fuel metering. */
  fuel?: boolean
  /** Only these WASI functions may be imported. */
  syscalls?: readonly string[] | undefined
}

/**
 * Compiles (or reuses) a module, instrumented as asked, and checks its imports.
 * Compiled modules are cached per process by content hash and instrumentation.
 * @throws ModuleError
 */
export function loadModule(source: ModuleSource, options: LoadOptions = {}): WebAssembly.Module {
  if (source instanceof WebAssembly.Module) {
    if (options.memoryPages !== undefined || options.fuel) {
      throw new ModuleError('memory and fuel limits need the module bytes, not a compiled WebAssembly.Module')
    }
    checkImports(source, options.syscalls)
    return source
  }
  const bytes = typeof source === 'string' || source instanceof URL ? readSource(source) : new Uint8Array(source)
  const key = `${createHash('sha256').update(bytes).digest('hex')}:${options.memoryPages ?? ''}:${options.fuel ? 'fuel' : ''}`
  let mod = cache.get(key)
  if (mod === undefined) {
    if (bytes.byteLength < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new ModuleError('not a WebAssembly module (no "\\0asm" header); compile it for wasm32-wasi first')
    }
    if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
      try {
        new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>)
      } catch (e) {
        throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
      }
    }
    const code = instrumentFor(bytes, options)
    try {
      mod = new WebAssembly.Module(code as Uint8Array<ArrayBuffer>)
    } catch (e) {
      throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
    }
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
    cache.set(key, mod)
  }
  checkImports(mod, options.syscalls)
  return mod
}

function instrumentFor(bytes: Uint8Array, options: LoadOptions): Uint8Array {
  let code = bytes
  try {
    if (options.memoryPages !== undefined) code = capMemory(code, options.memoryPages).bytes
    if (options.fuel) code = meterFuel(code).bytes
  } catch (e) {
    if (e instanceof InstrumentError && e.code === 'MEMORY_MIN_EXCEEDS_CAP') {
      const { minPages = 0, capPages = 0 } = e.details
      throw new ModuleError(`the module needs ${formatSize(minPages * 65536)} of memory to start, more than the memory limit of ${formatSize(capPages * 65536)}; raise limits.memory (--memory)`, { cause: e })
    }
    if (e instanceof InstrumentError) throw new ModuleError(e.message.replace(/^\[caplet\] /, ''), { cause: e })
    throw e
  }
  return code
}

/**
 * @throws ModuleError naming every import the host does not provide, or the policy's
 * syscall allow-list does not grant.
 */
export function checkImports(mod: WebAssembly.Module, allowed?: readonly string[]): void {
  const unknown: string[] = []
  const denied: string[] = []
  const allow = allowed ? new Set(allowed) : undefined
  for (const imp of WebAssembly.Module.imports(mod)) {
    if (imp.module !== 'wasi_snapshot_preview1' || imp.kind !== 'function' || !PROVIDED.has(imp.name)) {
      unknown.push(`${imp.module}.${imp.name} (${imp.kind})`)
    } else if (allow && !allow.has(imp.name)) denied.push(imp.name)
  }
  if (unknown.length > 0) {
    throw new ModuleError(`module imports what caplet does not provide: ${unknown.join(', ')}`)
  }
  if (denied.length > 0) {
    throw new ModuleError(`module imports WASI functions the policy does not allow: ${denied.join(', ')} (add them to syscalls)`)
  }
  const exports = WebAssembly.Module.exports(mod)
  if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory')) {
    throw new ModuleError('module does not export its memory as "memory"')
  }
}
