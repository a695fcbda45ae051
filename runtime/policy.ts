/**
 * @module The Policy: one plain, typed object, the only input that grants anything. CLI flags
 * and a JSON file are two spellings of it. Parsed and validated once, with every problem listed
 * and the field named; what comes out (`ResolvedPolicy`) is plain data a worker can receive.
 */
import * as z from 'zod/mini'
import { en } from 'zod/locales'
import type { Filesystem } from '../wasi-host/index.js'
import { WASI_PREVIEW1_FUNCTIONS } from '../wasi-host/abi/preview1.js'
import { PolicyError } from './errors.js'
import { parseSocketGrants, type ListeningSocket, type SocketSpec } from './socket-grants.js'
import type { NetGrantSpec } from '../wasi-host/node/net-service.js'
import { hostRealPath, isTerminal as isatty, readableFile, within } from './policy-host.js'
import { parseDuration, parseSize } from './units.js'
import { plainlyValid } from './policy-plain.js'

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
  /** Files, directories and symlinks the guest may create in this mount (`--max-files` for all mounts). */
  inodes?: number
  /** Overlay only: after the run, write the changes into this (new or empty) directory. */
  saveTo?: string
  /** Overlay only: after the run, apply the changes to the host directory. */
  apply?: boolean
}

/** Receives one trace line (text or JSON, without a newline). */
export type TraceSink = (line: string) => void

export interface TraceOptions {
  sink?: TraceSink
  file?: string
  format?: 'text' | 'json'
  summary?: boolean
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
  /** Open descriptors, stdio and mounts included (default 1024; `--max-fds`). */
  fds?: number
  /** Bytes the guest may add across all writable mounts (`100MiB`); beyond it, `EDQUOT`. */
  disk?: Size
  /** Files, directories and symlinks the guest may create across all writable mounts (default with `disk`: one per 4 KiB, at least 64). */
  inodes?: number
  /** Connections from granted listeners open at once (default 64); more are closed at once. */
  connections?: number
  /** Bytes the guest may receive / send over its sockets in the run; past them it is stopped (`limit: 'network'`). */
  bytesIn?: Size
  bytesOut?: Size
  /** A connection with no traffic for this long is closed (the guest sees `ETIMEDOUT`). */
  idleTimeout?: Duration
}

/**
 * What may change from one run of a prepared program to the next (`Program.run(input)`); every
 * other field of `RunOptions` is fixed when the program is prepared.
 */
export interface RunInput {
  /** argv including argv[0]; default `[<module file name>]`. */
  args?: readonly string[]
  env?: Readonly<Record<string, string>>
  /**
   * Guest stdin: bytes, a string, `'inherit'` (this process's stdin), `{ file }` (a host file,
   * read as the guest reads: never held in memory whole), or nothing (empty).
   */
  stdin?: string | Uint8Array | 'inherit' | { file: string }
  stdout?: OutputOption
  stderr?: OutputOption
  signal?: AbortSignal
}

