/**
 * @module The policy resolver's verdict on a run request's arguments, environment and applied
 * limits, remembered for identical inputs: a busy server sees the same few requests again and
 * again, and each check builds the policy's schema output and a whole `ResolvedPolicy` (~10 KB)
 * only to throw it away. The verdict depends on nothing else (no mounts, files or host state),
 * so it is kept under an exact encoding of those inputs, oldest out first; only strings are
 * kept (a frozen list of problems), never an object a run could change. A long input bypasses it.
 */
import { PolicyError } from '../runtime/errors.js'
import { resolvePolicy } from '../runtime/policy.js'
import { LIMIT_NAMES, policyLimits, type AppliedLimits } from './limits.js'

/** Past this many characters of key the check runs every time (the cache holds at most max × this). */
export const MAX_KEY_CHARS = 4096

const OK: readonly string[] = Object.freeze([])

/** -0, NaN and the infinities as themselves (JSON would write 0 and null). */
const num = (n: number | undefined) => (n === undefined ? 'u' : Object.is(n, -0) ? '-0' : String(n))

/** An encoding that two different inputs never share: JSON of strings is exact, limits are numbers. */
export function policyCheckKey(
  args: readonly string[] | undefined,
  env: Readonly<Record<string, string>> | undefined,
  limits: AppliedLimits,
): string {
  return `${LIMIT_NAMES.map((k) => num(limits[k])).join(',')}|${args === undefined ? 'u' : JSON.stringify(args)}|${env === undefined ? 'u' : JSON.stringify(env)}`
}

export class RunPolicyCheck {
  readonly #verdicts = new Map<string, readonly string[]>()
  constructor(readonly max = 1024) {}

  get size(): number {
    return this.#verdicts.size
  }

  /** The problems `resolvePolicy` finds with these inputs (an empty list: none). Other errors are thrown. */
  problems(args: string[] | undefined, env: Record<string, string> | undefined, limits: AppliedLimits): readonly string[] {
    const key = policyCheckKey(args, env, limits)
    const cacheable = key.length <= MAX_KEY_CHARS
    const known = cacheable ? this.#verdicts.get(key) : undefined
    if (known !== undefined) return known
    let verdict = OK
    try {
      resolvePolicy({ args, env, limits: policyLimits(limits) })
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e
      verdict = Object.freeze([...e.problems])
    }
    if (cacheable) {
      this.#verdicts.set(key, verdict)
      if (this.#verdicts.size > this.max) this.#verdicts.delete(this.#verdicts.keys().next().value!)
    }
    return verdict
  }
}
