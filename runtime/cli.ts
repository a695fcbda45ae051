/**
 * @module The `caplet` command line. `caplet run [flags] MODULE.wasm [ARGS...]`.
 * Errors are one line (what failed, why, what to do), never a stack trace; caplet's own
 * failures use exit codes that a guest's own exit cannot be confused with in scripts.
 */
import { readFileSync, statSync } from 'node:fs'
import { ModuleError, PolicyError } from './errors.js'
import { runSync, TRAP_EXIT_CODE, type MountSpec, type RunOptions } from './run.js'

export const ExitCode = {
  /** Bad invocation or policy: a flag, a mount, a missing file. */
  USAGE: 125,
  /** The module was rejected: unreadable, invalid, or importing what caplet does not provide. */
  MODULE: 126,
  /** The guest trapped (bad memory access, unreachable, stack overflow, bad syscall pointer). */
  TRAP: TRAP_EXIT_CODE,
} as const

const VERSION = '0.1.0'

export const HELP = `caplet — run untrusted WebAssembly (WASI preview1) in a capability sandbox

Usage:
  caplet run [FLAGS] MODULE.wasm [ARGS...]
  caplet MODULE.wasm [ARGS...]            (same as run, with no flags)

By default the guest gets stdin, stdout, stderr, its arguments and nothing else:
no files, no environment variables, no network.

Grants (each may be repeated; flags go before MODULE):
  --dir HOST:GUEST[:ro|:rw]  Show host directory HOST to the guest at GUEST (read-write
                             unless :ro). Example: --dir ./data:/data:ro
  --tmp GUEST                An empty in-memory directory at GUEST, discarded after the run.
  --env NAME=VALUE           Set an environment variable for the guest.
  --env NAME                 Pass the host's value of NAME (nothing else is inherited).
  --stdin FILE               Read the guest's stdin from FILE (default: caplet's own stdin).

Other:
  -h, --help                 Show this help.
  -V, --version              Show the version.

Exit status:
  0-255  the guest's own exit code (proc_exit; 0 when main returns; codes above 255 wrap
         as in POSIX)
  125    caplet could not start the run: bad flag, bad --dir, unreadable --stdin file
  126    the module was rejected: not found, not WebAssembly, or it imports a function
         caplet does not provide (the message names it)
  134    the guest trapped: invalid memory access, unreachable, stack overflow, or a bad
         pointer passed to a WASI call (the message says which)

Examples:
  caplet run samples/hello.wasm
  caplet run --tmp /scratch --dir ./data:/data:ro prog.wasm arg1
`

class UsageError extends Error {}

interface Invocation {
  module: string
  args: string[]
  options: RunOptions
}

function parseDir(value: string): MountSpec {
  const parts = value.split(':')
  let mode: 'ro' | 'rw' = 'rw'
  if (parts.length >= 3 && (parts[parts.length - 1] === 'ro' || parts[parts.length - 1] === 'rw')) {
    mode = parts.pop() as 'ro' | 'rw'
  }
  if (parts.length < 2) throw new UsageError(`--dir ${value}: expected HOST:GUEST[:ro|:rw], e.g. --dir ./data:/data:ro`)
  const guest = parts.pop()!
  const host = parts.join(':')
  if (host === '') throw new UsageError(`--dir ${value}: the host directory is empty`)
  if (!guest.startsWith('/')) throw new UsageError(`--dir ${value}: the guest path must be absolute, e.g. /data`)
  let isDir = false
  try { isDir = statSync(host).isDirectory() } catch { /* reported below */ }
  if (!isDir) throw new UsageError(`--dir ${value}: ${JSON.stringify(host)} is not an existing directory on this machine`)
  return { host, guest, mode }
}