export interface RunOptions extends RunInput {
  mounts?: readonly MountSpec[]
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
    /**
     * The process/thread CPU-time clocks: `true` (default) reports this run's own time (time on
     * the guest's thread, less its sleeps; never another run's work in the same process),
     * `'process'` the host process's real CPU time (shared by every run in it), `false` hides them (`NOTSUP`).
     */
    cputime?: boolean | 'process'
  }
  /** Only these WASI functions may be imported; a module importing another is refused. */
  syscalls?: readonly string[]
  /** These WASI functions may not be imported (refused, or stubbed with `deniedSyscalls: 'enosys'`). */
  denySyscalls?: readonly string[]
  /** A denied WASI import: `refuse` the module (default), or link it to a stub returning `ENOSYS`. */
  deniedSyscalls?: 'refuse' | 'enosys'
  /**
   * An import caplet does not provide: `reject` the module (default), `trap` when called (naming
   * the import), or `default`: return zeros (as wasmtime's `--trap-unknown-imports` / `--default-unknown-imports`).
   */
  unknownImports?: 'reject' | 'trap' | 'default'
  /**
   * Trace every host call, as `strace` does: a function receiving each line, or where the lines
   * go (`file`; default caplet's stderr), as `text` or `json`; `summary` only counts calls,
   * errors and time per function (`result.traceSummary`).
   */
  trace?: TraceSink | TraceOptions
  /**
   * Sockets the guest gets, in order, as descriptors after the mounts: listeners on local
   * addresses (`'127.0.0.1:8080'`, `'[::1]:0'`, `'unix:/run/app.sock'`) and connections to
   * literal addresses, made before the guest starts. Nothing else of the network is reachable.
   */
  sockets?: readonly SocketSpec[]
  /** Also tell the guest its sockets systemd-style: `LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_FDS_START`. */
  listenEnv?: boolean
  /** Called once the sockets are open, before the guest starts, with their addresses (a port 0 resolved). */
  onListen?: (sockets: ListeningSocket[]) => void
  /**
   * Engine tier: `auto` (default) optimises up front the looping functions that run once (such
   * as `main`), `optimized` everything (slow start for big modules), `baseline` V8's own tiering.
   */
  tier?: 'auto' | 'optimized' | 'baseline'
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
  stdin: Uint8Array | 'inherit' | { file: string }
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
    connections: number | undefined
    bytesIn: number | undefined
    bytesOut: number | undefined
    idleTimeoutMs: number | undefined
  }
  /** The granted sockets, parsed (literal addresses only). */
  sockets: NetGrantSpec[]
  listenEnv: boolean
  isolation: 'worker' | 'in-process'
  deterministic: boolean
  seed: number
  clocks: { resolutionNs: bigint; cputime: 'run' | 'process' | 'hidden' }
  syscalls: string[] | undefined
  denySyscalls: string[] | undefined
  deniedSyscalls: 'refuse' | 'enosys'
  unknownImports: 'reject' | 'trap' | 'default'
  /** The trace asked for (plain data; a sink function stays in `PreparedPolicy.traceSink`). */
  trace: { format: 'text' | 'json'; summary: boolean; file: string | undefined; callback: boolean } | undefined
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

/**
 * The schemas, built at their first use: options that `plainlyValid` proves valid (a CLI run's, a
 * plain API call's) skip them, and building them is most of zod's cost in a one-shot process.
 * zod/mini: the same checks and issues as zod, at 1/30th of the bundle (start-up of every CLI run).
 */
