import { describe, expect, it } from 'vitest'
import { escapeControlCharacters, quoteGuestString } from '../../../wasi-host/trace/escape.js'
import { TRACE_SIGNATURES } from '../../../wasi-host/trace/signatures.js'
import { formatTraceJson, formatTraceText, traceImports, TraceSummary, type TraceEvent } from '../../../wasi-host/trace/tracer.js'
import { ALL_RIGHTS, DATA, Harness, O_CREAT, READ_RIGHTS, SANDBOX, WITX_PREVIEW1, type RawArg } from '../harness.js'

/** A harness whose imports are traced; `call` returns the one event the call produced and its line. */
function traced() {
  const h = new Harness()
  const events: TraceEvent[] = []
  const wasi = traceImports(h.host, h.host.imports.wasi_snapshot_preview1, (e) => events.push(e)) as unknown as Record<
    string,
    (...a: RawArg[]) => number
  >
  const call = (name: string, ...args: RawArg[]) => {
    const before = events.length
    let thrown: unknown
    try {
      wasi[name]!(...args)
    } catch (e) {
      thrown = e
    }
    expect(events.length).toBe(before + 1)
    const e = events[events.length - 1]!
    return { e, line: formatTraceText(e), json: JSON.parse(formatTraceJson(e)) as Record<string, unknown>, thrown }
  }
  return { h, call, events }
}

