/**
 * @module Finds the host's clang for wasm32-wasi and everything the jail must show it: the
 * compiler's own tree, the shared libraries it and its linker load, the linker, the resource
 * directory and the WASI sysroot. Only trusted inputs reach these probes (the compiler's path,
 * fixed flags, no source); the answer is memoised per compiler path. A missing compiler or
 * sysroot is a ToolchainError naming the Debian packages to install.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, isAbsolute, join, normalize } from 'node:path'
import { ToolchainError } from '../../runtime/errors.js'

export const CLANG_PACKAGES = 'clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32'
export const CLANGXX_PACKAGES = 'libc++-19-dev-wasm32 libc++abi-19-dev-wasm32'

export interface ClangInstall {
  /** The compiler binary (real path) and its tree, e.g. /usr/lib/llvm-19. */
  clang: string
  root: string
  /** `clang --version`, first line: part of the cache key. */
  version: string
  resourceDir: string
  /** The linker as the driver invokes it (e.g. /usr/bin/wasm-ld-19) and its real path. */
  linker: string
  linkerReal: string
  /** Shared libraries the compiler and linker load (paths as the loader finds them). */
  libraries: string[]
  /** The sysroot passed as --sysroot, and the directories of it the jail shows. */
  sysroot: string
  sysrootDirs: string[]
  /** The C++ standard library is installed for wasm32-wasi. */
  hasLibcxx: boolean
  /** The sysroot ships an unwinder: C++ exceptions can be enabled. */
  hasUnwind: boolean
}

const memo = new Map<string, ClangInstall>()

function onPath(name: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const p = join(dir, name)
    try {
      if (statSync(p).isFile()) return p
    } catch {
      /* next */
    }
  }
  return undefined
}

export function findClang(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const named = env.CAPLET_CLANG
  if (named !== undefined && named !== '') {
    const p = isAbsolute(named) ? named : onPath(named, env)
    if (p === undefined || !existsSync(p)) throw new ToolchainError(`CAPLET_CLANG=${named}: no such compiler`)
    return p
  }
  const found = onPath('clang-19', env) ?? onPath('clang', env)
  if (found === undefined) {
    throw new ToolchainError(
      `no C compiler for wasm32-wasi found: install the Debian packages ${CLANG_PACKAGES} (and ${CLANGXX_PACKAGES} for C++), or name a clang with CAPLET_CLANG`,
    )
  }
  return found
}

function run(file: string, args: string[]): string {
  return execFileSync(file, args, {
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  })
}

/** Shared libraries `binary` loads, as `ldd` reports them (the loader's own path included). */
function sharedLibraries(binary: string): string[] {
  let text: string
  try {
    text = run('ldd', [binary])
  } catch {
    return []
  }
  const libs: string[] = []
  for (const line of text.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)
    if (!m) continue
    // Both the name the loader looks up and the file a symlink there leads to must be visible.
    libs.push(normalize(m[1]!))
    try {
      libs.push(realpathSync(m[1]!))
    } catch {
      /* reported by the loader in the jail */
    }
  }
  return libs
}

