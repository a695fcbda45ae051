/**
 * @module The package as a user installs it: `npm pack` of the built tree, installed into a temp
 * directory, and a TypeScript consumer of README's examples type-checked against its `.d.ts`
 * (`caplet`, `caplet/wasi-host`, `caplet/node`) and run. Needs `dist/` (`npm run build`).
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
let dir: string

const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_update_notifier: 'false' },
  })

beforeAll(() => {
  if (!existsSync(join(root, 'dist/types/runtime/index.d.ts'))) throw new Error('dist/ is not built: run `npm run build`')
  dir = mkdtempSync(join(tmpdir(), 'caplet-pack-'))
  // --ignore-scripts: pack what is built, without rebuilding dist/ under the other tests.
  npm(['pack', '--ignore-scripts', '--pack-destination', dir], root)
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', `./${tarball}`], dir)
  copyFileSync(join(root, 'test/package/consumer.ts.txt'), join(dir, 'consumer.ts'))
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        outDir: 'out',
        // skipLibCheck keeps this fast (not checking @types/node); the consumer asserts that no
        // public type is `any`, which is what a broken declaration would turn into.
        skipLibCheck: true,
        typeRoots: [join(root, 'node_modules/@types')],
        types: ['node'],
        lib: ['ES2022', 'DOM'],
      },
      files: ['consumer.ts'],
    }),
  )
}, 120_000)

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('the packed package', () => {
  it('ships only what it needs, with declarations for every export', () => {
    const listing = npm(['pack', '--ignore-scripts', '--dry-run', '--json'], root)
    const files = (JSON.parse(listing) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path)
    for (const f of [
      'dist/index.js',
      'dist/wasi-host.js',
      'dist/node.js',
      'dist/worker.js',
      'dist/cli.js',
      'dist/compiler-worker.js',
      'bin/caplet.js',
      'dist/types/runtime/index.d.ts',
      'dist/types/wasi-host/index.d.ts',
      'dist/types/wasi-host/node/index.d.ts',
    ]) {
      expect(files).toContain(f)
    }
    expect(files.filter((f) => /^(test|runtime|wasi-host|bench|scripts|samples)\//.test(f))).toEqual([])
  })

  it("type-checks a TypeScript consumer of README's examples, and runs it", () => {
    let out = ''
    try {
      out = execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' })
    } catch (e) {
      throw new Error(`tsc: ${(e as { stdout?: string }).stdout ?? String(e)}`)
    }
    expect(out).toBe('')
    const ran = execFileSync(
      process.execPath,
      [join(dir, 'out/consumer.js'), join(root, 'samples/hello.wasm'), join(root, 'samples/cat.wasm')],
      { cwd: dir, encoding: 'utf8' },
    )
    expect(ran).toBe('cat: /d/missing: No such file or directory\nexit 1 trap none lowlevel 0\n')
  }, 120_000)

  it('compiles WAT and type-checks TypeScript from the installed package (its compiler worker and typescript ship)', () => {
    writeFileSync(
      join(dir, 'compile.mjs'),
      `import { compile, run } from 'caplet'
const w = await compile({ language: 'wat', files: { 'a.wat': '(module (func (export "_start")))' }, options: { cache: false } })
let typeError = ''
try { await compile({ language: 'typescript', files: { 'm.ts': 'const n: number = "x"\\n' }, options: { cache: false } }) } catch (e) { typeError = e.message }
const s = await compile({ language: 'typescript', files: { 'm.ts': 'console.log(args.length * 2)\\n' }, options: { cache: false } })
const r = await run(s.program, { args: ['m', 'a'], stdout: 'capture' })
console.log(w.kind, typeError, new TextDecoder().decode(r.stdout).trim())
`,
    )
    const out = execFileSync(process.execPath, ['compile.mjs'], { cwd: dir, encoding: 'utf8' })
    expect(out).toBe("wasm [caplet] m.ts:1:7: error: Type 'string' is not assignable to type 'number'. (TS2322) 2\n")
  }, 180_000)
})
