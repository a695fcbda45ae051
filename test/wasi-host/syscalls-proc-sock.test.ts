/**
 * proc_exit, proc_raise, sched_yield, and the sock_* calls (no socket can be granted yet).
 */
import { describe, expect, it } from 'vitest'
import { ProcExit } from '../../wasi-host/errors.js'
import { BAD_FD, DATA, expectErrno, harness, NEG_PTR, SANDBOX, STDERR, STDIN, STDOUT } from './harness.js'

describe('proc_exit', () => {
  it('unwinds with a ProcExit carrying the code, which is not an Error', () => {
    const h = harness()
    let thrown: unknown
    try {
      h.wasi.proc_exit(3)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(ProcExit)
    expect(thrown).not.toBeInstanceOf(Error)
    expect((thrown as ProcExit).code).toBe(3)
  })

  it('passes code 0 and large codes through (u32)', () => {
    const h = harness()
    for (const [raw, code] of [
      [0, 0],
      [255, 255],
      [-1, 0xffffffff],
    ] as const) {
      try {
        h.wasi.proc_exit(raw)
        expect.unreachable()
      } catch (e) {
        expect((e as ProcExit).code).toBe(code)
      }
    }
  })

  it('leaves the host usable for inspection after the exit', () => {
    const h = harness()
    expect(() => h.wasi.proc_exit(1)).toThrow()
    expect(h.host.stats.syscalls.proc_exit).toBe(1)
    expect(h.host.recentSyscalls()).toContain('proc_exit')
  })
})

describe('proc_raise', () => {
  it.each([0, 2, 9, 15, 30, 31, -1])('is NOSYS for signal %i: no signal ever reaches the host', (sig) => {
    const h = harness()
    expectErrno(h.wasi.proc_raise(sig), 'NOSYS')
  })
})

describe('sched_yield', () => {
  it('succeeds', () => {
    const h = harness()
    expectErrno(h.wasi.sched_yield(), 'SUCCESS')
    expect(h.host.stats.syscalls.sched_yield).toBe(1)
  })
})

const WRONG_KIND = [STDIN, STDOUT, STDERR, SANDBOX, DATA]

describe('sock_accept', () => {
  it.each(WRONG_KIND)('is NOTSOCK on fd %i', (fd) => {
    const h = harness()
    const p = h.alloc(4, 4)
    h.setU32(p, 0xaaaa)
    expectErrno(h.wasi.sock_accept(fd, 0, p), 'NOTSOCK')
    expect(h.u32(p)).toBe(0xaaaa)
  })

  it('is NOTSOCK on an open file', () => {
    const h = harness()
    const fd = h.openOk('a.txt')
    expectErrno(h.wasi.sock_accept(fd, 0, h.alloc(4, 4)), 'NOTSOCK')
  })

  it('is BADF on a free number and on a closed descriptor', () => {
    const h = harness()
    expectErrno(h.wasi.sock_accept(BAD_FD, 0, h.alloc(4, 4)), 'BADF')
    expectErrno(h.wasi.fd_close(STDOUT), 'SUCCESS')
    expectErrno(h.wasi.sock_accept(STDOUT, 0, h.alloc(4, 4)), 'BADF')
    expectErrno(h.wasi.sock_accept(-1, 0, NEG_PTR), 'BADF')
  })
})

describe('sock_recv', () => {
  it('is NOTSOCK on stdin and stdout, BADF on fd 99', () => {
    const h = harness()
    const buf = h.alloc(16, 1)
    const iov = h.iovecs([[buf, 16]])
    const out = h.alloc(8, 4)
    expectErrno(h.wasi.sock_recv(STDIN, iov, 1, 0, out, out + 4), 'NOTSOCK')
    expectErrno(h.wasi.sock_recv(STDOUT, iov, 1, 0, out, out + 4), 'NOTSOCK')
    expectErrno(h.wasi.sock_recv(SANDBOX, iov, 1, 0, out, out + 4), 'NOTSOCK')
    expectErrno(h.wasi.sock_recv(BAD_FD, iov, 1, 0, out, out + 4), 'BADF')
  })

  it('does not consume stdin', () => {
    const h = harness({ stdin: 'keep' })
    const buf = h.alloc(16, 1)
    const iov = h.iovecs([[buf, 16]])
    const out = h.alloc(8, 4)
    expectErrno(h.wasi.sock_recv(STDIN, iov, 1, 0, out, out + 4), 'NOTSOCK')
    expect(h.readFd(STDIN).text).toBe('keep')
  })
})

describe('sock_send', () => {
  it('is NOTSOCK on stdout (nothing written) and BADF on fd 99', () => {
    const h = harness()
    const s = h.str('hi')
    const iov = h.iovecs([[s.ptr, s.len]])
    const out = h.alloc(4, 4)
    expectErrno(h.wasi.sock_send(STDOUT, iov, 1, 0, out), 'NOTSOCK')
    expectErrno(h.wasi.sock_send(DATA, iov, 1, 0, out), 'NOTSOCK')
    expectErrno(h.wasi.sock_send(BAD_FD, iov, 1, 0, out), 'BADF')
    expect(h.stdoutText()).toBe('')
  })
})

describe('sock_shutdown', () => {
  it('is NOTSOCK on stdout and BADF on fd 99', () => {
    const h = harness()
    expectErrno(h.wasi.sock_shutdown(STDOUT, 3), 'NOTSOCK')
    expectErrno(h.wasi.sock_shutdown(SANDBOX, 1), 'NOTSOCK')
    expectErrno(h.wasi.sock_shutdown(BAD_FD, 1), 'BADF')
    // stdout still works
    expectErrno(h.writeFd(STDOUT, 'x').errno, 'SUCCESS')
    expect(h.stdoutText()).toBe('x')
  })
})
