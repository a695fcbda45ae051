/**
 * @module The browser's module loader: takes bytes, an `ArrayBuffer`, a `Response`, a URL (or URL
 * string, fetched) or a compiled `WebAssembly.Module`, runs the shared pipeline
 * (`module-pipeline.ts`: validation, table and memory caps, fuel, import checks) and compiles
 * asynchronously in a guest worker (`compileInWorker`), so neither the rewriting nor the compile of
 * a large module holds up the page's thread; only the import check runs here.
 * Compiled modules are cached per page by the SHA-256 of the bytes and the instrumentation where
 * `crypto.subtle` exists (secure contexts); elsewhere every prepare compiles.
 *
 * NOTE: `WebAssembly.compileStreaming` would compile while the bytes arrive, but only bytes
 * that reach the engine unchanged can stream, and caplet always rewrites a module (tables are
 * always capped, memory capped by default), so a `Response` is read whole and then compiled.
 */
import { ModuleError } from '../errors.js'
import { checkImports, isCommand, type InstrumentOptions } from '../module-pipeline.js'

/** Where module bytes come from (a compiled module is handled apart). */
export type BrowserModuleBytes = Uint8Array | ArrayBuffer | Response | URL | string
export type BrowserModuleSource = BrowserModuleBytes | WebAssembly.Module

const cache = new Map<string, WebAssembly.Module>()
const CACHE_MAX = 32

async function bytesOf(source: BrowserModuleBytes): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source.slice()
  if (source instanceof ArrayBuffer) {
    try { return new Uint8Array(source.slice(0)) } catch (e) { throw new ModuleError(`cannot read the module bytes: ${(e as Error).message}`, { cause: e }) }
  }
  let response: Response
  if (typeof Response !== 'undefined' && source instanceof Response) response = source
  else {
    const url = typeof source === 'string' ? new URL(source, globalThis.location?.href) : source as URL
    try {
      response = await fetch(url)
    } catch (e) {
      throw new ModuleError(`cannot fetch module ${url.href}: ${(e as Error).message}`, { cause: e })
    }
  }
  if (!response.ok) throw new ModuleError(`cannot fetch module ${response.url || '(response)'}: HTTP ${response.status}`)
  try {
    return new Uint8Array(await response.arrayBuffer())
  } catch (e) {
    throw new ModuleError(`cannot read module response: ${(e as Error).message}`, { cause: e })
  }
}

async function digest(bytes: Uint8Array): Promise<string | undefined> {
  const subtle = globalThis.crypto?.subtle
  if (subtle === undefined) return undefined
  const d = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')
}

export interface BrowserLoadOptions extends InstrumentOptions {
  syscalls?: readonly string[] | undefined
  /** Validates, rewrites and compiles the bytes (the shared pipeline), elsewhere. @throws ModuleError */
  compile: (bytes: Uint8Array, options: InstrumentOptions) => Promise<WebAssembly.Module>
}

/** Loads a WASI command module for the browser. @throws ModuleError */
export async function loadBrowserModule(source: BrowserModuleSource, options: BrowserLoadOptions): Promise<WebAssembly.Module> {
  let mod: WebAssembly.Module
  if (source instanceof WebAssembly.Module) {
    if (options.memoryPages !== undefined || options.fuel) {
      throw new ModuleError('memory and fuel limits need the module bytes, not a compiled WebAssembly.Module')
    }
    mod = source
  } else {
    if (source === null || !['object', 'string'].includes(typeof source)) throw new ModuleError('module must be bytes, an ArrayBuffer, a Response, a URL or a WebAssembly.Module')
    const bytes = await bytesOf(source as BrowserModuleBytes)
    const d = await digest(bytes)
    const key = d === undefined ? undefined : `${d}:${options.memoryPages ?? ''}:${options.fuel ? 'fuel' : ''}`
    const hit = key === undefined ? undefined : cache.get(key)
    if (hit !== undefined) mod = hit
    else {
      mod = await options.compile(bytes, { memoryPages: options.memoryPages, fuel: options.fuel })
      if (key !== undefined) {
        if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
        cache.set(key, mod)
      }
    }
  }
  checkImports(mod, { syscalls: options.syscalls })
  if (!isCommand(mod)) {
    throw new ModuleError('module has no "_start" export: it is not a WASI command (a library or reactor module cannot be run)')
  }
  return mod
}

/** argv[0] for a module: the file name of a URL, else `main.wasm`. */
export function argv0Of(source: BrowserModuleSource): string {
  const url = typeof source === 'string' ? source : source instanceof URL ? source.pathname : typeof Response !== 'undefined' && source instanceof Response ? source.url : ''
  const name = url.split(/[?#]/)[0]!.split('/').pop()
  return name !== undefined && name !== '' ? decodeURIComponent(name) : 'main.wasm'
}