function buildSchemas() {
  // zod/mini loads no messages of its own (every problem would read "Invalid input"): English ones.
  z.config(en())
  const size = z.union([z.number(), z.string()]).check(
    z.superRefine((v, ctx) => {
      try {
        parseSize(v)
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message, input: v })
      }
    }),
  )
  const duration = z.union([z.number(), z.string()]).check(
    z.superRefine((v, ctx) => {
      try {
        parseDuration(v)
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message, input: v })
      }
    }),
  )
  const output = z.union([
    z.enum(['capture', 'inherit', 'discard']),
    z.custom<(c: Uint8Array) => void>((v) => typeof v === 'function', 'must be "capture", "inherit", "discard" or a function'),
  ])
  const guestPath = z
    .string()
    .check(z.refine((p) => p.startsWith('/') && !p.split('/').includes('..'), 'must be an absolute guest path without "..", like "/data"'))
  const nonEmpty = () => z.string().check(z.minLength(1))
  const count = (min: number, max = Number.MAX_SAFE_INTEGER) => {
    const error = `must be a whole number from ${min} to ${max}`
    return z.int({ error }).check(z.gte(min, { error }), z.lte(max, { error }))
  }

  const mountSchema = z
    .strictObject({
      guest: guestPath,
      host: z.optional(nonEmpty()),
      tmp: z.optional(z.boolean()),
      fs: z.optional(
        z.custom<Filesystem>(
          (v) => typeof v === 'object' && v !== null && typeof (v as Filesystem).root === 'function',
          'must be a Filesystem',
        ),
      ),
      mode: z.optional(z.enum(['ro', 'rw', 'overlay'])),
      size: z.optional(size),
      inodes: z.optional(count(0)),
      saveTo: z.optional(nonEmpty()),
      apply: z.optional(z.boolean()),
    })
    .check(
      z.refine(
        (m) => [m.host !== undefined, m.tmp === true, m.fs !== undefined].filter(Boolean).length === 1,
        'needs exactly one of host, tmp or fs',
      ),
      z.refine((m) => m.mode !== 'overlay' || m.host !== undefined, 'mode "overlay" needs a host directory'),
      z.refine((m) => (m.saveTo === undefined && !m.apply) || m.mode === 'overlay', 'saveTo and apply are for mode "overlay"'),
      z.refine(
        (m) => m.mode !== 'ro' || (m.size === undefined && m.inodes === undefined),
        'a read-only mount takes no size or inodes quota',
      ),
    )

  /** The fields a run of a prepared program may set (`RunInput`): the same checks as in a whole policy. */
  const runInputShape = {
    args: z.optional(z.array(z.string())),
    env: z.optional(
      z.record(
        z.string().check(z.regex(/^[^=\0]+$/, 'names must be non-empty without "=" or NUL')),
        z.string().check(z.refine((v) => !v.includes('\0'), 'must not contain NUL')),
      ),
    ),
    stdin: z.optional(
      z.union([
        z.string(),
        z.instanceof(Uint8Array),
        z.strictObject({ file: nonEmpty().check(z.refine(readableFile, 'must name a readable regular file')) }),
      ]),
    ),
    stdout: z.optional(output),
    stderr: z.optional(output),
    signal: z.optional(
      z.custom<AbortSignal>((v) => typeof AbortSignal !== 'undefined' && v instanceof AbortSignal, 'must be an AbortSignal'),
    ),
  }

  const schema = z.strictObject({
    ...runInputShape,
    mounts: z.optional(z.array(mountSchema)),
    limits: z.optional(
      z.strictObject({
        memory: z.optional(size),
        timeout: z.optional(duration),
        fuel: z.optional(count(1)),
        stdout: z.optional(size),
        stderr: z.optional(size),
        fds: z.optional(count(3, 1 << 20)),
        disk: z.optional(size),
        inodes: z.optional(count(0)),
        connections: z.optional(count(1, 1 << 16)),
        bytesIn: z.optional(size),
        bytesOut: z.optional(size),
        idleTimeout: z.optional(duration),
      }),
    ),
    sockets: z.optional(
      z
        .array(
          z.union([
            z.strictObject({ listen: z.string(), name: z.optional(z.string()) }),
            z.strictObject({ connect: z.string(), name: z.optional(z.string()) }),
          ]),
        )
        .check(z.maxLength(256)),
    ),
    listenEnv: z.optional(z.boolean()),
    onListen: z.optional(z.custom<(s: ListeningSocket[]) => void>((v) => typeof v === 'function', 'must be a function')),
    isolation: z.optional(z.enum(['worker', 'in-process'])),
    deterministic: z.optional(z.boolean()),
    seed: z.optional(count(0)),
    clocks: z.optional(
      z.strictObject({ resolution: z.optional(duration), cputime: z.optional(z.union([z.boolean(), z.literal('process')])) }),
    ),
    syscalls: z.optional(z.array(z.string())),
    denySyscalls: z.optional(z.array(z.string())),
    deniedSyscalls: z.optional(z.enum(['refuse', 'enosys'])),
    unknownImports: z.optional(z.enum(['reject', 'trap', 'default'])),
    trace: z.optional(
      z.union([
        z.custom<TraceSink>((v) => typeof v === 'function', 'must be a function or { sink?, file?, format?, summary? }'),
        z.strictObject({
          sink: z.optional(z.custom<TraceSink>((v) => typeof v === 'function', 'must be a function')),
          file: z.optional(nonEmpty()),
          format: z.optional(z.enum(['text', 'json'])),
          summary: z.optional(z.boolean()),
        }),
      ]),
    ),
    tier: z.optional(z.enum(['auto', 'optimized', 'baseline'])),
  })

  const runInputSchema = z.strictObject(runInputShape)
  return { schema, runInputSchema, runInputShape }
}
let schemas: ReturnType<typeof buildSchemas> | undefined
const built = () => (schemas ??= buildSchemas())

