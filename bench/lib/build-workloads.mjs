// Builds the workloads from bench/workloads/*.c, natively (gcc -O2 -fno-math-errno) and to
// wasm32-wasi (clang-19 -O2, wasi-libc), into bench/.build/, rebuilding only what changed.
// SQLite's amalgamation and CRuby's wasm come from npm packages fetched with `npm pack` into
// bench/.cache/ (pinned versions; npm checks their integrity); neither is committed.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { BENCH, BUILD, CACHE } from './paths.mjs'

const run = promisify(execFile)
const WORKLOADS = join(BENCH, 'workloads')
export const SQLITE_PACKAGE = 'better-sqlite3@12.11.1'
export const RUBY_PACKAGE = '@ruby/3.3-wasm-wasi@2.10.1'
const CLANG = process.env.CLANG ?? 'clang-19'
const WASI_SYSROOT = process.env.WASI_SYSROOT ?? '/usr'
const NATIVE = ['gcc', ['-O2', '-fno-math-errno']]
const WASM = [CLANG, ['--target=wasm32-wasi', `--sysroot=${WASI_SYSROOT}`, '-O2', '-Wl,--strip-debug']]
const SQLITE_DEFS = ['-DSQLITE_THREADSAFE=0', '-DSQLITE_OMIT_LOAD_EXTENSION', '-DSQLITE_OMIT_WAL', '-DSQLITE_OMIT_SHARED_CACHE']
const SQLITE_WASI = ['-D_WASI_EMULATED_MMAN', '-D_WASI_EMULATED_GETPID']

function hashOf(words, files) {
  const h = createHash('sha256')
  for (const w of words) h.update(`${w}\0`)
  for (const f of files) h.update(readFileSync(f))
  return h.digest('hex').slice(0, 16)
}

// npm puts node_modules/.bin on PATH, where binaryen (an AssemblyScript dependency) installs a
// wasm-opt, and clang runs any wasm-opt it finds on PATH: builds must not depend on that.
const buildEnv = {
  ...process.env,
  PATH: (process.env.PATH ?? '')
    .split(':')
    .filter((d) => !d.endsWith('/node_modules/.bin'))
    .join(':'),
}

/** Runs `cmd args` unless `out` was built from the same inputs (a stamp file beside it). */
let log = () => {}

async function cached(out, inputs, cmd, args) {
  const stamp = `${out}.stamp`
  const key = hashOf([cmd, ...args], inputs)
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === key) return out
  log(`building ${out.split('/').pop()}`)
  await run(cmd, args, { maxBuffer: 1 << 24, env: buildEnv })
  writeFileSync(stamp, key)
  return out
}

async function npmPack(spec, wanted, log) {
  mkdirSync(CACHE, { recursive: true })
  const dir = join(CACHE, spec.replace(/[@/]/g, '_'))
  if (wanted.every((f) => existsSync(join(dir, f)))) return dir
  log(`fetching ${spec} with npm pack (once; kept in bench/.cache/)`)
  mkdirSync(dir, { recursive: true })
  const { stdout } = await run('npm', ['pack', spec, '--pack-destination', dir, '--silent'], { maxBuffer: 1 << 24 })
  const tgz = join(dir, stdout.trim().split('\n').pop())
  await run('tar', ['xzf', tgz, '-C', dir, '--strip-components=1', ...wanted.map((f) => `package/${f}`)])
  rmSync(tgz)
  return dir
}

/** Builds what `groups` need; returns paths. */
export async function buildWorkloads(groups, logger = () => {}) {
  log = logger
  mkdirSync(BUILD, { recursive: true })
  const out = {}
  const jobs = []
  for (const name of ['cpu', 'sys', 'hello', 'walk']) {
    const src = join(WORKLOADS, `${name}.c`)
    const inputs = [src, join(WORKLOADS, 'common.h')]
    out[name] = { native: join(BUILD, name), wasm: join(BUILD, `${name}.wasm`) }
    jobs.push(cached(out[name].native, inputs, NATIVE[0], [...NATIVE[1], '-o', out[name].native, src, '-lm']))
    jobs.push(cached(out[name].wasm, inputs, WASM[0], [...WASM[1], '-o', out[name].wasm, src]))
  }
  await Promise.all(jobs)
  if (groups.includes('sqlite')) {
    const pkg = await npmPack(SQLITE_PACKAGE, ['deps/sqlite3/sqlite3.c', 'deps/sqlite3/sqlite3.h'], log)
    const inc = join(pkg, 'deps/sqlite3')
    const amalg = join(inc, 'sqlite3.c')
    const nativeObj = join(BUILD, 'sqlite3-native.o')
    const wasmObj = join(BUILD, 'sqlite3-wasm.o')
    await Promise.all([
      cached(nativeObj, [amalg], NATIVE[0], [...NATIVE[1], ...SQLITE_DEFS, '-c', '-o', nativeObj, amalg]),
      cached(wasmObj, [amalg], WASM[0], [...WASM[1], ...SQLITE_DEFS, ...SQLITE_WASI, '-c', '-o', wasmObj, amalg]),
    ])
    const src = join(WORKLOADS, 'sqlite_bench.c')
    const inputs = [src, join(WORKLOADS, 'common.h'), nativeObj, wasmObj]
    out.sqlite = { native: join(BUILD, 'sqlite'), wasm: join(BUILD, 'sqlite.wasm') }
    await Promise.all([
      cached(out.sqlite.native, inputs, NATIVE[0], [...NATIVE[1], `-I${inc}`, '-o', out.sqlite.native, src, nativeObj, '-lm']),
      cached(out.sqlite.wasm, inputs, WASM[0], [
        ...WASM[1],
        `-I${inc}`,
        '-o',
        out.sqlite.wasm,
        src,
        wasmObj,
        '-lwasi-emulated-mman',
        '-lwasi-emulated-getpid',
      ]),
    ])
  }
  if (groups.includes('ruby')) {
    const pkg = await npmPack(RUBY_PACKAGE, ['dist/ruby+stdlib.wasm'], log)
    out.ruby = { wasm: join(pkg, 'dist/ruby+stdlib.wasm') }
  }
  return out
}
