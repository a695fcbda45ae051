// A/B of the hot-path files: caplet with REV's versions of the files below (default HEAD; the rest
// of the working tree as it is) against the working tree, on the syscall workloads, alternately
// (A B A B …), in fresh processes. Prints medians, min–max and the ratio B/A per call.
//
//   node bench/ab.mjs [op …] [--rounds N] [--scale X] [--host caplet|caplet-memfs] [--rev REV]
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildCaplet } from './lib/build-caplet.mjs'
import { buildWorkloads } from './lib/build-workloads.mjs'
import { BENCH, ROOT } from './lib/paths.mjs'

// runtime/module.ts (engine tiers) does not touch the host-call path; the bench entry needs its current exports.
const HOT_PATH = [
  'wasi-host/host.ts',
  'wasi-host/syscalls/fd.ts',
  'wasi-host/abi/guest-memory.ts',
  'runtime/output.ts',
  'wasi-host/write-behind.ts',
  'runtime/execute.ts',
  // path_filestat_get, path_open + fd_close, fd_readdir:
  'wasi-host/syscalls/path.ts',
  'wasi-host/fs/path-resolver.ts',
  'wasi-host/fs/filesystem.ts',
  'wasi-host/fd-table.ts',
  'wasi-host/abi/structs.ts',
  'wasi-host/abi/constants.ts',
  'wasi-host/node/host-dir-fs.ts',
  'wasi-host/fs/mem-fs.ts',
  'wasi-host/fs/read-only.ts',
  'wasi-host/fs/quota.ts',
  'wasi-host/fs/overlay.ts',
  'wasi-host/errors.ts',
  'wasi-host/node/sandbox-inos.ts',
]
const argv = process.argv.slice(2)
const opt = (name, d) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : d
}
const ROUNDS = Number(opt('--rounds', 5))
const SCALE = Number(opt('--scale', 1))
const HOST = opt('--host', 'caplet')
const REV = opt('--rev', 'HEAD')
const COUNTS = { write16: 1e6, filewrite16: 3e5, clock: 1e6, stat: 5e4, openclose: 3e4, readdir: 3000, random: 16384, fileio: 64 }
const ops = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'))

const overrides = {}
for (const f of HOT_PATH) {
  // A file REV does not have is not imported by REV's files either: nothing to swap.
  try {
    overrides[f] = execFileSync('git', ['show', `${REV}:${f}`], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    continue
  }
}
const [before, after, built] = await Promise.all([buildCaplet('caplet-before', overrides), buildCaplet('caplet'), buildWorkloads([])])
const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]
}

function once(caplet, op) {
  const dir = mkdtempSync(join(tmpdir(), 'caplet-ab-'))
  try {
    const spec = { host: HOST, wasm: built.sys.wasm, args: ['sys', op, String(Math.round(COUNTS[op] * SCALE)), '/data'], dir, caplet }
    const r = spawnSync(process.execPath, [join(BENCH, 'lib/host-run.mjs'), JSON.stringify(spec)], { encoding: 'utf8', maxBuffer: 1 << 24 })
    const out = JSON.parse(
      r.stdout
        .split('\n')
        .find((l) => l.startsWith('@@RESULT '))
        .slice(9),
    )
    if (!out.ok) throw new Error(out.error)
    return Object.fromEntries(Object.entries(out.results).map(([k, v]) => [k, v.ns / v.ops / 1000]))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

console.log(`A = ${REV}'s ${HOT_PATH.join(', ')}; B = working tree. ${ROUNDS} rounds, A B alternately, µs per call (median, min–max)`)
for (const op of ops.length ? ops : Object.keys(COUNTS)) {
  const a = {},
    b = {}
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, v] of Object.entries(once(before, op))) (a[k] ??= []).push(v)
    for (const [k, v] of Object.entries(once(after, op))) (b[k] ??= []).push(v)
  }
  for (const k of Object.keys(a)) {
    const f = (xs) => `${median(xs).toFixed(3)} (${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)})`
    console.log(`${k.padEnd(14)} A ${f(a[k]).padEnd(26)} B ${f(b[k]).padEnd(26)} B/A ${(median(b[k]) / median(a[k])).toFixed(2)}×`)
  }
}
