import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { runInNewContext } from 'node:vm'
import { build, type Plugin } from 'esbuild'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')

/** Fails the build on any Node built-in, with or without the `node:` prefix. */
const refuseNode: Plugin = {
  name: 'refuse-node',
  setup(b) {
    b.onResolve({ filter: /^(node:|fs$|path$|os$|crypto$|url$|worker_threads$|child_process$)/ }, (args) => ({
      errors: [{ text: `Node import "${args.path}" in ${relative(root, args.importer)}` }],
    }))
  },
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

describe('wasi-host bundles for the browser', () => {
  it('has no node: import outside wasi-host/node/', () => {
    const offenders = walk(join(root, 'wasi-host'))
      .filter((f) => f.endsWith('.ts') && !f.includes(`${join('wasi-host', 'node')}/`))
      .filter((f) => /from\s+['"]node:|require\(['"]node:|import\(['"]node:/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(root, f))
    expect(offenders).toEqual([])
  })

  it('bundles with esbuild for platform browser, and the bundle runs a guest with only web globals', async () => {
    const result = await build({
      entryPoints: [join(root, 'wasi-host/index.ts')],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'iife',
      globalName: 'caplet',
      target: 'es2022',
      plugins: [refuseNode],
      logLevel: 'silent',
      metafile: true,
    })
    expect(result.errors).toEqual([])
    const inputs = Object.keys(result.metafile!.inputs)
    expect(inputs.some((i) => i.includes('wasi-host/node/'))).toBe(false)

    // A context with web platform globals only: no process, no require, no Buffer.
    const out: string[] = []
    const context = {
      WebAssembly,
      TextEncoder,
      TextDecoder,
      crypto: globalThis.crypto,
      performance,
      SharedArrayBuffer,
      Atomics,
      console,
      wasmBytes: readFileSync(join(root, 'samples/hello.wasm')),
      report: (s: string) => out.push(s),
    }
    const code = new TextDecoder().decode(result.outputFiles[0]!.contents)
    const exitCode = runInNewContext(
      `${code}
      ;(() => {
        if (typeof process !== 'undefined' || typeof require !== 'undefined') throw new Error('node globals leaked')
        const dec = new TextDecoder()
        const host = new caplet.WasiHost({
          args: ['hello'], preopens: [{ guestPath: '/tmp', fs: caplet.createMemFs() }],
          stdout: (c) => report(dec.decode(c)),
        })
        const inst = new WebAssembly.Instance(new WebAssembly.Module(wasmBytes), host.imports)
        return host.start(inst)
      })()`,
      context,
    )
    expect(exitCode).toBe(0)
    expect(out.join('')).toBe('hello from caplet\n')
  })
})
