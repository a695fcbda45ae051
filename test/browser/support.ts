/**
 * @module Browser-test support: a static server on 127.0.0.1 (port 0) over the repository's
 * built bundles, samples and fixtures (plain headers: no COOP/COEP, so pages are NOT
 * cross-origin isolated, as on an ordinary static host), and headless Chromium through
 * playwright-core with the system's `/usr/bin/chromium` (never a downloaded browser).
 * `--no-sandbox` is passed only when running as root, where Chromium refuses to start its own
 * OS sandbox; it concerns the test browser's process sandbox, not caplet's.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize, resolve } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

export const repoRoot = resolve(import.meta.dirname, '../..')
export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.c': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
}
/** Only these folders are served. */
const SERVED = ['dist/', 'samples/', 'test/fixtures/wasm/', 'test/browser/pages/']

export interface StaticServer {
  origin: string
  /** Extra in-memory files (path -> body), e.g. bundles built for a test. */
  files: Map<string, string | Uint8Array>
  close(): Promise<void>
}

export async function startServer(): Promise<StaticServer> {
  const files = new Map<string, string | Uint8Array>()
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '')
    const extra = files.get(`/${path}`)
    const type = TYPES[extname(path)] ?? 'application/octet-stream'
    if (extra !== undefined) {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(extra)
      return
    }
    const file = normalize(join(repoRoot, path))
    if (!file.startsWith(repoRoot + '/') || !SERVED.some((d) => path.startsWith(d)) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found')
      return
    }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' })
    res.end(readFileSync(file))
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    files,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      }),
  }
}

export async function launchChromium(): Promise<Browser> {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: asRoot ? ['--no-sandbox'] : [] })
}

/** memfs bundled for the browser (with the usual polyfills), as an ES module exporting `Volume`. */
export async function bundleMemfs(): Promise<string> {
  const { build } = await import('esbuild')
  const alias = {
    'node:buffer': 'buffer',
    'node:events': 'events',
    'node:path': 'path-browserify',
    'node:stream': 'readable-stream',
    'node:url': 'url',
    'node:process': 'process/browser.js',
  }
  const r = await build({
    entryPoints: [join(repoRoot, 'test/browser/pages/memfs-entry.mjs')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    alias,
    inject: [join(repoRoot, 'test/browser/pages/node-globals.mjs')],
    define: { global: 'globalThis' },
    logLevel: 'error',
  })
  return r.outputFiles[0]!.text
}
