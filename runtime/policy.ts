/**
 * @module The Policy: one plain, typed object, the only input that grants anything. CLI flags
 * and a JSON file are two spellings of it. Parsed and validated once, with every problem listed
 * and the field named; what comes out (`ResolvedPolicy`) is plain data a worker can receive.
 */
import { realpathSync } from 'node:fs'
import { isAbsolute, relative } from 'node:path'
import { isatty } from 'node:tty'
import { z } from 'zod'
import type { Filesystem } from '../wasi-host/index.js'
import { PolicyError } from './errors.js'
import { parseDuration, parseSize } from './units.js'

/** A directory the guest may see: a host directory, an in-memory scratch dir, or any backend. */
export interface MountSpec {
  /** Absolute path in the guest, e.g. `/data`. */
  guest: string
  /** A host directory (exactly one of `host`, `tmp`, `fs`). */
  host?: string
  /** An empty in-memory directory that vanishes after the run. */
  tmp?: boolean
  /** Any backend object (in-process runs only: it cannot cross into a worker). */
  fs?: Filesystem
  /**
   * Default `rw`. `overlay` (host directories only): the guest reads the host directory and
   * every change it makes is kept in a private in-memory layer; the host directory is untouched.
   */
  mode?: 'ro' | 'rw' | 'overlay'
  /** Bytes the guest may add to this mount (`64MiB`); beyond it, `EDQUOT`. In-memory layers (tmp, overlay) default to 256 MiB. */
  size?: Size
  /** Files, directories and symlinks the guest may create in this mount. */
  files?: number
  /** Overlay only: after the run, write the changes into this (new or empty) directory. */
  saveTo?: string
  /** Overlay only: after the run, apply the changes to the host directory. */
  apply?: boolean
}

export type OutputOption = 'capture' | 'inherit' | 'discard' | ((chunk: Uint8Array) => void)
export type Size = number | string
export type Duration = number | string

export interface Limits {
  /** Cap on linear memory (`64MiB`, default 1 GiB); `memory.grow` past it fails with -1. */
  memory?: Size
  /** Wall-clock limit (`2s`); the run is stopped and reports `limit: 'timeout'`. */
  timeout?: Duration
  /** Deterministic instruction budget (≈ wasm instructions executed). */
  fuel?: number
  /** Bytes the guest may write to stdout (default 16 MiB when captured). */
  stdout?: Size
  /** Bytes the guest may write to stderr (default 16 MiB when captured). */
  stderr?: Size
  /** Open descriptors, stdio and mounts included (default 1024). */
  files?: number
  /** Bytes the guest may add across all writable mounts (`100MiB`); beyond it, `EDQUOT`. */
  disk?: Size
  /** Files, directories and symlinks the guest may create across all writable mounts (default with `disk`: one per 4 KiB, at least 64). */
  inodes?: number
}

export interface RunOptions {
  /** argv including argv[0]; default `[<module file name>]`. */
  args?: readonly string[]
  env?: Readonly<Record<string, string>>
  mounts?: readonly MountSpec[]
  /** Guest stdin: bytes, a string, `'inherit'` (this process's stdin), or nothing (empty). */
  stdin?: string | Uint8Array | 'inherit'
  stdout?: OutputOption
  stderr?: OutputOption
  limits?: Limits
  /** `worker` (default): stoppable at any instruction. `in-process`: lowest latency, fuel only. */
  isolation?: 'worker' | 'in-process'
  /** Virtual clocks, seeded random: the same module, input and policy give the same bytes. */
  deterministic?: boolean
  /** Seed of the deterministic random source (default 0). */
  seed?: number
  clocks?: {
    /** Granularity of the guest's clocks (default `1us`), as browsers coarsen timers. */
    resolution?: Duration
    /** Whether the process/thread CPU-time clocks are visible (default true). */
    cputime?: boolean
  }
  /** Only these WASI functions may be imported; a module importing another is refused. */
  syscalls?: readonly string[]
  /**
   * Engine tier: `auto` (default) optimises up front the looping functions that run once (such
   * as `main`), `optimized` everything (slow start for big modules), `baseline` V8's own tiering.
   */
  tier?: 'auto' | 'optimized' | 'baseline'
  signal?: AbortSignal
}

export interface ResolvedMount {
  guest: string
  mode: 'ro' | 'rw' | 'overlay'
  host?: string
  tmp?: boolean
  bytes?: number
  inodes?: number
  saveTo?: string
  apply?: boolean
}

