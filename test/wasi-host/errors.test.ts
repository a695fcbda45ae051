/**
 * `WasiError` is built without a stack (an errno on its way back to the guest is thrown on
 * common paths, where a stack costs more than the syscall), and `muteStacks` never leaves
 * `Error.stackTraceLimit` changed, nor fails where an embedder froze it.
 */
import { describe, expect, it } from 'vitest'
import { Errno } from '../../wasi-host/abi/constants.js'
import { muteStacks, restoreStacks, WasiError } from '../../wasi-host/errors.js'

describe('WasiError and muteStacks', () => {
  it('carries its errno and detail, and no captured frames', () => {
    const e = new WasiError(Errno.NOENT, 'missing')
    expect(e).toBeInstanceOf(Error)
    expect(e).toMatchObject({ errno: Errno.NOENT, detail: 'missing', name: 'WasiError', message: 'NOENT: missing' })
    expect(e.stack?.split('\n').filter((l) => l.trim().startsWith('at '))).toEqual([])
    expect(new WasiError(Errno.BADF).detail).toBeUndefined()
  })

  it('restores the limit it found, and leaves other errors their stacks', () => {
    const before = Error.stackTraceLimit
    try {
      Error.stackTraceLimit = 7
      new WasiError(Errno.INVAL)
      expect(Error.stackTraceLimit).toBe(7)
      const token = muteStacks()
      expect(Error.stackTraceLimit).toBe(0)
      expect(muteStacks()).toBeUndefined() // nested: already muted, nothing to restore twice
      restoreStacks(token)
      expect(Error.stackTraceLimit).toBe(7)
      expect(new Error('x').stack).toContain(' at ')
    } finally {
      Error.stackTraceLimit = before
    }
  })

  // Last: once it finds the limit frozen, the module leaves it alone for good.
  it('works where an embedder made Error.stackTraceLimit read-only', () => {
    const desc = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')!
    Object.defineProperty(Error, 'stackTraceLimit', { ...desc, writable: false })
    try {
      expect(muteStacks()).toBeUndefined()
      expect(new WasiError(Errno.EXIST).errno).toBe(Errno.EXIST)
      expect(Error.stackTraceLimit).toBe(desc.value)
    } finally {
      Object.defineProperty(Error, 'stackTraceLimit', desc)
    }
  })
})
