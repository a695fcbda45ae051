/**
 * Escape tests for the compile stage: untrusted source tries to read host files through the
 * compiler (#include, __has_include, #embed, .incbin, AssemblyScript imports), to learn host
 * paths (__FILE__, debug info, diagnostics), to plant files outside the work dir (names like
 * ../x or absolute), to smuggle raw flags through a file name, to pull host files in through
 * symlinks, and to exhaust the host with huge sources and outputs. A canary file outside stays
 * unread (its secret never appears in a module, a diagnostic or an error) and unchanged, and
 * every compile cleans its work directory up.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compile, CompileError, run, ToolchainError } from '../../runtime/index.js'
import { formatDiagnostics } from '../../toolchain/index.js'
import { repoRoot } from '../support/guest.js'

const T = 240_000
const SECRET = `CAPLET-COMPILE-CANARY-${Math.random().toString(36).slice(2)}`
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const bin = join(repoRoot, 'bin/caplet.js')

let outside: string
let canaryH: string
let canaryTs: string
let privateTmp: string
let savedTmp: string | undefined
let canaryStat: { size: number; mtimeMs: number }

beforeAll(() => {
  outside = mkdtempSync(join(tmpdir(), 'caplet-canary-'))
  canaryH = join(outside, 'canary.h')
  canaryTs = join(outside, 'canary.ts')
  writeFileSync(canaryH, `#define SECRET "${SECRET}"\n`)
  writeFileSync(canaryTs, `export const SECRET = "${SECRET}"\n`)
  const st = statSync(canaryH)
  canaryStat = { size: st.size, mtimeMs: st.mtimeMs }
  // Compiles make their work directories here, so the test can see that none is left behind.
  savedTmp = process.env.TMPDIR
  privateTmp = mkdtempSync(join(tmpdir(), 'caplet-cc-tmp-'))
  process.env.TMPDIR = privateTmp
})

afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR
  else process.env.TMPDIR = savedTmp
  try {
    expect(readdirSync(privateTmp)).toEqual([])
    expect(readFileSync(canaryH, 'utf8')).toBe(`#define SECRET "${SECRET}"\n`)
    const st = statSync(canaryH)
    expect({ size: st.size, mtimeMs: st.mtimeMs }).toEqual(canaryStat)
  } finally {
    rmSync(privateTmp, { recursive: true, force: true })
    rmSync(outside, { recursive: true, force: true })
  }
})

/** Everything a compile let out: the error text, its diagnostics and the module's bytes. */
async function attempt(
  language: string,
  files: Record<string, string>,
  options: Record<string, unknown> = {},
): Promise<{ ok: boolean; said: string; module?: Uint8Array; error?: unknown }> {
  try {
    const r = await compile({ language, files, options: { cache: false, ...options } })
    const module = r.kind === 'wasm' ? r.module : new TextEncoder().encode(JSON.stringify(r.program))
    return { ok: true, said: formatDiagnostics(r.diagnostics) + text(module), module }
  } catch (e) {
    const diags = e instanceof CompileError ? formatDiagnostics(e.diagnostics) : ''
    return { ok: false, said: `${(e as Error).message}\n${diags}`, error: e }
  }
}

/** Nothing of the host in `said`, once the paths the source itself wrote (echoed back) are removed. */
function expectNoLeak(said: string) {
  for (const echoed of [canaryH, canaryTs.replace(/\.ts$/, ''), canaryTs]) said = said.split(echoed).join('<echo>')
  expect(said).not.toContain(SECRET)
  expect(said).not.toContain(privateTmp)
  expect(said).not.toContain(outside)
  expect(said).not.toMatch(/caplet-cc-|root:x:0:0/)
}

