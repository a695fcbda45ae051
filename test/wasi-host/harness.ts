/**
 * @module A direct-call harness for the `wasi_snapshot_preview1` import object.
 *
 * It builds a `WasiHost` with two MemFs preopens (`/sandbox` rw at fd 3, `/data` ro at fd 4),
 * captured stdout/stderr and chosen stdin, args and env; binds it to a one-page
 * `WebAssembly.Memory` with no module at all; and calls the imports with raw values exactly as
 * wasm passes them: i32 as JS numbers (signed, so a pointer at or above 2^31 arrives negative),
 * i64 as `bigint` (possibly negative).
 *
 * Guest memory is read and written here through the raw `Memory`, never through the host's
 * `GuestMemory`, so the tests do not trust the code they test. Both mounts are wrapped in a
 * handle-counting `Filesystem` so tests can assert that no failed call leaks a backend handle.
 */
import { expect } from 'vitest'
import { Errno, errnoName, Rights, RIGHTS_ALL } from '../../wasi-host/abi/constants.js'
import { GuestFault } from '../../wasi-host/errors.js'
import type { DirEntry, DirHandle, FileHandle, Filesystem, NodeStat, OpenFileOptions, TimeSpec } from '../../wasi-host/fs/filesystem.js'
import { memFsFromTree, type MemFsOptions, type TreeSpec } from '../../wasi-host/fs/mem-fs.js'
import { WasiHost, type PreopenSpec, type WasiHostOptions } from '../../wasi-host/host.js'

export { Errno, errnoName, Rights, RIGHTS_ALL }

/** The 46 functions of `wasi_snapshot_preview1`, as the witx (`typenames.witx`/`wasi_snapshot_preview1.witx`) lists them. */
export const WITX_PREVIEW1 = [
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'sched_yield',
  'random_get',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
] as const
export type Preview1Name = (typeof WITX_PREVIEW1)[number]

/** Parameter kinds of each function in `wasi_snapshot_preview1.witx` (wasm32 lowering). */
export const SIGNATURES: Record<Preview1Name, readonly ('i32' | 'i64')[]> = {
  args_get: ['i32', 'i32'],
  args_sizes_get: ['i32', 'i32'],
  environ_get: ['i32', 'i32'],
  environ_sizes_get: ['i32', 'i32'],
  clock_res_get: ['i32', 'i32'],
  clock_time_get: ['i32', 'i64', 'i32'],
  fd_advise: ['i32', 'i64', 'i64', 'i32'],
  fd_allocate: ['i32', 'i64', 'i64'],
  fd_close: ['i32'],
  fd_datasync: ['i32'],
  fd_fdstat_get: ['i32', 'i32'],
  fd_fdstat_set_flags: ['i32', 'i32'],
  fd_fdstat_set_rights: ['i32', 'i64', 'i64'],
  fd_filestat_get: ['i32', 'i32'],
  fd_filestat_set_size: ['i32', 'i64'],
  fd_filestat_set_times: ['i32', 'i64', 'i64', 'i32'],
  fd_pread: ['i32', 'i32', 'i32', 'i64', 'i32'],
  fd_prestat_get: ['i32', 'i32'],
  fd_prestat_dir_name: ['i32', 'i32', 'i32'],
  fd_pwrite: ['i32', 'i32', 'i32', 'i64', 'i32'],
  fd_read: ['i32', 'i32', 'i32', 'i32'],
  fd_readdir: ['i32', 'i32', 'i32', 'i64', 'i32'],
  fd_renumber: ['i32', 'i32'],
  fd_seek: ['i32', 'i64', 'i32', 'i32'],
  fd_sync: ['i32'],
  fd_tell: ['i32', 'i32'],
  fd_write: ['i32', 'i32', 'i32', 'i32'],
  path_create_directory: ['i32', 'i32', 'i32'],
  path_filestat_get: ['i32', 'i32', 'i32', 'i32', 'i32'],
  path_filestat_set_times: ['i32', 'i32', 'i32', 'i32', 'i64', 'i64', 'i32'],
  path_link: ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'],
  path_open: ['i32', 'i32', 'i32', 'i32', 'i32', 'i64', 'i64', 'i32', 'i32'],
  path_readlink: ['i32', 'i32', 'i32', 'i32', 'i32', 'i32'],
  path_remove_directory: ['i32', 'i32', 'i32'],
  path_rename: ['i32', 'i32', 'i32', 'i32', 'i32', 'i32'],
  path_symlink: ['i32', 'i32', 'i32', 'i32', 'i32'],
  path_unlink_file: ['i32', 'i32', 'i32'],
  poll_oneoff: ['i32', 'i32', 'i32', 'i32'],
  proc_exit: ['i32'],
  proc_raise: ['i32'],
  sched_yield: [],
  random_get: ['i32', 'i32'],
  sock_accept: ['i32', 'i32', 'i32'],
  sock_recv: ['i32', 'i32', 'i32', 'i32', 'i32', 'i32'],
  sock_send: ['i32', 'i32', 'i32', 'i32', 'i32'],
  sock_shutdown: ['i32', 'i32'],
}