/** The schema's verdict alone (every problem, as `PolicyError` lists them), for a whole policy or a run's input. */
export function schemaProblems(options: unknown, runInput = false): string[] {
  const parsed = (runInput ? built().runInputSchema : built().schema).safeParse(options)
  return parsed.success ? [] : problemsOf(parsed.error.issues, runInput ? fixedField : undefined)
}

/**
 * Fields that were renamed, by the object they sit in: `limits.files` counted descriptors and a
 * mount's `files` created nodes, one word for two resources.
 */
const RENAMED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  limits: { files: 'fds (open descriptors, as --max-fds)' },
  mount: { files: 'inodes (files, directories and symlinks created, as --max-files)' },
}

/** The container of an issue's path for `RENAMED`: `limits`, `mount`, or none. */
const renameScope = (path: readonly PropertyKey[]): string | undefined =>
  path.length === 1 && path[0] === 'limits' ? 'limits' : path.length === 2 && path[0] === 'mounts' ? 'mount' : undefined

/** Every zod issue as `field: message`, the field spelled as in the options (`mounts[0].guest`). */
function problemsOf(issues: readonly z.core.$ZodIssue[], fixed: (key: string) => string | undefined = () => undefined): string[] {
  const problems: string[] = []
  for (const issue of issues) {
    const scope = issue.code === 'unrecognized_keys' ? renameScope(issue.path) : undefined
    if (issue.code === 'unrecognized_keys' && scope !== undefined) {
      const renamed = RENAMED[scope]!
      const where = issue.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
        .join('')
        .replace(/^\./, '')
      const rest = issue.keys.filter((k) => {
        if (!Object.hasOwn(renamed, k)) return true
        problems.push(`${where}.${k}: renamed; use ${where}.${renamed[k]}`)
        return false
      })
      if (rest.length === 0) continue
      if (rest.length < issue.keys.length) {
        problems.push(`${where}: Unrecognized key${rest.length > 1 ? 's' : ''}: ${rest.map((k) => JSON.stringify(k)).join(', ')}`)
        continue
      }
    }
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) {
      // A policy field passed to one run of a prepared program: say where it belongs.
      const rest = issue.keys.filter((k) => {
        const why = fixed(k)
        if (why !== undefined) problems.push(`${k}: ${why}`)
        return why === undefined
      })
      if (rest.length === 0) continue
      if (rest.length < issue.keys.length) {
        problems.push(`(options): Unrecognized key${rest.length > 1 ? 's' : ''}: ${rest.map((k) => JSON.stringify(k)).join(', ')}`)
        continue
      }
    }
    const where =
      issue.path.length > 0
        ? issue.path
            .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
            .join('')
            .replace(/^\./, '')
        : '(options)'
    problems.push(`${where}: ${issue.message}`)
  }
  return problems
}

const NO_STDIN = new Uint8Array(0)
const utf8 = new TextEncoder()
/** The default clock resolution, `1us`, parsed once. */
const DEFAULT_RESOLUTION_NS = 1000n

const captured = (v: OutputOption | undefined) => v === undefined || v === 'capture'
/** A stream's byte limit: the caller's, else the capture default (captured streams are host memory), else none. */
const outputLimit = (explicit: number | undefined, mode: OutputOption | undefined) =>
  explicit ?? (captured(mode) ? DEFAULT_CAPTURE_BYTES : undefined)
/**
 * A run's stdin as it stands now: bytes are copied (`Buffer#slice` would be a view), since the
 * caller may refill its buffer before the run reads it (in-process, the guest reads as it goes;
 * a worker run may wait in the pool's queue).
 */
const stdinBytes = (stdin: RunInput['stdin']): ResolvedPolicy['stdin'] =>
  stdin === 'inherit'
    ? 'inherit'
    : typeof stdin === 'string'
      ? utf8.encode(stdin)
      : stdin === undefined
        ? NO_STDIN
        : stdin instanceof Uint8Array
          ? new Uint8Array(stdin)
          : { file: stdin.file }

