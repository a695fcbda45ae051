// Builds dist/ with esbuild: the CLI, the Node API, and the platform-neutral WASI host.
import { build } from 'esbuild'

const common = { bundle: true, format: 'esm', target: 'node20', sourcemap: true, logLevel: 'warning' }
await Promise.all([
  build({ ...common, platform: 'node', entryPoints: { cli: 'runtime/cli-main.ts', index: 'runtime/index.ts' }, outdir: 'dist', splitting: true }),
  build({ ...common, platform: 'browser', target: 'es2022', entryPoints: { 'wasi-host': 'wasi-host/index.ts' }, outdir: 'dist' }),
])
