/**
 * The sandbox's inode numbers for host nodes: one number per host (dev, ino), whichever form
 * (number or bigint stats) the lookup came with, and no two host nodes sharing one, even past
 * 2^53 where a double would round them together.
 */
import { describe, expect, it } from 'vitest'
import { SandboxInos } from '../../../wasi-host/node/sandbox-inos.js'

const TWO_53 = 2n ** 53n

describe('SandboxInos', () => {
  it('numbers nodes from 1 in the order first seen, stable afterwards', () => {
    const inos = new SandboxInos()
    expect(inos.of(2049n, 1234567n)).toBe(1n)
    expect(inos.of(2049n, 7n)).toBe(2n)
    expect(inos.of(2049n, 1234567n)).toBe(1n)
  })

  it('gives a node the same number from a number stat and from a bigint stat', () => {
    const inos = new SandboxInos()
    const fromNumbers = inos.ofNumbers(2049, 1234567)
    expect(inos.of(2049n, 1234567n)).toBe(fromNumbers)
    expect(inos.ofNumbers(2049, Number.MAX_SAFE_INTEGER)).toBe(inos.of(2049n, TWO_53 - 1n))
  })

  it('keeps devices apart', () => {
    const inos = new SandboxInos()
    const a = inos.of(1n, 42n)
    const b = inos.of(2n, 42n)
    expect(a).not.toBe(b)
    // Alternating devices (the one-entry device cache) changes nothing.
    expect(inos.of(1n, 42n)).toBe(a)
    expect(inos.of(2n, 42n)).toBe(b)
  })

  it('refuses a number past 2^53 (it may be rounded) and keeps such bigints exact', () => {
    const inos = new SandboxInos()
    // 2^53 and 2^53 + 1 are the same double: as numbers they cannot be told apart.
    expect(Number(TWO_53)).toBe(Number(TWO_53 + 1n))
    expect(inos.ofNumbers(1, Number(TWO_53))).toBeUndefined()
    expect(inos.ofNumbers(Number(TWO_53), 5)).toBeUndefined()
    const a = inos.of(1n, TWO_53)
    const b = inos.of(1n, TWO_53 + 1n)
    const c = inos.of(1n, 2n ** 64n - 1n)
    expect(new Set([a, b, c]).size).toBe(3)
    expect(inos.of(1n, TWO_53 + 1n)).toBe(b)
    // A large device number is keyed exactly too.
    expect(inos.of(TWO_53 + 1n, 9n)).not.toBe(inos.of(TWO_53, 9n))
  })
})
