/**
 * @module A WASI command with one invalid function body, for the lazy-validation tests (over 2
 * MiB of code, a one-shot CLI run reports the body when it is called, exit 126) and the README's
 * exit-status table.
 */
import { name, section, u32, vec } from '../runtime/instrument/wasm.js'

/**
 * A command that writes "before\n", then calls a function whose body is invalid (`i32.add` on
 * an empty stack), then writes "after\n"; `filler` nops in a third function set the code size.
 */
export function invalidBodyModule(filler: number): Uint8Array {
  const i32 = 0x7f
  const types = section(
    1,
    vec([
      [0x60, ...vec([[i32], [i32], [i32], [i32]]), ...vec([[i32]])],
      [0x60, 0, 0],
    ]),
  )
  const imports = section(2, vec([[...name('wasi_snapshot_preview1'), ...name('fd_write'), 0x00, 0]]))
  const funcs = section(3, vec([[1], [1], [1]]))
  const memory = section(5, vec([[0x00, 1]]))
  const exports = section(
    7,
    vec([
      [...name('_start'), 0x00, 1],
      [...name('memory'), 0x02, 0],
    ]),
  )
  // fd_write(1, iovec at `at`, 1, n at 64); drop
  const write = (at: number) => [0x41, 1, 0x41, at, 0x41, 1, 0x41, 0xc0, 0x00, 0x10, 0, 0x1a]
  const start = [0, ...write(0), 0x10, 2, ...write(8), 0x0b]
  const bad = [0, 0x6a, 0x0b]
  const head = [...u32(3), ...u32(start.length), ...start, ...u32(bad.length), ...bad, ...u32(filler + 2)]
  const code = new Uint8Array(head.length + filler + 2)
  code.set(head)
  code.fill(0x01, head.length + 1, head.length + 1 + filler) // locals 0, nops, end
  code[code.length - 1] = 0x0b
  // iovecs at 0 and 8: "before\n" at 16, "after\n" at 32.
  const bytes = new Uint8Array(48)
  new DataView(bytes.buffer).setUint32(0, 16, true)
  new DataView(bytes.buffer).setUint32(4, 7, true)
  new DataView(bytes.buffer).setUint32(8, 32, true)
  new DataView(bytes.buffer).setUint32(12, 6, true)
  bytes.set(new TextEncoder().encode('before\n'), 16)
  bytes.set(new TextEncoder().encode('after\n'), 32)
  const data = section(11, vec([[0x00, 0x41, 0, 0x0b, ...u32(bytes.length), ...bytes]]))
  const codeHeader = [10, ...u32(code.length)]
  const parts = [[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0], types, imports, funcs, memory, exports, codeHeader]
  const size = parts.reduce((n, p) => n + p.length, 0) + code.length + data.length
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  out.set(code, at)
  out.set(data, at + code.length)
  return out
}
