// Bundles caplet from its TypeScript sources into bench/.build/caplet/ (index.js, worker.js),
// so the bench measures the working tree without depending on (or racing) dist/.
// Also exports the engine-tier helpers of runtime/module.ts that the bench drives directly.
import { mkdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { build } from 'esbuild'
import { ROOT, BUILD } from './paths.mjs'

/**
 * @param name output folder under bench/.build/
 * @param overrides source path (relative to the repository) -> contents to bundle instead
 */
export async function buildCaplet(name = 'caplet', overrides = {}) {
  const outdir = join(BUILD, name)
  mkdirSync(outdir, { recursive: true })
  const plugins =
    Object.keys(overrides).length === 0
      ? []
      : [
          {
            name: 'overrides',
            setup(b) {
              b.onLoad({ filter: /\.ts$/ }, (args) => {
                const rel = relative(ROOT, args.path)
                return rel in overrides ? { contents: overrides[rel], loader: 'ts' } : undefined
              })
            },
          },
        ]
  const common = { bundle: true, format: 'esm', target: 'node20', platform: 'node', logLevel: 'warning', absWorkingDir: ROOT, plugins }
  await Promise.all([
    build({
      ...common,
      stdin: {
        contents: [
          "export * from './runtime/index.ts'",
          "export * from './wasi-host/index.ts'",
          "export { withTierHints, compilationHintsSupported, TIERS } from './runtime/module.ts'",
          "export { tierHints } from './runtime/instrument/index.ts'",
          "export { meterFuel, setFuel, remainingFuel } from './runtime/instrument/index.ts'",
        ].join('\n'),
        resolveDir: ROOT,
        loader: 'ts',
        sourcefile: 'bench-entry.ts',
      },
      outfile: join(outdir, 'index.js'),
    }),
    build({ ...common, entryPoints: [join(ROOT, 'runtime/worker/entry.ts')], outfile: join(outdir, 'worker.js') }),
  ])
  return join(outdir, 'index.js')
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await buildCaplet())