export function parseArgs(argv: readonly string[], hostEnv: Readonly<Record<string, string | undefined>>): Invocation | 'help' | 'version' {
  const rest = [...argv]
  if (rest[0] === 'run') rest.shift()
  else if (rest.length === 0) return 'help'
  const mounts: MountSpec[] = []
  const env: Record<string, string> = {}
  let stdinFile: string | undefined
  const value = (flag: string) => {
    const v = rest.shift()
    if (v === undefined) throw new UsageError(`${flag} needs a value (see caplet --help)`)
    return v
  }
  for (;;) {
    const a = rest[0]
    if (a === undefined) throw new UsageError('no module given: caplet run [FLAGS] MODULE.wasm [ARGS...]')
    if (!a.startsWith('-')) break
    rest.shift()
    let flag = a
    let inline: string | undefined
    const eq = a.indexOf('=')
    if (a.startsWith('--') && eq > 0) { flag = a.slice(0, eq); inline = a.slice(eq + 1) }
    const next = () => inline ?? value(flag)
    switch (flag) {
      case '-h': case '--help': return 'help'
      case '-V': case '--version': return 'version'
      case '--': {
        if (rest.length === 0) throw new UsageError('no module given after --')
        return finish(rest, mounts, env, stdinFile)
      }
      case '--dir': mounts.push(parseDir(next())); break
      case '--tmp': {
        const guest = next()
        if (!guest.startsWith('/')) throw new UsageError(`--tmp ${guest}: the guest path must be absolute, e.g. /tmp`)
        mounts.push({ guest, tmp: true })
        break
      }
      case '--env': {
        const kv = next()
        const i = kv.indexOf('=')
        if (i === 0) throw new UsageError(`--env ${kv}: the name is empty`)
        if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1)
        else {
          const v = hostEnv[kv]
          if (v === undefined) throw new UsageError(`--env ${kv}: not set in caplet's environment (use --env ${kv}=VALUE)`)
          env[kv] = v
        }
        break
      }
      case '--stdin': stdinFile = next(); break
      default: throw new UsageError(`unknown flag ${a} (see caplet --help)`)
    }
  }
  return finish(rest, mounts, env, stdinFile)
}

function finish(rest: string[], mounts: MountSpec[], env: Record<string, string>, stdinFile: string | undefined): Invocation {
  const module = rest.shift()!
  let stdin: RunOptions['stdin'] = 'inherit'
  if (stdinFile !== undefined) {
    try {
      stdin = readFileSync(stdinFile)
    } catch (e) {
      throw new UsageError(`--stdin ${stdinFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? e})`)
    }
  }
  const name = module.split('/').pop() ?? module
  return { module, args: rest, options: { args: [name, ...rest], env, mounts, stdin, stdout: 'inherit', stderr: 'inherit' } }
}

/** Runs the CLI; returns the process exit code. `print` receives caplet's own messages. */
export function main(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void; env: Readonly<Record<string, string | undefined>> }): number {
  let inv: ReturnType<typeof parseArgs>
  try {
    inv = parseArgs(argv, io.env)
  } catch (e) {
    if (e instanceof UsageError) { io.err(`caplet: ${e.message}\n`); return ExitCode.USAGE }
    throw e
  }
  if (inv === 'help') { io.out(HELP); return 0 }
  if (inv === 'version') { io.out(`caplet ${VERSION}\n`); return 0 }
  try {
    const result = runSync(inv.module, inv.options)
    if (result.trap) {
      const t = result.trap
      const recent = t.recentSyscalls.length > 0 ? ` (last syscalls: ${t.recentSyscalls.join(', ')})` : ''
      io.err(`caplet: guest trapped: ${t.kind}: ${t.message}${recent}\n`)
      return ExitCode.TRAP
    }
    return result.exitCode & 0xff
  } catch (e) {
    if (e instanceof PolicyError) { io.err(`caplet: ${e.message.replace(/^\[caplet\] /, '')}\n`); return ExitCode.USAGE }
    if (e instanceof ModuleError) { io.err(`caplet: ${e.message.replace(/^\[caplet\] /, '')}\n`); return ExitCode.MODULE }
    throw e
  }
}
