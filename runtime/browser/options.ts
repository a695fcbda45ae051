/**
 * @module The browser's options: the Node policy's fields that make sense in a page, and mounts
 * whose contents come from browser storage. Translated into the shared `RunOptions` and resolved
 * by the shared `resolvePolicy` (one schema, one set of checks and messages); what a page cannot
 * have (host directories, overlays, sockets, inherited stdio, in-process runs) is refused here,
 * by field, with a `PolicyError`. It must never let a field through that it does not translate.
 */
import { PolicyError } from '../errors.js'
import { parseSize } from '../units.js'
import type { Limits, RunOptions, Size, Duration, TraceSink } from '../policy.js'
import type { VolumeLike } from './memfs-volume.js'

export type { Size, Duration }

/** A tree to seed an in-memory mount: file contents as strings or bytes, `{ symlink }`, nested directories. */
export interface BrowserTree {
  [name: string]: string | Uint8Array | ArrayBuffer | { symlink: string } | BrowserTree
}

/** A directory the guest may see. Exactly one of `tmp`, `tree`, `opfs`, `volume`. */
export interface BrowserMountSpec {
  /** Absolute path in the guest, e.g. `/data`. */
  guest: string
  /** Default `rw`. */
  mode?: 'ro' | 'rw'
  /** An empty in-memory directory, discarded after the run. */
  tmp?: boolean
  /** An in-memory directory seeded from a tree, or from files a user picked or dropped (`FileList`, `File[]`: each at its name, or its `webkitRelativePath`). Copied at `prepare`; changes are discarded unless `keep`. */
  tree?: BrowserTree | FileList | readonly File[]
  /** A directory of the Origin Private File System: a handle, or a path under the origin's root (created if missing). Copied in when the run starts; a read-write mount's changes are written back when it ends. */
  opfs?: FileSystemDirectoryHandle | string
  /** A `memfs` volume (or any object with its synchronous fs methods). Copied when each run starts; a read-write mount's changes are applied back when it ends. */
  volume?: VolumeLike
  /** With `volume`: the subtree to mount (default `/`). */
  path?: string
  /** Bytes the guest may add to this mount (default 256 MiB, as every browser mount is memory). */
  size?: Size
  /** Files, directories and symlinks the guest may create in this mount. */
  inodes?: number
  /** Return the mount's final tree in the result (`result.files[guest]`). */
  keep?: boolean
}

/** What may change from one run of a prepared program to the next. */
export interface BrowserRunInput {
  args?: readonly string[]
  env?: Readonly<Record<string, string>>
  stdin?: string | Uint8Array
  signal?: AbortSignal
  /** Called with each chunk the guest writes to stdout, as it writes it. */
  onStdout?: (chunk: Uint8Array) => void
  onStderr?: (chunk: Uint8Array) => void
}

export interface BrowserRunOptions extends BrowserRunInput {
  mounts?: readonly BrowserMountSpec[]
  limits?: Limits
  deterministic?: boolean
  seed?: number
  clocks?: RunOptions['clocks']
  syscalls?: readonly string[]
  /**
   * Trace every host call, as `strace` does: a function receiving each line, or `{ sink, format }`
   * (`text` or `json`); `{ summary: true }` only counts calls, errors and time per function
   * (`result.traceSummary`). Each line is posted from the guest's worker as its call returns, so a
   * run that is killed has delivered the lines of every call it made.
   */
  trace?: TraceSink | { sink?: TraceSink; format?: 'text' | 'json'; summary?: boolean }
  /** The guest worker's script (default: `browser-worker.js` beside this module). */
  workerUrl?: string | URL
  /** The most bytes a module given as a `Response` or URL may have (default 256 MiB); more is a `ModuleError`. */
  maxModuleBytes?: Size
}

const BROWSER_KEYS = new Set([
  'args',
  'env',
  'stdin',
  'signal',
  'onStdout',
  'onStderr',
  'mounts',
  'limits',
  'deterministic',
  'seed',
  'clocks',
  'syscalls',
  'trace',
  'workerUrl',
  'maxModuleBytes',
])
export const RUN_INPUT_KEYS = new Set(['args', 'env', 'stdin', 'signal', 'onStdout', 'onStderr'])
const NOT_IN_BROWSER: Record<string, string> = {
  isolation: 'the browser runs every guest in its own Web Worker',
  tier: 'engine tiers are chosen by the browser',
  stdout: 'a page has no stdout to inherit; output is captured, and streamed with onStdout',
  stderr: 'a page has no stderr to inherit; output is captured, and streamed with onStderr',
  listen: 'sockets are not available in the browser',
  connect: 'sockets are not available in the browser',
  sockets: 'sockets are not available in the browser',
}
const MOUNT_KEYS = new Set(['guest', 'mode', 'tmp', 'tree', 'opfs', 'volume', 'path', 'size', 'inodes', 'files', 'keep'])
const MOUNT_NOT_IN_BROWSER: Record<string, string> = {
  host: 'host directories are not available in the browser; use tmp, tree, opfs or volume',
  fs: "a Filesystem object cannot cross into the guest's worker; use tree, opfs or volume",
  saveTo: 'overlays are not available in the browser',
  apply: 'overlays are not available in the browser',
}

