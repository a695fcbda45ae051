/**
 * Differential test of the fuel definition: random structured programs (nested blocks, loops,
 * if/else, br, br_if, br_table, return, calls, dead code after branches) are run metered, and the
 * fuel they use must equal the instructions a reference interpreter counts, where an instruction
 * counts when it executes: `end` and `else` when control falls into them, `loop` once per entry
 * (a branch back to the loop does not re-execute it), nothing after a branch until a label.
 */
import { describe, expect, it } from 'vitest'
import { meterFuel, remainingFuel, setFuel } from '../../../runtime/instrument/index.js'
import { I32, buildModule, instantiate, op, s32 } from './wasm.js'

type Node =
  /** Straight-line instructions: `n` of them; `run` applies their effect on the locals. */
  | { k: 'ops'; bytes: number[]; n: number; run: (l: Int32Array) => void }
  | { k: 'block'; body: Node[] }
  /** A counted loop on local `counter`: counter = times; loop body; --counter; br_if 0 end. */
  | { k: 'loop'; counter: number; times: number; body: Node[] }
  | { k: 'if'; local: number; limit: number; then: Node[]; else?: Node[] }
  /** br / br_if (if `local` > `limit`) to label `depth`; to the function's label carries local 0. */
  | { k: 'br'; depth: number; cond?: { local: number; limit: number }; toFunction: boolean; dead: Node[] }
  | { k: 'br_table'; local: number; targets: number[]; dead: Node[] }
  | { k: 'return'; dead: Node[] }
  | { k: 'call'; func: number; into: number }

interface Func {
  body: Node[]
}

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) % n
  }
}

const LOOP_LOCAL = 4 // locals 0-3 are data; 4.. count loops, one per nesting level

function generate(seed: number, nFuncs: number): Func[] {
  const r = rng(seed)
  const funcs: Func[] = []
  for (let f = 0; f < nFuncs; f++) {
    let callSites = 0
    // labels: kinds of the enclosing labels, innermost last ('f' = the function's own).
    const gen = (labels: string[], loops: number, budget: number, inDead: boolean): Node[] => {
      const out: Node[] = []
      let left = budget
      while (left-- > 0) {
        const choice = r(inDead ? 6 : 13)
        const x = r(4)
        const k = r(50) - 10
        if (choice <= 2) {
          const kind = r(3)
          if (kind === 0)
            out.push({
              k: 'ops',
              bytes: [op.i32_const, ...s32(k), op.local_set, x],
              n: 2,
              run: (l) => {
                l[x] = k
              },
            })
          else if (kind === 1) {
            out.push({
              k: 'ops',
              bytes: [op.local_get, x, op.i32_const, ...s32(k), op.i32_add, op.local_set, x],
              n: 4,
              run: (l) => {
                l[x] = (l[x]! + k) | 0
              },
            })
          } else {
            const y = r(4)
            out.push({
              k: 'ops',
              bytes: [op.local_get, x, op.local_get, y, op.i32_sub, op.local_tee, y, op.drop, op.nop],
              n: 6,
              run: (l) => {
                l[y] = (l[x]! - l[y]!) | 0
              },
            })
          }
        } else if (choice === 3 && labels.length < 6) {
          out.push({ k: 'block', body: gen([...labels, 'b'], loops, r(5), inDead) })
        } else if (choice === 4 && labels.length < 6) {
          out.push({
            k: 'if',
            local: x,
            limit: k,
            then: gen([...labels, 'i'], loops, r(4), inDead),
            ...(r(2) ? { else: gen([...labels, 'i'], loops, r(4), inDead) } : {}),
          })
        } else if (choice === 5 && !inDead && callSites < 2 && f + 1 < nFuncs) {
          callSites++
          out.push({ k: 'call', func: f + 1 + r(nFuncs - f - 1), into: x })
        } else if (choice === 6 && loops < 2 && labels.length < 6) {
          out.push({ k: 'loop', counter: LOOP_LOCAL + loops, times: 1 + r(3), body: gen([...labels, 'l'], loops + 1, r(5), inDead) })
        } else if (choice <= 9) {
          // br or br_if to a label that is not a loop (a branch back could loop forever).
          const targets = labels.map((kind, i) => ({ kind, depth: labels.length - 1 - i })).filter((t) => t.kind !== 'l')
          const t = targets[r(targets.length)]!
          const cond = choice === 9 || t.kind === 'f' ? undefined : { local: x, limit: k }
          if (cond !== undefined || t.kind !== 'f' || r(3) === 0) {
            out.push({ k: 'br', depth: t.depth, cond, toFunction: t.kind === 'f', dead: cond ? [] : gen(labels, loops, r(3), true) })
            if (!cond) return out
          }
        } else if (choice === 10) {
          const targets = labels.map((kind, i) => ({ kind, depth: labels.length - 1 - i })).filter((t) => t.kind !== 'l' && t.kind !== 'f')
          if (targets.length > 0) {
            out.push({
              k: 'br_table',
              local: x,
              targets: [0, 1, 2].map(() => targets[r(targets.length)]!.depth),
              dead: gen(labels, loops, r(3), true),
            })
            return out
          }
        } else if (choice === 11 && r(4) === 0) {
          out.push({ k: 'return', dead: gen(labels, loops, r(3), true) })
          return out
        }
      }
      return out
    }
    funcs.push({ body: gen(['f'], 0, 4 + r(8), false) })
  }
  return funcs
}