/** A raw wasm argument: i32 as a (signed) number, i64 as a (signed) bigint. */
export type RawArg = number | bigint
export type WasiFn = (...args: RawArg[]) => number
export type Preview1 = { readonly [K in Preview1Name]: WasiFn }

export const STDIN = 0
export const STDOUT = 1
export const STDERR = 2
/** `/sandbox`, read-write. */
export const SANDBOX = 3
/** `/data`, read-only. */
export const DATA = 4
export const BAD_FD = 99

export const LOOKUP_FOLLOW = 1
export const O_CREAT = 1
export const O_DIRECTORY = 2
export const O_EXCL = 4
export const O_TRUNC = 8
export const FDFLAG_APPEND = 1

/** What wasi-libc asks for on `open(O_RDONLY)`: everything except the writing rights. */
export const READ_RIGHTS = BigInt(RIGHTS_ALL & ~(Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_DATASYNC))
/** Every defined right (`open(O_RDWR)` in wasi-libc terms). */
export const ALL_RIGHTS = BigInt(RIGHTS_ALL)

/** A pointer at 2^31 - 8 + 2^31 … as wasm passes it: negative. Aligned to 8. */
export const NEG_PTR = -8
/** 0x80000000 as wasm passes it. */
export const HIGH_PTR = 0x80000000 | 0

export const DEFAULT_SANDBOX: TreeSpec = {
  'a.txt': 'alpha\n',
  sub: { 'b.txt': 'bravo\n', deeper: {} },
  link: { symlink: 'a.txt' },
  empty: {},
}
export const DEFAULT_DATA: TreeSpec = {
  'r.txt': 'read only\n',
  dir: { 'c.txt': 'charlie\n' },
  rlink: { symlink: 'r.txt' },
}

/** The default sandbox plus symlinks that lead out of it, for escape tests. */
export const PATH_TREE: TreeSpec = {
  ...DEFAULT_SANDBOX,
  abs: { symlink: '/etc' },
  up: { symlink: '..' },
  up2: { symlink: '../..' },
  sneaky: { symlink: 'sub/../..' },
}

export interface HarnessOptions extends Omit<WasiHostOptions, 'preopens' | 'stdout' | 'stderr'> {
  sandbox?: TreeSpec
  data?: TreeSpec
  /** Further preopens, after `/sandbox` (3) and `/data` (4). */
  extraPreopens?: PreopenSpec[]
  /** No preopens at all (fd 3 is free). */
  noPreopens?: boolean
  memoryPages?: number
  maximumPages?: number
  /** Options for both MemFs mounts (e.g. a small `maxFileSize`). */
  fsOptions?: MemFsOptions
}

const enc = new TextEncoder()
const dec = new TextDecoder()

export class Harness {
  readonly host: WasiHost
  readonly mem: WebAssembly.Memory
  readonly wasi: Preview1
  readonly sandboxFs: Filesystem
  readonly dataFs: Filesystem
  readonly counters: HandleCounter[] = []
  readonly stdoutChunks: Uint8Array[] = []
  readonly stderrChunks: Uint8Array[] = []
  #next = 1024

