/**
 * README.md, proven: its shell examples run for real and its TypeScript snippets run against the
 * built package, all taken from the README's own fenced blocks, so the test fails when either
 * drifts. Every `npx caplet ...` line runs as written through bash (an `npx` function hands
 * `caplet` to bin/caplet.js; `npx --offline caplet --version` is checked to resolve to this
 * package), in a scratch copy of what the examples name; `caplet serve` runs on a free
 * 127.0.0.1 port (8080 in the README is replaced), the `--queue` pair with a redis-server of its
 * own, and the curl lines run against it with their `# …` output checked (`…` matches
 * anything). Each TypeScript snippet is type-checked against dist/types and (but for the
 * browser one) run by node, `import 'caplet'` resolving to the package itself. The exit-status
 * table is caused row by row through the CLI.
 *
 * Needs curl, jq, redis-server, clang-19 and bwrap (`.ci/run` installs them): a missing one
 * fails the file, it is never skipped. Uses dist/ as `npm test` builds it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { transform } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixtureWasm, repoRoot } from '../support/guest.js'
import { invalidBodyModule } from '../support/invalid-body-module.js'
import { freePort, startRedis, type RedisInstance } from '../support/service.js'
import { name, section, u32, vec } from '../runtime/instrument/wasm.js'
import { BASELINE_CODE_BYTES } from '../../runtime/module.js'

const README = readFileSync(join(repoRoot, 'README.md'), 'utf8')
/** The examples compile and start servers: ~30 s on an idle 2-core machine, far more when it is shared; a slow machine must not fail them. */
const SLOW = { timeout: 180_000 }
const BIN = join(repoRoot, 'bin/caplet.js')
const TOOLS = ['curl', 'jq', 'redis-server', 'clang-19', 'bwrap']

// ---------------------------------------------------------------------------------------------
// The README's fenced blocks and the shell commands in them

interface Fence {
  lang: string
  text: string
  /** 1-based line of the block's first line of content. */
  line: number
}

function fences(md: string): Fence[] {
  const out: Fence[] = []
  let open: { lang: string; line: number; body: string[] } | undefined
  md.split('\n').forEach((l, i) => {
    if (open === undefined) {
      const m = /^```(\S*)\s*$/.exec(l)
      if (m) open = { lang: m[1]!, line: i + 2, body: [] }
    } else if (l.startsWith('```')) {
      out.push({ lang: open.lang, text: open.body.join('\n'), line: open.line })
      open = undefined
    } else open.body.push(l)
  })
  if (open !== undefined) throw new Error(`README.md: the fence opened at line ${open.line - 1} is never closed`)
  return out
}

interface ShellCommand {
  /** As written (a command may span lines inside quotes). */
  text: string
  /** Whitespace runs collapsed: the key the handlers below name it by. */
  key: string
  /** Its trailing `# …` comment. */
  comment: string
  /** The `# …` lines after it, joined: the output it documents. */
  output: string
  line: number
}

/** Splits a shell block into commands: newlines end one unless inside quotes; `#` after blank starts a comment. */
function shellCommands(f: Fence): ShellCommand[] {
  const out: ShellCommand[] = []
  let cur = ''
  let comment = ''
  let quote: string | undefined
  let line = f.line
  let start = line
  const finish = () => {
    const text = cur.trim()
    if (text !== '') out.push({ text, key: text.replace(/\s+/g, ' '), comment: comment.trim(), output: '', line: start })
    cur = ''
    comment = ''
  }
  for (let i = 0; i < f.text.length; i++) {
    const c = f.text[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
      if (c === '\n') line++
      cur += c
      continue
    }
    if (c === '#' && (i === 0 || /\s/.test(f.text[i - 1]!))) {
      const end = f.text.indexOf('\n', i)
      const body = f.text.slice(i + 1, end === -1 ? undefined : end)
      if (cur.trim() === '' && out.length > 0) out[out.length - 1]!.output += body.replace(/^\s+/, '')
      else comment = body
      i = (end === -1 ? f.text.length : end) - 1
      continue
    }
    if (c === '\n') {
      if (cur.endsWith('\\')) cur = cur.slice(0, -1)
      else finish()
      line++
      if (cur === '') start = line
      continue
    }
    if (c === "'" || c === '"') quote = c
    if (cur.trim() === '') start = line
    cur += c
  }
  finish()
  return out
}

const FENCES = fences(README)
const COMMANDS = FENCES.filter((f) => f.lang === 'sh').flatMap(shellCommands)
const SNIPPETS = FENCES.filter((f) => f.lang === 'ts')

/** The README command with this key (whitespace collapsed); fails when the README no longer has it. */
function cmd(key: string): ShellCommand {
  if (!HANDLED.includes(key)) throw new Error(`test bug: ${key} is not in HANDLED`)
  const c = COMMANDS.find((x) => x.key === key)
  if (c === undefined) throw new Error(`README.md no longer has the example: ${key}`)
  return c
}

/** The one ts block containing `marker`. */
function snippet(marker: string): Fence {
  if (!SNIPPET_MARKERS.includes(marker)) throw new Error(`test bug: ${marker} is not in SNIPPET_MARKERS`)
  const found = SNIPPETS.filter((s) => s.text.includes(marker))
  if (found.length !== 1) throw new Error(`README.md has ${found.length} ts blocks containing ${JSON.stringify(marker)}, expected one`)
  return found[0]!
}

/** A documented output with `…` for anything, as an anchored pattern. */
function ellipsis(documented: string): RegExp {
  return new RegExp(
    `^${documented
      .split('…')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('[\\s\\S]*?')}$`,
  )
}

