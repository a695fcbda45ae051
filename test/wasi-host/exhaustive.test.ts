/**
 * Exhaustiveness: the host provides exactly the 46 preview1 functions of the witx, every one of
 * them has a `describe` of its own in these tests, and none of them, fed arbitrary raw
 * arguments as wasm would pass them, ever fails in a way other than an errno, a trap
 * (`GuestFault`) or, for `proc_exit` only, a `ProcExit`.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { GuestFault, ProcExit } from '../../wasi-host/errors.js'
import { WASI_PREVIEW1_FUNCTIONS } from '../../wasi-host/host.js'
import type { ClockSource } from '../../wasi-host/host-state.js'
import { harness, PATH_TREE, SIGNATURES, WITX_PREVIEW1, type Preview1Name, type RawArg } from './harness.js'

const here = dirname(fileURLToPath(import.meta.url))

/** Every literal `describe` title in the test files of this folder (and below). */
function describeTitles(): string[] {
  const titles: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.name.endsWith('.test.ts')) {
        const text = readFileSync(p, 'utf8')
        for (const m of text.matchAll(/\bdescribe(?:\.(?:only|skip|concurrent))?\(\s*(['"`])((?:\\.|(?!\1).)*)\1/g)) {
          titles.push(m[2]!)
        }
      }
    }
  }
  walk(here)
  return titles
}

/** A deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function virtualClock(): ClockSource {
  let now = 1n
  return {
    realtime: () => now,
    monotonic: () => now,
    processCputime: () => now,
    threadCputime: () => now,
    resolution: { realtime: 1n, monotonic: 1n, processCputime: 1n, threadCputime: 1n },
    sleep: (ns) => {
      now += ns
    },
  }
}

describe('exhaustive: the preview1 import object', () => {
  it('WASI_PREVIEW1_FUNCTIONS is exactly the 46 functions of the witx', () => {
    expect(WITX_PREVIEW1).toHaveLength(46)
    expect(new Set(WITX_PREVIEW1).size).toBe(46)
    expect([...WASI_PREVIEW1_FUNCTIONS].sort()).toEqual([...WITX_PREVIEW1].sort())
    expect(Object.keys(SIGNATURES).sort()).toEqual([...WITX_PREVIEW1].sort())
  })

  it('the import object holds a function for each of them and nothing else', () => {
    const h = harness()
    const table = h.host.imports.wasi_snapshot_preview1
    expect(Object.keys(table).sort()).toEqual([...WITX_PREVIEW1].sort())
    for (const name of WITX_PREVIEW1) expect(typeof table[name]).toBe('function')
  })

  it('every function has a describe block naming it in the tests', () => {
    const titles = describeTitles()
    const missing = WITX_PREVIEW1.filter((name) => !titles.some((t) => new RegExp(`\\b${name}\\b`).test(t)))
    expect(missing).toEqual([])
  })

  it('the import object links into a module declaring every witx signature', () => {
    // A module importing all 46 with their exact wasm types instantiates against the object.
    const h = harness()
    const types: number[][] = []
    const imports: number[][] = []
    const str = (s: string): number[] => [s.length, ...new TextEncoder().encode(s)]
    WITX_PREVIEW1.forEach((name, i) => {
      const params = SIGNATURES[name].map((k) => (k === 'i32' ? 0x7f : 0x7e))
      types.push([0x60, params.length, ...params, 1, 0x7f])
      imports.push([...str('wasi_snapshot_preview1'), ...str(name), 0x00, i])
    })
    const section = (id: number, items: number[][]): number[] => {
      const body = [...leb(items.length), ...items.flat()]
      return [id, ...leb(body.length), ...body]
    }
    const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...section(1, types), ...section(2, imports)])
    const mod = new WebAssembly.Module(bytes)
    expect(WebAssembly.Module.imports(mod)).toHaveLength(46)
    expect(() => new WebAssembly.Instance(mod, h.host.imports as unknown as WebAssembly.Imports)).not.toThrow()
  })

  describe('arbitrary raw arguments never crash the host', () => {
    const interestingI32 = (size: number): number[] => [
      0,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
      16,
      24,
      99,
      255,
      256,
      1024,
      4096,
      4097,
      -1,
      -2,
      -8,
      0x7fffffff,
      0x80000000 | 0,
      size - 1,
      size,
      size - 4,
      size - 8,
      size - 24,
      size - 48,
      size + 8,
    ]
    const interestingI64 = [0n, 1n, 2n, 3n, 8n, 20n, 255n, -1n, -2n, 1n << 32n, (1n << 63n) - 1n, -(1n << 63n), 1n << 62n]

    /** Memory patterns: small numbers (plausible pointers, lengths, fds), any pointer, any word, and text. */
    const patterns = (random: () => number, size: number): Uint8Array[] =>
      Array.from({ length: 4 }, () => {
        const buf = new Uint8Array(size)
        const dv = new DataView(buf.buffer)
        for (let p = 0; p < size; p += 4) {
          const r = random()
          dv.setUint32(
            p,
            r < 0.5 ? Math.floor(random() * 64) : r < 0.8 ? Math.floor(random() * size) : Math.floor(random() * 2 ** 32),
            true,
          )
        }
        buf.set(new TextEncoder().encode('sub/b.txt\0link/../a.txt\0..\0/x\0up2\0'), 0x400)
        return buf
      })

    const fresh = () =>
      harness({
        sandbox: PATH_TREE,
        clocks: virtualClock(),
        stdin: 'input',
        args: ['a', 'b'],
        env: ['K=v'],
        fsOptions: { maxFileSize: 1 << 20 },
      })

    const argsFor = (name: Preview1Name, random: () => number, size: number): RawArg[] => {
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
      return SIGNATURES[name].map((k) => {
        if (k === 'i64') return random() < 0.7 ? pick(interestingI64) : BigInt.asIntN(64, BigInt(Math.floor(random() * 2 ** 53)))
        return random() < 0.7 ? pick(interestingI32(size)) : Math.floor(random() * size)
      })
    }

    const check = (h: ReturnType<typeof fresh>, name: Preview1Name, args: RawArg[]): void => {
      let outcome: unknown
      try {
        outcome = h.wasi[name](...args)
      } catch (e) {
        outcome = e
      }
      const ok =
        (typeof outcome === 'number' && Number.isInteger(outcome) && outcome >= 0 && outcome <= 76) ||
        outcome instanceof GuestFault ||
        (name === 'proc_exit' && outcome instanceof ProcExit)
      if (!ok) {
        throw new Error(
          `${name}(${args.map(String).join(', ')}) gave ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : String(outcome)}`,
        )
      }
    }

    for (const name of WITX_PREVIEW1) {
      it(`${name}: only errnos, traps${name === 'proc_exit' ? ' or ProcExit' : ''}`, () => {
        const random = prng(0xc0ffee ^ (name.length * 7919) ^ name.charCodeAt(5))
        const memories = patterns(random, 65536)
        for (let round = 0; round < 150; round++) {
          const h = fresh()
          new Uint8Array(h.mem.buffer).set(memories[round % memories.length]!)
          check(h, name, argsFor(name, random, h.size))
          h.host.close()
          expect(h.openHandles()).toBe(0)
        }
      })
    }

    it.each([1, 2, 3, 4, 5, 6, 7, 8])('a random sequence of 400 calls on one host (seed %i) leaves it consistent', (seed) => {
      const random = prng(seed * 0x9e3779b1)
      const memories = patterns(random, 65536)
      const h = fresh()
      for (let i = 0; i < 400; i++) {
        if (i % 50 === 0) new Uint8Array(h.mem.buffer).set(memories[(i / 50) % memories.length]!)
        const name = WITX_PREVIEW1[Math.floor(random() * WITX_PREVIEW1.length)]!
        check(h, name, argsFor(name, random, h.size))
      }
      h.host.close()
      expect(h.openHandles()).toBe(0)
      expect(h.counters.every((c) => c.doubleClose === 0)).toBe(true)
    })
  })
})

function leb(n: number): number[] {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}
