import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { FUEL_EXPORT, InstrumentError, meterFuel, remainingFuel, setFuel } from '../../../runtime/instrument/index.js'
import { F32, FUNCREF, I32, I64, V128, allGuests, buildModule, instantiate, op, s32, u32 } from './wasm.js'

const BUDGET = 10n ** 12n

function metered(bytes: Uint8Array, imports: WebAssembly.Imports = {}, budget = BUDGET) {
  const m = meterFuel(bytes)
  expect(WebAssembly.validate(m.bytes as Uint8Array<ArrayBuffer>)).toBe(true)
  const instance = instantiate(m.bytes, imports)
  setFuel(instance, budget)
  const used = () => budget - remainingFuel(instance)
  return { instance, exports: instance.exports as Record<string, (...a: number[]) => number>, used, result: m }
}

function refusal(fn: () => unknown): InstrumentError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(InstrumentError)
    return e as InstrumentError
  }
  throw new Error('expected an InstrumentError')
}

/** countdown(n): block loop (br_if 1 when n == 0) n -= 1; br 0 end end. */
const countdown = buildModule({
  funcs: [
    {
      params: [I32],
      body: [
        op.block,
        op.void,
        op.loop,
        op.void,
        op.local_get,
        0,
        op.i32_eqz,
        op.br_if,
        1,
        op.local_get,
        0,
        op.i32_const,
        1,
        op.i32_sub,
        op.local_set,
        0,
        op.br,
        0,
        op.end,
        op.end,
      ],
      export: 'countdown',
    },
  ],
})

