/**
 * @module WASI commands with an invalid function body, for the lazy-validation tests (over 2 MiB
 * of code, a one-shot CLI run reports the body when it is called, exit 126), their red-team
 * wave (the invalid body placed where it is hard to find) and the README's exit-status table.
 */
import { name, section, u32, vec } from '../runtime/instrument/wasm.js'

const I32 = 0x7f

/** `fd_write(1, iovec at at, 1, n at 64); drop`. Iovecs: 0 "before\n", 8 "after\n", 48 "during\n". */
export const write = (at: number): number[] => [0x41, 1, 0x41, at, 0x41, 1, 0x41, 0xc0, 0x00, 0x10, 0, 0x1a]
/** `i32.add` on an empty stack: what makes a body invalid. */
export const BAD = [0x6a]

export interface BodiesSpec {
  /** The instructions (no locals, no `end`) of function 1, the exported `_start`. */
  start: number[]
  /** The instructions of function 2; function 3 is `filler` nops. */
  second: number[]
  /** A table holding function 2, at index 0 (for `call_indirect`). */
  table?: boolean
  /** The module's start function, run while instantiating. */
  startFunction?: number
}

/**
 * A command of three functions (`spec`'s two, then `filler` nops setting the code size) that
 * imports `fd_write`, with memory holding the iovecs `write` names.
 */
export function bodiesModule(spec: BodiesSpec, filler: number): Uint8Array {
  const types = section(
    1,
    vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([[I32]])],
      [0x60, 0, 0],
    ]),
  )
  const imports = section(2, vec([[...name('wasi_snapshot_preview1'), ...name('fd_write'), 0x00, 0]]))
  const funcs = section(3, vec([[1], [1], [1]]))
  const table = spec.table ? section(4, vec([[0x70, 0x00, 1]])) : []
  const memory = section(5, vec([[0x00, 1]]))
  const exports = section(
    7,
    vec([
      [...name('_start'), 0x00, 1],
      [...name('memory'), 0x02, 0],
    ]),
  )
  const start = spec.startFunction !== undefined ? section(8, u32(spec.startFunction)) : []
  const elems = spec.table ? section(9, vec([[0x00, 0x41, 0, 0x0b, ...vec([[2]])]])) : []
  const body = (ops: number[]) => [0, ...ops, 0x0b]
  const a = body(spec.start)
  const b = body(spec.second)
  const head = [...u32(3), ...u32(a.length), ...a, ...u32(b.length), ...b, ...u32(filler + 2)]
  const code = new Uint8Array(head.length + filler + 2)
  code.set(head)
  code.fill(0x01, head.length + 1, head.length + 1 + filler) // no locals, nops, end
  code[code.length - 1] = 0x0b
  const mem = new Uint8Array(64)
  const dv = new DataView(mem.buffer)
  for (const [at, ptr, s] of [
    [0, 16, 'before\n'],
    [8, 32, 'after\n'],
    [48, 56, 'during\n'],
  ] as const) {
    dv.setUint32(at, ptr, true)
    dv.setUint32(at + 4, s.length, true)
    mem.set(new TextEncoder().encode(s), ptr)
  }
  const data = section(11, vec([[0x00, 0x41, 0, 0x0b, ...u32(mem.length), ...mem]]))
  const parts = [[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0], types, imports, funcs, table, memory, exports, start, elems, [10, ...u32(code.length)]]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + code.length + data.length)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  out.set(code, at)
  out.set(data, at + code.length)
  return out
}

/**
 * A command that writes "before\n", then calls a function whose body is invalid (`i32.add` on
 * an empty stack), then writes "after\n"; `filler` nops in a third function set the code size.
 */
export const invalidBodyModule = (filler: number): Uint8Array =>
  bodiesModule({ start: [...write(0), 0x10, 2, ...write(8)], second: BAD }, filler)