export function probeClang(env: Readonly<Record<string, string | undefined>> = process.env): ClangInstall {
  const given = findClang(env)
  const cached = memo.get(given)
  if (cached) return cached
  let clang: string
  try {
    clang = realpathSync(given)
  } catch {
    throw new ToolchainError(`${given}: cannot resolve the compiler's path`)
  }
  let version: string
  try {
    version = run(clang, ['--version']).split('\n')[0]!.trim()
  } catch (e) {
    throw new ToolchainError(`${given} does not run (${(e as Error).message.split('\n')[0]}): install ${CLANG_PACKAGES}`)
  }
  const root = dirname(dirname(clang))
  const sysroot = env.CAPLET_WASI_SYSROOT || '/usr'
  const resourceDir = run(clang, ['--target=wasm32-wasi', '-print-resource-dir']).trim()
  // The link line the driver would run tells which linker it calls and how.
  // (the driver wants its input to exist: an empty object in a private temp dir)
  const scratch = mkdtempSync(join(tmpdir(), 'caplet-probe-'))
  let plan: ReturnType<typeof spawnSync>
  try {
    writeFileSync(join(scratch, 'x.o'), '')
    plan = spawnSync(clang, ['--target=wasm32-wasi', `--sysroot=${sysroot}`, '-###', 'x.o', '-o', 'x.wasm'], {
      cwd: scratch,
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    })
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  const linker = /^\s*"([^"]+)"/m.exec(`${plan.stderr ?? ''}${plan.stdout ?? ''}`)?.[1] ?? ''
  if (linker === '' || !existsSync(linker)) {
    throw new ToolchainError(`${given} has no wasm32 linker (wasm-ld): install lld-19 (${CLANG_PACKAGES})`)
  }
  const include = join(sysroot, 'include', 'wasm32-wasi')
  const lib = join(sysroot, 'lib', 'wasm32-wasi')
  let sysrootDirs: string[]
  if (existsSync(join(include, 'stdio.h')) && existsSync(join(lib, 'libc.a'))) sysrootDirs = [include, lib]
  else if (sysroot !== '/usr' && existsSync(join(sysroot, 'include'))) sysrootDirs = [sysroot]
  else throw new ToolchainError(`no WASI libc in ${sysroot}: install the Debian package wasi-libc (${CLANG_PACKAGES})`)
  if (!existsSync(join(resourceDir, 'lib', 'wasi')) && !existsSync(join(resourceDir, 'lib', 'wasm32-unknown-wasi'))) {
    throw new ToolchainError(`clang's runtime for wasm32 is missing: install libclang-rt-19-dev-wasm32 (${CLANG_PACKAGES})`)
  }
  const linkerReal = realpathSync(linker)
  const libraries = [...new Set([...sharedLibraries(clang), ...sharedLibraries(linkerReal)])]
  const libDir = sysrootDirs.length === 2 ? lib : join(sysroot, 'lib')
  const install: ClangInstall = {
    clang,
    root,
    version,
    resourceDir,
    linker,
    linkerReal,
    libraries,
    sysroot,
    sysrootDirs,
    hasLibcxx: existsSync(join(libDir, 'libc++.a')) || existsSync(join(libDir, 'wasm32-wasi', 'libc++.a')),
    hasUnwind: existsSync(join(libDir, 'libunwind.a')) || existsSync(join(libDir, 'wasm32-wasi', 'libunwind.a')),
  }
  memo.set(given, install)
  return install
}

/**
 * The compiler's identity for the cache key without running it: the real paths, sizes and
 * modification times of the compiler, the C library and the C++ library (a package upgrade
 * changes them). Cheap, so a cache hit spawns nothing.
 */
export function clangFingerprint(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const given = findClang(env)
  const sysroot = env.CAPLET_WASI_SYSROOT || '/usr'
  const parts: string[] = []
  for (const p of [
    given,
    join(sysroot, 'lib', 'wasm32-wasi', 'libc.a'),
    join(sysroot, 'lib', 'wasm32-wasi', 'libc++.a'),
    join(sysroot, 'lib', 'wasm32-wasi', 'libunwind.a'),
  ]) {
    try {
      const real = realpathSync(p)
      const st = statSync(real)
      parts.push(`${real}:${st.size}:${Math.trunc(st.mtimeMs)}`)
    } catch {
      parts.push(`${p}:absent`)
    }
  }
  return `sysroot=${sysroot} ${parts.join(' ')}`
}

/** The bubblewrap binary (`CAPLET_BWRAP` or `bwrap` on PATH), or undefined when not installed. */
export function findBubblewrap(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const named = env.CAPLET_BWRAP
  if (named !== undefined && named !== '') return isAbsolute(named) ? (existsSync(named) ? named : undefined) : onPath(named, env)
  return onPath('bwrap', env)
}

/** `prlimit` (util-linux), used to cap the compiler's file size and address space. */
export function findPrlimit(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  return onPath('prlimit', { PATH: env.PATH ?? '/usr/bin:/bin' })
}
