/**
 * @module Loading a module from a `Response` with `WebAssembly.compileStreaming`, so the engine
 * compiles while the bytes arrive. The body is read once: each chunk is kept (for the cache key
 * and the pipeline) and passed on to the engine. Only bytes the shared pipeline leaves unchanged
 * may stream; that is decided on the sections it rewrites (imports, tables, memory), which come
 * before any code, by the same `instrumentModule` call. It must never hand back a module compiled
 * from bytes the pipeline would have rewritten: when they would be, the engine's stream is errored
 * and the bytes are compiled by the caller after the rewrite.
 */
import { concatBytes } from '../../wasi-host/abi/bytes.js'
import { ModuleError } from '../errors.js'
import { checkModuleHeader, instrumentModule, type InstrumentOptions } from '../module-pipeline.js'
import { formatSize } from '../units.js'

/** The most bytes a module's response may have unless `maxModuleBytes` says otherwise. */
export const DEFAULT_MAX_MODULE_BYTES = 256 * 1024 * 1024

function tooLarge(what: string, max: number): ModuleError {
  return new ModuleError(`module response is ${what}, over the limit of ${formatSize(max)} (maxModuleBytes)`)
}

export interface ReadModule {
  /** The whole body. */
  bytes: Uint8Array
  /** Compiled by `compileStreaming` as the bytes arrived: only when the pipeline leaves them unchanged. */
  streamed?: Promise<WebAssembly.Module | undefined>
}

/** Sections the pipeline reads or rewrites (type, import, function, table, memory): all before code. */
const EARLY_SECTIONS = new Set([1, 2, 3, 4, 5])

/** Where the early sections end, or undefined when more bytes are needed (or -1 when malformed). */
function earlyEnd(b: Uint8Array): number | undefined {
  let pos = 8
  for (;;) {
    if (pos >= b.byteLength) return undefined
    const id = b[pos]!
    if (id !== 0 && !EARLY_SECTIONS.has(id)) return pos
    let size = 0
    let at = pos + 1
    for (let shift = 0; ; shift += 7) {
      if (at >= b.byteLength) return undefined
      if (shift > 28) return -1
      const byte = b[at++]!
      size += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) break
    }
    pos = at + size
  }
}

/**
 * Reads a module's response, streaming it into the engine while the early sections say the
 * pipeline will not rewrite it. No more than `maxBytes` are read: a `Content-Length` over it is
 * refused before the body, a body that grows past it as it arrives. @throws ModuleError (HTTP
 * error, not a module, over a limit)
 */
export async function readModuleResponse(
  response: Response,
  options: InstrumentOptions,
  maxBytes: number = DEFAULT_MAX_MODULE_BYTES,
): Promise<ReadModule> {
  if (!response.ok) throw new ModuleError(`cannot fetch module ${response.url || '(response)'}: HTTP ${response.status}`)
  if (response.bodyUsed) throw new ModuleError('cannot read module response: its body was already read')
  const declared = Number(response.headers.get('content-length') ?? NaN)
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => {})
    throw tooLarge(`${formatSize(declared)} (Content-Length)`, maxBytes)
  }
  const body = response.body
  const canStream = typeof WebAssembly.compileStreaming === 'function' && !options.fuel
  if (body === null) {
    try {
      const bytes = new Uint8Array(await response.arrayBuffer())
      checkModuleHeader(bytes)
      return { bytes }
    } catch (e) {
      if (e instanceof ModuleError) throw e
      throw new ModuleError(`cannot read module response: ${(e as Error).message}`, { cause: e })
    }
  }
  let engine: ReadableStreamDefaultController<Uint8Array> | undefined
  const streamed: Promise<WebAssembly.Module | undefined> | undefined = canStream
    ? WebAssembly.compileStreaming(
        new Response(
          new ReadableStream<Uint8Array>({
            start: (c) => {
              engine = c
            },
          }),
          { headers: { 'content-type': 'application/wasm' } },
        ),
      ).catch(() => undefined)
    : undefined
  /** Stops the engine's compile: the bytes will be rewritten (or are not a module). */
  let streaming = canStream
  const stopStreaming = () => {
    if (streaming) {
      streaming = false
      engine?.error(new Error('not streamed'))
    }
  }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  // Without streaming there is nothing to decide: the caller compiles the pipeline's bytes.
  let decided = !canStream
  const decide = (prefix: Uint8Array) => {
    decided = true
    // Throws the pipeline's ModuleError (a memory minimum over the cap, too many tables) early.
    if (instrumentModule(prefix, options) !== prefix) stopStreaming()
  }
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>
      try {
        r = await reader.read()
      } catch (e) {
        throw new ModuleError(`cannot read module response: ${(e as Error).message}`, { cause: e })
      }
      if (r.done) break
      const chunk = r.value
      total += chunk.byteLength
      if (total > maxBytes) throw tooLarge(`more than ${formatSize(maxBytes)}`, maxBytes)
      chunks.push(chunk)
      if (streaming) engine!.enqueue(chunk)
      if (!decided && total >= 8) {
        const head = concatBytes(chunks, total)
        checkModuleHeader(head)
        const end = earlyEnd(head)
        if (end === -1) {
          decided = true
          stopStreaming()
        } else if (end !== undefined) decide(head.subarray(0, end))
      }
    }
    const bytes = concatBytes(chunks, total)
    checkModuleHeader(bytes)
    if (!decided) decide(bytes)
    if (!streaming) return { bytes }
    engine!.close()
    streaming = false
    return { bytes, streamed }
  } catch (e) {
    stopStreaming()
    await reader.cancel().catch(() => {})
    throw e
  }
}