describe('meterFuel: what one unit of fuel is', () => {
  it('charges exactly the instructions executed', () => {
    // Entry: block, loop (2). Each iteration that continues: local.get, i32.eqz, br_if (3) and
    // local.get, i32.const, i32.sub, local.set, br (5). The last: local.get, i32.eqz, br_if (3).
    // After the block: the function's end (1). The loop's and block's own `end` never execute.
    const { exports, used } = metered(countdown)
    let before = 0n
    for (const n of [0, 1, 2, 10, 1000]) {
      exports.countdown!(n)
      expect(used() - before).toBe(BigInt(8 * n + 6))
      before = used()
    }
  })

  it('charges both arms of an if/else by what they run', () => {
    // local.get, if | i32.const, else | i32.const, end | i32.const, i32.add, end
    const bytes = buildModule({
      funcs: [
        {
          params: [I32],
          results: [I32],
          body: [op.local_get, 0, op.if, I32, op.i32_const, 10, op.else, op.i32_const, 20, op.end, op.i32_const, 1, op.i32_add],
          export: 'pick',
        },
      ],
    })
    const { exports, used } = metered(bytes)
    expect(exports.pick!(1)).toBe(11)
    expect(used()).toBe(7n)
    expect(exports.pick!(0)).toBe(21)
    expect(used()).toBe(14n)
  })

  it('charges a callee at its entry, and the caller around the call', () => {
    // g: i32.const, end (2). f: call | call | i32.add, end (4) + 2 g = 8.
    const bytes = buildModule({
      funcs: [
        { results: [I32], body: [op.i32_const, 1] },
        { results: [I32], body: [op.call, 0, op.call, 0, op.i32_add], export: 'f' },
      ],
    })
    const { exports, used } = metered(bytes)
    expect(exports.f!()).toBe(2)
    expect(used()).toBe(8n)
  })

  it('charges a straight-line callee the same whether called directly, indirectly or by the host', () => {
    // sq(x) = x * x: local.get, local.get, i32.mul, end (4), with a block that changes nothing.
    // direct: call | i32.const... ; indirect through the table; and from JS.
    const bytes = buildModule({
      types: [{ params: [I32], results: [I32] }],
      table: [FUNCREF, 0x00, 1],
      elements: [[0x00, op.i32_const, 0, op.end, ...u32(1), 0]],
      funcs: [
        { params: [I32], results: [I32], body: [op.block, op.void, op.end, op.local_get, 0, op.local_get, 0, op.i32_mul], export: 'sq' },
        // direct: local.get, call (2) + sq (6) + end (1)
        { params: [I32], results: [I32], body: [op.local_get, 0, op.call, 0], export: 'direct' },
        // indirect: local.get, i32.const, call_indirect (3) + sq (6) | end (1)
        { params: [I32], results: [I32], body: [op.local_get, 0, op.i32_const, 0, op.call_indirect, 0, 0], export: 'indirect' },
      ],
    })
    const { exports, used, result } = metered(bytes)
    expect(result.clones).toBe(1) // the direct call goes to an unmetered copy of sq
    expect(exports.sq!(3)).toBe(9)
    expect(used()).toBe(6n)
    expect(exports.direct!(4)).toBe(16)
    expect(used()).toBe(6n + 9n)
    expect(exports.indirect!(5)).toBe(25)
    expect(used()).toBe(6n + 9n + 10n)
  })

  it('charges recursion at every entry, linearly in the depth', () => {
    // r(n) = n ? r(n - 1) + 1 : 0. Per level: local.get, if (2) | local.get, i32.const, i32.sub,
    // call (4) | i32.const, i32.add, else (3) | end (1) = 10; r(0) = 2 + i32.const, end (2) + 1 = 5.
    const bytes = buildModule({
      funcs: [
        {
          params: [I32],
          results: [I32],
          body: [
            op.local_get,
            0,
            op.if,
            I32,
            op.local_get,
            0,
            op.i32_const,
            1,
            op.i32_sub,
            op.call,
            0,
            op.i32_const,
            1,
            op.i32_add,
            op.else,
            op.i32_const,
            0,
            op.end,
          ],
          export: 'r',
        },
      ],
    })
    const { exports, used } = metered(bytes)
    let before = 0n
    for (const n of [0, 1, 100, 1000]) {
      expect(exports.r!(n)).toBe(n)
      expect(used() - before).toBe(BigInt(10 * n + 5))
      before = used()
    }
  })

  it('stops unbounded recursion by fuel, before the stack runs out', () => {
    const bytes = buildModule({ funcs: [{ body: [op.call, 0], export: 'forever' }] })
    const { exports, instance } = metered(bytes, {}, 10_000n)
    expect(() => exports.forever!()).toThrow(WebAssembly.RuntimeError)
    expect(() => exports.forever!()).toThrow(/unreachable/)
    expect(remainingFuel(instance)).toBeLessThan(0n)
  })

  it('stops an infinite loop and leaves the counter negative', () => {
    const bytes = buildModule({ funcs: [{ body: [op.loop, op.void, op.br, 0, op.end], export: 'spin' }] })
    const { exports, instance } = metered(bytes, {}, 1_000_000n)
    expect(() => exports.spin!()).toThrow(/unreachable/)
    expect(remainingFuel(instance)).toBeLessThan(0n)
    // Overshoot is bounded by one loop-free stretch.
    expect(remainingFuel(instance)).toBeGreaterThan(-10n)
  })

  it('keeps the counter non-negative when the guest itself executes unreachable', () => {
    const bytes = buildModule({ funcs: [{ body: [op.nop, op.unreachable], export: 'boom' }] })
    const { exports, instance, used } = metered(bytes, {}, 100n)
    expect(() => exports.boom!()).toThrow(/unreachable/)
    expect(remainingFuel(instance)).toBeGreaterThanOrEqual(0n)
    expect(used()).toBe(2n) // nop, unreachable; the `end` after it never runs
  })

  it('keeps the global exact across calls into the host', () => {
    // f: i32.const 7, call host | end. The host sees what f was charged up to and including the call.
    let seen = -1n
    let instance: WebAssembly.Instance | undefined
    const bytes = buildModule({
      imports: [{ module: 'host', name: 'probe', desc: [0x00, 0] }],
      types: [{ params: [I32], results: [] }],
      funcs: [{ body: [op.i32_const, 7, op.call, 0], export: 'f' }],
    })
    const m = metered(bytes, {
      host: {
        probe: () => {
          seen = remainingFuel(instance!)
        },
      },
    })
    instance = m.instance
    m.exports.f!()
    expect(BUDGET - seen).toBe(2n)
    expect(m.used()).toBe(3n)
  })

  it('uses an initial value baked into the global when asked (for start functions)', () => {
    const bytes = buildModule({ funcs: [{ body: [op.loop, op.void, op.br, 0, op.end] }], start: 0 })
    const fail = meterFuel(bytes)
    expect(fail.hasStartFunction).toBe(true)
    expect(() => instantiate(fail.bytes)).toThrow(/unreachable/) // default budget 0: fail closed
    const ok = meterFuel(buildModule({ funcs: [{ body: [op.nop] }], start: 0 }), { initialFuel: 100n })
    const instance = instantiate(ok.bytes)
    expect(remainingFuel(instance)).toBe(100n - 2n)
  })
})

