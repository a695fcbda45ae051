/**
 * @module The operator's configuration of `caplet serve` / `caplet worker`: limits (maxima and
 * defaults), bearer tokens with their concurrency and rate, body and module caps, the queue's
 * bounds, result lifetime and the callback allow-list. Read from a JSON file (`--config`),
 * validated with every problem named; whatever the file leaves out has a bounded default.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { z } from 'zod'
import { PolicyError } from '../runtime/errors.js'
import { parseSize, parseDuration } from '../runtime/units.js'
import { BUILTIN_LIMITS, parseLimits, type OperatorLimits } from './limits.js'

export interface TokenPolicy {
  /** A name for logs and metrics (the token itself is never logged). */
  name: string
  /** sha256 of the token, hex. */
  sha256: string
  /** Runs this token may have queued or running at once. */
  concurrency: number
  /** Runs per second, sustained, and the burst above it. */
  ratePerSecond: number
  burst: number
}

export interface ServiceConfig {
  limits: OperatorLimits
  /** Empty: no authentication (allowed only on a loopback address). */
  tokens: TokenPolicy[]
  /** Largest request body, bytes (runs and batches). */
  maxBodyBytes: number
  /** Largest module, bytes (`PUT /v1/modules` and inline base64). */
  maxModuleBytes: number
  /** Total bytes of modules kept (in memory, or in Redis); oldest unused go first. */
  maxStoredModuleBytes: number
  /** How long an uploaded module stays in Redis after its last use, ms. */
  moduleTtlMs: number
  /** Runs executing at once on this server (local pool). */
  maxConcurrent: number
  /** Runs waiting for a worker, beyond which new runs get 429. */
  maxQueued: number
  /** How long a finished run's result can be fetched, ms. */
  resultTtlMs: number
  maxBatch: number
  maxArgs: number
  maxEnv: number
  /** Input files per run and their total bytes. */
  maxFiles: number
  maxFileBytes: number
  /** Stdin bytes. */
  maxStdinBytes: number
  /** Origins (`http://host:port`) a `callbackUrl` may point at. */
  callbackOrigins: string[]
  /** Time allowed to receive a whole request (headers and body), ms: bounds slow clients. */
  requestTimeoutMs: number
  /** sha256 (hex) of the token `GET /metrics` takes; unset: any API token (none when there are none). */
  metricsTokenSha256?: string
}

export const DEFAULT_CONFIG: ServiceConfig = {
  limits: BUILTIN_LIMITS,
  tokens: [],
  maxBodyBytes: 16 * 2 ** 20,
  maxModuleBytes: 8 * 2 ** 20,
  maxStoredModuleBytes: 256 * 2 ** 20,
  moduleTtlMs: 24 * 3600_000,
  // As many as the worker pool keeps warm: beyond it, runs would start threads inside their time limit.
  maxConcurrent: Math.max(2, availableParallelism()),
  maxQueued: 1000,
  resultTtlMs: 3600_000,
  maxBatch: 100,
  maxArgs: 256,
  maxEnv: 128,
  maxFiles: 64,
  maxFileBytes: 4 * 2 ** 20,
  maxStdinBytes: 4 * 2 ** 20,
  callbackOrigins: [],
  requestTimeoutMs: 15_000,
}

const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseSize(v)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
    return z.NEVER
  }
})
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
    return z.NEVER
  }
})
const count = z.number().int().positive()

const tokenSchema = z
  .object({
    // Owners are compared as strings: a lone surrogate has no exact spelling in UTF-8 (it becomes
    // U+FFFD), so "a\ud800" and "a\ufffd" would be one owner wherever names go through bytes.
    name: z
      .string()
      .min(1)
      .max(64)
      .refine((n) => !/\p{Cs}/u.test(n), 'must be well-formed Unicode (no lone surrogate)'),
    token: z.string().min(16, 'must be at least 16 characters').optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')
      .optional(),
    concurrency: count.optional(),
    ratePerSecond: z.number().positive().optional(),
    burst: count.optional(),
  })
  .strict()
  .refine((t) => (t.token === undefined) !== (t.sha256 === undefined), 'needs exactly one of token or sha256')

