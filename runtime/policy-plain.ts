/**
 * @module The common options proven valid without building the policy's schema (policy.ts):
 * a CLI run's and a plain API call's. It accepts only what the schema accepts, a subset of it
 * (test/runtime/policy-plain.test.ts compares the two on generated options); anything else,
 * valid or not, goes to the schema, which says what is wrong exactly as before.
 */

const RUN_INPUT = new Set(['args', 'env', 'stdin', 'stdout', 'stderr'])
const POLICY = new Set([...RUN_INPUT, 'mounts', 'limits', 'isolation', 'tier', 'deterministic'])
const ENUMS: Readonly<Record<string, readonly unknown[]>> = {
  stdout: ['capture', 'inherit', 'discard'],
  stderr: ['capture', 'inherit', 'discard'],
  isolation: ['worker', 'in-process'],
  tier: ['auto', 'optimized', 'baseline'],
  deterministic: [true, false],
}
const ENV_NAME = /^[^=\0]+$/

/** A plain object (as `{}` or `Object.create(null)`) whose keys are all its own plain data properties, among `allowed`. */
function plainObject(v: unknown, allowed?: ReadonlySet<string>): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key in v) if (!Object.hasOwn(v, key)) return false
  for (const key of Reflect.ownKeys(v)) {
    if (typeof key !== 'string' || (allowed !== undefined && !allowed.has(key))) return false
    const d = Object.getOwnPropertyDescriptor(v, key)!
    if (!('value' in d) || !d.enumerable) return false
  }
  return true
}

const strings = (v: unknown): boolean => {
  if (!Array.isArray(v) || Object.getPrototypeOf(v) !== Array.prototype) return false
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return false
  return true
}

function field(key: string, v: unknown): boolean {
  if (v === undefined) return true
  switch (key) {
    case 'args':
      return strings(v)
    case 'env':
      return plainObject(v) && Object.entries(v).every(([k, s]) => ENV_NAME.test(k) && typeof s === 'string' && !s.includes('\0'))
    case 'stdin':
      return typeof v === 'string' || v instanceof Uint8Array
    case 'mounts':
      return Array.isArray(v) && v.length === 0
    case 'limits':
      return plainObject(v) && Reflect.ownKeys(v).length === 0
    default:
      return ENUMS[key]?.includes(v) === true
  }
}

/** Whether `options` is certainly valid: only a policy's (or with `runInput`, a run input's) common fields, each plainly right. */
export function plainlyValid(options: unknown, runInput = false): boolean {
  const allowed = runInput ? RUN_INPUT : POLICY
  if (!plainObject(options, allowed)) return false
  for (const key of allowed) if (!field(key, options[key])) return false
  return true
}
