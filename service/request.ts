/**
 * @module What a client may ask of `POST /v1/runs`: the request schema (zod, also the source of
 * the OpenAPI document), and its resolution into a `RunJob`, plain JSON that travels to a local
 * worker or through the queue. Arguments and environment are checked by the policy resolver
 * (one place), limits against the operator's maxima, files as relative paths that cannot climb.
 * Nothing here trusts a count or a size the client sends: each has a cap.
 */
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { PolicyError } from '../runtime/errors.js'
import type { ServiceConfig } from './config.js'
import { ApiError } from './errors.js'
import { applyLimits, LimitAboveMaximum, type AppliedLimits } from './limits.js'
import { RunPolicyCheck } from './run-policy-check.js'

export const MODULE_ID = /^[0-9a-f]{64}$/

const fileContent = z.union([z.string(), z.object({ base64: z.string() }).strict()])

export const runRequestSchema = z
  .object({
    module: z.string().min(1).optional().describe('a module id (64 hex digits, from PUT /v1/modules) or the module itself in base64'),
    source: z
      .object({ language: z.string().min(1).max(64), files: z.record(z.string(), z.string()) })
      .strict()
      .optional()
      .describe('source to compile first (needs a server with a compiler)'),
    args: z.array(z.string()).optional().describe('argv, including argv[0]'),
    env: z.record(z.string(), z.string()).optional(),
    stdin: z.string().optional().describe('stdin as UTF-8 text'),
    stdinBase64: z.string().optional().describe('stdin as base64 bytes'),
    files: z.record(z.string(), fileContent).optional().describe('files shown read-only under /input: relative path -> text or {base64}'),
    output: z.boolean().optional().describe('mount an empty writable /output and return what the guest wrote there'),
    limits: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('memory, timeout, fuel, stdout, stderr, fds, disk, inodes: each at most the server maximum'),
    wait: z.boolean().optional().describe('true (default): answer with the result; false: answer 202 with the run id at once'),
    callbackUrl: z.string().optional().describe('POSTed the finished run; its origin must be on the server allow-list'),
  })
  .strict()

export const batchRequestSchema = z
  .object({
    runs: z.array(z.unknown()).min(1),
    wait: z.boolean().optional(),
  })
  .strict()

export type RunRequest = z.infer<typeof runRequestSchema>

/** One run as a worker receives it: plain JSON. */
export interface RunJob {
  id: string
  owner: string
  moduleId: string
  args?: string[]
  env: Record<string, string>
  /** base64 */
  stdin: string
  /** relative path -> base64 */
  files?: Record<string, string>
  output: boolean
  limits: AppliedLimits
  callbackUrl?: string
  submittedAt: number
}

/** Where a module comes from, before it has an id. */
export type ModuleRef = { id: string } | { bytes: Uint8Array } | { source: { language: string; files: Record<string, string> } }

/** One for the process: a verdict depends only on what it is keyed by, never on the server's config. */
const policyCheck = new RunPolicyCheck()

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export function decodeBase64(s: string, field: string): Uint8Array {
  if (!BASE64.test(s)) throw new ApiError(400, 'invalid-request', `${field}: not base64`, [`${field}: not base64`])
  return Buffer.from(s, 'base64')
}

const zodProblems = (issues: readonly z.core.$ZodIssue[], prefix: string) =>
  issues.map((i) => {
    const where = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')
    return `${prefix}${where}`.replace(/^\./, '') + `: ${i.message}`
  })

/** A file's path under /input: relative, no empty, `.` or `..` component, no NUL, backslash or lone surrogate. */
export function checkInputPath(path: string): string | undefined {
  if (path.length === 0 || path.length > 1024) return 'must be 1 to 1024 characters'
  if (path.startsWith('/')) return 'must be relative (it is placed under /input)'
  if (path.includes('\0') || path.includes('\\')) return 'must not contain NUL or backslash'
  // A lone surrogate is written as U+FFFD: two different names would be one file on disk.
  if (/\p{Cs}/u.test(path)) return 'must be well-formed Unicode (no lone surrogate)'
  const parts = path.split('/')
  if (parts.length > 16) return 'is nested more than 16 deep'
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') return 'must not have empty, "." or ".." components'
    if (Buffer.byteLength(p) > 255) return 'has a component longer than 255 bytes'
  }
  return undefined
}

export interface ResolvedRun {
  job: Omit<RunJob, 'moduleId'>
  module: ModuleRef
  wait: boolean
}

/**
 * Validates one run request. `where` prefixes each problem (`runs[3]` in a batch).
 * @throws ApiError 400 (invalid), 422 (a limit above the maximum, a callback not allowed)
 */
