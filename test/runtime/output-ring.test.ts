import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createOutputRing, OutputRingReader } from '../../runtime/output-ring.js'

// The writing side runs on a worker thread, as the guest does; a tiny ring forces wrap-around
// and back-pressure on every few writes.
let dir: string
let ringUrl: string
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'caplet-ring-'))
  const out = join(dir, 'ring.mjs')
  await build({ entryPoints: ['runtime/output-ring.ts'], bundle: true, format: 'esm', platform: 'node', outfile: out, logLevel: 'silent' })
  ringUrl = pathToFileURL(out).href
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function writer(ring: SharedArrayBuffer, body: string): Promise<unknown> {
  const src = `
    import { workerData, parentPort } from 'node:worker_threads'
    const { ringSink } = await import(workerData.ringUrl)
    const out = ringSink(workerData.ring, 'stdout'), err = ringSink(workerData.ring, 'stderr')
    const enc = (s) => new TextEncoder().encode(s)
    try { ${body}; parentPort.postMessage('ok') } catch (e) { parentPort.postMessage(e.name + ' ' + e.errno) }
  `
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: { ring, ringUrl } })
  return new Promise((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
}

describe('the output ring of inherited streams', () => {
  it('delivers every byte of both streams in order through wrap-around and a full ring, to one file or two', async () => {
    for (const oneFile of [true, false]) {
      const a = join(dir, `a-${oneFile}`)
      const b = join(dir, `b-${oneFile}`)
      const fa = openSync(a, 'w')
      const fb = oneFile ? fa : openSync(b, 'w')
      const ring = createOutputRing(64)
      const reader = new OutputRingReader(ring, { stdout: fa, stderr: fb })
      // Chunks from 1 byte to several times the ring's size.
      expect(
        await writer(ring, `for (let i = 0; i < 300; i++) { (i % 3 ? out : err)(enc(String(i).padStart(1 + (i % 150), '.') + '|')) }`),
      ).toBe('ok')
      await reader.close()
      closeSync(fa)
      if (!oneFile) closeSync(fb)
      const all = Array.from({ length: 300 }, (_, i) => String(i).padStart(1 + (i % 150), '.') + '|')
      if (oneFile) expect(readFileSync(a, 'utf8')).toBe(all.join(''))
      else {
        expect(readFileSync(a, 'utf8')).toBe(all.filter((_, i) => i % 3).join(''))
        expect(readFileSync(b, 'utf8')).toBe(all.filter((_, i) => i % 3 === 0).join(''))
      }
    }
  })

  it('reports a reader that went away to the writer as EPIPE (errno 64), on the next write', async () => {
    closeSync(openSync(join(dir, 'closed'), 'w'))
    const fd = openSync(join(dir, 'closed'), 'r')
    const ring = createOutputRing(1024)
    const reader = new OutputRingReader(ring, { stdout: fd, stderr: fd })
    const r = await writer(ring, `out(enc('x')); const t = Date.now(); while (Date.now() - t < 300) {} ; out(enc('y'))`)
    await reader.close()
    closeSync(fd)
    expect(r).toBe('WasiError 64')
  })

  it('refuses a ring that is not a power of two', () => {
    expect(() => createOutputRing(100)).toThrow(RangeError)
  })
})
