/**
 * Red team, wave 2, sockets: a `sock_recv` whose buffer covers its own
 * iovec array. The first chunk received rewrites the iovecs; the host must keep scattering into
 * the iovecs it checked (as a kernel copies them in), not re-read forged ones from the bytes a
 * network peer just wrote: those point past memory and made the host throw a RangeError (a
 * "host fault" trap: a host invariant broken by guest-and-peer-controlled data).
 */
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { run } from '../../runtime/index.js'
import { PolicyError } from '../../runtime/errors.js'
import { resolvePolicy } from '../../runtime/policy.js'
import { compile } from '../../toolchain/index.js'
import { openFds } from '../support/net-clients.js'

// accept on fd 3; iovec at 0 = { buf: 0, len: 1.5 MiB } (covering itself); recv WAITALL;
// exit with the errno, or 1 if fewer than 1.5 MiB arrived, or 0.
const GUEST = `(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 32)
  (func (export "_start") (local $e i32)
    (local.set $e (call $accept (i32.const 3) (i32.const 0) (i32.const 0x1ffff0)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 0x180000))
    (local.set $e (call $recv (i32.load (i32.const 0x1ffff0)) (i32.const 0) (i32.const 1) (i32.const 2)
      (i32.const 0x1ffff4) (i32.const 0x1ffff8)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (i32.ne (i32.load (i32.const 0x1ffff4)) (i32.const 0x180000)))))`

describe('sock_recv into a buffer that overlaps its own iovec array', () => {
  it('scatters into the iovecs as checked: forged ones written by the peer are never followed', async () => {
    const wasm = (await compile({ language: 'wat', files: { 'g.wat': GUEST }, options: { cache: false } })).module
    // What the peer sends: 1.5 MiB whose first 8 bytes are an iovec { 0xffffff00, 2 MiB }.
    const payload = Buffer.alloc(0x180000, 0x41)
    payload.writeUInt32LE(0xffffff00, 0)
    payload.writeUInt32LE(0x200000, 4)
    const r = await run(wasm, {
      sockets: [{ listen: '127.0.0.1:0' }],
      onListen: (s) => {
        const c = connect({ port: Number(s[0]!.address.split(':').pop()), host: '127.0.0.1' }, () => c.end(payload))
        c.on('error', () => {})
      },
    })
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(0)
  }, 10_000)

  it('two iovecs, the first covering the second: the second is the one checked, not the bytes just received', async () => {
    // iov[0] = { 0, 16 } covers iov[1] = { 0x1000, 16 } at bytes 8..16; the peer's bytes 8..16
    // forge iov[1] as { 0xffffff00, 16 }. Exit 0 when 32 bytes arrived and byte 16 of them landed at 0x1000.
    const two = `(module
      (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (local $e i32)
        (local.set $e (call $accept (i32.const 3) (i32.const 0) (i32.const 0x2000)))
        (if (local.get $e) (then (call $exit (local.get $e))))
        (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (i32.const 16))
        (i32.store (i32.const 8) (i32.const 0x1000)) (i32.store (i32.const 12) (i32.const 16))
        (local.set $e (call $recv (i32.load (i32.const 0x2000)) (i32.const 0) (i32.const 2) (i32.const 2)
          (i32.const 0x2004) (i32.const 0x2008)))
        (if (local.get $e) (then (call $exit (local.get $e))))
        (call $exit (i32.or (i32.ne (i32.load (i32.const 0x2004)) (i32.const 32))
          (i32.ne (i32.load8_u (i32.const 0x1000)) (i32.const 0x42))))))`
    const wasm = (await compile({ language: 'wat', files: { 'g.wat': two }, options: { cache: false } })).module
    const payload = Buffer.alloc(32, 0x42)
    payload.writeUInt32LE(0xffffff00, 8)
    payload.writeUInt32LE(16, 12)
    const r = await run(wasm, {
      sockets: [{ listen: '127.0.0.1:0' }],
      onListen: (s) => {
        const c = connect({ port: Number(s[0]!.address.split(':').pop()), host: '127.0.0.1' }, () => c.end(payload))
        c.on('error', () => {})
      },
    })
    expect(r.trap).toBeUndefined()
    expect(r.exitCode).toBe(0)
  }, 10_000)
})