describe('the compiler sees no host file', () => {
  it(
    '#include of /etc/passwd, /proc/self/environ, ../../x and the canary by absolute path all fail',
    async () => {
      const results = await Promise.all([
        attempt('c', { 'main.c': '#include "/etc/passwd"\nint main(void) { return 0; }\n' }),
        attempt('c', { 'main.c': '#include "/proc/self/environ"\nint main(void) { return 0; }\n' }),
        attempt('c', { 'sub/main.c': '#include "../../x"\n#include "../../../../etc/passwd"\nint main(void) { return 0; }\n' }),
        attempt('c', { 'main.c': `#include "${canaryH}"\n#include <stdio.h>\nint main(void) { puts(SECRET); return 0; }\n` }),
        attempt('c', { 'main.c': `#include <${canaryH}>\nint main(void) { return 0; }\n` }),
      ])
      for (const r of results) {
        expect(r.ok).toBe(false)
        expect(r.error).toBeInstanceOf(CompileError)
        expect(r.said).toMatch(/file not found/)
        expectNoLeak(r.said)
      }
    },
    T,
  )

  it(
    '__has_include finds nothing of the host: /etc, /proc, /home, /root, /tmp, the canary, the work dir',
    async () => {
      const probes = [
        '/etc/passwd',
        '/etc/hostname',
        '/etc/ld.so.cache',
        '/proc/self/environ',
        '/proc/self/status',
        '/proc/1/cmdline',
        '/root/.bashrc',
        '/root/.profile',
        '/dev/null',
        '/sys/kernel/hostname',
        canaryH,
        join(repoRoot, 'package.json'),
        `${privateTmp}/x`,
        '/src/../etc/passwd',
        '../../../../../../etc/passwd',
      ]
      const src =
        '#include <stdio.h>\nint main(void) {\n  int seen = 0;\n' +
        probes.map((p) => `#if __has_include("${p}")\n  puts("visible: ${p}"); seen++;\n#endif\n`).join('') +
        '  printf("%d visible\\n", seen);\n  return 0;\n}\n'
      const { module } = await compile({ language: 'c', files: { 'probe.c': src }, options: { cache: false } })
      const r = await run(module, { stdout: 'capture' })
      expect(text(r.stdout)).toBe('0 visible\n')
    },
    T,
  )

  it(
    '#embed and .incbin of host files fail without revealing them',
    async () => {
      const results = await Promise.all([
        attempt(
          'c',
          { 'e.c': 'static const char d[] = {\n#embed "/etc/passwd"\n, 0};\nint main(void) { return d[0]; }\n' },
          { std: 'c23' },
        ),
        attempt('c', { 'e.c': `static const char d[] = {\n#embed "${canaryH}"\n, 0};\nint main(void) { return d[0]; }\n` }, { std: 'c23' }),
        attempt('c', { 'i.c': '__asm__(".section .data.blob,\\"\\",@\\n.incbin \\"/etc/passwd\\"\\n");\nint main(void) { return 0; }\n' }),
        attempt('c', { 'i.c': `__asm__(".section .data.blob,\\"\\",@\\n.incbin \\"${canaryH}\\"\\n");\nint main(void) { return 0; }\n` }),
      ])
      for (const r of results) {
        expect(r.ok).toBe(false)
        expectNoLeak(r.said)
      }
    },
    T,
  )

  it(
    '__FILE__, debug info and diagnostics carry guest-relative names only',
    async () => {
      const files = {
        'src/main.c':
          '#include <stdio.h>\n#include "lib/where.h"\nint main(void) { puts(__FILE__); puts(__BASE_FILE__); puts(where()); return 0; }\n',
        'src/lib/where.h': 'static const char *where(void) { return __FILE__; }\n#warning "a warning from a header"\n',
      }
      const r = await compile({ language: 'c', files, options: { cache: false, debug: true } })
      expect(r.diagnostics[0]).toMatchObject({ severity: 'warning', file: 'src/lib/where.h', line: 2 })
      const out = await run(r.module, { stdout: 'capture' })
      expect(text(out.stdout)).toBe('src/main.c\nsrc/main.c\nsrc/lib/where.h\n')
      const bytes = text(r.module)
      expectNoLeak(bytes + formatDiagnostics(r.diagnostics))
      expect(bytes).not.toContain('\0/src\0') // the jail's own directory is not the compilation dir
    },
    T,
  )

  it(
    'AssemblyScript imports cannot reach host files',
    async () => {
      const results = await Promise.all([
        attempt('as', { 'main.as.ts': `import { SECRET } from "${canaryTs.replace(/\.ts$/, '')}"\nconsole.log(SECRET)\n` }),
        attempt('as', {
          'main.as.ts': `import { SECRET } from "../../../../../../..${canaryTs.replace(/\.ts$/, '')}"\nconsole.log(SECRET)\n`,
        }),
        // asconfig.json could name a transform (host JavaScript): a submitted one is never read
        attempt('as', { 'main.as.ts': 'console.log("x")\n', 'asconfig.json': JSON.stringify({ options: { transform: [canaryTs] } }) }),
      ])
      expect(results[0]!.ok).toBe(false)
      expect(results[1]!.ok).toBe(false)
      expect(results[2]!.ok).toBe(true)
      for (const r of results) expectNoLeak(r.said)
    },
    T,
  )
})

