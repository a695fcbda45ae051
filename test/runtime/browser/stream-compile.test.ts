/**
 * @module The browser's streaming loader (runtime/browser/stream-compile.ts), in Node (which has
 * Response, ReadableStream and compileStreaming): the decision to stream is taken on the early
 * sections however the body is cut into chunks (one byte at a time included), bytes the pipeline
 * would rewrite are never streamed, and a body that is not a module fails on its header.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readModuleResponse } from '../../../runtime/browser/stream-compile.js'
import { instrumentModule } from '../../../runtime/module-pipeline.js'
import { ROOT } from '../instrument/wasm.js'

const hello = new Uint8Array(readFileSync(join(ROOT, 'samples/hello.wasm')))
const capped = instrumentModule(hello, { memoryPages: 256 })

/** A response whose body arrives in chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size: number): Response {
  let at = 0
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.byteLength) {
        c.close()
        return
      }
      c.enqueue(bytes.slice(at, at + size))
      at += size
    },
  })
  return new Response(body)
}

describe('readModuleResponse', () => {
  it('streams bytes the pipeline leaves unchanged, however the body is cut', async () => {
    expect(capped).not.toBe(hello)
    for (const size of [1, 7, 100, 1 << 20]) {
      const r = await readModuleResponse(chunked(capped, size), { memoryPages: 256 })
      expect(r.bytes).toEqual(capped)
      const mod = await r.streamed
      expect(mod, `chunks of ${size}`).toBeInstanceOf(WebAssembly.Module)
      expect(WebAssembly.Module.exports(mod!).map((e) => e.name)).toContain('_start')
    }
  })

  it('never streams bytes the pipeline would rewrite (a lower memory cap, no maximum, fuel)', async () => {
    for (const [bytes, options] of [
      [capped, { memoryPages: 16 }],
      [hello, { memoryPages: 256 }],
      [capped, { memoryPages: 256, fuel: true }],
    ] as const) {
      for (const size of [1, 64, 1 << 20]) {
        const r = await readModuleResponse(chunked(bytes, size), options)
        expect(r.streamed).toBeUndefined()
        expect(r.bytes).toEqual(bytes)
      }
    }
  })

  it('refuses a body that is not a module on its header, and a memory minimum above the cap', async () => {
    const html = new TextEncoder().encode('<!doctype html><p>fallback page</p>'.repeat(100))
    await expect(readModuleResponse(chunked(html, 3), {})).rejects.toThrow(/not a WebAssembly module \(no "\\0asm" header\)/)
    await expect(readModuleResponse(chunked(hello.slice(0, 5), 1), {})).rejects.toThrow(/not a WebAssembly module/)
    await expect(readModuleResponse(chunked(capped, 5), { memoryPages: 1 })).rejects.toThrow(/more than the memory limit of 64 KiB/)
    await expect(readModuleResponse(new Response('nope', { status: 404 }), {})).rejects.toThrow(/HTTP 404/)
  })

  it('a body cut off after the early sections streams nothing usable: the engine refuses it', async () => {
    // The early sections say "unchanged"; the rest is missing, so the streamed compile fails and the caller compiles (and reports) itself.
    const r = await readModuleResponse(chunked(capped.slice(0, Math.floor(capped.byteLength / 2)), 50), { memoryPages: 256 })
    expect(await r.streamed).toBeUndefined()
  })

  it('refuses a body over maxModuleBytes: on Content-Length before reading, else as it streams', async () => {
    const cap = 1024
    // An endless body: the reader must stop at the cap, not buffer what the server keeps sending.
    const endless = (contentLength?: number) => {
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          c.enqueue(sent === 0 ? capped.slice(0, 100) : new Uint8Array(100))
          sent += 100
        },
      })
      const headers: Record<string, string> = contentLength !== undefined ? { 'content-length': String(contentLength) } : {}
      return { response: new Response(body, { headers }), sent: () => sent }
    }
    for (const fuel of [false, true]) {
      const a = endless()
      await expect(readModuleResponse(a.response, { memoryPages: 256, fuel }, cap)).rejects.toThrow(
        /^\[caplet\] module response is more than 1 KiB, over the limit of 1 KiB \(maxModuleBytes\)$/,
      )
      expect(a.sent()).toBeLessThanOrEqual(cap + 300)
      const b = endless(5 * 1024 ** 3)
      await expect(readModuleResponse(b.response, { fuel }, cap)).rejects.toThrow(
        /^\[caplet\] module response is 5 GiB \(Content-Length\), over the limit of 1 KiB \(maxModuleBytes\)$/,
      )
      expect(b.sent()).toBeLessThanOrEqual(300)
    }
    // The default is 256 MiB; a module under the cap, exactly at it, still loads.
    await expect(readModuleResponse(chunked(capped, 1000), {}, capped.byteLength)).resolves.toMatchObject({ bytes: capped })
    await expect(readModuleResponse(chunked(capped, 1000), {}, capped.byteLength - 1)).rejects.toThrow(/maxModuleBytes/)
    const dflt = endless(300 * 1024 ** 2)
    await expect(readModuleResponse(dflt.response, {})).rejects.toThrow(/300 MiB \(Content-Length\), over the limit of 256 MiB/)
  })
})