describe('meterFuel: module surgery', () => {
  it('appends one mutable i64 global, exported, without moving existing indices', () => {
    const bytes = buildModule({
      imports: [{ module: 'env', name: 'g', desc: [0x03, I32, 0x00] }],
      globals: [[I32, 0x01, op.i32_const, 5, op.end]],
      funcs: [{ results: [I32], body: [op.global_get, 0, op.global_get, 1, op.i32_add], export: 'sum' }],
    })
    const env = { g: new WebAssembly.Global({ value: 'i32', mutable: false }, 10) }
    const { exports, result, instance } = metered(bytes, { env })
    expect(result.globalIndex).toBe(2)
    expect(result.exportName).toBe(FUEL_EXPORT)
    expect(exports.sum!()).toBe(15)
    const g = instance.exports[FUEL_EXPORT] as WebAssembly.Global
    expect(typeof g.value).toBe('bigint')
    g.value = 5n // mutable from the host
    expect(remainingFuel(instance)).toBe(5n)
  })

  it('refuses when the export name is taken, and accepts another', () => {
    const bytes = buildModule({ funcs: [{ body: [op.nop], export: FUEL_EXPORT }] })
    const e = refusal(() => meterFuel(bytes))
    expect(e.code).toBe('EXPORT_NAME_TAKEN')
    expect(e.message).toContain(FUEL_EXPORT)
    const m = meterFuel(bytes, { exportName: 'fuel2' })
    const instance = instantiate(m.bytes)
    setFuel(instance, 9n, 'fuel2')
    expect(remainingFuel(instance, 'fuel2')).toBe(9n)
  })

  it('is pure: the input is not modified and the output is the same every time', () => {
    const bytes = readFileSync(new URL('../../../samples/hello.wasm', import.meta.url))
    const copy = Uint8Array.from(bytes)
    const a = meterFuel(bytes).bytes
    const b = meterFuel(bytes).bytes
    expect(Buffer.compare(a, b)).toBe(0)
    expect(Buffer.compare(bytes, copy)).toBe(0)
  })

  it('never lets the guest reach the counter through an index that did not exist', () => {
    // local 1 would be the counter's local; global 0 would be the counter global.
    const local = buildModule({ funcs: [{ params: [I32], body: [op.i64_const, 0, op.local_set, 1] }] })
    expect(refusal(() => meterFuel(local)).message).toMatch(/local 1 does not exist/)
    const global = buildModule({ funcs: [{ body: [op.i64_const, 0, op.global_set, 0] }] })
    expect(refusal(() => meterFuel(global)).message).toMatch(/global 0 does not exist/)
    const exported = buildModule({ funcs: [{ body: [op.nop] }], exports: [{ name: 'steal', kind: 0x03, index: 0 }] })
    expect(refusal(() => meterFuel(exported)).message).toMatch(/global 0, which does not exist/)
  })

  it('refuses unknown opcodes and unsupported proposals by name, with where', () => {
    const unknown = buildModule({ funcs: [{ body: [0x27] }] })
    const e1 = refusal(() => meterFuel(unknown))
    expect(e1.code).toBe('UNKNOWN_OPCODE')
    expect(e1.details).toMatchObject({ functionIndex: 0, opcode: '0x27' })
    expect(e1.details.offset).toBeGreaterThan(0)

    const simdGap = buildModule({ funcs: [{ body: [0xfd, 0x9a, 0x01] }] })
    expect(refusal(() => meterFuel(simdGap)).details.opcode).toBe('0xfd 0x9a')
    const fcUnknown = buildModule({ funcs: [{ body: [0xfc, 0x12] }] })
    expect(refusal(() => meterFuel(fcUnknown)).code).toBe('UNKNOWN_OPCODE')

    const tryBlock = buildModule({ funcs: [{ body: [0x06, op.void, op.end] }] })
    const e2 = refusal(() => meterFuel(tryBlock))
    expect(e2.code).toBe('UNSUPPORTED_FEATURE')
    expect(e2.message).toMatch(/exception handling/)
    const gc = buildModule({ funcs: [{ body: [0xfb, 0x00, 0x00] }] })
    expect(refusal(() => meterFuel(gc)).message).toMatch(/GC/)
  })

  it('refuses a body that does not end where its size says', () => {
    const bytes = Uint8Array.from(buildModule({ funcs: [{ body: [op.nop, op.nop] }] }))
    // Turn the second nop into an `end`: code would follow the function's end.
    const at = bytes.lastIndexOf(op.nop)
    bytes[at] = op.end
    expect(refusal(() => meterFuel(bytes)).code).toBe('MALFORMED')
  })
})