/** Plain data: what a worker receives. */
export interface ResolvedPolicy {
  args: string[] | undefined
  env: Record<string, string>
  mounts: ResolvedMount[]
  stdin: Uint8Array | 'inherit'
  limits: {
    /** The memory cap in pages: the policy's, or the default. */
    memoryPages: number
    /** Whether the caller set the memory cap (the default is not applied to precompiled modules). */
    memoryExplicit: boolean
    timeoutMs: number | undefined
    fuel: number | undefined
    stdoutBytes: number | undefined
    stderrBytes: number | undefined
    maxFds: number
    diskBytes: number | undefined
    inodes: number | undefined
  }
  isolation: 'worker' | 'in-process'
  deterministic: boolean
  seed: number
  clocks: { resolutionNs: bigint; cputime: boolean }
  syscalls: string[] | undefined
  tier: 'auto' | 'optimized' | 'baseline' | undefined
  /** Which standard streams are terminals (only inherited ones can be). */
  ttys: { stdin: boolean; stdout: boolean; stderr: boolean }
}

export const WASM_PAGE = 65536
/** Linear memory a guest may use when the policy does not say (invariant 7: every resource is bounded). */
export const DEFAULT_MEMORY_BYTES = 1024 ** 3
/** What an in-memory layer (a tmp mount, an overlay's changes) may hold when the policy does not say. */
export const DEFAULT_IN_MEMORY_BYTES = 256 * 1024 ** 2
/** Output kept per captured stream when no limit is given. */
export const DEFAULT_CAPTURE_BYTES = 16 * 1024 ** 2
const MAX_PAGES = 65536

const size = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  try { parseSize(v) } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }) }
})
const duration = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  try { parseDuration(v) } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }) }
})
const output = z.union([z.enum(['capture', 'inherit', 'discard']), z.custom<(c: Uint8Array) => void>((v) => typeof v === 'function', 'must be "capture", "inherit", "discard" or a function')])
const guestPath = z.string().refine((p) => p.startsWith('/') && !p.split('/').includes('..'), 'must be an absolute guest path without "..", like "/data"')

const mountSchema = z.object({
  guest: guestPath,
  host: z.string().min(1).optional(),
  tmp: z.boolean().optional(),
  fs: z.custom<Filesystem>((v) => typeof v === 'object' && v !== null && typeof (v as Filesystem).root === 'function', 'must be a Filesystem').optional(),
  mode: z.enum(['ro', 'rw', 'overlay']).optional(),
  size: size.optional(),
  files: z.number().int().min(0).optional(),
  saveTo: z.string().min(1).optional(),
  apply: z.boolean().optional(),
}).strict()
  .refine((m) => [m.host !== undefined, m.tmp === true, m.fs !== undefined].filter(Boolean).length === 1, 'needs exactly one of host, tmp or fs')
  .refine((m) => m.mode !== 'overlay' || m.host !== undefined, 'mode "overlay" needs a host directory')
  .refine((m) => (m.saveTo === undefined && !m.apply) || m.mode === 'overlay', 'saveTo and apply are for mode "overlay"')
  .refine((m) => m.mode !== 'ro' || (m.size === undefined && m.files === undefined), 'a read-only mount takes no size or files quota')

