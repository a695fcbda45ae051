/**
 * Memories kept between runs (runtime/guest-memories.ts, `importMemory`): once a long-running
 * embedder reserves workers, a command's capped memory becomes the import `caplet.memory` and a
 * thread hands a finished run's memory to the next run, zeroed. A guest must never see what the
 * previous run wrote; a module that imports `caplet.memory` itself is still refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { capMemory, importMemory } from '../../runtime/instrument/index.js'
import { reusedGuestMemories } from '../../runtime/guest-memories.js'
import { prepare, prepareSync } from '../../runtime/sandbox.js'
import { defaultPool } from '../../runtime/worker/pool.js'

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
const utf8 = (s: string) => [s.length, ...new TextEncoder().encode(s)]

/**
 * `_start` exits 7 when the i32 at address 100 is not zero, else stores 0x5a there and exits 0:
 * (import "wasi_snapshot_preview1" "proc_exit") (memory 1) exported as "memory".
 */
const RESIDUE = new Uint8Array([
  ...HEADER,
  ...[0x01, 0x08, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00],
  ...[0x02, 0x24, 0x01, ...utf8('wasi_snapshot_preview1'), ...utf8('proc_exit'), 0x00, 0x00],
  ...[0x03, 0x02, 0x01, 0x01],
  ...[0x05, 0x03, 0x01, 0x00, 0x01],
  ...[0x07, 0x13, 0x02, ...utf8('memory'), 0x02, 0x00, ...utf8('_start'), 0x00, 0x01],
  ...[0x0a, 0x1e, 0x01, 0x1c, 0x00],
  ...[0x41, 0xe4, 0x00, 0x28, 0x02, 0x00, 0x04, 0x40, 0x41, 0x07, 0x10, 0x00, 0x0b],
  ...[0x41, 0xe4, 0x00, 0x41, 0xda, 0x00, 0x36, 0x02, 0x00, 0x41, 0x00, 0x10, 0x00, 0x0b],
])

/** `_start` stores 0x5a at address 100, then traps: (memory 1) exported as "memory", no imports. */
const TRAP_WRITER = new Uint8Array([
  ...HEADER,
  ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00],
  ...[0x03, 0x02, 0x01, 0x00],
  ...[0x05, 0x03, 0x01, 0x00, 0x01],
  ...[0x07, 0x13, 0x02, ...utf8('memory'), 0x02, 0x00, ...utf8('_start'), 0x00, 0x00],
  ...[0x0a, 0x0e, 0x01, 0x0c, 0x00, 0x41, 0xe4, 0x00, 0x41, 0xda, 0x00, 0x36, 0x02, 0x00, 0x00, 0x0b],
])

/** `(import "caplet" "memory" (memory 1 2))`, exported, and an empty `_start`: its own import. */
const OWN_IMPORT = new Uint8Array([
  ...HEADER,
  ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00],
  ...[0x02, 0x13, 0x01, ...utf8('caplet'), ...utf8('memory'), 0x02, 0x01, 0x01, 0x02],
  ...[0x03, 0x02, 0x01, 0x00],
  ...[0x07, 0x13, 0x02, ...utf8('_start'), 0x00, 0x00, ...utf8('memory'), 0x02, 0x00],
  ...[0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b],
])

describe('importMemory', () => {
  it('makes a capped defined memory the import caplet.memory, keeping its export and limits', () => {
    expect(WebAssembly.validate(RESIDUE)).toBe(true)
    const capped = capMemory(RESIDUE, 16).bytes
    const r = importMemory(capped)
    expect(r.memory).toEqual({ minPages: 1, maxPages: 16 })
    expect(WebAssembly.validate(r.bytes as Uint8Array<ArrayBuffer>)).toBe(true)
    const mod = new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>)
    expect(WebAssembly.Module.imports(mod)).toContainEqual({ module: 'caplet', name: 'memory', kind: 'memory' })
    expect(WebAssembly.Module.exports(mod)).toContainEqual({ name: 'memory', kind: 'memory' })
  })

  it('leaves alone a memory without a maximum, and a module that imports its memory', () => {
    expect(importMemory(RESIDUE)).toEqual({ bytes: RESIDUE })
    expect(importMemory(OWN_IMPORT)).toEqual({ bytes: OWN_IMPORT })
  })
})

describe('memories kept between runs (a reserved pool)', () => {
  beforeAll(() => defaultPool.reserve(1))
  afterAll(() => defaultPool.close())

  it('a run on the same thread never sees what the run before it wrote', () => {
    const program = prepareSync(RESIDUE, { isolation: 'in-process' })
    const before = reusedGuestMemories()
    const codes = Array.from({ length: 4 }, () => program.runSync().exitCode)
    expect(codes).toEqual([0, 0, 0, 0])
    // The memory was handed on (else this test proves nothing about zeroing).
    expect(reusedGuestMemories() - before).toBeGreaterThanOrEqual(3)
  })

  it("another module's run that wrote and then trapped leaves nothing behind either", () => {
    const writer = prepareSync(TRAP_WRITER, { isolation: 'in-process' })
    const reader = prepareSync(RESIDUE, { isolation: 'in-process' })
    for (let i = 0; i < 3; i++) {
      const before = reusedGuestMemories()
      expect(writer.runSync().trap).toBeDefined()
      expect(reader.runSync().exitCode).toBe(0)
      // The reader got the memory the writer left (same shape), zeroed.
      expect(reusedGuestMemories() - before).toBeGreaterThanOrEqual(1)
    }
  })

  it('nor in a pooled worker', async () => {
    const program = await prepare(RESIDUE)
    const codes: number[] = []
    for (let i = 0; i < 4; i++) codes.push((await program.run()).exitCode)
    expect(codes).toEqual([0, 0, 0, 0])
  })

  it("refuses a module's own import of caplet.memory (its size would escape the memory limit)", async () => {
    await expect(prepare(OWN_IMPORT)).rejects.toThrow(/non-function/)
  })
})
