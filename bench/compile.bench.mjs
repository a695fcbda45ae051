// Compile time per language for the samples, cold and cached.
//
//   npm run build && node bench/compile.bench.mjs [--rounds N] [--only LANG,...]
//
// For each sample (samples/wordcount.c, topwords.cpp, greet.wat, sieve.as.ts, json-transform.ts
// with and without the type check):
//   cold    compile() with no cache: the compiler runs (C/C++: clang under bubblewrap, a fresh
//           jail per compile; WAT, AssemblyScript, the TypeScript check: a fresh compiler worker
//           that loads wabt, asc or typescript; TS/JS: esbuild in-process)
//   cached  compile() with a warm cache: the key is hashed, the entry read, checked (sha256 and
//           WebAssembly.validate) and returned; no compiler runs
// Prints the median of N rounds (default 3 cold, 3N cached) in ms, and cold/cached as a ratio.
// Also the cost of the jail itself: the same C compile with --trust-source (no bubblewrap)
// as a ratio. Not a test: it asserts only that every compile succeeds. Seconds to a minute.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { compile } = await import(join(root, 'dist/index.js'))
const args = process.argv.slice(2)
const roundsAt = args.indexOf('--rounds')
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 3
const onlyAt = args.indexOf('--only')
const only = onlyAt >= 0 ? args[onlyAt + 1].split(',') : undefined

const samples = [
  ['c', 'wordcount.c'],
  ['cpp', 'topwords.cpp'],
  ['wat', 'greet.wat'],
  ['as', 'sieve.as.ts'],
  ['typescript', 'json-transform.ts'],
  ['typescript', 'json-transform.ts', { typeCheck: false }],
].filter(([language]) => only === undefined || only.includes(language))

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
async function time(f) {
  const t = performance.now()
  await f()
  return performance.now() - t
}

const cacheDir = mkdtempSync(join(tmpdir(), 'caplet-compile-bench-'))
const rows = []
try {
  for (const [language, file, extra = {}] of samples) {
    const files = { [file]: readFileSync(join(root, 'samples', file), 'utf8') }
    const cold = []
    for (let i = 0; i < ROUNDS; i++) cold.push(await time(() => compile({ language, files, options: { ...extra, cache: false } })))
    await compile({ language, files, options: { ...extra, cache: { dir: cacheDir } } })
    const cached = []
    for (let i = 0; i < ROUNDS * 3; i++) {
      cached.push(
        await time(async () => {
          const r = await compile({ language, files, options: { ...extra, cache: { dir: cacheDir } } })
          if (!r.cached) throw new Error(`${file}: expected a cache hit`)
        }),
      )
    }
    rows.push({
      sample: file,
      language: extra.typeCheck === false ? `${language} (no check)` : language,
      coldMs: median(cold),
      cachedMs: median(cached),
    })
  }
  const files = { 'wordcount.c': readFileSync(join(root, 'samples', 'wordcount.c'), 'utf8') }
  const jailed = []
  const bare = []
  const env = { ...process.env, CAPLET_BWRAP: '/nonexistent/bwrap' }
  for (let i = 0; only === undefined || only.includes('c') ? i < ROUNDS : false; i++) {
    jailed.push(await time(() => compile({ language: 'c', files, options: { cache: false } })))
    bare.push(await time(() => compile({ language: 'c', files, options: { cache: false, trustSource: true, env } })))
  }
  console.log(`compile time, median of ${ROUNDS} cold / ${ROUNDS * 3} cached rounds (Node ${process.version})\n`)
  console.log('| sample | language | cold ms | cached ms | cold / cached |')
  console.log('| --- | --- | ---: | ---: | ---: |')
  for (const r of rows) {
    console.log(
      `| ${r.sample} | ${r.language} | ${r.coldMs.toFixed(0)} | ${r.cachedMs.toFixed(2)} | ${(r.coldMs / r.cachedMs).toFixed(0)}x |`,
    )
  }
  if (jailed.length > 0)
    console.log(
      `\nbubblewrap jail: C compile jailed ${median(jailed).toFixed(0)} ms vs unjailed ${median(bare).toFixed(0)} ms = ${(median(jailed) / median(bare)).toFixed(2)}x`,
    )
} finally {
  rmSync(cacheDir, { recursive: true, force: true })
}