describe('meterFuel: the opcode table', () => {
  it('decodes every proposal it claims (SIMD, bulk memory, reference types, atomics, tail calls, multi-value)', () => {
    const v128 = (...lanes: number[]) => [
      0xfd,
      0x0c,
      ...lanes.flatMap((l) => [l & 0xff, (l >> 8) & 0xff, (l >> 16) & 0xff, (l >>> 24) & 0xff]),
    ]
    const f32 = (x: number) => [op.f32_const, ...new Uint8Array(new Float32Array([x]).buffer)]
    const f64 = (x: number) => [op.f64_const, ...new Uint8Array(new Float64Array([x]).buffer)]
    const body = [
      // bulk memory (0xFC 8-11) on a passive data segment
      op.i32_const,
      0,
      op.i32_const,
      0,
      op.i32_const,
      4,
      0xfc,
      8,
      0,
      0,
      0xfc,
      9,
      0,
      op.i32_const,
      16,
      op.i32_const,
      7,
      op.i32_const,
      4,
      0xfc,
      11,
      0,
      op.i32_const,
      32,
      op.i32_const,
      0,
      op.i32_const,
      4,
      0xfc,
      10,
      0,
      0,
      // non-trapping float-to-int, sign extension
      ...f32(1.5),
      0xfc,
      0,
      op.drop,
      op.i32_const,
      ...s32(200),
      op.i32_extend8_s,
      op.drop,
      // multi-value block type (type index 0: [] -> [i32 i32])
      op.block,
      0x00,
      op.i32_const,
      1,
      op.i32_const,
      2,
      op.end,
      op.i32_add,
      op.drop,
      // reference types and tables
      op.ref_null,
      FUNCREF,
      op.ref_is_null,
      op.drop,
      op.ref_func,
      1,
      op.drop,
      op.i32_const,
      0,
      op.table_get,
      0,
      op.drop,
      0xfc,
      16,
      0,
      op.drop, // table.size
      op.i32_const,
      1,
      op.i32_const,
      2,
      op.i32_const,
      0,
      op.select_t,
      1,
      I32,
      op.drop,
      // SIMD: v128.const, shuffle, lanes, loads with memargs, a two-byte sub-opcode (i32x4.add = 0xae)
      ...v128(1, 2, 3, 4),
      ...v128(5, 6, 7, 8),
      0xfd,
      0x0d,
      0,
      1,
      2,
      3,
      16,
      17,
      18,
      19,
      4,
      5,
      6,
      7,
      20,
      21,
      22,
      23,
      0xfd,
      0x1b,
      1,
      op.drop, // i32x4.extract_lane 1
      ...v128(1, 1, 1, 1),
      ...v128(2, 2, 2, 2),
      0xfd,
      0xae,
      0x01,
      0xfd,
      0x1b,
      3,
      op.drop,
      op.i32_const,
      0,
      op.i32_const,
      0,
      0xfd,
      0x00,
      4,
      0,
      0xfd,
      0x56,
      2,
      0,
      2,
      0xfd,
      0x1b,
      2,
      op.drop, // load, load32_lane
      op.i32_const,
      48,
      op.i32_const,
      5,
      0xfd,
      0x11,
      0xfd,
      0x0b,
      4,
      0, // i32x4.splat, v128.store
      // atomics
      op.i32_const,
      0,
      0xfe,
      0x10,
      2,
      0,
      op.drop,
      0xfe,
      0x03,
      0x00,
      // memory.size/grow, i64/f64 consts, br_table, call_indirect
      op.memory_size,
      0,
      op.drop,
      op.i32_const,
      0,
      op.memory_grow,
      0,
      op.drop,
      op.i64_const,
      0x7f,
      op.i64_const,
      2,
      op.i64_add,
      op.drop,
      ...f64(2.5),
      op.drop,
      op.block,
      op.void,
      op.i32_const,
      1,
      op.br_table,
      2,
      0,
      0,
      0,
      op.end,
      op.i32_const,
      0,
      op.call_indirect,
      1,
      0,
      op.i32_const,
      48,
      op.i32_load,
      2,
      0,
      op.i32_add,
      op.return_call,
      1,
    ]
    const spec = {
      types: [
        { params: [], results: [I32, I32] },
        { params: [], results: [I32] },
      ],
      memory: [0x01, 1, 2],
      table: [FUNCREF, 0x00, 1],
      elements: [[0x00, op.i32_const, 0, op.end, ...u32(1), 1]], // table[0] = function 1
      datacount: 1,
      data: [[0x01, ...u32(4), 1, 2, 3, 4]],
      funcs: [
        { results: [I32], locals: [V128, F32], body, export: 'all' },
        { results: [I32], body: [op.i32_const, 42], export: 'answer' },
      ],
    }
    const bytes = buildModule(spec)
    expect(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)).toBe(true)
    const plain = (instantiate(bytes).exports.all as () => number)()
    const { exports, used } = metered(bytes)
    expect(exports.all!()).toBe(plain)
    expect(used()).toBeGreaterThan(50n)
  })

  it.each(allGuests())('keeps $name valid', ({ path }) => {
    const m = meterFuel(readFileSync(path))
    expect(WebAssembly.validate(m.bytes as Uint8Array<ArrayBuffer>)).toBe(true)
    expect(m.functions).toBeGreaterThan(0)
    expect(m.checks).toBeGreaterThan(0)
  })

  it('keeps i64 and v128 locals and their indices intact', () => {
    const bytes = buildModule({
      funcs: [
        {
          params: [I32, I64],
          results: [I64],
          locals: [I64, V128, I32],
          body: [op.local_get, 1, op.local_set, 2, op.local_get, 0, op.local_set, 4, op.local_get, 2, op.local_get, 4, 0xac, op.i64_add],
          export: 'f',
        },
      ],
    })
    const { instance } = metered(bytes)
    expect((instance.exports.f as (a: number, b: bigint) => bigint)(3, 4n)).toBe(7n)
  })
})

