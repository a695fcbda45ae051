/**
 * @module Run limits as the service speaks of them, and the operator's maxima. A client's
 * limits are parsed by the policy's own resolver (`resolvePolicy`: one place decides what a
 * size, a duration or a count is); the service then checks each against the operator's maximum
 * and fills what the client left out from the operator's defaults. A client may ask for less,
 * never for more; the response reports what applied. It must never let a run go unbounded in
 * time, memory or output.
 */
import { PolicyError } from '../runtime/errors.js'
import { resolvePolicy, WASM_PAGE, type Limits } from '../runtime/policy.js'
import { formatSize } from '../runtime/units.js'

/** Limits as a client or operator writes them (sizes `64MiB` or bytes, durations `2s` or ms). */
export interface LimitsSpec {
  memory?: number | string
  timeout?: number | string
  fuel?: number
  stdout?: number | string
  stderr?: number | string
  /** Open descriptors, stdio and mounts included. */
  fds?: number
  /** Bytes the guest may write into `/output`. */
  disk?: number | string
  /** Files and directories the guest may create in `/output`. */
  inodes?: number
}

/** Limits in plain numbers: what applied to a run (bytes, milliseconds, counts). */
export interface AppliedLimits {
  memory: number
  timeout: number
  fuel?: number
  stdout: number
  stderr: number
  fds: number
  disk: number
  inodes: number
}

export const LIMIT_NAMES = ['memory', 'timeout', 'fuel', 'stdout', 'stderr', 'fds', 'disk', 'inodes'] as const
export type LimitName = (typeof LIMIT_NAMES)[number]

/** The service's limits are the policy's, field for field. */
function toPolicyLimits(spec: LimitsSpec): Limits {
  return { ...spec } as Limits
}

/**
 * Parses limits through the policy resolver. Returns the numbers of the fields that were given.
 * @throws PolicyError naming each bad field as `<where>.<name>`
 */
export function parseLimits(spec: unknown, where = 'limits'): Partial<AppliedLimits> {
  if (spec === undefined) return {}
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new PolicyError([`${where}: must be an object`])
  const s = spec as Record<string, unknown>
  const unknown = Object.keys(s).filter((k) => !(LIMIT_NAMES as readonly string[]).includes(k))
  if (unknown.length > 0)
    throw new PolicyError([
      `${where}: unknown limit${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${LIMIT_NAMES.join(', ')})`,
    ])
  let resolved
  try {
    resolved = resolvePolicy({ limits: toPolicyLimits(s as LimitsSpec) }).limits
  } catch (e) {
    if (e instanceof PolicyError) {
      throw new PolicyError(e.problems.map((p) => p.replace(/^limits\b/, where)))
    }
    throw e
  }
  const out: Partial<AppliedLimits> = {}
  if (s.memory !== undefined) out.memory = resolved.memoryPages * WASM_PAGE
  if (s.timeout !== undefined) out.timeout = resolved.timeoutMs!
  if (s.fuel !== undefined) out.fuel = resolved.fuel!
  if (s.stdout !== undefined) out.stdout = resolved.stdoutBytes!
  if (s.stderr !== undefined) out.stderr = resolved.stderrBytes!
  if (s.fds !== undefined) out.fds = resolved.maxFds
  if (s.disk !== undefined) out.disk = resolved.diskBytes!
  if (s.inodes !== undefined) out.inodes = resolved.inodes!
  return out
}

/** The operator's bounds: the most a run may have, and what it gets when it does not say. */
export interface OperatorLimits {
  max: Partial<AppliedLimits> & Omit<AppliedLimits, 'fuel'>
  defaults: Partial<AppliedLimits> & Omit<AppliedLimits, 'fuel'>
}

export const BUILTIN_LIMITS: OperatorLimits = {
  max: { memory: 256 * 2 ** 20, timeout: 10_000, stdout: 4 * 2 ** 20, stderr: 1 * 2 ** 20, fds: 256, disk: 16 * 2 ** 20, inodes: 1024 },
  defaults: { memory: 64 * 2 ** 20, timeout: 5_000, stdout: 1 * 2 ** 20, stderr: 256 * 1024, fds: 64, disk: 4 * 2 ** 20, inodes: 256 },
}

const show = (name: LimitName, v: number) =>
  name === 'timeout' ? `${v} ms` : name === 'fuel' || name === 'fds' || name === 'inodes' ? String(v) : formatSize(v)

/**
 * What applies to one run: the client's limits, each at most the operator's maximum, and the
 * operator's defaults for the rest. @throws PolicyError for a bad limit, or one above its maximum
 */
export function applyLimits(requested: unknown, operator: OperatorLimits): AppliedLimits {
  const asked = parseLimits(requested)
  const problems: string[] = []
  const out: Partial<AppliedLimits> = {}
  for (const name of LIMIT_NAMES) {
    const max = operator.max[name]
    const v = asked[name] ?? operator.defaults[name] ?? max
    if (v === undefined) continue
    if (max !== undefined && v > max) {
      problems.push(`limits.${name}: ${show(name, v)} is above this server's maximum of ${show(name, max)}`)
      continue
    }
    out[name] = v
  }
  if (problems.length > 0) throw new LimitAboveMaximum(problems)
  return out as AppliedLimits
}

export class LimitAboveMaximum extends PolicyError {}

/** Applied limits as the policy's `limits`. */
export function policyLimits(a: AppliedLimits): Limits {
  return toPolicyLimits({
    memory: a.memory,
    timeout: a.timeout,
    fuel: a.fuel,
    stdout: a.stdout,
    stderr: a.stderr,
    fds: a.fds,
    disk: a.disk,
    inodes: a.inodes,
  })
}
