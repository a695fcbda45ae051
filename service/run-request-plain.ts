/**
 * @module The common run request proven valid without zod: a module id or base64, args, env,
 * stdin, wait, output, limits, callbackUrl, each plainly of its type. Returns what zod's parse
 * would (a copy); anything else, valid or not, goes to the schema (request.ts), which says what
 * is wrong exactly as before. test/service/run-request-plain.test.ts compares the two on
 * generated requests. As runtime/policy-plain.ts is to the policy's schema.
 */
import { plainObject, strings } from '../runtime/policy-plain.js'
import type { RunRequest } from './request.js'

const FIELDS: ReadonlySet<string> = new Set(['module', 'args', 'env', 'stdin', 'stdinBase64', 'output', 'limits', 'wait', 'callbackUrl'])

/** A plain object of own data properties, none named `__proto__` (zod's record leaves such a key out: the schema decides). */
const record = (v: unknown): v is Record<string, unknown> => plainObject(v) && !Object.hasOwn(v, '__proto__')

/** The request as zod would give it, or undefined when only the schema can tell. */
export function plainRunRequest(body: unknown): RunRequest | undefined {
  if (!plainObject(body, FIELDS)) return undefined
  const out: RunRequest = {}
  for (const key of Object.keys(body)) {
    const v = body[key]
    switch (key) {
      case 'module':
        if (typeof v !== 'string' || v.length === 0) return undefined
        out.module = v
        break
      case 'stdin':
      case 'stdinBase64':
      case 'callbackUrl':
        if (typeof v !== 'string') return undefined
        out[key] = v
        break
      case 'output':
      case 'wait':
        if (typeof v !== 'boolean') return undefined
        out[key] = v
        break
      case 'args':
        if (!strings(v)) return undefined
        out.args = [...v]
        break
      case 'env':
        if (!record(v)) return undefined
        for (const k in v) if (typeof v[k] !== 'string') return undefined
        out.env = { ...(v as Record<string, string>) }
        break
      case 'limits':
        if (!record(v)) return undefined
        out.limits = { ...v }
        break
      default:
        return undefined
    }
  }
  return out
}