/** Every shell command of the README, by key: each is run (or, for the two named, checked otherwise) below. */
const HANDLED = [
  'npm install && npx caplet run samples/hello.wasm',
  'npm test',
  'npx caplet run [FLAGS] MODULE.wasm [ARGS...]',
  'npx caplet run --tmp /scratch --dir ./data:/data:ro prog.wasm arg1',
  'npx caplet run --dir ./docs:/docs:ro samples/wordcount.c /docs',
  'npx caplet run samples/topwords.cpp 5 < README.md',
  'npx caplet run samples/sieve.as.ts 1000000',
  'npx caplet run samples/greet.wat alice bob',
  'npx caplet build -O3 -D NDEBUG src/main.c src/util.c src/util.h -o app.wasm',
  'npx caplet run samples/json-transform.ts < samples/orders.json',
  'npx caplet run --dir ./samples:/in:ro --fuel 5000000000 samples/json-transform.ts /in/orders.json',
  'npx caplet run --listen 127.0.0.1:8080 samples/echo-server.wasm',
  "printf 'hello' | curl -s telnet://127.0.0.1:8080 --max-time 1",
  'npx caplet run --listen 127.0.0.1:8080 --dir ./site:/www:ro samples/http-server.wasm',
  'curl http://127.0.0.1:8080/index.html',
  'npx caplet run --connect db=127.0.0.1:5432 client.wasm',
  'npx caplet serve --port 8080 --config service.json',
  'npx caplet serve --queue redis://127.0.0.1:6379',
  'npx caplet worker --queue redis://127.0.0.1:6379 --concurrency 4',
  "T='Authorization: Bearer 0123456789abcdef-secret'",
  'ID=$(curl -s -H "$T" -X PUT --data-binary @samples/hello.wasm localhost:8080/v1/modules | jq -r .id)',
  'curl -s -H "$T" localhost:8080/v1/runs -d \'{"module":"\'$ID\'","args":["prog","x"],"env":{"K":"v"},"stdin":"input", "files":{"data/in.txt":"read-only under /input"},"output":true,"limits":{"timeout":"2s","memory":"32MiB"}}\'',
  'curl -s -H "$T" localhost:8080/v1/runs -d \'{"module":"\'$ID\'","wait":false}\'',
  'curl -s -H "$T" localhost:8080/v1/runs/<id>',
  'curl -s -H "$T" localhost:8080/v1/runs/batch -d \'{"runs":[{"module":"\'$ID\'"},{"module":"\'$ID\'","args":["p","y"]}]}\'',
  'curl -s -H "$T" localhost:8080/v1/runs -d \'{"source":{"language":"wat","files":{"greet.wat":"(module …)"}},"args":["greet","ann"]}\'',
  "curl -s localhost:8080/healthz; curl -s -H 'Authorization: Bearer <metrics token>' localhost:8080/metrics",
]

/** A marker for each ts block: each block is type-checked and (but for the browser one) run below. */
const SNIPPET_MARKERS = [
  'language: userLanguage',
  "run('prog.wasm'",
  "prepare('judge.wasm'",
  "language: 'typescript'",
  "plugin('rules.wasm'",
  '// rules.ts: set up once, at load',
  "compileScript({ files: { 'rules.ts': src } })",
  "from 'caplet/browser'",
]

// ---------------------------------------------------------------------------------------------
// Running things

interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

/** `npx caplet …` in a README line runs this package's bin (anything else through npx is refused). */
const NPX = `npx() { if [ "$1" = caplet ]; then shift; node "$CAPLET_BIN" "$@"; else echo "npx $1: not in the README's examples" >&2; return 127; fi; }\n`

let work: string
let env: NodeJS.ProcessEnv

function sh(script: string, opts: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', NPX + script], { cwd: opts.cwd ?? work, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 100_000)
    p.on('error', reject)
    p.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    // A command that exits without reading its input (a failed `cd`, a server killed) closes the
    // pipe first: that EPIPE is not the example's failure, its exit status and output say that.
    p.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e)
    })
    p.stdin.end(opts.input ?? '')
  })
}

let helpText: Promise<Ran> | undefined
/** `caplet --help` (the same text as `caplet run --help`), run once. */
const help = () => (helpText ??= caplet(['--help']))

function caplet(args: string[], input = ''): Promise<Ran> {
  return sh(`node "$CAPLET_BIN" ${args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')}`, { input })
}