const schema = z.object({
  args: z.array(z.string()).optional(),
  env: z.record(z.string().regex(/^[^=\0]+$/, 'names must be non-empty without "=" or NUL'), z.string().refine((v) => !v.includes('\0'), 'must not contain NUL')).optional(),
  mounts: z.array(mountSchema).optional(),
  stdin: z.union([z.string(), z.instanceof(Uint8Array)]).optional(),
  stdout: output.optional(),
  stderr: output.optional(),
  limits: z.object({
    memory: size.optional(),
    timeout: duration.optional(),
    fuel: z.number().int().positive().optional(),
    stdout: size.optional(),
    stderr: size.optional(),
    files: z.number().int().min(3).max(1 << 20).optional(),
    disk: size.optional(),
    inodes: z.number().int().min(0).optional(),
  }).strict().optional(),
  isolation: z.enum(['worker', 'in-process']).optional(),
  deterministic: z.boolean().optional(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  clocks: z.object({ resolution: duration.optional(), cputime: z.boolean().optional() }).strict().optional(),
  syscalls: z.array(z.string()).optional(),
  tier: z.enum(['auto', 'optimized', 'baseline']).optional(),
  signal: z.custom<AbortSignal>((v) => typeof AbortSignal !== 'undefined' && v instanceof AbortSignal, 'must be an AbortSignal').optional(),
}).strict()

/** Whether `inner` is `outer` or lies beneath it (`/` contains everything). */
function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

function hostRealPath(p: string): string | undefined {
  try {
    return realpathSync(p)
  } catch {
    return undefined
  }
}

/** Validates and resolves the options of one run. @throws PolicyError listing every problem */
export function resolvePolicy(options: RunOptions): ResolvedPolicy {
  const parsed = schema.safeParse(options)
  const problems: string[] = []
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const where = issue.path.length > 0 ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : '(options)'
      problems.push(`${where}: ${issue.message}`)
    }
  }
  const o = options
  const mounts = o.mounts ?? []
  const seen = new Set<string>()
  mounts.forEach((m, i) => {
    if (typeof m?.guest !== 'string') return
    const g = m.guest.replace(/\/+$/, '') || '/'
    if (seen.has(g)) problems.push(`mounts[${i}].guest: ${JSON.stringify(m.guest)} is mounted twice`)
    seen.add(g)
    if (m.fs !== undefined && (o.isolation ?? 'worker') === 'worker') {
      problems.push(`mounts[${i}].fs: a Filesystem object cannot cross into a worker; use isolation: 'in-process', or host/tmp`)
    }
  })
  // Two writable views of one host tree would let one quota's charges be freed through the
  // other, and renames between them fail with EXDEV: refuse them (a read-only view may overlap).
  const writable = mounts.map((m, i) => ({ m, i })).filter(({ m }) => typeof m?.host === 'string' && m.mode !== 'ro')
  for (let a = 0; a < writable.length; a++) {
    for (let b = a + 1; b < writable.length; b++) {
      const pa = hostRealPath(writable[a]!.m.host!)
      const pb = hostRealPath(writable[b]!.m.host!)
      if (pa !== undefined && pb !== undefined && (within(pa, pb) || within(pb, pa))) {
        problems.push(`mounts[${writable[b]!.i}].host: overlaps the writable mounts[${writable[a]!.i}].host; mount one tree once, or make one of them "ro"`)
      }
    }
  }
  const isolation = o.isolation ?? 'worker'
  if (isolation === 'in-process' && o.limits?.timeout !== undefined) {
    problems.push("limits.timeout: needs isolation 'worker' (an in-process guest cannot be stopped mid-instruction; use limits.fuel)")
  }
  if (o.deterministic && o.stdin === 'inherit') problems.push("stdin: 'inherit' is not deterministic; pass bytes or a string")
  let memoryPages: number | undefined
  if (o.limits?.memory !== undefined && problems.length === 0) {
    memoryPages = Math.floor(parseSize(o.limits.memory) / WASM_PAGE)
    if (memoryPages < 1) problems.push(`limits.memory: ${JSON.stringify(o.limits.memory)} is less than one 64 KiB page`)
    memoryPages = Math.min(memoryPages, MAX_PAGES)
  }
  if (problems.length > 0) throw new PolicyError(problems)
  const l = o.limits ?? {}
  const captured = (v: OutputOption | undefined) => v === undefined || v === 'capture'
  return {
    args: o.args ? [...o.args] : undefined,
    env: { ...o.env },
    mounts: mounts.map((m) => ({
      guest: m.guest, mode: m.mode ?? 'rw',
      ...(m.host !== undefined ? { host: m.host } : {}),
      ...(m.tmp ? { tmp: true } : {}),
      // In-memory layers (tmp mounts, overlays' changes) are host memory: they always have a size.
      ...(m.size !== undefined ? { bytes: parseSize(m.size) } : m.tmp || m.mode === 'overlay' ? { bytes: DEFAULT_IN_MEMORY_BYTES } : {}),
      ...(m.files !== undefined ? { inodes: m.files } : {}),
      ...(m.saveTo !== undefined ? { saveTo: m.saveTo } : {}),
      ...(m.apply ? { apply: true } : {}),
    })),
    stdin: o.stdin === 'inherit' ? 'inherit' : typeof o.stdin === 'string' ? new TextEncoder().encode(o.stdin) : o.stdin ?? new Uint8Array(0),
    limits: {
      memoryPages: memoryPages ?? DEFAULT_MEMORY_BYTES / WASM_PAGE,
      memoryExplicit: memoryPages !== undefined,
      timeoutMs: l.timeout !== undefined ? parseDuration(l.timeout) : undefined,
      fuel: l.fuel,
      stdoutBytes: l.stdout !== undefined ? parseSize(l.stdout) : captured(o.stdout) ? DEFAULT_CAPTURE_BYTES : undefined,
      stderrBytes: l.stderr !== undefined ? parseSize(l.stderr) : captured(o.stderr) ? DEFAULT_CAPTURE_BYTES : undefined,
      maxFds: l.files ?? 1024,
      diskBytes: l.disk !== undefined ? parseSize(l.disk) : undefined,
      // A byte quota alone would let empty files with long names grow a directory without
      // bound: one file per 4 KiB of quota (ext4's default ratio is one per 16 KiB).
      inodes: l.inodes ?? (l.disk !== undefined ? Math.max(64, Math.floor(parseSize(l.disk) / 4096)) : undefined),
    },
    isolation,
    deterministic: o.deterministic ?? false,
    seed: o.seed ?? 0,
    clocks: {
      resolutionNs: BigInt(Math.max(1, Math.round(parseDuration(o.clocks?.resolution ?? '1us') * 1e6))),
      cputime: o.clocks?.cputime ?? true,
    },
    syscalls: o.syscalls ? [...o.syscalls] : undefined,
    tier: o.tier,
    ttys: {
      stdin: o.stdin === 'inherit' && isatty(0),
      stdout: o.stdout === 'inherit' && isatty(1),
      stderr: o.stderr === 'inherit' && isatty(2),
    },
  }
}
