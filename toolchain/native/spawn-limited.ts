/**
 * @module Runs one host process for the toolchain under limits: a wall-time limit (the whole
 * process group is killed), an abort signal, and caps on what it prints (bytes past the cap are
 * dropped, not buffered). The environment is exactly what the caller passes: nothing of caplet's
 * own environment is inherited. Never interprets the output; never throws for a failed process.
 */
import { spawn } from 'node:child_process'

export interface LimitedRun {
  /** Exit status, or null when killed by a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** The wall-time limit or the abort signal stopped it. */
  timedOut: boolean
  aborted: boolean
  /** stdout or stderr went past the cap (the rest was dropped). */
  truncated: boolean
  /** spawn itself failed (e.g. ENOENT): the error code. */
  spawnError?: string
}

export interface LimitedOptions {
  env: Record<string, string>
  cwd?: string
  timeoutMs: number
  maxPrintBytes: number
  signal?: AbortSignal | undefined
}

export function spawnLimited(command: string, args: readonly string[], options: LimitedOptions): Promise<LimitedRun> {
  return new Promise((resolve) => {
    const result: LimitedRun = { code: null, signal: null, stdout: '', stderr: '', timedOut: false, aborted: false, truncated: false }
    let child: ReturnType<typeof spawn>
    try {
      child = spawn(command, [...args], {
        env: options.env,
        cwd: options.cwd,
        // A new process group, so a timeout can kill the compiler and everything it started.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        windowsHide: true,
      })
    } catch (e) {
      resolve({ ...result, spawnError: (e as NodeJS.ErrnoException).code ?? 'spawn failed' })
      return
    }
    const killGroup = () => {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        try {
          child.kill('SIGKILL')
        } catch {
          /* gone */
        }
      }
    }
    const timer = setTimeout(() => {
      result.timedOut = true
      killGroup()
    }, options.timeoutMs)
    const onAbort = () => {
      result.aborted = true
      killGroup()
    }
    if (options.signal?.aborted) onAbort()
    else options.signal?.addEventListener('abort', onAbort, { once: true })
    const collect = (which: 'stdout' | 'stderr') => {
      const chunks: Buffer[] = []
      let size = 0
      const stream = child[which]!
      stream.on('data', (chunk: Buffer) => {
        if (size >= options.maxPrintBytes) {
          result.truncated = true
          return
        }
        const room = options.maxPrintBytes - size
        if (chunk.length > room) {
          result.truncated = true
          chunk = chunk.subarray(0, room)
        }
        chunks.push(chunk)
        size += chunk.length
      })
      return () => Buffer.concat(chunks).toString('utf8')
    }
    const out = collect('stdout')
    const err = collect('stderr')
    child.on('error', (e: NodeJS.ErrnoException) => {
      result.spawnError = e.code ?? e.message
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      result.code = code
      result.signal = signal
      result.stdout = out()
      result.stderr = err()
      resolve(result)
    })
  })
}
