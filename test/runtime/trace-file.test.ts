/**
 * A trace file is buffered, and its tail is never lost: a run stopped by --timeout while looping,
 * a trap, a limit, and an abort all leave every traced call in the file, in a worker and
 * in-process; a call that waits (a read of stdin) finds the trace so far already in the file.
 * A summary survives a timeout too.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import wabtInit from 'wabt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run, runSync } from '../../runtime/index.js'
import { ROOT } from './instrument/wasm.js'

const bin = join(ROOT, 'bin/caplet.js')
/** Traced calls before the guest loops, traps or waits: several buffers' worth, and a tail. */
const N = 5003

/** A command that reads the clock N times, then does `end` (instructions). */
async function guest(end: string): Promise<Uint8Array> {
  const wabt = await wabtInit()
  const wat = `(module
    (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start") (local $i i32)
      (loop $l
        (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const ${N}))))
      ${end}))`
  const m = wabt.parseWat('guest.wat', wat)
  try {
    return m.toBinary({}).buffer
  } finally {
    m.destroy()
  }
}

let tmp: string
const mods: Record<'spin' | 'trap' | 'read' | 'say', string> = { spin: '', trap: '', read: '', say: '' }
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'caplet-trace-file-'))
  const ends = {
    spin: '(loop $forever (br $forever))',
    trap: 'unreachable',
    // One 1-byte iovec at 0 (buffer at 16), n read to 8; then a last clock read.
    read: `(i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 1))
           (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
           (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 64)))`,
    // One byte ("!") to stdout, then loop: a caller that saw the byte knows every clock call was made.
    say: `(i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 1)) (i32.store8 (i32.const 16) (i32.const 33))
          (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (loop $forever (br $forever))`,
  }
  for (const k of Object.keys(mods) as (keyof typeof mods)[]) {
    mods[k] = join(tmp, `${k}.wasm`)
    writeFileSync(mods[k], await guest(ends[k]))
  }
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

let seq = 0
const traceFile = () => join(tmp, `t${seq++}.trace`)
const clockLines = (file: string) => readFileSync(file, 'utf8').match(/^clock_time_get\(/gm)?.length ?? 0

describe('a trace file keeps its tail', () => {
  it('--timeout stops a looping guest (worker): all N calls are in the file', () => {
    const file = traceFile()
    const r = spawnSync(process.execPath, [bin, 'run', `--trace=${file}`, '--timeout', '1s', mods.spin], { encoding: 'utf8', input: '' })
    expect(r.status).toBe(124)
    expect(clockLines(file)).toBe(N)
  })

  it('a trap: all N calls, and the trap, in a worker and in-process', () => {
    for (const iso of [[], ['--in-process']]) {
      const file = traceFile()
      const r = spawnSync(process.execPath, [bin, 'run', ...iso, `--trace=${file}`, mods.trap], { encoding: 'utf8', input: '' })
      expect(r.status, iso.join()).toBe(134)
      expect(clockLines(file), iso.join()).toBe(N)
    }
  })

  it('the API: a timeout, an abort, a fuel limit and a trap keep every line (json too)', async () => {
    const timeout = traceFile()
    const t = await run(mods.spin, { trace: { file: timeout, format: 'json' }, limits: { timeout: '500ms' } })
    expect(t.limit).toBe('timeout')
    const events = readFileSync(timeout, 'utf8').trimEnd().split('\n')
    expect(events.filter((l) => (JSON.parse(l) as { call: string }).call === 'clock_time_get')).toHaveLength(N)

    const aborted = traceFile()
    const ac = new AbortController()
    const p = run(mods.spin, { trace: { file: aborted }, signal: ac.signal })
    setTimeout(() => ac.abort(new Error('stop')), 500)
    await expect(p).rejects.toThrow('stop')
    // The file is written once the worker has stopped, before the promise settles.
    expect(clockLines(aborted)).toBe(N)

    const fuel = traceFile()
    const f = runSync(mods.spin, { trace: { file: fuel }, limits: { fuel: 10_000_000 } })
    expect(f.limit).toBe('fuel')
    expect(clockLines(fuel)).toBe(N)

    const trapped = traceFile()
    expect(runSync(mods.trap, { trace: { file: trapped } }).trap).toBeDefined()
    expect(clockLines(trapped)).toBe(N)
  })

  it('--trace=summary: a run stopped by --timeout still has its summary, counted to the last call', async () => {
    const r = await run(mods.spin, { trace: { summary: true }, limits: { timeout: '500ms' } })
    expect(r.limit).toBe('timeout')
    expect(r.traceSummary).toEqual([expect.objectContaining({ call: 'clock_time_get', calls: N, errors: 0 })])
    const cli = spawnSync(process.execPath, [bin, 'run', '--trace=summary', '--timeout', '500ms', mods.spin], {
      encoding: 'utf8',
      input: '',
    })
    expect(cli.status).toBe(124)
    expect(cli.stderr).toMatch(new RegExp(` ${N} +clock_time_get\n`))
  })

  it('Ctrl-C (SIGINT) on a looping guest: the tail is written, then caplet dies of the signal', async () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const file = traceFile()
      const child = spawn(process.execPath, [bin, 'run', `--trace=${file}`, mods.spin], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
      // The first 64 KiB reach the file while the guest makes its calls; the rest waits in the buffer.
      const deadline = Date.now() + 20_000
      while (Date.now() < deadline && !(existsSync(file) && clockLines(file) > 0)) await new Promise((r) => setTimeout(r, 50))
      await new Promise((r) => setTimeout(r, 300))
      expect(clockLines(file), sig).toBeLessThan(N)
      child.kill(sig)
      expect(await exited, sig).toBe(sig)
      expect(clockLines(file), sig).toBe(N)
      expect(stderr, sig).toContain(`caplet: interrupted (${sig})`)
    }
  })

  it('Ctrl-C with --trace=summary: the summary up to the interruption is printed, then caplet dies of the signal', async () => {
    const child = spawn(process.execPath, [bin, 'run', '--trace=summary', mods.say], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const said = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    await said
    child.kill('SIGINT')
    expect(await exited).toBe('SIGINT')
    expect(stderr).toMatch(new RegExp(` ${N} +clock_time_get\n`))
    // (The write itself may not have returned when the signal came: a call is counted as it returns.)
    expect(stderr).toContain('caplet: interrupted (SIGINT)')
  })

  it('a read of stdin that waits finds the trace so far written out', async () => {
    const file = traceFile()
    const child = spawn(process.execPath, [bin, 'run', `--trace=${file}`, mods.read], { stdio: ['pipe', 'ignore', 'ignore'] })
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    // The guest is now blocked in fd_read(0): its N clock lines must be in the file already.
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline && !(existsSync(file) && clockLines(file) === N)) await new Promise((r) => setTimeout(r, 50))
    expect(clockLines(file)).toBe(N)
    expect(readFileSync(file, 'utf8')).not.toMatch(/^fd_read/m)
    child.stdin.end('x')
    expect(await exited).toBe(0)
    const text = readFileSync(file, 'utf8')
    expect(text).toMatch(/^fd_read\(0, 1 iov 1 bytes\) = 0 \(n=1\)$/m)
    expect(clockLines(file)).toBe(N + 1)
  })
})