describe('bulk operations are charged by length', () => {
  /** (func (export "run") (param i32) (memory.fill (i32.const 0) (i32.const 7) (local.get 0))) */
  const fillModule = () =>
    meterFuel(
      buildModule({
        memory: [0x00, 2],
        funcs: [{ params: [I32], body: [op.i32_const, 0, op.i32_const, 7, op.local_get, 0, 0xfc, ...u32(11), 0x00], export: 'run' }],
      }),
    ).bytes

  const fuelFor = (length: number): bigint => {
    const inst = instantiate(fillModule())
    setFuel(inst, 1_000_000n)
    ;(inst.exports.run as (n: number) => void)(length)
    return 1_000_000n - remainingFuel(inst)
  }

  it('charges one unit per 64 elements on top of the instructions, from the operand at run time', () => {
    const base = fuelFor(0)
    expect(fuelFor(63)).toBe(base)
    expect(fuelFor(64)).toBe(base + 1n)
    expect(fuelFor(6400)).toBe(base + 100n)
    expect(fuelFor(65536)).toBe(base + 1024n)
  })

  it('leaves the operation itself intact', () => {
    const inst = instantiate(fillModule())
    setFuel(inst, 1_000_000n)
    ;(inst.exports.run as (n: number) => void)(100)
    const mem = new Uint8Array((inst.exports.memory as WebAssembly.Memory).buffer)
    expect([mem[0], mem[99], mem[100]]).toEqual([7, 7, 0])
  })
})