  constructor(options: HarnessOptions = {}) {
    this.sandboxFs = memFsFromTree(options.sandbox ?? DEFAULT_SANDBOX, options.fsOptions)
    this.dataFs = memFsFromTree(options.data ?? DEFAULT_DATA, options.fsOptions)
    const sandbox = countingFs(this.sandboxFs)
    const data = countingFs(this.dataFs)
    this.counters.push(sandbox.counter, data.counter)
    const preopens: PreopenSpec[] = options.noPreopens
      ? []
      : [
          { guestPath: '/sandbox', fs: sandbox.fs, mode: 'rw' },
          { guestPath: '/data', fs: data.fs, mode: 'ro' },
          ...(options.extraPreopens ?? []),
        ]
    const { sandbox: _s, data: _d, extraPreopens: _e, noPreopens: _n, memoryPages, maximumPages, fsOptions: _f, ...rest } = options
    this.host = new WasiHost({
      ...rest,
      preopens,
      stdout: (chunk) => {
        this.stdoutChunks.push(chunk.slice())
      },
      stderr: (chunk) => {
        this.stderrChunks.push(chunk.slice())
      },
    })
    this.mem = new WebAssembly.Memory({ initial: memoryPages ?? 1, maximum: maximumPages ?? 16 })
    this.host.memory.bind(this.mem)
    this.wasi = this.host.imports.wasi_snapshot_preview1 as unknown as Preview1
  }

  /** Current size of guest memory in bytes. */
  get size(): number {
    return this.mem.buffer.byteLength
  }

  /** Backend handles currently open across the harness's own mounts. */
  openHandles(): number {
    let n = 0
    for (const c of this.counters) n += c.open
    return n
  }

  // ---- guest memory ----------------------------------------------------------------------

  /** Bump-allocates `size` bytes aligned to `align` (zeroed). */
  alloc(size: number, align = 8): number {
    const ptr = Math.ceil(this.#next / align) * align
    if (ptr + size > this.size) throw new Error(`harness allocator exhausted (${ptr}+${size} > ${this.size}); call resetAlloc()`)
    this.#next = ptr + size
    new Uint8Array(this.mem.buffer, ptr, size).fill(0)
    return ptr
  }

  resetAlloc(): void {
    this.#next = 1024
  }

  bytes(b: Uint8Array | readonly number[], align = 1): { ptr: number; len: number } {
    const src = b instanceof Uint8Array ? b : Uint8Array.from(b)
    const ptr = this.alloc(src.byteLength, align)
    new Uint8Array(this.mem.buffer).set(src, ptr)
    return { ptr, len: src.byteLength }
  }

  str(s: string): { ptr: number; len: number } {
    return this.bytes(enc.encode(s))
  }

  /** Writes an iovec array of `[ptr, len]` pairs; returns its address. */
  iovecs(list: readonly (readonly [number, number])[]): number {
    const ptr = this.alloc(list.length * 8, 4)
    const dv = new DataView(this.mem.buffer)
    list.forEach(([p, l], i) => {
      dv.setUint32(ptr + i * 8, p >>> 0, true)
      dv.setUint32(ptr + i * 8 + 4, l >>> 0, true)
    })
    return ptr
  }

  u8(ptr: number): number {
    return new DataView(this.mem.buffer).getUint8(ptr)
  }
  u16(ptr: number): number {
    return new DataView(this.mem.buffer).getUint16(ptr, true)
  }
  u32(ptr: number): number {
    return new DataView(this.mem.buffer).getUint32(ptr, true)
  }
  u64(ptr: number): bigint {
    return new DataView(this.mem.buffer).getBigUint64(ptr, true)
  }
  setU8(ptr: number, v: number): void {
    new DataView(this.mem.buffer).setUint8(ptr, v)
  }
  setU16(ptr: number, v: number): void {
    new DataView(this.mem.buffer).setUint16(ptr, v, true)
  }
  setU32(ptr: number, v: number): void {
    new DataView(this.mem.buffer).setUint32(ptr, v >>> 0, true)
  }
  setU64(ptr: number, v: bigint): void {
    new DataView(this.mem.buffer).setBigUint64(ptr, BigInt.asUintN(64, v), true)
  }
  read(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.mem.buffer).slice(ptr, ptr + len)
  }
  readString(ptr: number, len: number): string {
    return dec.decode(this.read(ptr, len))
  }
  /** Fills `[ptr, ptr+len)` with `byte` (to detect writes). */
  fill(ptr: number, len: number, byte: number): void {
    new Uint8Array(this.mem.buffer).fill(byte, ptr, ptr + len)
  }

