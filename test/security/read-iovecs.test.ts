/**
 * fd_read into a buffer that covers its own iovec array: the bytes read rewrite the array, and
 * the host must go on with the iovecs it checked (a kernel copies them in first), never follow
 * forged ones. A fresh-state plugin's reset marks the checked buffers as written, so a write
 * through a forged iovec would also have outlived the reset (another call's input kept).
 */
import { describe, expect, it } from 'vitest'
import { run } from '../../runtime/index.js'
import { compile } from '../../toolchain/index.js'

// iovecs at 0: { buf 0, len 16 } (covers both iovecs), { buf 100, len 8 }; fd_read(0); then
// write memory[100..108) and memory[200..208) to stdout.
const GUEST = `(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $e i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 16))
    (i32.store (i32.const 8) (i32.const 100))
    (i32.store (i32.const 12) (i32.const 8))
    (local.set $e (call $read (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 400)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (i32.store (i32.const 300) (i32.const 100))
    (i32.store (i32.const 304) (i32.const 8))
    (i32.store (i32.const 308) (i32.const 200))
    (i32.store (i32.const 312) (i32.const 8))
    (drop (call $write (i32.const 1) (i32.const 300) (i32.const 2) (i32.const 404)))
    (call $exit (i32.ne (i32.load (i32.const 400)) (i32.const 24)))))`

describe('fd_read into a buffer that overlaps its own iovec array', () => {
  it('reads into the iovecs as checked, not into the ones the bytes just read forged', async () => {
    const wasm = (await compile({ language: 'wat', files: { 'g.wat': GUEST }, options: { cache: false } })).module
    // Bytes 8..15 forge the second iovec as { buf 200, len 8 }; bytes 16..23 are the payload.
    const stdin = new Uint8Array(24)
    const dv = new DataView(stdin.buffer)
    dv.setUint32(4, 16, true)
    dv.setUint32(8, 200, true)
    dv.setUint32(12, 8, true)
    stdin.set(new TextEncoder().encode('PAYLOAD!'), 16)
    for (const isolation of ['worker', 'in-process'] as const) {
      const r = await run(wasm, { isolation, stdin })
      expect(r.exitCode, isolation).toBe(0)
      expect(new TextDecoder().decode(r.stdout.subarray(0, 8))).toBe('PAYLOAD!')
      expect([...r.stdout.subarray(8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
    }
  })
})