function emit(nodes: Node[], out: number[], labelsAbove: number): void {
  for (const n of nodes) {
    switch (n.k) {
      case 'ops':
        out.push(...n.bytes)
        break
      case 'block':
        out.push(op.block, op.void)
        emit(n.body, out, labelsAbove + 1)
        out.push(op.end)
        break
      case 'loop':
        out.push(op.i32_const, n.times, op.local_set, n.counter, op.loop, op.void)
        emit(n.body, out, labelsAbove + 1)
        out.push(op.local_get, n.counter, op.i32_const, 1, op.i32_sub, op.local_tee, n.counter, op.br_if, 0, op.end)
        break
      case 'if':
        out.push(op.local_get, n.local, op.i32_const, ...s32(n.limit), op.i32_lt_s, op.if, op.void)
        emit(n.then, out, labelsAbove + 1)
        if (n.else) {
          out.push(op.else)
          emit(n.else, out, labelsAbove + 1)
        }
        out.push(op.end)
        break
      case 'br':
        if (n.toFunction) out.push(op.local_get, 0)
        if (n.cond) out.push(op.local_get, n.cond.local, op.i32_const, ...s32(n.cond.limit), 0x4a /* i32.gt_s */, op.br_if, n.depth)
        else out.push(op.br, n.depth)
        emit(n.dead, out, labelsAbove)
        break
      case 'br_table':
        out.push(op.local_get, n.local, op.i32_const, 3, 0x70 /* i32.rem_u */, op.br_table, 2, n.targets[0]!, n.targets[1]!, n.targets[2]!)
        emit(n.dead, out, labelsAbove)
        break
      case 'return':
        out.push(op.local_get, 0, op.return)
        emit(n.dead, out, labelsAbove)
        break
      case 'call':
        out.push(op.call, n.func, op.local_set, n.into)
        break
    }
  }
}

/** Reference semantics with the instruction count. Returns the branch depth left to unwind, -1 for return. */
function interpret(funcs: Func[], f: number, counter: { n: number }): number {
  const l = new Int32Array(LOOP_LOCAL + 2)
  const run = (nodes: Node[]): number | null => {
    for (const n of nodes) {
      switch (n.k) {
        case 'ops':
          counter.n += n.n
          n.run(l)
          break
        case 'block': {
          counter.n += 1
          const s = run(n.body)
          if (s === null)
            counter.n += 1 // end
          else if (s !== 0) return s < 0 ? s : s - 1
          break
        }
        case 'loop': {
          counter.n += 3 // i32.const, local.set, loop
          l[n.counter] = n.times
          for (;;) {
            const s = run(n.body)
            if (s !== null) return s < 0 ? s : s - 1 // branches never target the loop itself
            counter.n += 5 // local.get, i32.const, i32.sub, local.tee, br_if
            l[n.counter] = (l[n.counter]! - 1) | 0
            if (l[n.counter] === 0) break
          }
          counter.n += 1 // end
          break
        }
        case 'if': {
          counter.n += 4 // local.get, i32.const, i32.lt_s, if
          if (l[n.local]! < n.limit) {
            const s = run(n.then)
            if (s === null)
              counter.n += 1 // else (jumps to after end) or end
            else if (s !== 0) return s < 0 ? s : s - 1
          } else if (n.else) {
            const s = run(n.else)
            if (s === null)
              counter.n += 1 // end
            else if (s !== 0) return s < 0 ? s : s - 1
          }
          break
        }
        case 'br':
          if (n.toFunction) counter.n += 1 // local.get 0
          if (n.cond) {
            counter.n += 4
            if (l[n.cond.local]! > n.cond.limit) return n.depth
          } else {
            counter.n += 1
            return n.depth
          }
          break
        case 'br_table': {
          counter.n += 4
          return n.targets[(l[n.local]! >>> 0) % 3]!
        }
        case 'return':
          counter.n += 2
          return -1
        case 'call':
          counter.n += 2
          l[n.into] = interpret(funcs, n.func, counter)
          break
      }
    }
    return null
  }
  // Falling off the body runs the trailing `local.get 0` and the function's `end`; a branch to the
  // function's label or a return skips both.
  if (run(funcs[f]!.body) === null) counter.n += 2
  return l[0]!
}

describe('fuel = instructions executed, on random programs', () => {
  it.each(Array.from({ length: 300 }, (_, i) => i + 1))('program %i', (seed) => {
    const funcs = generate(seed, 1 + (seed % 4))
    const bytes = buildModule({
      funcs: funcs.map((f, i) => {
        const body: number[] = []
        emit(f.body, body, 0)
        body.push(op.local_get, 0)
        return { results: [I32], locals: Array(LOOP_LOCAL + 2).fill(I32), body, ...(i === 0 ? { export: 'main' } : {}) }
      }),
    })
    expect(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)).toBe(true)
    const counter = { n: 0 }
    const expected = interpret(funcs, 0, counter)
    const instance = instantiate(meterFuel(bytes).bytes)
    setFuel(instance, 10n ** 12n)
    expect((instance.exports.main as () => number)()).toBe(expected)
    expect(10n ** 12n - remainingFuel(instance)).toBe(BigInt(counter.n))
  })
})