  stdoutText(): string {
    return dec.decode(concat(this.stdoutChunks))
  }
  stderrText(): string {
    return dec.decode(concat(this.stderrChunks))
  }

  // ---- conveniences built on the raw imports --------------------------------------------

  /** `path_open`; returns the errno and the new fd (-1 on failure). */
  open(path: string | Uint8Array, o: OpenOptions = {}): { errno: number; fd: number } {
    const p = typeof path === 'string' ? this.str(path) : this.bytes(path)
    const fdPtr = this.alloc(4, 4)
    this.setU32(fdPtr, 0xdeadbeef)
    const errno = this.wasi.path_open(
      o.dirfd ?? SANDBOX,
      o.lookup ?? LOOKUP_FOLLOW,
      p.ptr,
      p.len,
      o.oflags ?? 0,
      o.base ?? READ_RIGHTS,
      o.inheriting ?? ALL_RIGHTS,
      o.fdflags ?? 0,
      fdPtr,
    )
    return { errno, fd: errno === Errno.SUCCESS ? this.u32(fdPtr) : -1 }
  }

  /** `path_open` that must succeed. */
  openOk(path: string, o: OpenOptions = {}): number {
    const r = this.open(path, o)
    expectErrno(r.errno, 'SUCCESS')
    return r.fd
  }

  /** Reads up to `max` bytes with `fd_read`; returns the errno and the text. */
  readFd(fd: number, max = 256): { errno: number; text: string; n: number } {
    const buf = this.alloc(max, 1)
    const iov = this.iovecs([[buf, max]])
    const nPtr = this.alloc(4, 4)
    const errno = this.wasi.fd_read(fd, iov, 1, nPtr)
    const n = errno === 0 ? this.u32(nPtr) : 0
    return { errno, n, text: this.readString(buf, n) }
  }

  /** Writes `s` with `fd_write`; returns the errno and bytes written. */
  writeFd(fd: number, s: string | Uint8Array): { errno: number; n: number } {
    const b = typeof s === 'string' ? this.str(s) : this.bytes(s)
    const iov = this.iovecs([[b.ptr, b.len]])
    const nPtr = this.alloc(4, 4)
    const errno = this.wasi.fd_write(fd, iov, 1, nPtr)
    return { errno, n: errno === 0 ? this.u32(nPtr) : 0 }
  }

  fdstat(fd: number): { errno: number; filetype: number; flags: number; base: bigint; inheriting: bigint } {
    const ptr = this.alloc(24, 8)
    const errno = this.wasi.fd_fdstat_get(fd, ptr)
    return { errno, filetype: this.u8(ptr), flags: this.u16(ptr + 2), base: this.u64(ptr + 8), inheriting: this.u64(ptr + 16) }
  }

  /** Drops rights from `fd` so that it holds `base`/`inheriting` exactly (must be a subset). */
  restrict(fd: number, dropBase: number, dropInheriting = 0): void {
    const st = this.fdstat(fd)
    expectErrno(st.errno, 'SUCCESS')
    expectErrno(this.wasi.fd_fdstat_set_rights(fd, st.base & ~BigInt(dropBase), st.inheriting & ~BigInt(dropInheriting)), 'SUCCESS')
  }

  pathStat(path: string, dirfd = SANDBOX, lookup = LOOKUP_FOLLOW): { errno: number; stat: Filestat } {
    const p = this.str(path)
    const buf = this.alloc(64, 8)
    const errno = this.wasi.path_filestat_get(dirfd, lookup, p.ptr, p.len, buf)
    return { errno, stat: this.filestatAt(buf) }
  }

  fdStat(fd: number): { errno: number; stat: Filestat } {
    const buf = this.alloc(64, 8)
    const errno = this.wasi.fd_filestat_get(fd, buf)
    return { errno, stat: this.filestatAt(buf) }
  }

  filestatAt(ptr: number): Filestat {
    return {
      dev: this.u64(ptr),
      ino: this.u64(ptr + 8),
      filetype: this.u8(ptr + 16),
      nlink: this.u64(ptr + 24),
      size: this.u64(ptr + 32),
      atim: this.u64(ptr + 40),
      mtim: this.u64(ptr + 48),
      ctim: this.u64(ptr + 56),
    }
  }