const ttysOf = (o: RunInput) => ({
  stdin: o.stdin === 'inherit' && isatty(0),
  stdout: o.stdout === 'inherit' && isatty(1),
  stderr: o.stderr === 'inherit' && isatty(2),
})

// ---- The caller's options, read once ------------------------------------------------------------

/**
 * The fields an object described by `s` may have: an object's, through optional, array and union
 * wrappers (`mounts` gives a mount's fields; `sockets` both kinds'); none for anything else.
 */
function fieldsOf(s: z.core.$ZodType): string[] {
  const def = (s as z.core.$ZodTypes)._zod.def
  switch (def.type) {
    case 'object':
      return Object.keys(def.shape)
    case 'optional':
      return fieldsOf(def.innerType)
    case 'array':
      return fieldsOf(def.element)
    case 'union':
      return [...new Set(def.options.flatMap(fieldsOf))]
    default:
      return []
  }
}

/**
 * The fields of the options and of the object (or array elements) under each of them, read from
 * the schema, so a field it gains is never left behind by `snapshotOptions`. Built at first need:
 * only an object that is not plain (a class instance, a Proxy) needs them, so a plain call's
 * start-up still builds no schema.
 */
let optionFieldsBuilt: { top: readonly string[]; under: ReadonlyMap<string, readonly string[]> } | undefined
export function optionFields(): { top: readonly string[]; under: ReadonlyMap<string, readonly string[]> } {
  if (optionFieldsBuilt === undefined) {
    const shape: Record<string, z.core.$ZodType> = built().schema.shape
    optionFieldsBuilt = {
      top: Object.keys(shape),
      under: new Map(Object.entries(shape).map(([k, s]) => [k, fieldsOf(s)])),
    }
  }
  return optionFieldsBuilt
}
const NO_FIELDS: readonly string[] = []
const fieldsUnder = (key: string) => () => optionFields().under.get(key) ?? NO_FIELDS

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  !(v instanceof Uint8Array) &&
  !(typeof AbortSignal !== 'undefined' && v instanceof AbortSignal)

/**
 * A copy of an object's fields, each read once: its own enumerable string keys and, for an
 * object that is not plain, the `known()` fields it has (a class's getters). Its prototype
 * (`Object.prototype` or null) is kept, so the checks see the shape the caller gave.
 */
function readOnce(v: Record<string, unknown>, known: () => readonly string[]): Record<string, unknown> {
  const proto = Object.getPrototypeOf(v) as object | null
  const plain = proto === Object.prototype || proto === null
  const out: Record<string, unknown> = Object.create(plain ? proto : Object.prototype) as Record<string, unknown>
  const keys = new Set(Object.keys(v))
  if (!plain) for (const k of known()) if (k in v) keys.add(k)
  // defineProperty: a "__proto__" key stays an own data field, as JSON.parse makes it.
  for (const k of keys) Object.defineProperty(out, k, { value: v[k], enumerable: true, writable: true, configurable: true })
  return out
}

/** An array's elements, each read once, into an array of caplet's own. */
const arrayOnce = (v: readonly unknown[]): unknown[] => Array.from({ length: v.length }, (_, i) => v[i])

/**
 * The caller's options as plain data, every field read exactly once: the checks and the
 * resolution then read this copy, never the caller's object again. SECURITY: a getter or a
 * Proxy answered the schema one value and the resolution another (red team, wave 3: a mount
 * checked "ro" ran "rw"; `limits.fds` checked as 64 applied as 10^12).
 */
export function snapshotOptions(options: RunOptions): RunOptions {
  if (!isRecord(options)) return options
  const o = readOnce(options, () => optionFields().top)
  // Every field holding an object or an array, whatever its name: each element and nested
  // object is read once too (a mount's `fs`, one level further, is a backend object, kept as is).
  for (const key of Object.keys(o)) {
    const v = o[key]
    if (Array.isArray(v)) {
      const list = arrayOnce(v)
      list.forEach((m, i) => isRecord(m) && (list[i] = readOnce(m, fieldsUnder(key))))
      o[key] = list
    } else if (isRecord(v)) o[key] = readOnce(v, fieldsUnder(key))
  }
  return o as RunOptions
}

