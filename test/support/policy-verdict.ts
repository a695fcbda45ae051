/**
 * @module What the policy resolver itself says of a run request's args, env and limits, uncached:
 * the oracle the service's remembered verdicts (service/run-policy-check.ts) are checked against.
 */
import { PolicyError } from '../../runtime/errors.js'
import { resolvePolicy } from '../../runtime/policy.js'
import { policyLimits, type AppliedLimits } from '../../service/limits.js'

/** The resolver's problems for these inputs ([] when it accepts them). */
export function resolverVerdict(args: string[] | undefined, env: Record<string, string> | undefined, limits: AppliedLimits): string[] {
  try {
    resolvePolicy({ args, env, limits: policyLimits(limits) })
    return []
  } catch (e) {
    if (e instanceof PolicyError) return e.problems
    throw e
  }
}
