/**
 * The run request's fast path (service/run-request-plain.ts) against its zod schema
 * (service/request.ts): on generated requests, valid and hostile alike, whatever the fast path
 * accepts zod accepts, with the same data; the common requests do take it; and an invalid
 * request still gets zod's own problems through the API path.
 */
import { describe, expect, it } from 'vitest'
import { DEFAULT_CONFIG } from '../../service/config.js'
import { runRequestSchema, resolveRunRequest } from '../../service/request.js'
import { plainRunRequest } from '../../service/run-request-plain.js'

class Bag {
  module = 'a'
}
class Args extends Array<string> {}
const withGetter = (key: string, value: unknown) => Object.defineProperty({}, key, { get: () => value, enumerable: true })
const nullProto = (o: object) => Object.assign(Object.create(null) as object, o)
const sparse = ['a', 'b']
delete sparse[0]
const ID = 'ab'.repeat(32)

const POOLS: Record<string, unknown[]> = {
  module: [undefined, ID, '', 'AGFzbQ==', 1, null, ['x'], { id: ID }],
  source: [undefined, { language: 'c', files: { 'a.c': 'x' } }, { language: '' }],
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
    { A: 1 },
    null,
    [],
    nullProto({ A: '1' }),
    { [Symbol('s')]: 'x' },
    withGetter('A', '1'),
    new Map([['A', '1']]),
    JSON.parse('{"__proto__": "x"}') as unknown,
    JSON.parse('{"A": "1", "__proto__": {"B": "2"}}') as unknown,
    Object.create({ A: '1' }) as unknown,
  ],
  stdin: [undefined, '', 'abc', 1, null, Buffer.from('x')],
  stdinBase64: [undefined, 'eA==', '!', 2],
  files: [undefined, { 'a.txt': 'x' }, { 'a.txt': { base64: 'eA==' } }, { a: 1 }],
  output: [undefined, true, false, 'true', 0],
  limits: [
    undefined,
    {},
    { timeout: 1 },
    { foo: 'x' },
    null,
    [],
    nullProto({}),
    withGetter('memory', 1),
    JSON.parse('{"__proto__": {"a": 1}}') as unknown,
  ],
  wait: [undefined, true, false, 'false', null],
  callbackUrl: [undefined, 'http://127.0.0.1:1/x', '', 5],
  bogus: [undefined, 1],
}

const VALID: Record<string, unknown[]> = {
  module: [ID, 'AGFzbQ=='],
  args: [[], ['hello', 'a b']],
  env: [{}, { A: '1', B_2: 'x y' }],
  stdin: ['', 'abc'],
  wait: [true, false],
  output: [true, false],
  limits: [{}, { timeout: 100 }],
  callbackUrl: ['http://x/'],
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

/** Random (shape 0–3), or valid for the fast path with at most one field from the hostile pools. */
function generate(pick: (n: number) => number): unknown {
  const shape = pick(10)
  if (shape === 0) return [null, [], 'x', 1, new Bag(), undefined][pick(6)]
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

describe('the run request fast path', () => {
  it('accepts only what zod accepts, and gives the same data (a copy)', () => {
    const pick = rng(0x5eed)
    let accepted = 0
    let refused = 0
    for (let i = 0; i < 20_000; i++) {
      const body = generate(pick)
      const plain = plainRunRequest(body)
      if (plain === undefined) {
        refused++
        continue
      }
      accepted++
      const parsed = runRequestSchema.safeParse(body)
      expect(parsed.success, `case ${i}`).toBe(true)
      expect(plain, `case ${i}`).toEqual(parsed.data)
      const b = body as Record<string, unknown>
      if (b.args !== undefined) expect(plain.args).not.toBe(b.args)
      if (b.env !== undefined) expect(plain.env).not.toBe(b.env)
    }
    expect(accepted).toBeGreaterThan(2000)
    expect(refused).toBeGreaterThan(2000)
  })

  it('takes the common requests', () => {
    for (const body of [
      { module: ID },
      { module: ID, args: ['hello', 'x'], env: { A: '1' }, stdin: 'hi', wait: false },
      { module: 'AGFzbQ==', limits: { timeout: '1s', memory: '16MiB' }, output: true },
      JSON.parse(`{"module":"${ID}","stdinBase64":"eA==","callbackUrl":"http://x/"}`) as unknown,
    ])
      expect(plainRunRequest(body)).toEqual(runRequestSchema.parse(body))
  })

  it("leaves an invalid request to zod: the API's problems are zod's", () => {
    const zodSays = (body: unknown) => {
      try {
        resolveRunRequest(body, DEFAULT_CONFIG, 'o')
      } catch (e) {
        return (e as { problems?: string[] }).problems
      }
      return undefined
    }
    expect(zodSays({ module: ID, args: ['a', 1] })).toEqual(['args[1]: Invalid input: expected string, received number'])
    expect(zodSays({ module: ID, wait: 'no' })).toEqual(['wait: Invalid input: expected boolean, received string'])
    expect(zodSays({ module: '' })?.[0]).toMatch(/^module: /)
    expect(zodSays({ module: ID, extra: 1 })?.[0]).toMatch(/extra/)
  })
})
