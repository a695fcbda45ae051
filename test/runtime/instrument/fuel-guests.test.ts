/**
 * Fuel metering on real guests (C compiled with wasi-libc): same behaviour as unmetered,
 * deterministic fuel, proportional to the work, and a clean stop when the budget runs out.
 */
import { describe, expect, it } from 'vitest'
import { meterFuel } from '../../../runtime/instrument/index.js'
import { readGuest, runGuest } from './wasm.js'

const BUDGET = 10n ** 15n
const spin = readGuest('test/fixtures/wasm/fuel_spin.wasm')
const spinMetered = meterFuel(spin).bytes

describe('metered guests', () => {
  it.each([
    ['samples/hello.wasm', ['hello']],
    ['test/fixtures/wasm/fuel_spin.wasm', ['fuel_spin', '5000']],
    ['test/fixtures/wasm/fuel_spin.wasm', ['fuel_spin', 'recurse', '300']],
    ['test/fixtures/wasm/fuel_alloc.wasm', ['fuel_alloc', '8']],
    ['test/fixtures/wasm/fuel_kernels.wasm', ['fuel_kernels', 'sieve', '10000']],
    ['test/fixtures/wasm/fuel_kernels.wasm', ['fuel_kernels', 'matmul', '20']],
    ['test/fixtures/wasm/fuel_kernels.wasm', ['fuel_kernels', 'hash', '128']],
    ['test/fixtures/wasm/fuel_kernels.wasm', ['fuel_kernels', 'calls', '1000']],
  ])('%s %j prints the same metered and unmetered', (path, args) => {
    const bytes = readGuest(path)
    const plain = runGuest(bytes, args)
    const fueled = runGuest(meterFuel(bytes).bytes, args, BUDGET)
    expect(plain.trap).toBeUndefined()
    expect(plain.stdout.length).toBeGreaterThan(0)
    expect(fueled).toMatchObject({ exitCode: plain.exitCode, stdout: plain.stdout, stderr: plain.stderr, trap: undefined })
    expect(fueled.fuelUsed).toBeGreaterThan(0n)
  })

  it('uses the same fuel on every run, whatever the budget', () => {
    const a = runGuest(spinMetered, ['fuel_spin', '20000'], BUDGET)
    const b = runGuest(spinMetered, ['fuel_spin', '20000'], BUDGET)
    const c = runGuest(meterFuel(spin).bytes, ['fuel_spin', '20000'], 10n ** 8n)
    expect(a.fuelUsed).toBe(b.fuelUsed)
    expect(c.fuelUsed).toBe(a.fuelUsed)
  })

  it('uses fuel in proportion to the work', () => {
    const used = (n: number) => Number(runGuest(spinMetered, ['fuel_spin', String(n)], BUDGET).fuelUsed)
    const f1 = used(100_000)
    const f2 = used(200_000)
    expect(f2 / f1).toBeGreaterThan(1.97)
    expect(f2 / f1).toBeLessThan(2.03)
    // Linear: each further 100k iterations cost the same, to within the few hundred units that
    // parsing the argument and printing a different checksum cost.
    expect(Math.abs(used(300_000) - f2 - (f2 - f1))).toBeLessThan(1000)
  })

  it('charges recursion per level, exactly', () => {
    const used = (n: number) => runGuest(spinMetered, ['fuel_spin', 'recurse', String(n)], BUDGET).fuelUsed!
    // The printed sum differs in value (printf's work varies a little); the descent is linear.
    const d1 = Number(used(2000) - used(1000))
    const d2 = Number(used(3000) - used(2000))
    expect(Math.abs(d1 - d2) / d1).toBeLessThan(0.01)
    expect(d1).toBeGreaterThan(1000 * 5)
  })

  it('traps a guest that outruns its budget, with the counter negative', () => {
    const full = runGuest(spinMetered, ['fuel_spin', '100000'], BUDGET)
    const budget = full.fuelUsed! / 2n
    const r = runGuest(spinMetered, ['fuel_spin', '100000'], budget)
    expect(r.exitCode).toBeUndefined()
    expect(r.trap).toBeInstanceOf(WebAssembly.RuntimeError)
    expect(r.remaining).toBeLessThan(0n)
    expect(r.stdout).toBe('')
    // Stopped at (or a loop-free stretch past) the budget, not run to the end.
    expect(r.fuelUsed).toBeGreaterThan(budget)
    expect(r.fuelUsed! - budget).toBeLessThan(100n)
  })

  it('stops an infinite loop', () => {
    const r = runGuest(spinMetered, ['fuel_spin', 'forever'], 5_000_000n)
    expect(r.trap).toBeInstanceOf(WebAssembly.RuntimeError)
    expect(r.remaining).toBeLessThan(0n)
  })

  it('tells a guest trap from fuel exhaustion by the counter', () => {
    const r = runGuest(spinMetered, ['fuel_spin', 'trap'], BUDGET)
    expect(r.stdout).toBe('trapping\n')
    expect(r.trap).toBeInstanceOf(WebAssembly.RuntimeError)
    expect(r.remaining).toBeGreaterThanOrEqual(0n)
  })

  it('stops deep recursion by fuel before the stack overflows', () => {
    const r = runGuest(spinMetered, ['fuel_spin', 'recurse', '1000000'], 20_000n)
    expect(r.trap).toBeInstanceOf(WebAssembly.RuntimeError)
    expect(r.remaining).toBeLessThan(0n)
  })
})
