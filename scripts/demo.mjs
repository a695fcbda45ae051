// Builds the demo page (samples/web/) into samples/web/dist/ and, unless --build-only, serves
// samples/web/ with esbuild's own server on 127.0.0.1 (`npm run demo`; PORT=8000 to choose).
// The sample modules are copied beside the bundles so the page fetches them once and runs offline.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { context } from 'esbuild'
import { browserShims } from './browser-shims.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'samples/web/dist')

/** The modules the page offers, from where they are built. */
export const DEMO_MODULES = {
  'hello.wasm': 'samples/hello.wasm',
  'cat.wasm': 'samples/cat.wasm',
  'ls.wasm': 'samples/ls.wasm',
  'tee.wasm': 'samples/tee.wasm',
  'fuel_spin.wasm': 'test/fixtures/wasm/fuel_spin.wasm',
  'rt_grow.wasm': 'test/fixtures/wasm/rt_grow.wasm',
  'escape.wasm': 'test/fixtures/wasm/escape.wasm',
  'deny_probe.wasm': 'test/fixtures/wasm/deny_probe.wasm',
}

export async function demoContext() {
  rmSync(out, { recursive: true, force: true })
  mkdirSync(join(out, 'wasm'), { recursive: true })
  for (const [name, from] of Object.entries(DEMO_MODULES)) copyFileSync(join(root, from), join(out, 'wasm', name))
  return context({
    entryPoints: { app: join(root, 'samples/web/app.ts'), 'browser-worker': join(root, 'runtime/browser/worker.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    outdir: out,
    plugins: [browserShims],
    logLevel: 'warning',
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ctx = await demoContext()
  await ctx.rebuild()
  if (process.argv.includes('--build-only')) {
    await ctx.dispose()
  } else {
    const { hosts, port } = await ctx.serve({
      servedir: join(root, 'samples/web'),
      host: '127.0.0.1',
      port: Number(process.env.PORT ?? 8000),
    })
    console.log(`caplet demo: http://${hosts[0]}:${port}/  (Ctrl-C to stop)`)
  }
}
