/**
 * The remembered policy verdict of a run request (service/run-policy-check.ts): the same verdict
 * as the resolver itself, first time and remembered; inputs that differ in any way (including
 * crafted to collide in a naive encoding) never share an entry; verdicts cannot be changed by a
 * caller; the cache is bounded in entries and in key length.
 */
import { describe, expect, it } from 'vitest'
import { applyLimits, BUILTIN_LIMITS, type AppliedLimits } from '../../service/limits.js'
import { MAX_KEY_CHARS, policyCheckKey, RunPolicyCheck } from '../../service/run-policy-check.js'
import { resolverVerdict } from '../support/policy-verdict.js'

const LIMITS: AppliedLimits = applyLimits(undefined, BUILTIN_LIMITS)

type Input = [string[] | undefined, Record<string, string> | undefined, AppliedLimits]

const INPUTS: Input[] = [
  [undefined, undefined, LIMITS],
  [[], undefined, LIMITS],
  [undefined, {}, LIMITS],
  [['a,b'], undefined, LIMITS],
  [['a', 'b'], undefined, LIMITS],
  [['x'], { A: '1' }, LIMITS],
  [['x'], { A: '1', B: '2' }, LIMITS],
  [['x'], { 'A=B': '1' }, LIMITS], // invalid name
  [['x'], { A: 'a\0b' }, LIMITS], // invalid value
  [['a\0'], undefined, LIMITS],
  // An args string that spells the encoding's separator and an env that would follow it.
  [['"]|{"A":"1"}'], undefined, LIMITS],
  [['x'], { A: '1', '|': '"' }, LIMITS],
  [undefined, undefined, { ...LIMITS, fuel: 1000 }],
  [undefined, undefined, { ...LIMITS, fuel: 0 }],
  [undefined, undefined, { ...LIMITS, fuel: -0 }],
  [undefined, undefined, { ...LIMITS, memory: 65536 }],
  [undefined, undefined, { ...LIMITS, memory: 100 }], // less than a page
  [undefined, undefined, { ...LIMITS, timeout: 0 }],
  [undefined, undefined, { ...LIMITS, fds: Number.NaN }],
]

describe('RunPolicyCheck', () => {
  it("gives the resolver's own verdict, the first time and when remembered", () => {
    const check = new RunPolicyCheck()
    for (const [args, env, limits] of INPUTS) {
      const want = resolverVerdict(args, env, limits)
      expect(check.problems(args, env, limits)).toEqual(want)
      expect(check.problems(args, env, limits)).toEqual(want)
    }
    expect(INPUTS.filter(([a, e, l]) => resolverVerdict(a, e, l).length > 0).length).toBeGreaterThanOrEqual(4)
    expect(check.size).toBe(INPUTS.length)
  })

  it('never gives two different inputs one entry', () => {
    const keys = new Set(INPUTS.map(([a, e, l]) => policyCheckKey(a, e, l)))
    expect(keys.size).toBe(INPUTS.length)
    // A valid input remembered first does not answer for a bad one that differs only in env or limits.
    const check = new RunPolicyCheck()
    expect(check.problems(['x'], { A: '1' }, LIMITS)).toEqual([])
    expect(check.problems(['x'], { 'A=': '1' }, LIMITS).length).toBeGreaterThan(0)
    expect(check.problems(['x'], { A: '1' }, { ...LIMITS, memory: 1 }).length).toBeGreaterThan(0)
  })

  it('hands out verdicts no caller can change', () => {
    const check = new RunPolicyCheck()
    const bad = check.problems(undefined, { 'A=B': '1' }, LIMITS)
    expect(() => (bad as string[]).push('x')).toThrow(TypeError)
    expect(() => ((bad as string[])[0] = 'x')).toThrow(TypeError)
    const ok = check.problems(undefined, undefined, LIMITS)
    expect(() => (ok as string[]).push('x')).toThrow(TypeError)
    expect(check.problems(undefined, { 'A=B': '1' }, LIMITS)).toEqual(resolverVerdict(undefined, { 'A=B': '1' }, LIMITS))
    expect(check.problems(undefined, undefined, LIMITS)).toEqual([])
  })

  it('is bounded: oldest out past max entries, a long input checked but not kept', () => {
    const check = new RunPolicyCheck(8)
    for (let i = 0; i < 100; i++) check.problems([String(i)], undefined, LIMITS)
    expect(check.size).toBe(8)
    const long = ['y'.repeat(MAX_KEY_CHARS)]
    const before = check.size
    expect(check.problems(long, { 'A=B': '1' }, LIMITS)).toEqual(resolverVerdict(long, { 'A=B': '1' }, LIMITS))
    expect(check.size).toBe(before)
    // A flood of distinct bad inputs stays within the bound too.
    for (let i = 0; i < 100; i++) check.problems(undefined, { [`A${i}=`]: '1' }, LIMITS)
    expect(check.size).toBe(8)
  })
})