/** Validates and resolves the options of one run. @throws PolicyError listing every problem */
export function resolvePolicy(options: RunOptions): ResolvedPolicy {
  return resolveSnapshot(snapshotOptions(options))
}

/**
 * The descriptors a run opens before its guest starts: stdio, then one per mount and per socket.
 * A descriptor limit below it is refused before the run (here as `limits.fds`, by the CLI as
 * `--max-fds`), not found by the host as a fault when it opens them.
 */
export const fdsNeeded = (mounts: number, sockets: number): number => 3 + mounts + sockets

/** `resolvePolicy` of options already read once (`snapshotOptions`). */
function resolveSnapshot(options: RunOptions): ResolvedPolicy {
  const parsed = plainlyValid(options) ? undefined : built().schema.safeParse(options)
  const valid = parsed === undefined || parsed.success
  const problems = valid ? [] : problemsOf(parsed.error.issues)
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
        problems.push(
          `mounts[${writable[b]!.i}].host: overlaps the writable mounts[${writable[a]!.i}].host; mount one tree once, or make one of them "ro"`,
        )
      }
    }
  }
  const isolation = o.isolation ?? 'worker'
  if (isolation === 'in-process' && o.limits?.timeout !== undefined) problems.push(IN_PROCESS_TIMEOUT)
  if (o.limits?.timeout !== undefined && problems.length === 0 && !(parseDuration(o.limits.timeout) > 0)) {
    problems.push(`limits.timeout: ${JSON.stringify(o.limits.timeout)} must be more than 0`)
  }
  if (o.seed !== undefined && !o.deterministic) problems.push('seed: applies only to deterministic runs; set deterministic: true')
  if (o.deterministic && o.stdin === 'inherit') problems.push(DETERMINISTIC_STDIN)
  for (const field of ['syscalls', 'denySyscalls'] as const) {
    const names = o[field]
    if (!Array.isArray(names)) continue
    const bad = names.filter((n) => typeof n === 'string' && !WASI_PREVIEW1_FUNCTIONS.includes(n))
    if (bad.length > 0) problems.push(`${field}: not wasi_snapshot_preview1 functions: ${bad.map((n) => JSON.stringify(n)).join(', ')}`)
  }
  const sockets = valid && o.sockets !== undefined ? parseSocketGrants(o.sockets, problems) : []
  if (o.deterministic && sockets.length > 0) problems.push('sockets: a deterministic run has no network (the peers are not deterministic)')
  const needed = fdsNeeded(mounts.length, sockets.length)
  if (typeof o.limits?.fds === 'number' && o.limits.fds >= 3 && o.limits.fds < needed) {
    problems.push(
      `limits.fds: ${o.limits.fds} leaves no room for stdio, ${mounts.length} mount(s) and ${sockets.length} socket(s) (needs at least ${needed})`,
    )
  }
  let memoryPages: number | undefined
  if (o.limits?.memory !== undefined && problems.length === 0) {
    memoryPages = Math.floor(parseSize(o.limits.memory) / WASM_PAGE)
    if (memoryPages < 1) problems.push(`limits.memory: ${JSON.stringify(o.limits.memory)} is less than one 64 KiB page`)
    if (memoryPages > MAX_PAGES)
      problems.push(`limits.memory: ${JSON.stringify(o.limits.memory)} is more than wasm32's 4 GiB address space`)
    memoryPages = Math.min(memoryPages, MAX_PAGES)
  }
  if (problems.length > 0) throw new PolicyError(problems)
  const l = o.limits ?? {}
  return {
    args: o.args ? [...o.args] : undefined,
    env: { ...o.env },
    mounts: mounts.map((m) => ({
      guest: m.guest,
      mode: m.mode ?? 'rw',
      ...(m.host !== undefined ? { host: m.host } : {}),
      ...(m.tmp ? { tmp: true } : {}),
      // In-memory layers (tmp mounts, overlays' changes) are host memory: they always have a size.
      ...(m.size !== undefined ? { bytes: parseSize(m.size) } : m.tmp || m.mode === 'overlay' ? { bytes: DEFAULT_IN_MEMORY_BYTES } : {}),
      ...(m.inodes !== undefined ? { inodes: m.inodes } : {}),
      ...(m.saveTo !== undefined ? { saveTo: m.saveTo } : {}),
      ...(m.apply ? { apply: true } : {}),
    })),
    stdin: stdinBytes(o.stdin),
    limits: {
      memoryPages: memoryPages ?? DEFAULT_MEMORY_BYTES / WASM_PAGE,
      memoryExplicit: memoryPages !== undefined,
      timeoutMs: l.timeout !== undefined ? parseDuration(l.timeout) : undefined,
      fuel: l.fuel,
      stdoutBytes: outputLimit(l.stdout !== undefined ? parseSize(l.stdout) : undefined, o.stdout),
      stderrBytes: outputLimit(l.stderr !== undefined ? parseSize(l.stderr) : undefined, o.stderr),
      maxFds: l.fds ?? 1024,
      diskBytes: l.disk !== undefined ? parseSize(l.disk) : undefined,
      // A byte quota alone would let empty files with long names grow a directory without
      // bound: one file per 4 KiB of quota (ext4's default ratio is one per 16 KiB).
      inodes: l.inodes ?? (l.disk !== undefined ? Math.max(64, Math.floor(parseSize(l.disk) / 4096)) : undefined),
      connections: l.connections,
      bytesIn: l.bytesIn !== undefined ? parseSize(l.bytesIn) : undefined,
      bytesOut: l.bytesOut !== undefined ? parseSize(l.bytesOut) : undefined,
      idleTimeoutMs: l.idleTimeout !== undefined ? parseDuration(l.idleTimeout) : undefined,
    },
    sockets,
    listenEnv: o.listenEnv ?? false,
    isolation,
    deterministic: o.deterministic ?? false,
    seed: o.seed ?? 0,
    clocks: {
      resolutionNs:
        o.clocks?.resolution === undefined
          ? DEFAULT_RESOLUTION_NS
          : BigInt(Math.max(1, Math.round(parseDuration(o.clocks.resolution) * 1e6))),
      cputime: o.clocks?.cputime === 'process' ? 'process' : o.clocks?.cputime === false ? 'hidden' : 'run',
    },
    syscalls: o.syscalls ? [...o.syscalls] : undefined,
    denySyscalls: o.denySyscalls ? [...o.denySyscalls] : undefined,
    deniedSyscalls: o.deniedSyscalls ?? 'refuse',
    unknownImports: o.unknownImports ?? 'reject',
    trace: resolveTrace(o.trace),
    tier: o.tier,
    ttys: ttysOf(o),
  }
}