interface Background {
  proc: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

const started: Background[] = []

/** A long-running README command (in its own process group), once its output matches `ready`. */
async function background(script: string, ready: RegExp): Promise<Background> {
  const proc = spawn('bash', ['-c', NPX + script], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  const b: Background = {
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid!, 'SIGTERM')
      await exited
    },
  }
  started.push(b)
  for (let i = 0; i < 2400 && !ready.test(out); i++) {
    if (proc.exitCode !== null) throw new Error(`${script} exited (${proc.exitCode}): ${out}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  if (!ready.test(out)) throw new Error(`${script} never said ${ready}: ${out}`)
  return b
}

const onPort = (text: string, port: number) =>
  text.replace(/(127\.0\.0\.1|localhost):8080/g, `$1:${port}`).replace(/--port 8080/g, `--port ${port}`)

/** A string in a single-quoted shell word. */
const jsonInShellQuotes = (s: string) => JSON.stringify(s).slice(1, -1).replace(/'/g, `'\\''`)

// ---------------------------------------------------------------------------------------------
// The scratch directory the examples run in

const RULES_C = `// rules: a stdio plugin for the README's plugin() snippet: reads an order
// ({"sku":"…",…}) from stdin, asks the host function app.price for the sku's price.
#include <stdint.h>
#include <stdio.h>
#include <string.h>
__attribute__((import_module("app"), import_name("price")))
int32_t price(const void *in, uint32_t len, void *out, uint32_t cap);
__attribute__((export_name("transform"))) int32_t transform(void) {
  static char in[4096], sku[64], got[64];
  size_t n = fread(in, 1, sizeof in - 1, stdin);
  in[n] = 0;
  const char *s = strstr(in, "\\"sku\\":\\"");
  if (!s) return 1;
  s += 7;
  size_t k = 0;
  while (s[k] && s[k] != '"' && k < sizeof sku - 1) { sku[k] = s[k]; k++; }
  int32_t m = price(sku, (uint32_t)k, got, sizeof got - 1);
  if (m < 0 || m > (int32_t)sizeof got - 1) return 2;
  got[m] = 0;
  printf("{\\"sku\\":\\"%s\\",\\"price\\":%s}", sku, got);
  fflush(stdout);
  return 0;
}
`

/** The README's reactor build line, run as written (p.c -> p.wasm). */
const REACTOR_BUILD = /`(clang-19 --target=wasm32-wasi --sysroot=\/usr -mexec-model=reactor -O2 -o p\.wasm p\.c)`/.exec(README)?.[1]

let sha256Token: string
let serviceConfig: string

beforeAll(async () => {
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: the README examples need them (.ci/run installs them)`)
  if (!existsSync(join(repoRoot, 'dist/index.js')) || !existsSync(join(repoRoot, 'dist/types/runtime/index.d.ts')))
    throw new Error('dist/ is not built: run `node scripts/build.mjs` (npm test does)')
  work = mkdtempSync(join(tmpdir(), 'caplet-readme-'))
  env = { ...process.env, CAPLET_BIN: BIN, NO_COLOR: '1' }
  delete env.CAPLET_NO_CACHE
  // What the examples name: the samples, README.md and docs/ as in the repository, the rest made here.
  cpSync(join(repoRoot, 'samples'), join(work, 'samples'), { recursive: true, filter: (src) => !src.includes(`${join('samples', 'web')}`) })
  cpSync(join(repoRoot, 'docs'), join(work, 'docs'), { recursive: true })
  cpSync(join(repoRoot, 'README.md'), join(work, 'README.md'))
  mkdirSync(join(work, 'data'))
  writeFileSync(join(work, 'data/in.txt'), 'from ./data\n')
  mkdirSync(join(work, 'site'))
  writeFileSync(join(work, 'site/index.html'), '<h1>from ./site</h1>\n')
  mkdirSync(join(work, 'src'))
  writeFileSync(join(work, 'src/util.h'), 'int twice(int);\n')
  writeFileSync(join(work, 'src/util.c'), '#include "util.h"\nint twice(int x) { return 2 * x; }\n')
  writeFileSync(
    join(work, 'src/main.c'),
    '#include <assert.h>\n#include <stdio.h>\n#include "util.h"\nint main(void) { assert(0 && "NDEBUG is set"); printf("twice 21 = %d\\n", twice(21)); return 0; }\n',
  )
  mkdirSync(join(work, 'node_modules'))
  symlinkSync(repoRoot, join(work, 'node_modules/caplet'))
  // The programs the examples name but do not ship: one guest, by argv[0]; the plugin through the README's own build line.
  const guest = spawnSync(
    'clang-19',
    ['--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-o', join(work, 'guest.wasm'), join(import.meta.dirname, 'readme-guest.c')],
    {
      encoding: 'utf8',
    },
  )
  if (guest.status !== 0) throw new Error(`clang-19: ${guest.stderr}`)
  for (const n of ['prog', 'judge', 'client']) cpSync(join(work, 'guest.wasm'), join(work, `${n}.wasm`))
  if (REACTOR_BUILD === undefined)
    throw new Error('README.md no longer shows the reactor build line (clang-19 ... -mexec-model=reactor ...)')
  mkdirSync(join(work, 'plugin'))
  writeFileSync(join(work, 'plugin/p.c'), RULES_C)
  const built = await sh(REACTOR_BUILD, { cwd: join(work, 'plugin') })
  if (built.code !== 0) throw new Error(`${REACTOR_BUILD}: ${built.stderr}`)
  cpSync(join(work, 'plugin/p.wasm'), join(work, 'rules.wasm'))
  // The service's config: the README's JSON, with its one placeholder (a token's sha256) filled in.
  const config = FENCES.find((f) => f.lang === 'json' && f.text.includes('"tokens"'))
  if (config === undefined) throw new Error('README.md no longer shows the service.json example')
  sha256Token = createHash('sha256').update('ci-token-of-the-readme-test').digest('hex')
  serviceConfig = config.text.replace('<sha256 hex of the token>', sha256Token)
  writeFileSync(join(work, 'service.json'), serviceConfig)
}, 180_000)

afterAll(async () => {
  await Promise.all(started.map((b) => b.stop()))
  if (work) rmSync(work, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------

describe('README.md examples', SLOW, () => {
  it('every shell command and ts block of the README is one the tests below run', () => {
    expect(COMMANDS.map((c) => c.key).sort()).toEqual([...HANDLED].sort())
    for (const s of SNIPPETS) expect(SNIPPET_MARKERS.filter((m) => s.text.includes(m)).length, `ts block at README.md:${s.line}`).toBe(1)
    expect(SNIPPETS).toHaveLength(SNIPPET_MARKERS.length)
  })

  it('has the tools it needs, and `npx caplet` in the repository is this package', async () => {
    for (const t of TOOLS) expect(spawnSync('sh', ['-c', `command -v ${t}`]).status, t).toBe(0)
    // npx resolves the project's own bin, offline (never the registry): what the examples' `npx caplet` means.
    const r = await sh('command npx --offline caplet --version', { cwd: repoRoot })
    expect(r).toMatchObject({ code: 0, stdout: `caplet ${JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version}\n` })
    // `npm test` is what runs this file: it must build, check and run vitest.
    expect(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).scripts.test).toMatch(
      /^node scripts\/build\.mjs && .*vitest run$/,
    )
  })
})

describe.concurrent('running programs and sources (README "Running a program", "Languages", "JavaScript and TypeScript")', SLOW, () => {
  it('hello, the synopsis, and a run with a tmp and a read-only directory', async () => {
    const hello = cmd('npm install && npx caplet run samples/hello.wasm')
    // npm install is not run again (the tree is installed); the rest of the line is.
    expect(await sh(hello.text.replace(/^npm install && /, ''))).toEqual({ code: 0, stdout: 'hello from caplet\n', stderr: '' })
    expect((await help()).stdout).toContain(cmd('npx caplet run [FLAGS] MODULE.wasm [ARGS...]').text.replace(/^npx /, ''))
    const prog = await sh(cmd('npx caplet run --tmp /scratch --dir ./data:/data:ro prog.wasm arg1').text)
    expect(prog).toEqual({
      code: 0,
      stdout: 'args: prog.wasm arg1\nwrote /scratch/out.txt\n/data/in.txt: from ./data\ncreate /data/new.txt: Read-only file system\n',
      stderr: '',
    })
    expect(existsSync(join(work, 'data/new.txt'))).toBe(false)
  })

  it('C over a mounted directory, C++ with libc++, AssemblyScript, hand-written WAT, and caplet build', async () => {
    const [wc, top, sieve, greet, build] = await Promise.all([
      sh(cmd('npx caplet run --dir ./docs:/docs:ro samples/wordcount.c /docs').text),
      sh(cmd('npx caplet run samples/topwords.cpp 5 < README.md').text),
      sh(cmd('npx caplet run samples/sieve.as.ts 1000000').text),
      sh(cmd('npx caplet run samples/greet.wat alice bob').text),
      sh(cmd('npx caplet build -O3 -D NDEBUG src/main.c src/util.c src/util.h -o app.wasm').text),
    ])
    expect(wc.code, wc.stderr).toBe(0)
    expect(wc.stdout).toMatch(/\/docs\/architecture\.md\n/)
    expect(wc.stdout).toMatch(/^\s+\d+\s+\d+\s+\d+ total\n$/m)
    expect(top.code, top.stderr).toBe(0)
    expect(top.stdout.trimEnd().split('\n')).toHaveLength(5)
    expect(top.stdout).toMatch(/^\d+ \S+\n/)
    expect(sieve).toMatchObject({ code: 0, stdout: 'primes below 1000000: 78498\nlargest: 999983\n' })
    // The README says what greet.wat does: a line per name, exit status the number of names.
    expect(cmd('npx caplet run samples/greet.wat alice bob').comment).toMatch(/exits 2 \(one per name\)/)
    expect(greet).toEqual({ code: 2, stdout: 'hello, alice!\nhello, bob!\n', stderr: '' })
    expect(build.code, build.stderr).toBe(0)
    // -D NDEBUG reached the compiler: the assert(0) in main.c is gone.
    expect(await caplet(['run', 'app.wasm'])).toEqual({ code: 0, stdout: 'twice 21 = 42\n', stderr: '' })
  })

  it('a TypeScript program on stdin, then from a read-only mount under --fuel', async () => {
    const orders = JSON.parse(readFileSync(join(repoRoot, 'samples/orders.json'), 'utf8')) as unknown[]
    const a = await sh(cmd('npx caplet run samples/json-transform.ts < samples/orders.json').text)
    expect(a.code, a.stderr).toBe(0)
    expect(JSON.parse(a.stdout)).toMatchObject({ customers: expect.any(Number) })
    expect(orders.length).toBeGreaterThan(0)
    const b = await sh(cmd('npx caplet run --dir ./samples:/in:ro --fuel 5000000000 samples/json-transform.ts /in/orders.json').text)
    expect(b).toEqual({ code: 0, stdout: a.stdout, stderr: '' })
  })
})

describe.concurrent('exit status table (README "Exit status"), each row caused through the CLI', SLOW, () => {
  const oneLine = /^caplet: [^\n]+\n$/
  beforeAll(() => {
    writeFileSync(join(work, 'notwasm.wasm'), 'this is text\n')
    writeFileSync(join(work, 'bad-policy.json'), '{ "limits": { "memory": "lots" } }\n')
    writeFileSync(join(work, 'bad.c'), 'int main( { return 0; }\n')
    writeFileSync(join(work, 'bad.ts'), 'const n: number = "seven"\nconsole.log(n)\n')
    writeFileSync(join(work, 'imports-fs.js'), 'import fs from "fs"\nconsole.log(fs)\n')
    writeFileSync(join(work, 'big-invalid.wasm'), invalidBodyModule(BASELINE_CODE_BYTES + 4096))
    const unknownImport = [
      ...[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
      ...section(1, vec([[0x60, 0, 0]])),
      ...section(2, vec([[...name('env'), ...name('foo'), 0x00, 0]])),
      ...section(3, vec([[0]])),
      ...section(7, vec([[...name('_start'), 0x00, 1]])),
      ...section(10, vec([[...u32(4), 0x00, 0x10, 0x00, 0x0b]])),
    ]
    writeFileSync(join(work, 'imports-env-foo.wasm'), new Uint8Array(unknownImport))
  })

  it('the table lists exactly the codes checked here, and --help says the same', async () => {
    const table = README.slice(README.indexOf('### Exit status'))
    const rows = [...table.slice(0, table.indexOf('\n\n', table.indexOf('| code |') + 1)).matchAll(/^\| ([\d–]+) \|/gm)].map((m) => m[1])
    expect(rows).toEqual(['0–255', '124', '125', '126', '134', '65'])
    const text = (await help()).stdout
    for (const code of ['0-255', '124', '125', '126', '134', '65']) expect(text).toMatch(new RegExp(`^  ${code} `, 'm'))
  })

  it('0–255: the guest’s own code; 0 when main returns; larger codes wrap', async () => {
    expect((await caplet(['run', 'samples/hello.wasm'])).code).toBe(0)
    expect((await caplet(['run', fixtureWasm('diff_exit'), '7', 'proc_exit'])).code).toBe(7)
    expect((await caplet(['run', fixtureWasm('diff_exit'), '300'])).code).toBe(300 & 0xff)
  })

  it('124: --timeout, --fuel, --max-output, the message says which', async () => {
    const spin = fixtureWasm('fuel_spin')
    const [t, f, o] = await Promise.all([
      caplet(['run', '--timeout', '300ms', spin, 'forever']),
      caplet(['run', '--fuel', '100000', spin, 'forever']),
      caplet(['run', '--max-output', '4', 'samples/hello.wasm']),
    ])
    expect(t).toMatchObject({ code: 124, stderr: expect.stringMatching(/time limit|--timeout/) })
    expect(f).toMatchObject({ code: 124, stderr: expect.stringMatching(/fuel/) })
    expect(o).toMatchObject({ code: 124, stdout: 'hell', stderr: expect.stringMatching(/--max-output/) })
  })

  it.each([
    [['--bogus', 'samples/hello.wasm'], /unknown flag --bogus/],
    [['--dir', 'README.md:/x', 'samples/hello.wasm'], /README\.md/],
    [['--stdin', 'no-such-input.txt', 'samples/hello.wasm'], /--stdin no-such-input\.txt: cannot read it/],
    [['--policy', 'bad-policy.json', 'samples/hello.wasm'], /invalid policy: limits\.memory/],
    [['no-such-source.c'], /no-such-source\.c: cannot read it/],
    [['no-such-script.ts'], /no-such-script\.ts/],
    // A --max-fds below stdio + mounts is refused before the run, naming the flag and the minimum (it was a host-fault trap, 134).
    [['--max-fds', '3', '--tmp', '/t', 'samples/hello.wasm'], /--max-fds 3: .*at least 4$/m],
    [['--max-fds', '2', 'samples/hello.wasm'], /--max-fds 2: .*at least 3$/m],
    // A bad value names the flag and its valid range.
    [['--timeout', '0', 'samples/hello.wasm'], /--timeout 0: must be more than 0/],
    [['--memory', '5GiB', 'samples/hello.wasm'], /--memory 5GiB: at most 4GiB/],
    [['--dir', './data:/data:rx', 'samples/hello.wasm'], /expected ro or rw/],
  ])('125: caplet run %j, one line naming the problem', async (args, message) => {
    const r = await caplet(['run', ...args])
    expect(r.code, r.stderr).toBe(125)
    expect(r.stderr).toMatch(oneLine)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).toBe('')
  })

  it('125 is the limit on descriptors being too low, never a trap at 4 and up', async () => {
    expect(await caplet(['run', '--max-fds', '4', '--tmp', '/t', 'samples/hello.wasm'])).toEqual({
      code: 0,
      stdout: 'hello from caplet\n',
      stderr: '',
    })
  })

  it.each([
    [['no-such.wasm'], /no such file/],
    [['notwasm.wasm'], /not a WebAssembly module/],
    [['imports-env-foo.wasm'], /env\.foo/],
  ])('126: caplet run %j, one line naming why', async (args, message) => {
    const r = await caplet(['run', ...args])
    expect(r.code, r.stderr).toBe(126)
    expect(r.stderr).toMatch(oneLine)
    expect(r.stderr).toMatch(message)
  })

  it('126: a module over 2 MiB of code whose invalid body is found when called (what ran before kept)', async () => {
    const r = await caplet(['run', 'big-invalid.wasm'])
    expect(r.code).toBe(126)
    expect(r.stdout).toBe('before\n')
  })

  it.each([
    [[fixtureWasm('rt_trap'), 'unreachable'], /unreachable/],
    [[fixtureWasm('rt_trap'), 'oob'], /out-of-bounds/],
    [[fixtureWasm('flood'), 'recurse'], /stack-overflow/],
    [[fixtureWasm('memory'), 'iovs-past-end'], /memory-fault: bad pointer passed to fd_write/],
  ])('134: caplet run %j traps', async (args, message) => {
    const r = await caplet(['run', ...args])
    expect(r.code).toBe(134)
    expect(r.stderr).toMatch(/^caplet: guest trapped: /m)
    expect(r.stderr).toMatch(message)
  })

  it('65: C that does not compile (run and build), a compile past its time limit, and a script that does not type-check or bundle', async () => {
    const [runC, buildC, slow, ts, js] = await Promise.all([
      caplet(['run', 'bad.c']),
      caplet(['build', 'bad.c', '-o', 'bad.wasm']),
      caplet(['run', '--no-cache', '--compile-timeout', '1ms', 'samples/wordcount.c']),
      caplet(['run', 'bad.ts']),
      caplet(['run', 'imports-fs.js']),
    ])
    for (const r of [runC, buildC]) {
      expect(r.code).toBe(65)
      // The compiler's diagnostics first, then caplet's one line.
      expect(r.stderr).toMatch(/^bad\.c:1:11: error: [^\n]+\n[\s\S]*\ncaplet: compile failed: [^\n]+\n$/)
    }
    expect(slow).toMatchObject({ code: 65, stderr: expect.stringMatching(/compilation stopped: it took longer than 1 ms/) })
    expect(ts).toMatchObject({
      code: 65,
      stderr: expect.stringMatching(/^bad\.ts:1:7: error: .*\(TS2322\)\ncaplet: bad\.ts: the script did not type-check/),
    })
    expect(js).toMatchObject({
      code: 65,
      stderr: expect.stringMatching(
        /^imports-fs\.js:1:16: error: import of "fs"[^\n]*\ncaplet: imports-fs\.js: the script did not compile\n$/,
      ),
    })
  })

  it('--help names the limits by their current names (fds, disk, inodes), never the renamed files', async () => {
    const run = await caplet(['run', '--help'])
    expect(run.stdout).toBe((await help()).stdout)
    expect(run.stdout).toMatch(/limits \{memory,\s+timeout, fuel, stdout, stderr, fds, disk, inodes\}/)
    expect(run.stdout).not.toMatch(/\bfiles\}/)
    for (const flag of ['--max-fds N', '--disk SIZE', '--max-files N']) expect(run.stdout).toContain(flag)
  })
})

describe.concurrent('sockets (README "Sockets")', SLOW, () => {
  it('an echo server and an HTTP server on a --listen port, reached with curl', async () => {
    const port = await freePort()
    const echo = await background(onPort(cmd('npx caplet run --listen 127.0.0.1:8080 samples/echo-server.wasm').text, port), /listening on/)
    expect(echo.output()).toContain(`caplet: listening on 127.0.0.1:${port} (fd 3)`)
    const say = cmd("printf 'hello' | curl -s telnet://127.0.0.1:8080 --max-time 1")
    expect(say.comment).toBe('echoes "hello"')
    const echoed = await sh(onPort(say.text, port))
    // curl's telnet never sees the end of the stream: --max-time ends it (28), after the echo.
    expect(echoed).toMatchObject({ code: 28, stdout: 'hello' })
    await echo.stop()

    const port2 = await freePort()
    const http = await background(
      onPort(cmd('npx caplet run --listen 127.0.0.1:8080 --dir ./site:/www:ro samples/http-server.wasm').text, port2),
      /listening on/,
    )
    const page = await sh(onPort(cmd('curl http://127.0.0.1:8080/index.html').text, port2))
    expect(page).toMatchObject({ code: 0, stdout: '<h1>from ./site</h1>\n' })
    // keep-alive: two requests on one connection.
    const twice = await sh(`curl -s -w '%{num_connects}\\n' http://127.0.0.1:${port2}/index.html http://127.0.0.1:${port2}/index.html`)
    expect(twice.stdout).toBe('<h1>from ./site</h1>\n1\n<h1>from ./site</h1>\n0\n')
    await http.stop()
  })

  it('--connect: one connection made up front; refused, a start-up error (125)', async () => {
    const c = cmd('npx caplet run --connect db=127.0.0.1:5432 client.wasm')
    const refusedPort = await freePort()
    const refused = await sh(c.text.replace(':5432', `:${refusedPort}`))
    expect(refused.code).toBe(125)
    expect(refused.stderr).toMatch(/^caplet: [^\n]*\n$/)
    let accepted = 0
    const server: Server = createServer((s) => {
      accepted++
      let got = ''
      s.on('data', (d) => (got += d))
      s.on('end', () => s.end(`pong to ${got}`))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as { port: number }).port
    try {
      const r = await sh(c.text.replace(':5432', `:${port}`))
      expect(r).toEqual({ code: 0, stdout: 'pong to ping\n', stderr: `caplet: connected to 127.0.0.1:${port} (fd 3, db)\n` })
      expect(accepted).toBe(1)
    } finally {
      server.close()
    }
  })
})

describe.concurrent('caplet serve (README "A code-execution service")', SLOW, () => {
  it('the curl session against `caplet serve --config service.json`, outputs as documented', async () => {
    const port = await freePort()
    const server = await background(onPort(cmd('npx caplet serve --port 8080 --config service.json').text, port), /listening on/)
    const vars: Record<string, string> = {}
    const run = async (c: ShellCommand, subst: (t: string) => string = (t) => t) => {
      const exported = Object.entries(vars)
        .map(([k, v]) => `${k}='${v.replace(/'/g, `'\\''`)}'; `)
        .join('')
      return sh(exported + subst(onPort(c.text, port)))
    }
    // An assignment runs as written; what it assigned is kept for the commands after it.
    const assign = async (c: ShellCommand) => {
      const v = /^([A-Z]+)=/.exec(c.text)![1]!
      const r = await run(c, (t) => `${t}; printf '%s' "$${v}"`)
      expect(r.code).toBe(0)
      vars[v] = r.stdout
    }
    await assign(cmd("T='Authorization: Bearer 0123456789abcdef-secret'"))
    expect(serviceConfig).toContain(vars.T!.replace('Authorization: Bearer ', ''))
    await assign(cmd('ID=$(curl -s -H "$T" -X PUT --data-binary @samples/hello.wasm localhost:8080/v1/modules | jq -r .id)'))
    expect(vars.ID).toBe(
      createHash('sha256')
        .update(readFileSync(join(repoRoot, 'samples/hello.wasm')))
        .digest('hex'),
    )

    const full = cmd(
      'curl -s -H "$T" localhost:8080/v1/runs -d \'{"module":"\'$ID\'","args":["prog","x"],"env":{"K":"v"},"stdin":"input", "files":{"data/in.txt":"read-only under /input"},"output":true,"limits":{"timeout":"2s","memory":"32MiB"}}\'',
    )
    const done = await run(full)
    expect(full.output).not.toBe('')
    expect(done.stdout).toMatch(ellipsis(full.output))
    expect(JSON.parse(done.stdout)).toMatchObject({
      status: 'done',
      result: { exitCode: 0, stdout: 'hello from caplet\n', stderr: '', files: {} },
    })

    const queued = cmd('curl -s -H "$T" localhost:8080/v1/runs -d \'{"module":"\'$ID\'","wait":false}\'')
    const [status, body] = /^(\d{3}) (.*)$/.exec(queued.comment)!.slice(1)
    const q = await run(queued, (t) => t.replace(/^curl -s /, `curl -s -w '\\n%{http_code}' `))
    const [json, code] = q.stdout.split('\n')
    expect(code).toBe(status)
    expect(json).toMatch(ellipsis(body!))
    const id = JSON.parse(json!).id as string

    const one = cmd('curl -s -H "$T" localhost:8080/v1/runs/<id>')
    expect(one.comment).toBe('the run, once done')
    let later: { status?: string; result?: { stdout?: string } } = {}
    for (let i = 0; i < 100 && later.status !== 'done'; i++) {
      later = JSON.parse((await run(one, (t) => t.replace('<id>', id))).stdout)
      if (later.status !== 'done') await new Promise((r) => setTimeout(r, 50))
    }
    expect(later).toMatchObject({ id, status: 'done', result: { stdout: 'hello from caplet\n' } })

    const batch = await run(
      cmd('curl -s -H "$T" localhost:8080/v1/runs/batch -d \'{"runs":[{"module":"\'$ID\'"},{"module":"\'$ID\'","args":["p","y"]}]}\''),
    )
    const runs = (JSON.parse(batch.stdout) as { runs: { status: string; result: { exitCode: number } }[] }).runs
    expect(runs.map((r) => [r.status, r.result.exitCode])).toEqual([
      ['done', 0],
      ['done', 0],
    ])

    // "(module …)": the sample greet.wat in its place.
    const greet = readFileSync(join(repoRoot, 'samples/greet.wat'), 'utf8')
    const wat = await run(
      cmd(
        'curl -s -H "$T" localhost:8080/v1/runs -d \'{"source":{"language":"wat","files":{"greet.wat":"(module …)"}},"args":["greet","ann"]}\'',
      ),
      (t) => t.replace('"(module …)"', `"${jsonInShellQuotes(greet)}"`),
    )
    expect(JSON.parse(wat.stdout)).toMatchObject({ status: 'done', result: { exitCode: 1, stdout: 'hello, ann!\n' } })

    // Metrics take an API token when the config sets no metricsToken, as the README says.
    const health = await run(
      cmd("curl -s localhost:8080/healthz; curl -s -H 'Authorization: Bearer <metrics token>' localhost:8080/metrics"),
      (t) => t.replace('<metrics token>', '0123456789abcdef-secret'),
    )
    expect(health.code).toBe(0)
    expect(health.stdout).toMatch(/^\{[^\n]*"ok"[^\n]*\}/)
    expect(health.stdout).toMatch(/^# HELP /m)
    expect((await sh(`curl -s -o /dev/null -w '%{http_code}' localhost:${port}/metrics`)).stdout).toBe('401')
    // The second token, given by its sha256 in the config, is accepted too.
    const ci = await sh(
      `curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer ci-token-of-the-readme-test' localhost:${port}/v1/runs/${id}`,
    )
    expect(ci.stdout).toBe('404') // accepted, and a run is visible only to the token that started it
    expect(
      (await sh(`curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong-token-0123456' localhost:${port}/v1/runs/${id}`))
        .stdout,
    ).toBe('401')
    await server.stop()
  })

  it('`caplet serve --queue` with a `caplet worker` on a redis-server of its own', async () => {
    let redis: RedisInstance | undefined
    try {
      redis = await startRedis()
      const queue = (t: string) => t.replace('redis://127.0.0.1:6379', redis!.url)
      const port = await freePort()
      // No --port in the README's line: the default 8080 is replaced by a free one.
      const serve = cmd('npx caplet serve --queue redis://127.0.0.1:6379')
      const server = await background(`${queue(serve.text)} --port ${port}`, /listening on/)
      const worker = await background(
        queue(cmd('npx caplet worker --queue redis://127.0.0.1:6379 --concurrency 4').text),
        /caplet worker ready/,
      )
      const put = await sh(`curl -s -X PUT --data-binary @samples/hello.wasm localhost:${port}/v1/modules | jq -r .id`)
      const r = await sh(`curl -s localhost:${port}/v1/runs -d '{"module":"${put.stdout.trim()}"}'`)
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'done', result: { exitCode: 0, stdout: 'hello from caplet\n' } })
      await server.stop()
      await worker.stop()
    } finally {
      await redis?.stop()
    }
  })
})

// ---------------------------------------------------------------------------------------------
// The TypeScript snippets

/** What each snippet uses but does not define, as values (to run it) and as declarations (to type-check it). */
const SNIPPET_CONTEXT: Record<string, { values: string; types: string; after: string }> = {
  'language: userLanguage': {
    values: `const src = '#include <stdio.h>\\n#include "lib/util.h"\\nint main(void) { printf("N=%d\\\\n", TWICE(N)); return 0; }\\n'
const header = '#define TWICE(x) (2 * (x))\\n'
const userLanguage = process.env.USER_LANGUAGE
const files = { 'main.js': 'console.log("from " + "javascript")' }
const policy = { stdout: 'inherit' }`,
    types: `declare const src: string, header: string, userLanguage: 'c' | 'javascript', files: Record<string, string>
declare const policy: import('caplet').RunOptions`,
    after: `console.log('result:', new TextDecoder().decode(result.stdout), result.exitCode, diagnostics.length, typeof module)`,
  },
  "run('prog.wasm'": {
    values: '',
    types: '',
    after: `console.log(JSON.stringify({ exitCode: r.exitCode, stdout: new TextDecoder().decode(r.stdout), stderr: r.stdout instanceof Uint8Array && r.stderr instanceof Uint8Array, stats: Object.keys(r.stats).sort(), overlays: r.overlays }))`,
  },
  "prepare('judge.wasm'": {
    values: `const input = 'case one\\n'
const other = 'case two\\n'`,
    types: 'declare const input: string, other: string',
    after: `console.log(JSON.stringify([new TextDecoder().decode(r.stdout), new TextDecoder().decode(s.stdout)]))`,
  },
  "language: 'typescript'": {
    values: `const src = 'import { double } from "./lib.ts"\\nconsole.log(double(Number(stdin.trim())))\\n'
const lib = 'export const double = (n: number): number => n * 2\\n'
const input = '21'`,
    types: 'declare const src: string, lib: string, input: string',
    after: `console.log(JSON.stringify({ exitCode: r.exitCode, stdout: new TextDecoder().decode(r.stdout) }))`,
  },
  "plugin('rules.wasm'": {
    values: `const prices = { A1: 42 }
const order = { sku: 'A1', quantity: 3 }
const input = JSON.stringify({ sku: 'A1' })`,
    types: 'declare const prices: Record<string, number>, order: object, input: string',
    after: `console.log(new TextDecoder().decode(out))`,
  },
  "compileScript({ files: { 'rules.ts': src } })": {
    values: `import { compileScript, scriptPlugin } from 'caplet'
const src = process.env.RULES_TS
const order = { lines: [{ quantity: 2, price: 10 }, { quantity: 1, price: 5 }], coupon: 'TENOFF' }`,
    types: `import { compileScript, scriptPlugin } from 'caplet'
declare const src: string, order: object`,
    after: `console.log(JSON.stringify({ out: new TextDecoder().decode(out), exports: p.exports() })); await p.close()`,
  },
  "from 'caplet/browser'": {
    values: '',
    types: `declare const term: { write(chunk: Uint8Array): void }
declare const memfsVolume: import('memfs').Volume`,
    after: '',
  },
}

async function runSnippet(marker: string, extraEnv: Record<string, string> = {}): Promise<Ran> {
  const ctx = SNIPPET_CONTEXT[marker]!
  const source = `${ctx.values}\n${snippet(marker).text}\n${ctx.after}\n`
  const js = (await transform(source, { loader: 'ts', format: 'esm', target: 'es2022' })).code
  const file = join(work, `snippet-${SNIPPET_MARKERS.indexOf(marker)}.mjs`)
  writeFileSync(file, js)
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [file], { cwd: work, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe.concurrent('TypeScript snippets (run by node against dist/, `caplet` the package itself)', SLOW, () => {
  it('they type-check against the shipped declarations', async () => {
    const dir = join(work, 'typecheck')
    mkdirSync(dir, { recursive: true })
    const names: string[] = []
    SNIPPET_MARKERS.forEach((m, i) => {
      if (m === '// rules.ts: set up once, at load') {
        writeFileSync(join(dir, 'rules.ts'), snippet(m).text)
        names.push('rules.ts')
        return
      }
      const ctx = SNIPPET_CONTEXT[m]!
      const n = `snippet-${i}.ts`
      writeFileSync(join(dir, n), `${ctx.types}\n${snippet(m).text}\nexport {}\n`)
      names.push(n)
    })
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          lib: ['es2023', 'dom'],
          types: ['node'],
          typeRoots: [join(repoRoot, 'node_modules/@types')],
          skipLibCheck: true,
          noUnusedLocals: false,
          // memfs (a dev dependency) for the browser snippet's volume.
          paths: { memfs: [join(repoRoot, 'node_modules/memfs/lib/index.d.ts')] },
        },
        files: names,
      }),
    )
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
    const r = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: work, encoding: 'utf8' })
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })

  it('compile() a C program and run it; a language chosen at run time narrowed on kind', async () => {
    const c = await runSnippet('language: userLanguage', { USER_LANGUAGE: 'javascript' })
    expect(c.stderr).toBe('')
    expect(c.stdout).toBe('from javascript\nresult: N=20\n 0 0 object\n')
  })

  it('run() with mounts (a read-only dir, an overlay saved elsewhere, a tmp), stdin and limits', async () => {
    const r = await runSnippet("run('prog.wasm'")
    expect(r.stderr).toBe('')
    const got = JSON.parse(r.stdout)
    expect(got).toMatchObject({
      exitCode: 0,
      stdout: 'args: prog x\nwrote /www/out.txt\n/data/in.txt: from ./data\ncreate /data/new.txt: Read-only file system\n',
      stderr: true,
      stats: ['bytesRead', 'bytesWritten', 'fuelUsed', 'peakMemory', 'syscalls', 'wallMs'].filter((k) => got.stats.includes(k)),
      overlays: [expect.objectContaining({ guest: '/www' })],
    })
    expect(got.stats).toEqual(expect.arrayContaining(['bytesRead', 'bytesWritten', 'fuelUsed', 'peakMemory', 'syscalls', 'wallMs']))
    // The overlay's change went to ./site-changes; ./site is untouched.
    expect(readFileSync(join(work, 'site-changes/out.txt'), 'utf8')).toBe('written by prog\n')
    expect(existsSync(join(work, 'site-changes/.caplet-overlay.json'))).toBe(true)
    expect(existsSync(join(work, 'site/out.txt'))).toBe(false)
  })

  it('prepare() once, then run() in a worker and runSync() on this thread', async () => {
    const r = await runSnippet("prepare('judge.wasm'")
    expect(r.stderr).toBe('')
    const [first, second] = JSON.parse(r.stdout) as string[]
    expect(first).toBe('args: judge case1\ncase one\n')
    expect(second).toMatch(/^args:[^\n]*\ncase two\n$/)
  })

  it('compile() TypeScript across two files, then run the program', async () => {
    const r = await runSnippet("language: 'typescript'")
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual({ exitCode: 0, stdout: '42\n' })
  })

  it('plugin(): a host function granted by name, call, callSync, exports, close', async () => {
    const r = await runSnippet("plugin('rules.wasm'")
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe('{"sku":"A1","price":42}\n')
  })

  it('scriptPlugin() over compileScript() of rules.ts without an entry', async () => {
    const r = await runSnippet("compileScript({ files: { 'rules.ts': src } })", {
      RULES_TS: snippet('// rules.ts: set up once, at load').text,
    })
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual({ out: JSON.stringify({ total: 22.5 }), exports: ['total'] })
  })
})