/** Problems with the fields only a browser has, and the Node-only fields it refuses. */
export function browserProblems(o: Record<string, unknown>, keys: Set<string> = BROWSER_KEYS): string[] {
  const problems: string[] = []
  if (typeof o !== 'object' || o === null) return ['(options): must be an object']
  for (const k of Object.keys(o)) {
    if (keys.has(k)) continue
    const why = NOT_IN_BROWSER[k]
    problems.push(why !== undefined ? `${k}: ${why}` : `(options): Unrecognized key: ${JSON.stringify(k)}`)
  }
  if (o.stdin === 'inherit') problems.push('stdin: a page has no stdin to inherit; pass a string or bytes')
  else if (typeof o.stdin === 'object' && o.stdin !== null && !(o.stdin instanceof Uint8Array))
    problems.push('stdin: a page has no host files; pass a string or bytes')
  for (const k of ['onStdout', 'onStderr']) if (o[k] !== undefined && typeof o[k] !== 'function') problems.push(`${k}: must be a function`)
  const trace = o.trace as Record<string, unknown> | undefined
  if (typeof trace === 'object' && trace !== null) {
    if (trace.file !== undefined) problems.push('trace.file: a page has no files; pass a function (trace: (line) => ...) or { sink }')
    else if (trace.sink === undefined && trace.summary !== true) problems.push('trace: needs a sink function, or summary: true')
  }
  if (o.workerUrl !== undefined && typeof o.workerUrl !== 'string' && !(o.workerUrl instanceof URL))
    problems.push('workerUrl: must be a string or a URL')
  if (o.maxModuleBytes !== undefined) {
    try {
      if (parseSize(o.maxModuleBytes as Size) === 0) problems.push('maxModuleBytes: must be more than 0')
    } catch (e) {
      problems.push(`maxModuleBytes: ${(e as Error).message}`)
    }
  }
  const mounts = o.mounts
  if (Array.isArray(mounts)) {
    mounts.forEach((m: Record<string, unknown>, i) => {
      if (typeof m !== 'object' || m === null) return
      for (const k of Object.keys(m)) {
        const why = MOUNT_NOT_IN_BROWSER[k]
        if (why !== undefined) problems.push(`mounts[${i}].${k}: ${why}`)
        else if (!MOUNT_KEYS.has(k)) problems.push(`mounts[${i}]: Unrecognized key: ${JSON.stringify(k)}`)
      }
      if (m.mode === 'overlay') problems.push(`mounts[${i}].mode: overlays are not available in the browser`)
      const sources = ['tmp', 'tree', 'opfs', 'volume'].filter((k) => (k === 'tmp' ? m.tmp === true : m[k] !== undefined))
      if (sources.length !== 1 && m.host === undefined && m.fs === undefined)
        problems.push(`mounts[${i}]: needs exactly one of tmp, tree, opfs or volume`)
      if (m.path !== undefined && m.volume === undefined) problems.push(`mounts[${i}].path: is for volume mounts`)
      if (m.path !== undefined && (typeof m.path !== 'string' || !m.path.startsWith('/')))
        problems.push(`mounts[${i}].path: must be an absolute path in the volume`)
      if (
        m.opfs !== undefined &&
        typeof m.opfs !== 'string' &&
        !(typeof FileSystemDirectoryHandle !== 'undefined' && m.opfs instanceof FileSystemDirectoryHandle)
      ) {
        problems.push(`mounts[${i}].opfs: must be a FileSystemDirectoryHandle or a path`)
      }
      if (typeof m.opfs === 'string' && m.opfs.split('/').some((p) => p === '..' || p === '.'))
        problems.push(`mounts[${i}].opfs: must be a path without "." or ".."`)
      if (m.keep !== undefined && typeof m.keep !== 'boolean') problems.push(`mounts[${i}].keep: must be a boolean`)
    })
  }
  return problems
}

/** The shared `RunOptions` for the browser's options: every mount an in-memory one (its contents are supplied to the worker). */
export function toRunOptions(o: BrowserRunOptions): RunOptions {
  const out: Record<string, unknown> = {}
  for (const k of ['args', 'env', 'stdin', 'signal', 'limits', 'deterministic', 'seed', 'clocks', 'syscalls', 'trace'] as const) {
    if (o[k] !== undefined) out[k] = o[k]
  }
  if (o.mounts !== undefined) {
    out.mounts = Array.isArray(o.mounts)
      ? o.mounts.map((m) =>
          typeof m === 'object' && m !== null
            ? {
                guest: m.guest,
                tmp: true,
                ...(m.mode !== undefined ? { mode: m.mode } : {}),
                ...(m.size !== undefined ? { size: m.size } : {}),
                ...(m.inodes !== undefined ? { inodes: m.inodes } : {}),
                ...((m as { files?: unknown }).files !== undefined ? { files: (m as { files?: unknown }).files } : {}),
              }
            : m,
        )
      : o.mounts
  }
  out.isolation = 'worker'
  return out as RunOptions
}

/** @throws PolicyError with the browser's problems and the shared resolution's, together */
export function refuse(problems: string[], shared: unknown): never {
  const more = shared instanceof PolicyError ? shared.problems : []
  throw new PolicyError([...problems, ...more.filter((p) => !problems.includes(p))])
}