describe('submitted names and sizes are validated before anything is written', () => {
  it('refuses ../x, absolute, NUL, flag-like, hidden and empty-component names', async () => {
    for (const name of [
      '../x.c',
      '/tmp/x.c',
      `${outside}/planted.c`,
      'a/../../b.c',
      'x\0.c',
      '-fplugin=/tmp/p.so',
      '--sysroot=/',
      '.hidden.c',
      'a//b.c',
      'a\\..\\b.c',
      'sub/./x.c',
      '',
    ]) {
      const e = await compile({ language: 'c', files: { [name]: 'int main(void) { return 0; }' }, options: { cache: false } }).catch(
        (x: unknown) => x,
      )
      expect(e, name).toBeInstanceOf(CompileError)
      expect((e as Error).message).toMatch(/invalid sources|no source files/)
    }
    expect(readdirSync(outside).sort()).toEqual(['canary.h', 'canary.ts'])
    expect(readdirSync(privateTmp)).toEqual([])
  })

  it('refuses huge sources and too many files', async () => {
    await expect(compile({ language: 'c', files: { 'big.c': 'x'.repeat(9 * 1024 * 1024) } })).rejects.toThrow(/larger than/)
    const many: Record<string, string> = {}
    for (let i = 0; i < 300; i++) many[`f${i}.c`] = ''
    await expect(compile({ language: 'c', files: many })).rejects.toThrow(/too many source files/)
  })

  it(
    'an output past the limit stops the compile',
    async () => {
      const r = await attempt(
        'c',
        { 'big.c': 'char big[8 << 20] = {1};\nint main(int argc, char **argv) { return big[argc * 4096]; }\n' },
        { maxOutput: '1MiB' },
      )
      expect(r.ok).toBe(false)
      expect((r.error as CompileError).limit).toBe('output')
      expect(r.said).toMatch(/output grew past the limit/)
    },
    T,
  )
})

describe('the jail is required', () => {
  it(
    'without bubblewrap C is refused unless the source is trusted; trusted compiles still redact host paths',
    async () => {
      const env = { ...process.env, CAPLET_BWRAP: join(outside, 'no-bwrap') }
      const src = { 'main.c': 'int main(void) { return missing; }\n' }
      const refused = await compile({ language: 'c', files: src, options: { cache: false, env } }).catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(ToolchainError)
      expect((refused as Error).message).toMatch(/bubblewrap.*--trust-source/)
      const trusted = await attempt('c', src, { env, trustSource: true })
      expect(trusted.ok).toBe(false)
      expect(trusted.said).toMatch(/main\.c:1:\d+: error: use of undeclared identifier 'missing'/)
      expectNoLeak(trusted.said)
    },
    T,
  )

  it(
    'the CLI refuses to compile without bubblewrap unless --trust-source',
    () => {
      const dir = mkdtempSync(join(outside, 'cli-'))
      writeFileSync(join(dir, 'ok.c'), 'int main(void) { return 7; }\n')
      const env = {
        PATH: process.env.PATH ?? '',
        CAPLET_BWRAP: join(outside, 'no-bwrap'),
        CAPLET_CACHE_DIR: join(dir, 'cache'),
        TMPDIR: privateTmp,
      }
      const refused = spawnSync(process.execPath, [bin, 'run', 'ok.c'], { cwd: dir, env, encoding: 'utf8' })
      expect(refused.status).toBe(125)
      expect(refused.stderr).toMatch(/^caplet: bubblewrap \(bwrap\) is not installed.*--trust-source/)
      expect(refused.stderr.split('\n').filter(Boolean)).toHaveLength(1)
      const trusted = spawnSync(process.execPath, [bin, 'run', '--trust-source', 'ok.c'], { cwd: dir, env, encoding: 'utf8', timeout: T })
      expect(trusted.status).toBe(7)
    },
    T,
  )
})

describe('symlinks planted among the sources', () => {
  it('the CLI compiles regular files only: a symlink to a host file is refused', () => {
    const dir = mkdtempSync(join(outside, 'links-'))
    writeFileSync(join(dir, 'main.c'), '#include "evil.h"\n#include <stdio.h>\nint main(void) { puts(SECRET); return 0; }\n')
    symlinkSync(canaryH, join(dir, 'evil.h'))
    symlinkSync(join(dir, 'main.c'), join(dir, 'link.c'))
    mkdirSync(join(dir, 'cache'))
    const env = { PATH: process.env.PATH ?? '', CAPLET_CACHE_DIR: join(dir, 'cache'), TMPDIR: privateTmp }
    const asHeader = spawnSync(process.execPath, [bin, 'build', 'main.c', 'evil.h', '-o', 'out.wasm'], { cwd: dir, env, encoding: 'utf8' })
    expect(asHeader.status).toBe(125)
    expect(asHeader.stderr).toMatch(/evil\.h: is a symbolic link/)
    const asMain = spawnSync(process.execPath, [bin, 'run', 'link.c'], { cwd: dir, env, encoding: 'utf8' })
    expect(asMain.status).toBe(125)
    expect(asMain.stderr).toMatch(/link\.c: is a symbolic link/)
    for (const r of [asHeader, asMain]) expectNoLeak(r.stdout + r.stderr)
    expect(readdirSync(dir).sort()).toEqual(['cache', 'evil.h', 'link.c', 'main.c'])
  })
})