function resolveTrace(t: RunOptions['trace']): ResolvedPolicy['trace'] {
  if (t === undefined) return undefined
  if (typeof t === 'function') return { format: 'text', summary: false, file: undefined, callback: true }
  return { format: t.format ?? 'text', summary: t.summary ?? false, file: t.file, callback: t.sink !== undefined }
}

const IN_PROCESS_TIMEOUT =
  "limits.timeout: needs isolation 'worker' (an in-process guest cannot be stopped mid-instruction; use limits.fuel)"
const DETERMINISTIC_STDIN = "stdin: 'inherit' is not deterministic; pass bytes or a string"

// ---- Prepared programs: the policy resolved once, what varies per run checked per run ----------

/** A policy resolved once for many runs, with what a run needs besides the plain data. */
export interface PreparedPolicy {
  readonly policy: ResolvedPolicy
  /** How each stream is delivered when a run does not say. */
  readonly stdout: OutputOption
  readonly stderr: OutputOption
  /** The output limits the caller set; a stream without one gets its mode's default. */
  readonly stdoutLimit: number | undefined
  readonly stderrLimit: number | undefined
  /** Backend objects of `fs` mounts (in-process only), by mount index. */
  readonly fs: readonly (Filesystem | undefined)[]
  readonly signal: AbortSignal | undefined
  /** The caller's trace function, if it gave one. */
  readonly traceSink?: TraceSink | undefined
  /** Told the sockets' addresses before the guest starts. */
  readonly onListen: ((sockets: ListeningSocket[]) => void) | undefined
}

