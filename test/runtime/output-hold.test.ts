import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Errno, WasiError, WasiHost, LimitExceeded } from '../../wasi-host/index.js'
import { createMemFs } from '../../wasi-host/fs/mem-fs.js'
import { OUTPUT_HOLD_BYTES, OutputHold } from '../../runtime/output-hold.js'
import { limitedSink } from '../../runtime/output.js'

const root = resolve(import.meta.dirname, '../..')
const bin = join(root, 'bin/caplet.js')
const fixture = (n: string) => join(root, 'test/fixtures/wasm', `${n}.wasm`)
const text = new TextDecoder()
const bytes = (s: string) => new TextEncoder().encode(s)

/** A log of what reached each sink, in order, one entry per call. */
function logged() {
  const calls: string[] = []
  const sink = (name: string) => (c: Uint8Array) => {
    calls.push(`${name}:${text.decode(c)}`)
  }
  return { calls, out: sink('out'), err: sink('err') }
}

describe('OutputHold', () => {
  it('joins small writes, and keeps two streams in the order they were written', () => {
    const hold = new OutputHold()
    const log = logged()
    const out = hold.sink(log.out),
      err = hold.sink(log.err)
    out(bytes('a'))
    out(bytes('b'))
    err(bytes('c'))
    err(bytes('d'))
    out(bytes('e'))
    expect(log.calls).toEqual(['out:ab', 'err:cd'])
    expect(hold.pending).toBe(true)
    hold.flush()
    expect(log.calls).toEqual(['out:ab', 'err:cd', 'out:e'])
    expect(hold.pending).toBe(false)
  })

  it('writes a large chunk straight through, after what it holds', () => {
    const hold = new OutputHold()
    const seen: number[] = []
    const out = hold.sink((c) => {
      seen.push(c.byteLength)
    })
    out(new Uint8Array(10))
    out(new Uint8Array(OUTPUT_HOLD_BYTES))
    expect(seen).toEqual([10, OUTPUT_HOLD_BYTES])
    for (let i = 0; i < 3000; i++) out(new Uint8Array(16))
    hold.flush()
    expect(seen.reduce((a, b) => a + b, 0)).toBe(10 + OUTPUT_HOLD_BYTES + 48000)
    expect(seen.length).toBeLessThan(8)
  })

  it('reports a failed flush (EPIPE) to the next write of that stream only', () => {
    const hold = new OutputHold()
    let broken = true
    const out = hold.sink(() => {
      if (broken) throw new WasiError(Errno.PIPE, 'host output closed')
    })
    const err = hold.sink(() => {})
    out(bytes('x'))
    expect(() => hold.flush()).not.toThrow()
    err(bytes('fine'))
    broken = false
    expect(() => out(bytes('y'))).toThrow(expect.objectContaining({ errno: Errno.PIPE }))
    expect(() => out(bytes('z'))).not.toThrow()
  })

  it('checks a limit as the guest writes, before holding (what fits is kept)', () => {
    const hold = new OutputHold()
    const log = logged()
    const out = limitedSink(hold.sink(log.out), 5, 'stdout')
    out(bytes('abc'))
    expect(() => out(bytes('defg'))).toThrow(LimitExceeded)
    hold.flush()
    expect(log.calls).toEqual(['out:abcde'])
  })
})

describe('WasiHost with held output', () => {
  function host() {
    const hold = new OutputHold()
    const log = logged()
    const h = new WasiHost({
      stdout: hold.sink(log.out),
      stderr: hold.sink(log.err),
      heldOutput: hold,
      preopens: [{ guestPath: '/sandbox', fs: createMemFs() }],
    })
    const memory = new WebAssembly.Memory({ initial: 1 })
    h.memory.bind(memory)
    const dv = new DataView(memory.buffer)
    const u8 = new Uint8Array(memory.buffer)
    const wasi = h.imports.wasi_snapshot_preview1 as unknown as Record<string, (...a: unknown[]) => number>
    /** fd_write of `s` on `fd` (iovec at 0, bytes at 64, nwritten at 16). */
    const write = (fd: number, s: string) => {
      const b = bytes(s)
      u8.set(b, 64)
      dv.setUint32(0, 64, true)
      dv.setUint32(4, b.byteLength, true)
      return wasi.fd_write!(fd, 0, 1, 16)
    }
    return { h, hold, log, wasi, write, u8 }
  }

  it('writes held bytes out before any other call, and at close', () => {
    const { h, log, wasi, write } = host()
    expect(write(1, 'one ')).toBe(Errno.SUCCESS)
    expect(write(2, 'two ')).toBe(Errno.SUCCESS)
    expect(write(1, 'three')).toBe(Errno.SUCCESS)
    expect(log.calls).toEqual(['out:one ', 'err:two '])
    expect(wasi.clock_time_get!(1, 1n, 32)).toBe(Errno.SUCCESS)
    expect(log.calls).toEqual(['out:one ', 'err:two ', 'out:three'])
    write(1, 'last')
    h.close()
    expect(log.calls.at(-1)).toBe('out:last')
  })

  it('writes held bytes out before a write to a file', () => {
    const { log, wasi, write, u8 } = host()
    write(1, 'before the file')
    // path_open flushes by itself; the write to the file must too (held again after it).
    u8.set(bytes('f'), 128)
    expect(wasi.path_open!(3, 0, 128, 1, 1 | 8, -1n, -1n, 0, 200)).toBe(Errno.SUCCESS)
    write(1, 'held')
    const fd = new DataView(u8.buffer).getUint32(200, true)
    expect(write(fd, 'data')).toBe(Errno.SUCCESS)
    expect(log.calls).toEqual(['out:before the file', 'out:held'])
  })
})

describe('caplet run --in-process (held output)', () => {
  const both = (args: string[]) => spawnSync('bash', ['-c', '"$0" "$@" 2>&1', process.execPath, bin, ...args], { encoding: 'utf8' })
  const expected = (n: number) => Array.from({ length: n }, (_, i) => `${i % 2 ? 'err' : 'out'} ${i}\n`).join('')

  it('keeps every line, in order, when the guest traps or exits non-zero', () => {
    const trap = both(['run', '--in-process', fixture('rt_interleave'), '3000', 'trap'])
    expect(trap.status).toBe(134)
    expect(trap.stdout.startsWith(expected(3000))).toBe(true)
    expect(trap.stdout.slice(expected(3000).length)).toMatch(/^caplet: guest trapped: unreachable/)
    const exit = both(['run', '--in-process', fixture('rt_interleave'), '3000', 'exit3'])
    expect(exit).toMatchObject({ status: 3, stdout: expected(3000) })
  })

  it('keeps what fits under --max-output, and stops the guest at the write that overflows', () => {
    const r = spawnSync(process.execPath, [bin, 'run', '--in-process', '--max-output', '1000', fixture('rt_interleave'), '3000'], {
      encoding: 'utf8',
    })
    expect(r.status).toBe(124)
    const lines = (tag: string) =>
      expected(3000)
        .split('\n')
        .filter((l) => l.startsWith(tag))
        .map((l) => `${l}\n`)
        .join('')
    expect(r.stdout).toBe(lines('out').slice(0, 1000))
    const guestErr = r.stderr.slice(0, r.stderr.indexOf('caplet: '))
    expect(guestErr.length).toBeGreaterThan(900)
    expect(lines('err').startsWith(guestErr)).toBe(true)
    expect(r.stderr.slice(guestErr.length)).toMatch(/^caplet: guest stopped: .*stdout/)
  })
})
