import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runSync } from '../../runtime/index.js'
import { buildModule, op, ROOT, u32 } from './instrument/wasm.js'

const rtTrap = join(ROOT, 'test/fixtures/wasm/rt_trap.wasm')

describe('trap reports carry the wasm backtrace', () => {
  it('names functions from the name section, with offsets into the module as given', () => {
    const r = runSync(rtTrap, { args: ['rt_trap', 'unreachable'], stdout: 'discard' })
    expect(r.trap?.kind).toBe('unreachable')
    const top = r.trap!.frames![0]!
    expect(top).toMatchObject({ name: 'main' })
    expect(readFileSync(rtTrap)[top.offset]).toBe(op.unreachable)
    expect(r.trap!.frames!.map((f) => f.name)).toContain('_start')
    expect(r.trap!.frames!.length).toBeLessThanOrEqual(16)
  })

  it('a metered module has frames without offsets (the code was rewritten)', () => {
    const r = runSync(rtTrap, { args: ['rt_trap', 'unreachable'], stdout: 'discard', limits: { fuel: 1e8 } })
    expect(r.trap!.frames![0]).toMatchObject({ name: 'main', offset: -1 })
  })

  it('hostile function names are escaped', () => {
    const evil = 'f\x1b[2J\u202e'
    const nameBytes = [...new TextEncoder().encode(evil)]
    const sub = [1, 0, ...u32(nameBytes.length), ...nameBytes] // count 1, index 0, name
    const bytes = buildModule({
      memory: [0x00, 1],
      funcs: [{ body: [op.unreachable], export: '_start' }],
      custom: [{ name: 'name', bytes: [1, ...u32(sub.length), ...sub] }],
    })
    const r = runSync(bytes)
    const name = r.trap!.frames![0]!.name!
    expect(name).not.toMatch(/[\x00-\x1f\u202e]/)
    expect(name).toContain('\\x1b[2J')
  })
})
