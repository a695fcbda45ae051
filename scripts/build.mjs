// Builds dist/ with esbuild: the CLI, the Node API (`caplet`, `caplet/node`) and the
// platform-neutral WASI host (`caplet/wasi-host`), plus their `.d.ts` (tsc, `tsconfig.build.json`).
import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import { browserEntries, browserShims } from './browser-shims.mjs'

rmSync('dist', { recursive: true, force: true })

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const declarations = promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json']).catch((e) => {
  throw new Error(`declarations: ${e.stdout || e.message}`)
})

// The service's server libraries (caplet serve/worker) stay in node_modules, loaded only by those commands.
const SERVICE_PACKAGES = ['hono', '@hono/node-server', 'bullmq', 'ioredis', 'pino', 'prom-client']
// Full `zod` (the service's schemas) stays in node_modules too: bundled, its 70 locales would share
// a chunk with the policy's `zod/mini` and every `caplet run` would parse them. Only the bare
// specifier: esbuild's `external` would also take `zod/mini`.
const fullZodExternal = {
  name: 'full-zod-external',
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, () => ({ path: 'zod', external: true }))
  },
}
const common = { bundle: true, format: 'esm', target: 'node20', sourcemap: true, logLevel: 'warning' }
// Compilers stay in node_modules, loaded only when a source is compiled: esbuild (the JS/TS guest
// compiler) ships a native binary; wabt and AssemblyScript are large.
const nodeExternal = ['esbuild', 'wabt', 'assemblyscript', 'assemblyscript/*', '@assemblyscript/*', 'typescript', 'yocto-spinner']
const toolchainExternal = nodeExternal
await Promise.all([
  // One build with shared chunks, so `caplet`, `caplet/node` and `caplet/wasi-host` share one copy
  // of each class (a `WasiError` thrown by a `caplet/wasi-host` backend is the host's `WasiError`).
  // The `wasi-host` entry reaches no Node module (a test bundles it for the browser).
  build({
    ...common,
    platform: 'node',
    outdir: 'dist',
    splitting: true,
    external: [...nodeExternal, ...SERVICE_PACKAGES],
    plugins: [fullZodExternal],
    entryPoints: {
      cli: 'runtime/cli-main.ts',
      index: 'runtime/index.ts',
      node: 'wasi-host/node/index.ts',
      'wasi-host': 'wasi-host/index.ts',
    },
  }),
  // The compiler worker (WAT, AssemblyScript, the TypeScript check) under a time limit and heap cap.
  build({
    ...common,
    platform: 'node',
    entryPoints: { 'compiler-worker': 'toolchain/compiler-worker-entry.ts' },
    outdir: 'dist',
    external: toolchainExternal,
  }),
  // The worker is its own bundle, so starting one loads only what running a guest needs; the
  // JavaScript engine's driver is a chunk of its own, imported by the first script job.
  build({
    ...common,
    platform: 'node',
    external: nodeExternal,
    splitting: true,
    entryPoints: { worker: 'runtime/worker/entry.ts' },
    outdir: 'dist',
    chunkNames: 'worker-[name]-[hash]',
  }),
  build({
    ...common,
    platform: 'node',
    external: nodeExternal,
    entryPoints: {
      'bridge-helper': 'runtime/worker/bridge-helper-entry.ts',
      'plugin-worker': 'runtime/plugin/worker-entry.ts',
    },
    outdir: 'dist',
  }),
  // caplet/browser: the page's API and the guest's Web Worker, Node-only modules swapped out.
  build({ ...common, platform: 'browser', target: 'es2022', entryPoints: browserEntries, outdir: 'dist', plugins: [browserShims] }),
  declarations,
])