describe('socket grants and limits given badly', () => {
  it('names, short IPv4 forms and out-of-range counts are refused, saying what is allowed', () => {
    const problems = (o: Parameters<typeof resolvePolicy>[0]) => {
      try {
        resolvePolicy(o)
      } catch (e) {
        expect(e).toBeInstanceOf(PolicyError)
        return (e as PolicyError).problems.join('\n')
      }
      throw new Error('accepted')
    }
    expect(problems({ sockets: [{ listen: 'localhost:8080' }] })).toMatch(/not a literal IP address/)
    expect(problems({ sockets: [{ connect: '127.1:80' }] })).toMatch(/not a literal IP address/)
    expect(problems({ sockets: [{ connect: '0177.0.0.1:80' }] })).toMatch(/not a literal IP address/)
    expect(problems({ sockets: [{ connect: '127.0.0.1:0' }] })).toMatch(/out of range/)
    expect(problems({ sockets: [{ listen: '127.0.0.1:0' }], limits: { connections: 1e9 } })).toMatch(
      /limits.connections: must be a whole number from 1 to 65536/,
    )
    expect(problems({ limits: { fds: 2 } })).toMatch(/limits.fds: must be a whole number from 3/)
  })
})

describe('connections the guest closed with bytes still queued', () => {
  it('still count against --max-connections while they linger (clients that never read cannot pile them up)', async () => {
    // Accept, send non-blocking until AGAIN (the peer never reads), close; forever.
    const guest = `(module
      (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $flags (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 32)
      (func (export "_start") (local $fd i32) (local $e i32)
        (i32.store (i32.const 0) (i32.const 0x10000)) (i32.store (i32.const 4) (i32.const 0x100000))
        (loop $conns
          (local.set $e (call $accept (i32.const 3) (i32.const 0) (i32.const 16)))
          (if (local.get $e) (then (call $exit (local.get $e))))
          (local.set $fd (i32.load (i32.const 16)))
          (drop (call $flags (local.get $fd) (i32.const 4)))
          (loop $fill (br_if $fill (i32.eqz (call $send (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 20)))))
          (drop (call $close (local.get $fd)))
          (br $conns))))`
    const wasm = (await compile({ language: 'wat', files: { 'g.wat': guest }, options: { cache: false } })).module
    const before = await openFds()
    const stop = new AbortController()
    let clients: ReturnType<typeof spawn> | undefined
    const result = run(wasm, {
      sockets: [{ listen: '127.0.0.1:0' }],
      limits: { connections: 2 },
      signal: stop.signal,
      onListen: (s) => {
        const port = Number(s[0]!.address.split(':').pop())
        // Clients in another process (their sockets are not this process's descriptors): 20
        // connections, 50 ms apart, none ever read.
        const script = `const net = require('net'); let n = 0
          const go = () => { if (n++ >= 20) return; const c = net.connect(${port}, '127.0.0.1'); c.pause(); c.on('error', () => {}); setTimeout(go, 50) }
          go(); setTimeout(() => process.exit(0), 8000)`
        clients = spawn(process.execPath, ['-e', script], { stdio: 'ignore' })
      },
    }).catch((e: unknown) => e)
    try {
      await new Promise((r) => setTimeout(r, 1600))
      // The listener and at most two connections (plus slack for the run's own descriptors).
      expect((await openFds()) - before).toBeLessThanOrEqual(5)
    } finally {
      clients?.kill()
      stop.abort(new Error('enough'))
      await result
    }
  }, 10_000)
})