  /** Parses the dirents in `[buf, buf+used)`; a truncated last entry is reported with `truncated`. */
  parseDirents(buf: number, used: number): Dirent[] {
    const out: Dirent[] = []
    let at = 0
    while (at < used) {
      if (used - at < 24) {
        out.push({ next: 0n, ino: 0n, type: 0, name: '', truncated: true })
        break
      }
      const next = this.u64(buf + at)
      const ino = this.u64(buf + at + 8)
      const namlen = this.u32(buf + at + 16)
      const type = this.u8(buf + at + 20)
      const room = Math.min(namlen, used - at - 24)
      out.push({ next, ino, type, name: this.readString(buf + at + 24, room), truncated: room < namlen })
      at += 24 + namlen
    }
    return out
  }

  /** Calls `fd_readdir` once; returns errno, bufused and the parsed entries. */
  readdir(fd: number, bufLen = 4096, cookie = 0n): { errno: number; used: number; entries: Dirent[] } {
    const buf = this.alloc(bufLen, 8)
    const usedPtr = this.alloc(4, 4)
    const errno = this.wasi.fd_readdir(fd, buf, bufLen, cookie, usedPtr)
    const used = errno === 0 ? this.u32(usedPtr) : 0
    return { errno, used, entries: errno === 0 ? this.parseDirents(buf, used) : [] }
  }
}

export interface OpenOptions {
  dirfd?: number
  lookup?: number
  oflags?: number
  base?: bigint
  inheriting?: bigint
  fdflags?: number
}

export interface Filestat {
  dev: bigint
  ino: bigint
  filetype: number
  nlink: bigint
  size: bigint
  atim: bigint
  mtim: bigint
  ctim: bigint
}

export interface Dirent {
  next: bigint
  ino: bigint
  type: number
  name: string
  truncated: boolean
}

export function harness(options: HarnessOptions = {}): Harness {
  return new Harness(options)
}

// ---- assertions -------------------------------------------------------------------------

/** Asserts that `rc` is the errno named `name` (compared by name, so failures read well). */
export function expectErrno(rc: number, name: keyof typeof Errno): void {
  expect(errnoName(rc)).toBe(name)
}

/** Asserts that `fn` traps: it throws a `GuestFault` (optionally naming `syscall`). */
export function expectTrap(fn: () => unknown, syscall?: string): GuestFault {
  let thrown: unknown
  let returned: unknown
  try {
    returned = fn()
  } catch (e) {
    thrown = e
  }
  if (thrown === undefined) {
    throw new Error(
      `expected a trap (GuestFault), but the call returned ${typeof returned === 'number' ? errnoName(returned) : String(returned)}`,
    )
  }
  expect(thrown).toBeInstanceOf(GuestFault)
  if (syscall !== undefined) expect((thrown as GuestFault).syscall).toBe(syscall)
  return thrown as GuestFault
}

// ---- backend inspection (side effects seen from outside the guest) ----------------------

function walk(fs: Filesystem, path: string): { dir: DirHandle; name: string; opened: DirHandle[] } {
  const parts = path.split('/').filter((p) => p !== '')
  const root = fs.root()
  const opened = [root]
  let dir = root
  for (const p of parts.slice(0, -1)) {
    dir = dir.openDir(p)
    opened.push(dir)
  }
  return { dir, name: parts[parts.length - 1]!, opened }
}

function closeAll(hs: DirHandle[]): void {
  for (const h of hs.reverse()) h.close()
}

/** lstat of `path` in `fs`, or undefined if it does not exist. */
export function statIn(fs: Filesystem, path: string): NodeStat | undefined {
  let w: ReturnType<typeof walk> | undefined
  try {
    w = walk(fs, path)
    return w.dir.statChild(w.name)
  } catch {
    return undefined
  } finally {
    if (w) closeAll(w.opened)
  }
}

export function existsIn(fs: Filesystem, path: string): boolean {
  return statIn(fs, path) !== undefined
}

