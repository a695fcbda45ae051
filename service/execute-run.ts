/**
 * @module Executes one `RunJob` in the worker pool (a local server and a queue worker share
 * this). Programs are prepared once per (module id, limits) and reused; a run with input files
 * or an output mount gets its own directories under a private temp dir, removed afterwards,
 * whatever happened. Guest output goes into the result only, never into a log. The event loop
 * never runs the guest: `Program.run` executes in a worker thread.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ModuleError, PolicyError } from '../runtime/errors.js'
import type { MountSpec } from '../runtime/policy.js'
import { prepare, type Program, type RunResult } from '../runtime/sandbox.js'
import { ApiError } from './errors.js'
import { policyLimits } from './limits.js'
import type { RunJob } from './request.js'
import type { RunTiming } from './runs.js'

/** The result of a finished run, as the API returns it. */
export interface RunResultJson {
  exitCode: number
  /** Output as UTF-8 text; when it is not valid UTF-8, also `stdoutBase64` with the exact bytes. */
  stdout: string
  stderr: string
  stdoutBase64?: string
  stderrBase64?: string
  trap?: { kind: string; message: string; syscall?: string }
  limit?: string
  /** What the guest wrote under /output: path -> text or { base64 }. */
  files?: Record<string, string | { base64: string }>
  stats: { wallMs: number; fuelUsed?: number; peakMemory: number; bytesRead: number; bytesWritten: number; syscalls: number }
}

const strict = new TextDecoder('utf-8', { fatal: true })
const lossy = new TextDecoder()

function text(bytes: Uint8Array): { text: string; base64?: string } {
  try {
    return { text: strict.decode(bytes) }
  } catch {
    return { text: lossy.decode(bytes), base64: Buffer.from(bytes).toString('base64') }
  }
}

export function toResultJson(r: RunResult, files?: RunResultJson['files']): RunResultJson {
  const out = text(r.stdout)
  const err = text(r.stderr)
  return {
    exitCode: r.exitCode,
    stdout: out.text,
    stderr: err.text,
    ...(out.base64 !== undefined ? { stdoutBase64: out.base64 } : {}),
    ...(err.base64 !== undefined ? { stderrBase64: err.base64 } : {}),
    // A host fault is caplet's bug, not the client's business: its details stay in the log.
    ...(r.trap
      ? {
          trap:
            r.trap.kind === 'host-fault'
              ? { kind: 'host-fault', message: 'the host failed while serving the guest' }
              : { kind: r.trap.kind, message: r.trap.message, ...(r.trap.syscall ? { syscall: r.trap.syscall } : {}) },
        }
      : {}),
    ...(r.limit ? { limit: r.limit } : {}),
    ...(files ? { files } : {}),
    stats: {
      wallMs: Math.round(r.stats.wallMs * 1000) / 1000,
      ...(r.stats.fuelUsed !== undefined ? { fuelUsed: r.stats.fuelUsed } : {}),
      peakMemory: r.stats.peakMemory,
      bytesRead: r.stats.bytesRead,
      bytesWritten: r.stats.bytesWritten,
      syscalls: Object.values(r.stats.syscalls).reduce((a, b) => a + b, 0),
    },
  }
}

/** Prepared programs by module id and limits, least recently used first out. */
export class ProgramCache {
  readonly #map = new Map<string, Promise<Program>>()
  constructor(readonly max = 256) {}

  get(moduleId: string, bytes: () => Promise<Uint8Array | undefined>, job: RunJob): Promise<Program> {
    const key = `${moduleId}|${JSON.stringify(job.limits)}`
    let p = this.#map.get(key)
    if (p) {
      this.#map.delete(key)
      this.#map.set(key, p)
      return p
    }
    p = (async () => prepare(await required(bytes, moduleId), { limits: policyLimits(job.limits) }))()
    p.catch(() => this.#map.delete(key))
    this.#map.set(key, p)
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value!)
    return p
  }
}

async function required(bytes: () => Promise<Uint8Array | undefined>, id: string): Promise<Uint8Array> {
  const b = await bytes()
  if (!b) throw new ApiError(404, 'unknown-module', `no module with id ${id} (upload it with PUT /v1/modules)`)
  return b
}

/** Reads what the guest left under `dir`: regular files only, never following a link. */
async function collectOutput(
  dir: string,
  rel = '',
  out: Record<string, string | { base64: string }> = {},
): Promise<Record<string, string | { base64: string }>> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    const st = await lstat(path)
    const r = rel ? `${rel}/${name}` : name
    if (st.isDirectory()) await collectOutput(path, r, out)
    else if (st.isFile()) {
      const t = text(await readFile(path))
      out[r] = t.base64 !== undefined ? { base64: t.base64 } : t.text
    }
  }
  return out
}

/**
 * Runs one job. @throws ApiError (unknown module 404, module refused 422); a guest's own failure
 * (trap, limit, exit code) is a result, not an error.
 */
export async function executeRun(
  job: RunJob,
  bytes: () => Promise<Uint8Array | undefined>,
  programs: ProgramCache,
  timing?: RunTiming,
): Promise<RunResultJson> {
  const timed = (r: RunResult) => {
    if (timing !== undefined && r.handoff !== undefined) timing.handoff = r.handoff
    return r
  }
  const input = { args: job.args, env: job.env, stdin: Buffer.from(job.stdin, 'base64') }
  try {
    if (job.files === undefined && !job.output) {
      const program = await programs.get(job.moduleId, bytes, job)
      return toResultJson(timed(await program.run(input)))
    }
    const base = await mkdtemp(join(tmpdir(), 'caplet-run-'))
    try {
      const mounts: MountSpec[] = []
      if (job.files !== undefined) {
        const inDir = join(base, 'input')
        await mkdir(inDir)
        for (const [path, b64] of Object.entries(job.files)) {
          // Paths were checked (relative, no "." or ".." components) when the run was accepted.
          const parts = path.split('/')
          if (parts.length > 1) await mkdir(join(inDir, ...parts.slice(0, -1)), { recursive: true })
          await writeFile(join(inDir, ...parts), Buffer.from(b64, 'base64'), { flag: 'wx' })
        }
        mounts.push({ guest: '/input', host: inDir, mode: 'ro' })
      }
      const outDir = join(base, 'output')
      if (job.output) {
        await mkdir(outDir)
        mounts.push({ guest: '/output', host: outDir, mode: 'rw', size: job.limits.disk, inodes: job.limits.inodes })
      }
      const program = await prepare(await required(bytes, job.moduleId), { limits: policyLimits(job.limits), mounts })
      const result = timed(await program.run(input))
      return toResultJson(result, job.output ? await collectOutput(outDir) : undefined)
    } finally {
      await rm(base, { recursive: true, force: true })
    }
  } catch (e) {
    if (e instanceof ModuleError) throw new ApiError(422, 'invalid-module', e.message.replace(/^\[caplet\] /, ''))
    if (e instanceof PolicyError) throw new ApiError(400, 'invalid-request', 'the run request is invalid', e.problems)
    throw e
  }
}
