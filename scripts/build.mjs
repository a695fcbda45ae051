// Builds dist/ with esbuild: the CLI, the Node API, and the platform-neutral WASI host.
import { rmSync } from 'node:fs'
import { build } from 'esbuild'
import { browserEntries, browserShims } from './browser-shims.mjs'

rmSync('dist', { recursive: true, force: true })

const common = { bundle: true, format: 'esm', target: 'node20', sourcemap: true, logLevel: 'warning' }
await Promise.all([
  build({ ...common, platform: 'node', entryPoints: { cli: 'runtime/cli-main.ts', index: 'runtime/index.ts' }, outdir: 'dist', splitting: true }),
  // The worker is its own bundle, so starting one loads only what running a guest needs.
  build({ ...common, platform: 'node', entryPoints: { worker: 'runtime/worker/entry.ts' }, outdir: 'dist' }),
  build({ ...common, platform: 'browser', target: 'es2022', entryPoints: { 'wasi-host': 'wasi-host/index.ts' }, outdir: 'dist' }),
  // caplet/browser: the page's API and the guest's Web Worker, Node-only modules swapped out.
  build({ ...common, platform: 'browser', target: 'es2022', entryPoints: browserEntries, outdir: 'dist', plugins: [browserShims] }),
])