describe('the trace decodes every preview1 call', () => {
  it('has a signature for each of the 46 functions, matching its wasm arity', () => {
    expect(Object.keys(TRACE_SIGNATURES).sort()).toEqual([...WITX_PREVIEW1].sort())
  })

  const { h, call } = traced()
  const p = (s: string) => h.str(s)
  const out = () => h.alloc(64, 8)
  const iov = (s: string) => {
    const b = h.str(s)
    return h.iovecs([[b.ptr, b.len]])
  }

  const cases: Record<string, () => { line: string; e: TraceEvent }> = {
    args_get: () => call('args_get', out(), out()),
    args_sizes_get: () => call('args_sizes_get', out(), out()),
    environ_get: () => call('environ_get', out(), out()),
    environ_sizes_get: () => call('environ_sizes_get', out(), out()),
    clock_res_get: () => call('clock_res_get', 1, out()),
    clock_time_get: () => call('clock_time_get', 0, 1000n, out()),
    fd_advise: () => call('fd_advise', SANDBOX, 0n, 10n, 2),
    fd_allocate: () => call('fd_allocate', 99, 0n, 10n),
    fd_close: () => call('fd_close', 99),
    fd_datasync: () => call('fd_datasync', 1),
    fd_fdstat_get: () => call('fd_fdstat_get', SANDBOX, out()),
    fd_fdstat_set_flags: () => call('fd_fdstat_set_flags', 1, 1),
    fd_fdstat_set_rights: () => call('fd_fdstat_set_rights', 2, 0n, 0n),
    fd_filestat_get: () => call('fd_filestat_get', SANDBOX, out()),
    fd_filestat_set_size: () => call('fd_filestat_set_size', 99, 5n),
    fd_filestat_set_times: () => call('fd_filestat_set_times', 99, 1n, 2n, 5),
    fd_pread: () => call('fd_pread', 99, iov('xx'), 1, 7n, out()),
    fd_prestat_get: () => call('fd_prestat_get', SANDBOX, out()),
    fd_prestat_dir_name: () => {
      const b = h.alloc(16, 1)
      return call('fd_prestat_dir_name', SANDBOX, b, 8)
    },
    fd_pwrite: () => call('fd_pwrite', 99, iov('xy'), 1, 3n, out()),
    fd_read: () => call('fd_read', 0, iov('abcd'), 1, out()),
    fd_readdir: () => call('fd_readdir', SANDBOX, h.alloc(128, 8), 128, 0n, out()),
    fd_renumber: () => call('fd_renumber', 98, 97),
    fd_seek: () => call('fd_seek', 99, -4n, 2, out()),
    fd_sync: () => call('fd_sync', 99),
    fd_tell: () => call('fd_tell', 99, out()),
    fd_write: () => call('fd_write', 1, iov('hello'), 1, out()),
    path_create_directory: () => {
      const s = p('newdir')
      return call('path_create_directory', SANDBOX, s.ptr, s.len)
    },
    path_filestat_get: () => {
      const s = p('a.txt')
      return call('path_filestat_get', SANDBOX, 1, s.ptr, s.len, out())
    },
    path_filestat_set_times: () => {
      const s = p('a.txt')
      return call('path_filestat_set_times', DATA, 0, s.ptr, s.len, 1n, 2n, 5)
    },
    path_link: () => {
      const a = p('a.txt'),
        b = p('l.txt')
      return call('path_link', SANDBOX, 0, a.ptr, a.len, SANDBOX, b.ptr, b.len)
    },
    path_open: () => {
      const s = p('../x')
      return call('path_open', SANDBOX, 1, s.ptr, s.len, 0, READ_RIGHTS, ALL_RIGHTS, 0, out())
    },
    path_readlink: () => {
      const s = p('link')
      return call('path_readlink', SANDBOX, s.ptr, s.len, h.alloc(32, 1), 32, out())
    },
    path_remove_directory: () => {
      const s = p('empty')
      return call('path_remove_directory', SANDBOX, s.ptr, s.len)
    },
    path_rename: () => {
      const a = p('sub/b.txt'),
        b = p('b2.txt')
      return call('path_rename', SANDBOX, a.ptr, a.len, SANDBOX, b.ptr, b.len)
    },
    path_symlink: () => {
      const t = p('../../etc'),
        l = p('esc')
      return call('path_symlink', t.ptr, t.len, SANDBOX, l.ptr, l.len)
    },
    path_unlink_file: () => {
      const s = p('r.txt')
      return call('path_unlink_file', DATA, s.ptr, s.len)
    },
    poll_oneoff: () => call('poll_oneoff', out(), out(), 0, out()),
    proc_exit: () => call('proc_exit', 3),
    proc_raise: () => call('proc_raise', 9),
    sched_yield: () => call('sched_yield'),
    random_get: () => call('random_get', h.alloc(16, 1), 16),
    sock_accept: () => call('sock_accept', 1, 0, out()),
    sock_recv: () => call('sock_recv', 1, iov('zz'), 1, 0, out(), out()),
    sock_send: () => call('sock_send', 1, iov('zz'), 1, 0, out()),
    sock_shutdown: () => call('sock_shutdown', 1, 2),
  }

  const expected: Record<string, RegExp> = {
    args_get: /^args_get\(argv=0x[0-9a-f]+, argv_buf=0x[0-9a-f]+\) = 0$/,
    args_sizes_get: /^args_sizes_get\(\) = 0 \(argc=0, argv_buf_size=0\)$/,
    environ_get: /^environ_get\(environ=0x[0-9a-f]+, environ_buf=0x[0-9a-f]+\) = 0$/,
    environ_sizes_get: /^environ_sizes_get\(\) = 0 \(count=0, buf_size=0\)$/,
    clock_res_get: /^clock_res_get\(clock=MONOTONIC\) = 0 \(resolution=\d+\)$/,
    clock_time_get: /^clock_time_get\(clock=REALTIME\) = 0 \(time=\d+\)$/,
    fd_advise: /^fd_advise\(3, offset=0, len=10, advice=RANDOM\) = BADF$/,
    fd_allocate: /^fd_allocate\(99, offset=0, len=10\) = BADF$/,
    fd_close: /^fd_close\(99\) = BADF$/,
    fd_datasync: /^fd_datasync\(1\) = INVAL$/,
    fd_fdstat_get: /^fd_fdstat_get\(3\) = 0 \(type=DIRECTORY, flags=0, rights=\+\d+\)$/,
    fd_fdstat_set_flags: /^fd_fdstat_set_flags\(1, flags=APPEND\) = 0$/,
    fd_fdstat_set_rights: /^fd_fdstat_set_rights\(2, base=0, inheriting=0\) = 0$/,
    fd_filestat_get: /^fd_filestat_get\(3\) = 0 \(type=DIRECTORY, size=\d+\)$/,
    fd_filestat_set_size: /^fd_filestat_set_size\(99, size=5\) = BADF$/,
    fd_filestat_set_times: /^fd_filestat_set_times\(99, atim=1, mtim=2, flags=ATIM\|MTIM\) = BADF$/,
    fd_pread: /^fd_pread\(99, 1 iov 2 bytes, offset=7\) = BADF$/,
    fd_prestat_get: /^fd_prestat_get\(3\) = 0 \(name_len=8\)$/,
    fd_prestat_dir_name: /^fd_prestat_dir_name\(3\) = 0 \(name="\/sandbox"\)$/,
    fd_pwrite: /^fd_pwrite\(99, 1 iov 2 bytes, offset=3\) = BADF$/,
    fd_read: /^fd_read\(0, 1 iov 4 bytes\) = 0 \(n=0\)$/,
    fd_readdir: /^fd_readdir\(3, buf=128 bytes, cookie=0\) = 0 \(n=\d+\)$/,
    fd_renumber: /^fd_renumber\(98, to=97\) = BADF$/,
    fd_seek: /^fd_seek\(99, offset=-4, whence=END\) = BADF$/,
    fd_sync: /^fd_sync\(99\) = BADF$/,
    fd_tell: /^fd_tell\(99\) = BADF$/,
    fd_write: /^fd_write\(1, 1 iov 5 bytes\) = 0 \(n=5\)$/,
    path_create_directory: /^path_create_directory\(3, "newdir"\) = 0$/,
    path_filestat_get: /^path_filestat_get\(3, flags=SYMLINK_FOLLOW, "a\.txt"\) = 0 \(type=REGULAR_FILE, size=\d+\)$/,
    path_filestat_set_times: /^path_filestat_set_times\(4, flags=0, "a.txt", atim=1, mtim=2, fst=ATIM\|MTIM\) = ROFS \[read-only \/data\]$/,
    path_link: /^path_link\(3, flags=0, "a.txt", to_fd=3, to="l.txt"\) = 0$/,
    path_open:
      /^path_open\(3, dirflags=SYMLINK_FOLLOW, "\.\.\/x", oflags=0, rights=READ\|\+\d+, inheriting=READ\|WRITE\|\+\d+, fdflags=0\) = PERM \[escapes \/sandbox\]$/,
    path_readlink: /^path_readlink\(3, "link", buf=32 bytes\) = 0 \(n=5\)$/,
    path_remove_directory: /^path_remove_directory\(3, "empty"\) = 0$/,
    path_rename: /^path_rename\(3, "sub\/b\.txt", to_fd=3, to="b2\.txt"\) = 0$/,
    path_symlink: /^path_symlink\(target="\.\.\/\.\.\/etc", 3, "esc"\) = PERM \[escapes \/sandbox\]$/,
    path_unlink_file: /^path_unlink_file\(4, "r\.txt"\) = ROFS \[read-only \/data\]$/,
    poll_oneoff: /^poll_oneoff\(in=0x[0-9a-f]+, out=0x[0-9a-f]+, nsubs=0\) = INVAL$/,
    proc_exit: /^proc_exit\(code=3\) = exit$/,
    proc_raise: /^proc_raise\(signal=9\) = NOSYS$/,
    sched_yield: /^sched_yield\(\) = 0$/,
    random_get: /^random_get\(buf=16 bytes\) = 0$/,
    sock_accept: /^sock_accept\(1, flags=0\) = NOTSOCK$/,
    sock_recv: /^sock_recv\(1, 1 iov 2 bytes, flags=0\) = NOTSOCK$/,
    sock_send: /^sock_send\(1, 1 iov 2 bytes, flags=0\) = NOTSOCK$/,
    sock_shutdown: /^sock_shutdown\(1, how=2\) = NOTSOCK$/,
  }

  for (const name of WITX_PREVIEW1) {
    it(name, () => {
      const { line, e } = cases[name]!()
      expect(e.call).toBe(name)
      expect(line).toMatch(expected[name]!)
    })
  }
})

