// Whole processes through the command line: `caplet run` (worker, the default, and
// `--in-process`) against a 10-line node:wasi runner, on the same module and the same host
// directory, measured alternately (A B C, B C A, …), medians of wall time from spawn to exit.
// Each row also gives the guest's own timing of its loop (RESULT lines), which leaves start-up out.
// Usage: node bench/cli.bench.mjs [--rounds N] [--only hello,write16-file,…,fileserve,walk]
import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildWorkloads } from './lib/build-workloads.mjs'
import { CACHE, ROOT } from './lib/paths.mjs'

const argv = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = argv.indexOf(name)
  return i < 0 ? dflt : argv[i + 1]
}
const rounds = Number(opt('--rounds', 3))
const only = opt('--only', undefined)?.split(',')

const w = await buildWorkloads([], (m) => process.stderr.write(`${m}\n`))
const work = mkdtempSync(join(tmpdir(), 'caplet-cli-bench-'))
const data = join(work, 'data')
mkdirSync(data)

/** A tree of 5,000 files in 200 directories (about 50 MB), made once into bench/.cache/. */
function walkTree() {
  const root = join(CACHE, 'walk-tree')
  if (existsSync(join(root, '.done'))) return root
  rmSync(root, { recursive: true, force: true })
  const block = Buffer.alloc(40000, 'walk tree file contents\n')
  for (let a = 0; a < 20; a++) {
    for (let b = 0; b < 10; b++) {
      const dir = join(root, `d${a}`, `s${b}`)
      mkdirSync(dir, { recursive: true })
      for (let f = 0; f < 25; f++) {
        const i = (a * 10 + b) * 25 + f
        writeFileSync(join(dir, `file-${i}.txt`), block.subarray(0, 100 + ((i * 7919) % 20000)))
      }
    }
  }
  writeFileSync(join(root, '.done'), '')
  return root
}

const NODE_WASI = join(work, 'node-wasi.mjs')
writeFileSync(
  NODE_WASI,
  `import { readFileSync } from 'node:fs'
import { WASI } from 'node:wasi'
const [file, dir, ...args] = process.argv.slice(2)
const wasi = new WASI({ version: 'preview1', args: [file, ...args], preopens: dir === '-' ? {} : { [dir.split(':')[1]]: dir.split(':')[0] } })
const mod = new WebAssembly.Module(readFileSync(file))
const inst = new WebAssembly.Instance(mod, wasi.getImportObject())
process.exitCode = wasi.start(inst)
`,
)
const CAPLET = join(ROOT, 'bin/caplet.js')

const hosts = {
  'node:wasi': (wasm, mount, args) => ['--no-warnings', NODE_WASI, wasm, mount?.split(':').slice(0, 2).join(':') ?? '-', ...args],
  caplet: (wasm, mount, args) => [CAPLET, 'run', ...(mount ? ['--dir', mount] : []), wasm, ...args],
  'caplet --in-process': (wasm, mount, args) => [CAPLET, 'run', '--in-process', ...(mount ? ['--dir', mount] : []), wasm, ...args],
}

const rows = [
  { name: 'hello', wasm: w.hello.wasm, args: [] },
  { name: 'write16-file', wasm: w.sys.wasm, args: ['write16', '1000000', '/data'], mount: true, stdout: 'file' },
  { name: 'write16-pipe', wasm: w.sys.wasm, args: ['write16', '1000000', '/data'], mount: true, stdout: 'pipe' },
  { name: 'clock', wasm: w.sys.wasm, args: ['clock', '1000000', '/data'], mount: true },
  { name: 'fileio-64k', wasm: w.sys.wasm, args: ['fileio', '64', '/data'], mount: true },
  { name: 'filestat', wasm: w.sys.wasm, args: ['stat', '100000', '/data'], mount: true },
  { name: 'fileserve', wasm: w.sys.wasm, args: ['fileserve', '50000', '/data'], mount: true },
  { name: 'walk', wasm: w.walk.wasm, args: ['/tree'], tree: true },
].filter((r) => only === undefined || only.includes(r.name))

/** One process; resolves with its wall time in ms and its stderr. */
function once(host, row) {
  // The walk reads a read-only mount (node:wasi has no modes: it gets the same directory).
  const mount = row.tree ? `${walkTree()}:/tree:ro` : row.mount ? `${data}:/data:rw` : undefined
  const args = hosts[host](row.wasm, mount, row.args)
  let outFd
  const stdout = row.stdout === 'pipe' ? 'pipe' : (outFd = openSync(row.stdout === 'file' ? join(work, 'out') : '/dev/null', 'w'))
  return new Promise((resolve, reject) => {
    const t = performance.now()
    const child = spawn(process.execPath, args, { stdio: ['ignore', stdout, 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (s) => {
      err += s
    })
    child.stdout?.on('data', () => {})
    child.on('error', reject)
    child.on('close', (code) => {
      const ms = performance.now() - t
      if (outFd !== undefined) closeSync(outFd)
      if (code !== 0) return reject(new Error(`${host} ${row.name}: exit ${code}: ${err.slice(0, 400)}`))
      const guest = {}
      for (const m of err.matchAll(/^RESULT (\S+) ns=(\d+) ops=(\d+) check=(\d+)$/gm)) guest[m[1]] = Number(m[2]) / 1e6
      resolve({ ms, guest })
    })
  })
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const names = Object.keys(hosts)
const samples = {}
if (rows.some((r) => r.tree)) walkTree()
for (const row of rows) {
  samples[row.name] = Object.fromEntries(names.map((h) => [h, []]))
  await once(names[0], row) // warms the page cache
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const host = names[(r + k) % names.length]
      samples[row.name][host].push(await once(host, row))
    }
  }
}
rmSync(work, { recursive: true, force: true })

const fmt = (x) => x.toFixed(x < 10 ? 2 : 0)
const lines = [
  `whole processes, ${rounds} rounds, medians; ratio = host / node:wasi (whole process; in brackets: the guest's own timing of its loop)`,
  '',
]
lines.push(
  `| row | ${names.map((h) => `${h} ms`).join(' | ')} | ${names
    .slice(1)
    .map((h) => `${h} ratio`)
    .join(' | ')} |`,
)
lines.push(`|${' --- |'.repeat(names.length * 2)}`)
for (const row of rows) {
  const s = samples[row.name]
  const wall = Object.fromEntries(names.map((h) => [h, median(s[h].map((x) => x.ms))]))
  const keys = Object.keys(s[names[0]][0].guest)
  const guest = (h) => keys.map((k) => median(s[h].map((x) => x.guest[k])))
  const cell = (h) => `${fmt(wall[h])}${keys.length ? ` [${guest(h).map(fmt).join(' / ')}]` : ''}`
  const ratio = (h) =>
    `${(wall[h] / wall['node:wasi']).toFixed(2)}×${
      keys.length
        ? ` [${guest(h)
            .map((g, i) => (g / guest('node:wasi')[i]).toFixed(2) + '×')
            .join(' / ')}]`
        : ''
    }`
  lines.push(`| ${row.name} | ${names.map(cell).join(' | ')} | ${names.slice(1).map(ratio).join(' | ')} |`)
}
console.log(lines.join('\n'))
