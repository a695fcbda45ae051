/**
 * @module run(): one guest, one policy, one result. In-process for now; the worker-isolated
 * sandbox with limits builds on the same pieces.
 */
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs'
import { basename } from 'node:path'
import {
  createMemFs, Errno, LimitExceeded, WasiError, WasiHost, type Filesystem, type PreopenSpec, type StdinSource,
} from '../wasi-host/index.js'
import { createNodeClocks } from '../wasi-host/node/clocks.js'
import { createHostDirFs } from '../wasi-host/node/host-dir-fs.js'
import { PolicyError } from './errors.js'
import { loadModule, type ModuleSource } from './module.js'
import { classifyTrap, type TrapInfo } from './trap.js'

/** A directory the guest may see: a host directory, an in-memory scratch dir, or any backend. */
export interface MountSpec {
  /** Absolute path in the guest, e.g. `/data`. */
  guest: string
  /** A host directory (exactly one of `host`, `tmp`, `fs`). */
  host?: string
  /** An empty in-memory directory that vanishes after the run. */
  tmp?: boolean
  fs?: Filesystem
  /** Default `rw` (`ro` for nothing: say it). */
  mode?: 'ro' | 'rw'
}

export type OutputOption = 'capture' | 'inherit' | 'discard' | ((chunk: Uint8Array) => void)

export interface RunOptions {
  /** argv including argv[0]; default `[<module file name>]`. */
  args?: readonly string[]
  env?: Readonly<Record<string, string>>
  mounts?: readonly MountSpec[]
  /** Guest stdin: bytes, a string, `'inherit'` (this process's stdin), or nothing (empty). */
  stdin?: string | Uint8Array | 'inherit'
  stdout?: OutputOption
  stderr?: OutputOption
}

export interface RunStats {
  wallMs: number
  syscalls: number
  bytesRead: number
  bytesWritten: number
}

export interface RunResult {
  /** The guest's exit code (`proc_exit`, or 0 when `_start` returned); 134 after a trap. */
  exitCode: number
  stdout: Uint8Array
  stderr: Uint8Array
  trap?: TrapInfo
  stats: RunStats
}

/** Exit code reported when the guest trapped (as a process killed by SIGABRT). */
export const TRAP_EXIT_CODE = 134

/**
 * Runs a WASI command module. Resolves with a result whatever the guest did; rejects only for
 * what the caller got wrong: `PolicyError` (a bad mount), `ModuleError` (a module that cannot run here).
 */
export async function run(module: ModuleSource, options: RunOptions = {}): Promise<RunResult> {
  return runSync(module, options)
}

export function runSync(module: ModuleSource, options: RunOptions = {}): RunResult {
  const mod = loadModule(module)
  const closers: (() => void)[] = []
  const preopens = openMounts(options.mounts ?? [], closers)
  try {
    const stdout = sink(options.stdout ?? 'capture', 1)
    const stderr = sink(options.stderr ?? 'capture', 2)
    const argv0 = typeof module === 'string' ? basename(module) : module instanceof URL ? basename(module.pathname) : 'main.wasm'
    const host = new WasiHost({
      args: options.args ?? [argv0],
      env: options.env ?? {},
      preopens,
      stdin: stdinSource(options.stdin, closers),
      stdout: stdout.write,
      stderr: stderr.write,
      clocks: createNodeClocks(),
    })
    const started = performance.now()
    let exitCode: number
    let trap: TrapInfo | undefined
    try {
      const instance = new WebAssembly.Instance(mod, host.imports as unknown as WebAssembly.Imports)
      exitCode = host.start(instance)
    } catch (e) {
      if (e instanceof LimitExceeded) throw e
      trap = classifyTrap(e, host.recentSyscalls())
      if (trap === undefined) throw e
      exitCode = TRAP_EXIT_CODE
    } finally {
      host.close()
    }
    const syscalls = Object.values(host.stats.syscalls).reduce((a, b) => a + b, 0)
    return {
      exitCode,
      stdout: stdout.collected(),
      stderr: stderr.collected(),
      ...(trap ? { trap } : {}),
      stats: { wallMs: performance.now() - started, syscalls, bytesRead: host.stats.bytesRead, bytesWritten: host.stats.bytesWritten },
    }
  } finally {
    for (const close of closers.reverse()) close()
  }
}