/** The content of the regular file at `path` in `fs`. */
export function readIn(fs: Filesystem, path: string): string {
  const w = walk(fs, path)
  try {
    const f = w.dir.openFile(w.name, { read: true, write: false, create: false, exclusive: false, truncate: false })
    try {
      const size = Number(f.stat().size)
      const buf = new Uint8Array(size)
      const n = f.read(buf, 0n)
      return dec.decode(buf.subarray(0, n))
    } finally {
      f.close()
    }
  } finally {
    closeAll(w.opened)
  }
}

export function listIn(fs: Filesystem, path = ''): string[] {
  const root = fs.root()
  const opened = [root]
  try {
    let dir = root
    for (const p of path.split('/').filter((x) => x !== '')) {
      dir = dir.openDir(p)
      opened.push(dir)
    }
    return dir
      .readdir()
      .map((e) => e.name)
      .sort()
  } finally {
    closeAll(opened)
  }
}

export function readlinkIn(fs: Filesystem, path: string): string {
  const w = walk(fs, path)
  try {
    return w.dir.readlink(w.name)
  } finally {
    closeAll(w.opened)
  }
}

// ---- a handle-counting Filesystem wrapper ---------------------------------------------

export interface HandleCounter {
  /** Handles currently open. */
  open: number
  /** Handles ever opened. */
  opened: number
  /** Handles ever closed. */
  closed: number
  /** A handle was closed twice. */
  doubleClose: number
}

const innerOf = new WeakMap<object, DirHandle>()

/**
 * Wraps `inner` so that every `DirHandle`/`FileHandle` it hands out is counted. Two-handle
 * operations unwrap the target, so the backend's own brand checks still see its handles.
 */
export function countingFs(inner: Filesystem, log?: string[]): { fs: Filesystem; counter: HandleCounter } {
  const counter: HandleCounter = { open: 0, opened: 0, closed: 0, doubleClose: 0 }
  const track = (): (() => void) => {
    counter.open++
    counter.opened++
    let closed = false
    return () => {
      if (closed) {
        counter.doubleClose++
        return
      }
      closed = true
      counter.open--
      counter.closed++
    }
  }
  const wrapFile = (f: FileHandle): FileHandle => {
    const done = track()
    return {
      kind: 'file',
      get filetype() {
        return f.filetype
      },
      stat: () => f.stat(),
      read: (dst, pos) => f.read(dst, pos),
      write: (src, pos) => f.write(src, pos),
      setSize: (s) => f.setSize(s),
      setTimes: (a: TimeSpec, m: TimeSpec) => f.setTimes(a, m),
      allocate: (o, l) => f.allocate(o, l),
      sync: () => f.sync(),
      datasync: () => f.datasync(),
      close: () => {
        done()
        f.close()
      },
    }
  }
  const wrapDir = (d: DirHandle): DirHandle => {
    const done = track()
    const unwrap = (h: DirHandle): DirHandle => innerOf.get(h) ?? h
    const note = (op: string, name: string): void => {
      log?.push(`${op}(${name})`)
    }
    const w: DirHandle = {
      kind: 'dir',
      stat: () => d.stat(),
      setTimes: (a, m) => d.setTimes(a, m),
      statChild: (n) => {
        note('statChild', n)
        return d.statChild(n)
      },
      openDir: (n) => {
        note('openDir', n)
        return wrapDir(d.openDir(n))
      },
      openFile: (n, o: OpenFileOptions) => {
        note('openFile', n)
        return wrapFile(d.openFile(n, o))
      },
      readlink: (n) => {
        note('readlink', n)
        return d.readlink(n)
      },
      mkdir: (n) => d.mkdir(n),
      symlink: (t, n) => d.symlink(t, n),
      unlink: (n) => d.unlink(n),
      rmdir: (n) => d.rmdir(n),
      rename: (n, to, tn) => d.rename(n, unwrap(to), tn),
      link: (n, to, tn) => d.link(n, unwrap(to), tn),
      setTimesChild: (n, a, m) => d.setTimesChild(n, a, m),
      readdir: (): readonly DirEntry[] => d.readdir(),
      close: () => {
        done()
        d.close()
      },
    }
    innerOf.set(w, d)
    return w
  }
  return { fs: { caps: inner.caps, root: () => wrapDir(inner.root()) }, counter }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0
  for (const c of chunks) n += c.byteLength
  const out = new Uint8Array(n)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}
