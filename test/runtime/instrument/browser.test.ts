import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { runInNewContext } from 'node:vm'
import { build, type Plugin } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { ROOT } from './wasm.js'

/** Fails the build on any Node built-in, with or without the `node:` prefix. */
const refuseNode: Plugin = {
  name: 'refuse-node',
  setup(b) {
    b.onResolve({ filter: /^(node:|fs$|path$|os$|crypto$|url$|buffer$)/ }, (args) => ({
      errors: [{ text: `Node import "${args.path}" in ${relative(ROOT, args.importer)}` }],
    }))
  },
}

describe('runtime/instrument in a browser', () => {
  it('bundles for platform browser and meters a module with only web globals', async () => {
    const result = await build({
      entryPoints: [join(ROOT, 'runtime/instrument/index.ts')],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'iife',
      globalName: 'instrument',
      target: 'es2022',
      plugins: [refuseNode],
      logLevel: 'silent',
    })
    expect(result.errors).toEqual([])
    const context: Record<string, unknown> = {
      WebAssembly,
      TextEncoder,
      TextDecoder,
      Uint8Array,
      input: new Uint8Array(readFileSync(join(ROOT, 'samples/hello.wasm'))),
    }
    runInNewContext(`${result.outputFiles[0]!.text}\nvar out = instrument.meterFuel(instrument.capMemory(input, 16).bytes).bytes`, context)
    expect(WebAssembly.validate(context.out as Uint8Array<ArrayBuffer>)).toBe(true)
  })
})