function openMounts(mounts: readonly MountSpec[], closers: (() => void)[]): PreopenSpec[] {
  const problems: string[] = []
  const seen = new Set<string>()
  const out: PreopenSpec[] = []
  mounts.forEach((m, i) => {
    const where = `mounts[${i}]`
    if (typeof m.guest !== 'string' || !m.guest.startsWith('/')) problems.push(`${where}.guest must be an absolute guest path like "/data", got ${JSON.stringify(m.guest)}`)
    else if (seen.has(m.guest)) problems.push(`${where}.guest ${JSON.stringify(m.guest)} is mounted twice`)
    else seen.add(m.guest)
    if (m.mode !== undefined && m.mode !== 'ro' && m.mode !== 'rw') problems.push(`${where}.mode must be "ro" or "rw", got ${JSON.stringify(m.mode)}`)
    const sources = [m.host !== undefined, m.tmp === true, m.fs !== undefined].filter(Boolean).length
    if (sources !== 1) { problems.push(`${where} needs exactly one of host, tmp or fs`); return }
    if (m.host !== undefined) {
      let isDir = false
      try { isDir = statSync(m.host).isDirectory() } catch { /* reported below */ }
      if (!isDir) { problems.push(`${where}.host ${JSON.stringify(m.host)} is not an existing directory`); return }
    }
  })
  if (problems.length > 0) throw new PolicyError(problems)
  for (const m of mounts) {
    let fs: Filesystem
    if (m.host !== undefined) {
      const hostFs = createHostDirFs(m.host)
      closers.push(() => hostFs.close())
      fs = hostFs
    } else fs = m.fs ?? createMemFs()
    out.push({ guestPath: m.guest, fs, mode: m.mode ?? 'rw' })
  }
  return out
}

interface Sink {
  write: (chunk: Uint8Array) => void
  collected: () => Uint8Array
}

const EMPTY = new Uint8Array(0)

function sink(option: OutputOption, hostFd: number): Sink {
  if (typeof option === 'function') return { write: option, collected: () => EMPTY }
  if (option === 'discard') return { write: () => {}, collected: () => EMPTY }
  if (option === 'inherit') return { write: (c) => writeAllSync(hostFd, c), collected: () => EMPTY }
  const chunks: Uint8Array[] = []
  let total = 0
  return {
    write: (c) => { chunks.push(c.slice()); total += c.byteLength },
    collected: () => {
      const out = new Uint8Array(total)
      let at = 0
      for (const c of chunks) { out.set(c, at); at += c.byteLength }
      return out
    },
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4))

/** Writes all of `chunk` to a host fd, waiting out EAGAIN on non-blocking pipes. */
function writeAllSync(fd: number, chunk: Uint8Array): void {
  let at = 0
  while (at < chunk.byteLength) {
    try {
      at += writeSync(fd, chunk, at, chunk.byteLength - at)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 1); continue }
      // The reader went away (`| head`): the guest sees EPIPE, as a process would.
      if (code === 'EPIPE') throw new WasiError(Errno.PIPE, 'host stdout closed')
      throw e
    }
  }
}

function stdinSource(option: RunOptions['stdin'], closers: (() => void)[]): StdinSource {
  if (option !== 'inherit') return option
  let fd = 0
  try {
    // Reading /dev/stdin through a fresh descriptor avoids the non-blocking mode Node may set on fd 0.
    fd = openSync('/dev/stdin', 'r')
    const opened = fd
    closers.push(() => closeSync(opened))
  } catch { fd = 0 }
  let ended = false
  return (dst) => {
    if (ended) return 0
    for (;;) {
      try {
        const n = readSync(fd, dst, 0, dst.byteLength, null)
        if (n === 0) ended = true
        return n
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 5); continue }
        if (code === 'EOF') { ended = true; return 0 }
        throw new WasiError(Errno.IO, `host stdin: ${code}`)
      }
    }
  }
}