/**
 * Validates a policy for many runs. Everything is copied out of `options`, so changing the
 * options object afterwards changes nothing. @throws PolicyError listing every problem
 */
export function preparePolicy(caller: RunOptions): PreparedPolicy {
  const options = snapshotOptions(caller)
  const policy = resolveSnapshot(options)
  const l = options.limits
  return {
    policy,
    stdout: options.stdout ?? 'capture',
    stderr: options.stderr ?? 'capture',
    stdoutLimit: l?.stdout !== undefined ? parseSize(l.stdout) : undefined,
    stderrLimit: l?.stderr !== undefined ? parseSize(l.stderr) : undefined,
    fs: (options.mounts ?? []).map((m) => m.fs),
    signal: options.signal,
    traceSink: typeof options.trace === 'function' ? options.trace : options.trace?.sink,
    onListen: options.onListen,
  }
}

/** The same prepared policy, run on the caller's thread. @throws PolicyError if it needs a worker */
export function inProcess(p: PreparedPolicy): PreparedPolicy {
  if (p.policy.isolation === 'in-process') return p
  if (p.policy.limits.timeoutMs !== undefined) throw new PolicyError([IN_PROCESS_TIMEOUT])
  return { ...p, policy: { ...p.policy, isolation: 'in-process' } }
}

const fixedField = (key: string) =>
  Object.hasOwn(built().schema.shape, key) && !Object.hasOwn(built().runInputShape, key)
    ? 'is fixed when the program is prepared; pass it to prepare()'
    : undefined

/**
 * One run's policy: the prepared one with what `input` changes, checked by the same schema as a
 * whole policy (zod runs only when there is input; the rest of the policy was proven once).
 * @throws PolicyError listing every problem
 */
export function resolveRunInput(p: PreparedPolicy, input: RunInput | undefined): PreparedPolicy {
  if (input === undefined) return p
  // Copied first, then checked: what is checked is what runs, whatever the caller does next.
  const i: RunInput = { ...input }
  if (i.args !== undefined && Array.isArray(i.args)) i.args = [...i.args]
  if (i.env !== undefined && typeof i.env === 'object' && i.env !== null) i.env = { ...i.env }
  // `{ file }`: the schema checks the file is readable, and the run opens the name checked.
  if (isRecord(i.stdin)) i.stdin = { ...(i.stdin as { file: string }) }
  const parsed = plainlyValid(i, true) ? undefined : built().runInputSchema.safeParse(i)
  const problems = parsed === undefined || parsed.success ? [] : problemsOf(parsed.error.issues, fixedField)
  if (p.policy.deterministic && i.stdin === 'inherit') problems.push(DETERMINISTIC_STDIN)
  if (problems.length > 0) throw new PolicyError(problems)
  const base = p.policy
  const stdout = i.stdout ?? p.stdout
  const stderr = i.stderr ?? p.stderr
  const outputs = i.stdout !== undefined || i.stderr !== undefined
  const policy: ResolvedPolicy = {
    ...base,
    args: i.args !== undefined ? (i.args as string[]) : base.args,
    env: i.env !== undefined ? (i.env as Record<string, string>) : base.env,
    stdin: i.stdin !== undefined ? stdinBytes(i.stdin) : base.stdin,
    limits: outputs
      ? { ...base.limits, stdoutBytes: outputLimit(p.stdoutLimit, stdout), stderrBytes: outputLimit(p.stderrLimit, stderr) }
      : base.limits,
    ttys:
      outputs || i.stdin !== undefined
        ? ttysOf({ stdin: i.stdin ?? (base.stdin === 'inherit' ? 'inherit' : undefined), stdout, stderr })
        : base.ttys,
  }
  return { ...p, policy, stdout, stderr, signal: i.signal ?? p.signal }
}
