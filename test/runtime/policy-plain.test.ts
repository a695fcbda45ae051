/**
 * The policy's fast path (runtime/policy-plain.ts) against its schema (runtime/policy.ts): on
 * generated options, valid and hostile alike, whatever the fast path accepts the schema accepts;
 * and a CLI run's options do take the fast path (else the schema is built on every run).
 */
import { describe, expect, it } from 'vitest'
import { plainlyValid } from '../../runtime/policy-plain.js'
import { schemaProblems } from '../../runtime/policy.js'

class Bag {
  args = ['a']
}
class Args extends Array<string> {}
const withGetter = (key: string, value: unknown) => Object.defineProperty({}, key, { get: () => value, enumerable: true })
const nullProto = (o: object) => Object.assign(Object.create(null) as object, o)
const sparse = ['a', 'b']
delete sparse[0]

const POOLS: Record<string, unknown[]> = {
  args: [
    undefined,
    [],
    ['a'],
    ['a', 'b'],
    [1],
    ['a', undefined],
    sparse,
    'a',
    { 0: 'a', length: 1 },
    null,
    Args.from(['a']),
    withGetter('0', 'a'),
  ],
  env: [
    undefined,
    {},
    { A: '1' },
    { 'A=B': '1' },
    { '': 'x' },
    { A: 'x\0' },
    { 'A\0': '1' },
    { A: 1 },
    null,
    [],
    ['A'],
    nullProto({ A: '1' }),
    { [Symbol('s')]: 'x' },
    withGetter('A', '1'),
    new Map([['A', '1']]),
    new Bag(),
    JSON.parse('{"__proto__": "x"}') as unknown,
    Object.create({ A: '1' }) as unknown,
  ],
  stdin: [
    undefined,
    'inherit',
    '',
    'abc',
    new Uint8Array(2),
    Buffer.from('x'),
    { file: '/nonexistent/caplet' },
    { file: '' },
    1,
    null,
    new Uint16Array(1),
    new ArrayBuffer(1),
  ],
  stdout: [undefined, 'capture', 'inherit', 'discard', 'INHERIT', () => {}, null, 1, ''],
  stderr: [undefined, 'capture', 'inherit', 'discard', 'pipe', () => {}, null],
  mounts: [undefined, [], [{ guest: '/d', tmp: true }], [{ guest: 'd', tmp: true }], 'x', null, {}, [undefined]],
  limits: [undefined, {}, { timeout: 1 }, { foo: 1 }, null, [], nullProto({}), { memory: 'x' }, withGetter('memory', 1), new Bag()],
  isolation: [undefined, 'worker', 'in-process', 'thread', null, ''],
  tier: [undefined, 'auto', 'optimized', 'baseline', 'fast', 0],
  deterministic: [undefined, true, false, 'true', 0, null],
  seed: [undefined, 1, -1],
  bogus: [undefined, 1],
  signal: [undefined, new AbortController().signal, 'x'],
  trace: [undefined, () => {}],
}

/** A small seeded generator (xorshift32), so a failure names a reproducible case. */
function rng(seed: number) {
  let x = seed
  return (n: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

/** Values a fast-path field may take, to build options near the boundary. */
const VALID: Record<string, unknown[]> = {
  args: [[], ['a', 'b']],
  env: [{}, { A: '1', B_2: 'x y' }, nullProto({ A: '1' })],
  stdin: ['inherit', 'abc', Buffer.from('x')],
  stdout: ['capture', 'inherit', 'discard'],
  stderr: ['capture', 'inherit', 'discard'],
  mounts: [[]],
  limits: [{}],
  isolation: ['worker', 'in-process'],
  tier: ['auto', 'optimized', 'baseline'],
  deterministic: [true, false],
}

/** Options that are random (shape 0–2), or valid for the fast path with at most one field changed (the rest). */
function generate(pick: (n: number) => number): unknown {
  const shape = pick(10)
  if (shape === 0) return [null, [], 'x', 1, new Bag()][pick(5)]
  const o: Record<string, unknown> = shape === 1 ? (Object.create(null) as Record<string, unknown>) : {}
  if (shape <= 3) {
    for (const [key, pool] of Object.entries(POOLS)) if (pick(2) === 0) o[key] = pool[pick(pool.length)]
    return shape === 2 ? Object.setPrototypeOf(o, { inherited: true }) : o
  }
  for (const [key, pool] of Object.entries(VALID)) if (pick(2) === 0) o[key] = pool[pick(pool.length)]
  if (pick(2) === 0) {
    const keys = Object.keys(POOLS)
    const key = keys[pick(keys.length)]!
    o[key] = POOLS[key]![pick(POOLS[key]!.length)]
  }
  return o
}

describe('the policy fast path', () => {
  it('accepts only options the schema accepts (a whole policy and a run input)', () => {
    const pick = rng(0x5eed)
    let accepted = 0
    let acceptedInput = 0
    for (let i = 0; i < 20_000; i++) {
      const o = generate(pick)
      if (plainlyValid(o)) {
        accepted++
        expect(schemaProblems(o), `case ${i}`).toEqual([])
      }
      if (plainlyValid(o, true)) {
        acceptedInput++
        expect(schemaProblems(o, true), `case ${i} as a run input`).toEqual([])
      }
    }
    // Both verdicts were exercised: the fast path took a share, and refused the rest.
    expect(accepted).toBeGreaterThan(2_000)
    expect(acceptedInput).toBeGreaterThan(200)
    expect(accepted).toBeLessThan(15_000)
  })

  it("takes a CLI run's options and a plain call's", () => {
    const cli = {
      args: ['hello.wasm', 'x'],
      env: { A: '1' },
      mounts: [],
      limits: {},
      stdin: 'inherit',
      stdout: 'inherit',
      stderr: 'inherit',
    }
    expect(plainlyValid(cli)).toBe(true)
    expect(plainlyValid({ ...cli, isolation: 'in-process', tier: 'baseline', deterministic: true, stdin: Buffer.from('x') })).toBe(true)
    expect(plainlyValid({})).toBe(true)
    expect(plainlyValid({ args: ['a'], stdout: 'capture' }, true)).toBe(true)
    // A field of a whole policy is not a run's input: the schema says where it belongs.
    expect(plainlyValid({ tier: 'auto' }, true)).toBe(false)
    expect(schemaProblems({ tier: 'auto' }, true)).toEqual(['tier: is fixed when the program is prepared; pass it to prepare()'])
  })
})