describe('trace safety', () => {
  it('escapes hostile guest strings in text and JSON lines', () => {
    const { h, call } = traced()
    const evil = 'x\x1b[2J\n\u202efdp.exe\u200b'
    const s = h.str(evil)
    const { line, json } = call('path_open', SANDBOX, 1, s.ptr, s.len, 0, READ_RIGHTS, ALL_RIGHTS, 0, h.alloc(4, 4))
    expect(line).not.toMatch(/[\x00-\x1f\x7f\u200b\u202e]/)
    expect(line).toContain(quoteGuestString(evil))
    const text = formatTraceJson({ call: 'path_open', args: { path: evil }, result: 'NOENT', us: 1 })
    expect(text).not.toMatch(/[\x00-\x1f\x7f\u200b\u202e]/)
    expect(JSON.parse(text).args.path).toBe(evil)
    expect(json.call).toBe('path_open')
  })

  it('a bad pointer is shown, never read, and the call still faults as untraced', () => {
    const { h, call } = traced()
    const { line, thrown } = call('path_open', SANDBOX, 1, h.size - 2, 100, 0, READ_RIGHTS, ALL_RIGHTS, 0, 0)
    expect(line).toMatch(/<bad pointer 0x[0-9a-f]+>.*= trap$/)
    expect(thrown).toBeDefined()
  })

  it('escapeControlCharacters keeps ordinary text and emoji, escapes C0, C1, bidi, zero-width and lone surrogates', () => {
    expect(escapeControlCharacters('héllo wörld 😀 /data/x')).toBe('héllo wörld 😀 /data/x')
    expect(escapeControlCharacters('\x00\x07\t\n\x9b\u061c\u200d\u2066\ufeff\ud800')).toBe(
      '\\x00\\x07\\t\\n\\x9b\\u{61c}\\u{200d}\\u{2066}\\u{feff}\\u{d800}',
    )
  })

  it('summary counts calls, errors and time per function', () => {
    const { call, events } = traced()
    call('fd_close', 99)
    call('fd_close', 98)
    call('sched_yield')
    const s = new TraceSummary()
    for (const e of events) s.add(e)
    expect(
      s
        .rows()
        .map((r) => [r.call, r.calls, r.errors])
        .sort(),
    ).toEqual([
      ['fd_close', 2, 2],
      ['sched_yield', 1, 0],
    ])
    const s2 = new TraceSummary()
    s2.add({ call: 'fd_close', args: {}, result: 'BADF', us: 2 })
    s2.add({ call: 'fd_close', args: {}, result: 'SUCCESS', us: 4 })
    s2.add({ call: 'sched_yield', args: {}, result: 'SUCCESS', us: 1 })
    expect(s2.rows()).toEqual([
      { call: 'fd_close', calls: 2, errors: 1, us: 6 },
      { call: 'sched_yield', calls: 1, errors: 0, us: 1 },
    ])
    expect(s2.format()).toMatch(/85\.71 +6 +3\.00 +2 +1 fd_close/)
  })

  it('a write open on a read-only mount is traced with its denial; ordinary errors have none', () => {
    const { h, call } = traced()
    const s = h.str('r.txt')
    const { e } = call('path_open', DATA, 1, s.ptr, s.len, O_CREAT, READ_RIGHTS, ALL_RIGHTS, 0, h.alloc(4, 4))
    expect(e.denial).toMatchObject({ kind: 'read-only', mount: '/data' })
    const m = h.str('nope.txt')
    const miss = call('path_open', SANDBOX, 1, m.ptr, m.len, 0, READ_RIGHTS, ALL_RIGHTS, 0, h.alloc(4, 4))
    expect(miss.e.result).toBe('NOENT')
    expect(miss.e.denial).toBeUndefined()
    expect(h.host.denials.events.map((d) => [d.call, d.kind, d.path])).toEqual([['path_open', 'read-only', '/data/r.txt']])
  })
})