export function resolveRunRequest(body: unknown, config: ServiceConfig, owner: string, where = ''): ResolvedRun {
  const at = (f: string) => (where ? `${where}.${f}` : f)
  const parsed = runRequestSchema.safeParse(body)
  if (!parsed.success) throw new ApiError(400, 'invalid-request', 'the run request is invalid', zodProblems(parsed.error.issues, where))
  const r = parsed.data
  const problems: string[] = []
  if ((r.module === undefined) === (r.source === undefined)) problems.push(`${at('module')}: give exactly one of module or source`)
  if (r.stdin !== undefined && r.stdinBase64 !== undefined) problems.push(`${at('stdin')}: give stdin or stdinBase64, not both`)
  if ((r.args?.length ?? 0) > config.maxArgs) problems.push(`${at('args')}: more than ${config.maxArgs} arguments`)
  if (Object.keys(r.env ?? {}).length > config.maxEnv) problems.push(`${at('env')}: more than ${config.maxEnv} variables`)
  // Files: checked paths, bounded count and bytes, no path both a file and a directory.
  let files: Record<string, string> | undefined
  if (r.files !== undefined) {
    const entries = Object.entries(r.files)
    if (entries.length > config.maxFiles) problems.push(`${at('files')}: more than ${config.maxFiles} files`)
    else {
      files = {}
      let total = 0
      const dirs = new Set<string>()
      for (const [path, content] of entries) {
        const bad = checkInputPath(path)
        if (bad) {
          problems.push(`${at('files')}[${JSON.stringify(path)}]: ${bad}`)
          continue
        }
        let bytes: Uint8Array
        if (typeof content === 'string') bytes = Buffer.from(content, 'utf8')
        else {
          try {
            bytes = decodeBase64(content.base64, 'base64')
          } catch {
            problems.push(`${at('files')}[${JSON.stringify(path)}].base64: not base64`)
            continue
          }
        }
        total += bytes.byteLength
        files[path] = Buffer.from(bytes).toString('base64')
        const parts = path.split('/')
        for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
      }
      for (const d of dirs)
        if (files[d] !== undefined) problems.push(`${at('files')}[${JSON.stringify(d)}]: is both a file and a directory`)
      if (total > config.maxFileBytes) problems.push(`${at('files')}: ${total} bytes in all, above this server's ${config.maxFileBytes}`)
    }
  }
  let stdin: Uint8Array = new Uint8Array(0)
  if (r.stdinBase64 !== undefined) {
    try {
      stdin = decodeBase64(r.stdinBase64, at('stdinBase64'))
    } catch {
      problems.push(`${at('stdinBase64')}: not base64`)
    }
  } else if (r.stdin !== undefined) stdin = Buffer.from(r.stdin, 'utf8')
  if (stdin.byteLength > config.maxStdinBytes)
    problems.push(`${at('stdin')}: ${stdin.byteLength} bytes, above this server's ${config.maxStdinBytes}`)
  let callbackUrl: string | undefined
  if (r.callbackUrl !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(r.callbackUrl)
    } catch {
      problems.push(`${at('callbackUrl')}: not a URL`)
    }
    if (
      url &&
      (!(url.protocol === 'http:' || url.protocol === 'https:') ||
        url.username ||
        url.password ||
        !config.callbackOrigins.includes(url.origin))
    ) {
      throw new ApiError(422, 'callback-not-allowed', `${at('callbackUrl')}: ${url.origin} is not on this server's callback allow-list`)
    }
    callbackUrl = url?.href
  }
  let limits: AppliedLimits | undefined
  try {
    // The client's own object, not zod's copy (which drops keys such as "__proto__" instead of refusing them).
    limits = applyLimits((body as { limits?: unknown }).limits, config.limits)
  } catch (e) {
    if (e instanceof LimitAboveMaximum)
      throw new ApiError(
        422,
        'limit-above-maximum',
        "a limit is above this server's maximum",
        e.problems.map((p) => (where ? `${where}.${p}` : p)),
      )
    if (e instanceof PolicyError) problems.push(...e.problems.map((p) => (where ? `${where}.${p}` : p)))
    else throw e
  }
  // Arguments, environment and limits through the policy resolver: the rules `caplet run` has.
  // The verdict is remembered for identical inputs (run-policy-check.ts).
  if (problems.length === 0 && limits)
    problems.push(...policyCheck.problems(r.args, r.env, limits).map((p) => (where ? `${where}.${p}` : p)))
  if (problems.length > 0) throw new ApiError(400, 'invalid-request', 'the run request is invalid', problems)
  let module: ModuleRef
  if (r.source !== undefined) module = { source: r.source }
  else if (MODULE_ID.test(r.module!)) module = { id: r.module! }
  else module = { bytes: decodeBase64(r.module!.replace(/\s+/g, ''), at('module')) }
  return {
    module,
    wait: r.wait ?? true,
    job: {
      id: randomUUID(),
      owner,
      ...(r.args !== undefined ? { args: r.args } : {}),
      env: r.env ?? {},
      stdin: Buffer.from(stdin).toString('base64'),
      ...(files !== undefined ? { files } : {}),
      output: r.output ?? false,
      limits: limits!,
      ...(callbackUrl !== undefined ? { callbackUrl } : {}),
      submittedAt: Date.now(),
    },
  }
}