const fileSchema = z
  .object({
    limits: z.object({ max: z.unknown().optional(), defaults: z.unknown().optional() }).strict().optional(),
    tokens: z.array(tokenSchema).max(10_000).optional(),
    maxBodyBytes: size.optional(),
    maxModuleBytes: size.optional(),
    maxStoredModuleBytes: size.optional(),
    moduleTtl: duration.optional(),
    maxConcurrent: count.optional(),
    maxQueued: count.optional(),
    resultTtl: duration.optional(),
    maxBatch: count.optional(),
    maxArgs: count.optional(),
    maxEnv: count.optional(),
    maxFiles: count.optional(),
    maxFileBytes: size.optional(),
    maxStdinBytes: size.optional(),
    callbackOrigins: z.array(z.string().url()).optional(),
    requestTimeout: duration.optional(),
    metricsToken: z.string().min(16, 'must be at least 16 characters').optional(),
    metricsTokenSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')
      .optional(),
  })
  .strict()
  .refine((f) => f.metricsToken === undefined || f.metricsTokenSha256 === undefined, {
    message: 'give metricsToken or metricsTokenSha256, not both',
    path: ['metricsToken'],
  })

export type ServiceConfigFile = z.input<typeof fileSchema>

export const sha256Hex = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex')

/** Resolves a configuration object (as in the JSON file). @throws PolicyError naming each bad field */
export function resolveConfig(file: unknown, base: ServiceConfig = DEFAULT_CONFIG): ServiceConfig {
  const parsed = fileSchema.safeParse(file ?? {})
  if (!parsed.success) {
    throw new PolicyError(parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(config)'}: ${i.message}`))
  }
  const f = parsed.data
  const problems: string[] = []
  const limits: OperatorLimits = { max: { ...base.limits.max }, defaults: { ...base.limits.defaults } }
  for (const part of ['max', 'defaults'] as const) {
    try {
      Object.assign(limits[part], parseLimits(f.limits?.[part], `limits.${part}`))
    } catch (e) {
      if (e instanceof PolicyError) problems.push(...e.problems)
      else throw e
    }
  }
  for (const [name, d] of Object.entries(limits.defaults)) {
    const m = limits.max[name as keyof typeof limits.max]
    if (d !== undefined && m !== undefined && d > m) problems.push(`limits.defaults.${name}: above limits.max.${name}`)
  }
  if (problems.length > 0) throw new PolicyError(problems)
  const names = new Set<string>()
  const tokens = (f.tokens ?? []).map((t, i) => {
    if (names.has(t.name)) problems.push(`tokens[${i}].name: ${JSON.stringify(t.name)} is used twice`)
    names.add(t.name)
    const rate = t.ratePerSecond ?? 50
    return {
      name: t.name,
      sha256: t.sha256 ?? sha256Hex(t.token!),
      concurrency: t.concurrency ?? 16,
      ratePerSecond: rate,
      burst: t.burst ?? Math.max(1, Math.ceil(rate * 2)),
    }
  })
  if (problems.length > 0) throw new PolicyError(problems)
  return {
    limits,
    tokens: f.tokens !== undefined ? tokens : base.tokens,
    maxBodyBytes: f.maxBodyBytes ?? base.maxBodyBytes,
    maxModuleBytes: f.maxModuleBytes ?? base.maxModuleBytes,
    maxStoredModuleBytes: f.maxStoredModuleBytes ?? base.maxStoredModuleBytes,
    moduleTtlMs: f.moduleTtl ?? base.moduleTtlMs,
    maxConcurrent: f.maxConcurrent ?? base.maxConcurrent,
    maxQueued: f.maxQueued ?? base.maxQueued,
    resultTtlMs: f.resultTtl ?? base.resultTtlMs,
    maxBatch: f.maxBatch ?? base.maxBatch,
    maxArgs: f.maxArgs ?? base.maxArgs,
    maxEnv: f.maxEnv ?? base.maxEnv,
    maxFiles: f.maxFiles ?? base.maxFiles,
    maxFileBytes: f.maxFileBytes ?? base.maxFileBytes,
    maxStdinBytes: f.maxStdinBytes ?? base.maxStdinBytes,
    callbackOrigins: (f.callbackOrigins ?? base.callbackOrigins).map((u) => new URL(u).origin),
    requestTimeoutMs: f.requestTimeout ?? base.requestTimeoutMs,
    ...metricsToken(f.metricsToken !== undefined ? sha256Hex(f.metricsToken) : (f.metricsTokenSha256 ?? base.metricsTokenSha256)),
  }
}

const metricsToken = (sha256: string | undefined) => (sha256 !== undefined ? { metricsTokenSha256: sha256 } : {})

/** Reads `--config FILE.json`. @throws PolicyError with a one-line reason */
export function readConfigFile(path: string): ServiceConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new PolicyError([`--config ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`])
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new PolicyError([`--config ${path}: not JSON (${(e as Error).message})`])
  }
  return resolveConfig(json)
}
