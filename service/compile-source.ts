/**
 * @module `source: { language, files }` in `POST /v1/runs`: the toolchain's `compile()` (loaded on
 * first use), its errors as API errors (a compile error is 422 with the diagnostics, a compiler
 * missing here 501), and compiled modules cached by the content hash of the source (one compile
 * for concurrent requests of the same source). It must never pass a client's compiler flags,
 * never answer anything but a WebAssembly module, and never put a host path in an error.
 */
import { sha256Hex } from './config.js'
import { ApiError } from './errors.js'
import type { CompileSource, SourceRequest } from './modules.js'

export interface ToolchainCompilerOptions {
  /** Largest module the compiler may produce (the server's module cap). */
  maxModuleBytes: number
  /** Wall-time limit for one compile, ms. */
  timeoutMs?: number
  /** The toolchain's own disk cache (default on; false in tests). */
  diskCache?: false
}

/** Diagnostics kept in a 422 (the toolchain already bounds them; a reply stays small). */
const MAX_DIAGNOSTICS = 50

/** `compile()` from the toolchain, its result narrowed to a WebAssembly module. */
export function toolchainCompiler(o: ToolchainCompilerOptions): CompileSource {
  return async (source) => {
    const tc = await import('../toolchain/index.js')
    let result: unknown
    try {
      result = await tc.compile({
        language: source.language,
        files: source.files,
        options: { timeout: o.timeoutMs ?? 30_000, maxOutput: o.maxModuleBytes, ...(o.diskCache === false ? { cache: false } : {}) },
      })
    } catch (e) {
      if (e instanceof tc.CompileError) {
        const diagnostics = e.diagnostics.slice(0, MAX_DIAGNOSTICS)
        const problems = diagnostics.map((d) => tc.formatDiagnostic(d))
        const message = e.limit
          ? `compilation stopped by its limit (${e.limit})`
          : `the source did not compile: ${e.reason.split('\n')[0]!.slice(0, 300)}`
        throw new ApiError(422, 'compile-error', message, problems.length > 0 ? problems : undefined, undefined, { diagnostics })
      }
      if (e instanceof tc.ToolchainError)
        throw new ApiError(
          501,
          'source-unsupported',
          `this server cannot compile ${source.language}: ${e.reason.split('\n')[0]!.slice(0, 300)}`,
        )
      throw e
    }
    return moduleOf(result, source.language)
  }
}

/**
 * The module in a compile result. Today's `CompileResult` is `{ module, ... }`; a result may
 * also carry `kind` ('wasm' | 'script'): anything but a wasm module is refused (422).
 */
export function moduleOf(result: unknown, language: string): Uint8Array {
  const r = (typeof result === 'object' && result !== null ? result : {}) as { kind?: unknown; module?: unknown }
  if (r.kind !== undefined && r.kind !== 'wasm') {
    throw new ApiError(
      422,
      'source-unsupported',
      `${language} compiles to a ${String(r.kind).slice(0, 32)}, not a WebAssembly module; this server runs modules only`,
    )
  }
  if (!(r.module instanceof Uint8Array)) throw new ApiError(422, 'source-unsupported', `compiling ${language} gave no WebAssembly module`)
  return r.module
}

/** The content hash of a source: language and files, in a canonical order. */
export const sourceHash = (s: SourceRequest) =>
  sha256Hex(JSON.stringify([s.language, Object.entries(s.files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]))

/**
 * Wraps a compiler with a cache by source hash, bounded in total bytes (oldest first), and
 * shares one compile among concurrent requests for the same source. Failures are not cached.
 * At most `maxConcurrent` compiles run at once, server-wide (each is a worker with up to a
 * GiB of heap, or a clang process); the rest wait their turn.
 */
export function cacheCompiles(compile: CompileSource, maxBytes = 64 * 2 ** 20, maxConcurrent = 2): CompileSource {
  const done = new Map<string, Uint8Array>()
  const inFlight = new Map<string, Promise<Uint8Array>>()
  let bytes = 0
  let running = 0
  const waiting: (() => void)[] = []
  const limited = async (source: Parameters<CompileSource>[0]): Promise<Uint8Array> => {
    if (running >= maxConcurrent) await new Promise<void>((go) => waiting.push(go))
    else running++
    try {
      return await compile(source)
    } finally {
      // The slot passes straight to the next waiter (running stays counted), or is freed.
      const next = waiting.shift()
      if (next) next()
      else running--
    }
  }
  return (source) => {
    const key = sourceHash(source)
    const hit = done.get(key)
    if (hit) {
      done.delete(key)
      done.set(key, hit)
      return Promise.resolve(hit)
    }
    let p = inFlight.get(key)
    if (!p) {
      p = limited(source)
        .then((m) => {
          if (m.byteLength <= maxBytes) {
            while (bytes + m.byteLength > maxBytes && done.size > 0) {
              const [k, v] = done.entries().next().value as [string, Uint8Array]
              done.delete(k)
              bytes -= v.byteLength
            }
            done.set(key, m)
            bytes += m.byteLength
          }
          return m
        })
        .finally(() => inFlight.delete(key))
      inFlight.set(key, p)
    }
    return p
  }
}
