/**
 * @module The browser's module loader: bytes, `ArrayBuffer`, `Response`, URL or compiled module,
 * through the shared pipeline (`module-pipeline.ts`), compiled asynchronously in a guest worker so
 * the page's thread only runs the import check. A `Response` or URL the pipeline leaves unchanged
 * is compiled with `compileStreaming` (`stream-compile.ts`). Compiled modules are cached per page
 * by SHA-256 of bytes and instrumentation where `crypto.subtle` exists (secure contexts).
 */
import { ModuleError } from '../errors.js'
import { checkImports, isCommand, type InstrumentOptions } from '../module-pipeline.js'
import { readModuleResponse } from './stream-compile.js'

/** Where module bytes come from (a compiled module is handled apart). */
export type BrowserModuleBytes = Uint8Array | ArrayBuffer | Response | URL | string
export type BrowserModuleSource = BrowserModuleBytes | WebAssembly.Module

const cache = new Map<string, WebAssembly.Module>()
const CACHE_MAX = 32

/**
 * How a program's module was compiled: `stream` by `compileStreaming` as the response arrived (the
 * pipeline left the bytes unchanged), `worker` rewritten by the pipeline and compiled in a worker,
 * `cache` compiled earlier on this page from the same bytes and instrumentation, `module` the
 * caller's own `WebAssembly.Module`.
 */
export type CompiledFrom = 'stream' | 'worker' | 'cache' | 'module'

async function responseOf(source: Response | URL | string): Promise<Response> {
  if (typeof Response !== 'undefined' && source instanceof Response) return source
  const url = typeof source === 'string' ? new URL(source, globalThis.location?.href) : (source as URL)
  try {
    return await fetch(url)
  } catch (e) {
    throw new ModuleError(`cannot fetch module ${url.href}: ${(e as Error).message}`, { cause: e })
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
  /** The most bytes a `Response` or URL may have (default 256 MiB). */
  maxModuleBytes?: number | undefined
  /** Validates, rewrites and compiles the bytes (the shared pipeline), elsewhere. @throws ModuleError */
  compile: (bytes: Uint8Array, options: InstrumentOptions) => Promise<WebAssembly.Module>
}

/** A loaded module and how it was compiled. */
export interface LoadedModule {
  module: WebAssembly.Module
  compiledFrom: CompiledFrom
}

/** Loads a WASI command module for the browser. @throws ModuleError */
export async function loadBrowserModule(source: BrowserModuleSource, options: BrowserLoadOptions): Promise<LoadedModule> {
  let mod: WebAssembly.Module
  let compiledFrom: CompiledFrom
  if (source instanceof WebAssembly.Module) {
    if (options.memoryPages !== undefined || options.fuel) {
      throw new ModuleError('memory and fuel limits need the module bytes, not a compiled WebAssembly.Module')
    }
    mod = source
    compiledFrom = 'module'
  } else {
    if (source === null || !['object', 'string'].includes(typeof source))
      throw new ModuleError('module must be bytes, an ArrayBuffer, a Response, a URL or a WebAssembly.Module')
    const instrument: InstrumentOptions = { memoryPages: options.memoryPages, fuel: options.fuel }
    let bytes: Uint8Array
    let streamed: Promise<WebAssembly.Module | undefined> | undefined
    if (source instanceof Uint8Array) bytes = source.slice()
    else if (source instanceof ArrayBuffer) {
      try {
        bytes = new Uint8Array(source.slice(0))
      } catch (e) {
        throw new ModuleError(`cannot read the module bytes: ${(e as Error).message}`, { cause: e })
      }
    } else {
      const read = await readModuleResponse(await responseOf(source as Response | URL | string), instrument, options.maxModuleBytes)
      bytes = read.bytes
      streamed = read.streamed
    }
    const d = await digest(bytes)
    const key = d === undefined ? undefined : `${d}:${options.memoryPages ?? ''}:${options.fuel ? 'fuel' : ''}`
    const hit = key === undefined ? undefined : cache.get(key)
    const fromStream = hit === undefined ? await streamed : undefined
    if (hit !== undefined) {
      mod = hit
      compiledFrom = 'cache'
    } else if (fromStream !== undefined) {
      mod = fromStream
      compiledFrom = 'stream'
    } else {
      mod = await options.compile(bytes, instrument)
      compiledFrom = 'worker'
    }
    if (key !== undefined && hit === undefined) {
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
      cache.set(key, mod)
    }
  }
  checkImports(mod, { syscalls: options.syscalls })
  if (!isCommand(mod)) {
    throw new ModuleError('module has no "_start" export: it is not a WASI command (a library or reactor module cannot be run)')
  }
  return { module: mod, compiledFrom }
}

/** argv[0] for a module: the file name of a URL, else `main.wasm`. */
export function argv0Of(source: BrowserModuleSource): string {
  const url =
    typeof source === 'string'
      ? source
      : source instanceof URL
        ? source.pathname
        : typeof Response !== 'undefined' && source instanceof Response
          ? source.url
          : ''
  const name = url.split(/[?#]/)[0]!.split('/').pop()
  return name !== undefined && name !== '' ? decodeURIComponent(name) : 'main.wasm'
}
