/**
 * @module The host half of a script's global API (`script-prelude.ts` is the other): console
 * output, files, directory listings, args, env, stdin, exit and random seeds, each done by
 * calling the run's `WasiHost` preview1 functions (`path_open`, `fd_read`, `fd_write`,
 * `fd_readdir`, `fd_close`, …) on the engine's own linear memory, with scratch space from the
 * engine's allocator. So a script's files go through the same resolver, mounts, rights, quotas
 * and output limits as any WASI guest's: there is no second file API.
 *
 * SECURITY: everything read back from the engine's memory is untrusted and bounded (what a call
 * may accumulate on the host is capped by the run's memory limit); guest-visible failures are
 * errnos, never host messages; unwinds (`ProcExit`, `LimitExceeded`, traps) propagate.
 */
import { concatBytes } from '../wasi-host/abi/bytes.js'
import { Errno, errnoName, Rights } from '../wasi-host/index.js'
import { Lookupflags, Oflags } from '../wasi-host/abi/constants.js'

/** A failure the script sees as an `Error` with `code` (`ENOENT`, `EPERM`, …). */
export class ScriptErrno {
  constructor(readonly errno: number) {}
}

/** What the API needs of the engine instance: its memory and allocator. */
export interface EngineMemory {
  memory: WebAssembly.Memory
  malloc(size: number): number
  free(ptr: number): void
}

type Syscall = (...args: never[]) => number

const MESSAGES: Partial<Record<number, string>> = {
  [Errno.NOENT]: 'no such file or directory',
  [Errno.PERM]: 'operation not permitted',
  [Errno.ACCES]: 'permission denied',
  [Errno.NOTCAPABLE]: 'capabilities insufficient',
  [Errno.ROFS]: 'read-only file system',
  [Errno.ISDIR]: 'is a directory',
  [Errno.NOTDIR]: 'not a directory',
  [Errno.EXIST]: 'file exists',
  [Errno.LOOP]: 'too many symbolic links',
  [Errno.NOSYS]: 'function not implemented (not allowed by the policy)',
  [Errno.NOMEM]: 'not enough memory',
  [Errno.DQUOT]: 'disk quota exceeded',
  [Errno.NOSPC]: 'no space left on device',
  [Errno.MFILE]: 'too many open files',
  [Errno.NAMETOOLONG]: 'name too long',
  [Errno.ILSEQ]: 'illegal byte sequence',
  [Errno.INVAL]: 'invalid argument',
  [Errno.BADF]: 'bad file descriptor',
  [Errno.FBIG]: 'file too large',
}

/** The script-visible shape of an errno: `{ err: 'ENOENT', errno: 44, msg }`. */
export function errnoAnswer(errno: number): { err: string; errno: number; msg: string } {
  return { err: `E${errnoName(errno)}`, errno, msg: MESSAGES[errno] ?? 'error' }
}

const READ_RIGHTS = BigInt(Rights.FD_READ | Rights.FD_SEEK | Rights.FD_TELL | Rights.FD_FILESTAT_GET)
const WRITE_RIGHTS = BigInt(Rights.FD_WRITE | Rights.FD_SEEK | Rights.FD_TELL | Rights.FD_FILESTAT_GET | Rights.FD_FILESTAT_SET_SIZE)
const DIR_RIGHTS = BigInt(Rights.FD_READDIR | Rights.FD_FILESTAT_GET)
const CHUNK = 64 * 1024
const DIRENT_HEADER = 24
/** The first descriptor after stdio: preopens are numbered from here. */
const FIRST_PREOPEN = 3
const MAX_PREOPENS = 1024

interface Preopen {
  fd: number
  path: string
}

const utf8 = new TextEncoder()
const text = new TextDecoder()

/**
 * One run's API over one WasiHost's imports and the engine's memory. `maxBytes` bounds what any
 * one call accumulates on the host (a file, stdin, a listing): the engine could not hold more.
 */
export class ScriptApi {
  readonly #wasi: Record<string, Syscall | undefined>
  readonly #engine: EngineMemory
  readonly #maxBytes: number
  #preopens: Preopen[] | undefined

  constructor(wasi: Record<string, Syscall>, engine: EngineMemory, maxBytes: number) {
    this.#wasi = wasi
    this.#engine = engine
    this.#maxBytes = maxBytes
  }

  /** Calls a preview1 function the policy granted; `NOSYS` when it did not. */
  #call(name: string, ...args: (number | bigint)[]): number {
    const f = this.#wasi[name]
    if (f === undefined) return Errno.NOSYS
    return (f as (...a: (number | bigint)[]) => number)(...args)
  }

  #check(errno: number): void {
    if (errno !== Errno.SUCCESS) throw new ScriptErrno(errno)
  }

  /** Scratch space in the engine's memory for the length of `use`. */
  #scratch<T>(size: number, use: (ptr: number) => T): T {
    const ptr = this.#engine.malloc(size)
    if (ptr === 0) throw new ScriptErrno(Errno.NOMEM)
    try {
      return use(ptr)
    } finally {
      this.#engine.free(ptr)
    }
  }

  #view(): DataView {
    return new DataView(this.#engine.memory.buffer)
  }
  #bytes(): Uint8Array {
    return new Uint8Array(this.#engine.memory.buffer)
  }

  /** Writes all of `data` to `fd` (partial writes continue). */
  #writeAll(fd: number, data: Uint8Array): void {
    if (data.byteLength === 0) return
    const size = Math.min(data.byteLength, 1024 * 1024)
    this.#scratch(16 + size, (p) => {
      for (let at = 0; at < data.byteLength;) {
        const n = Math.min(size, data.byteLength - at)
        this.#bytes().set(data.subarray(at, at + n), p + 16)
        const v = this.#view()
        v.setUint32(p, p + 16, true)
        v.setUint32(p + 4, n, true)
        this.#check(this.#call('fd_write', fd, p, 1, p + 8))
        const wrote = this.#view().getUint32(p + 8, true)
        if (wrote === 0) throw new ScriptErrno(Errno.IO)
        at += Math.min(wrote, n)
      }
    })
  }

  /** Reads `fd` to its end, at most `maxBytes`. */
  #readAll(fd: number): Uint8Array {
    const chunks: Uint8Array[] = []
    let total = 0
    this.#scratch(16 + CHUNK, (p) => {
      for (;;) {
        const v = this.#view()
        v.setUint32(p, p + 16, true)
        v.setUint32(p + 4, CHUNK, true)
        this.#check(this.#call('fd_read', fd, p, 1, p + 8))
        const n = Math.min(this.#view().getUint32(p + 8, true), CHUNK)
        if (n === 0) break
        total += n
        if (total > this.#maxBytes) throw new ScriptErrno(Errno.NOMEM)
        chunks.push(this.#bytes().slice(p + 16, p + 16 + n))
      }
    })
    return concatBytes(chunks, total)
  }

  /** The preopened directories, as the guest sees them (`fd_prestat_get`, `fd_prestat_dir_name`). */
  #mounts(): Preopen[] {
    if (this.#preopens) return this.#preopens
    const found: Preopen[] = []
    this.#scratch(8, (p) => {
      for (let fd = FIRST_PREOPEN; fd < FIRST_PREOPEN + MAX_PREOPENS; fd++) {
        if (this.#call('fd_prestat_get', fd, p) !== Errno.SUCCESS) break
        const len = this.#view().getUint32(p + 4, true)
        if (len > 4096) continue
        const name = this.#scratch(len + 1, (q) => {
          if (this.#call('fd_prestat_dir_name', fd, q, len) !== Errno.SUCCESS) return undefined
          return text.decode(this.#bytes().slice(q, q + len))
        })
        if (name !== undefined) found.push({ fd, path: name })
      }
    })
    return (this.#preopens = found)
  }

  /**
   * The preopen a path lies under and the rest of the path, as wasi-libc finds them: the longest
   * preopen whose path is a component-wise prefix. The rest goes to `path_open` as it is (its
   * `..`, symlinks and all), so the one resolver decides what it may reach.
   */
  #locate(path: string): { fd: number; rel: string } {
    if (path.length === 0 || path.includes('\0')) throw new ScriptErrno(Errno.INVAL)
    const abs = path.startsWith('/') ? path : `/${path}`
    let best: Preopen | undefined
    let rest = ''
    for (const m of this.#mounts()) {
      const root = m.path === '.' ? '/' : m.path.replace(/\/+$/, '') || '/'
      let r: string | undefined
      if (root === '/') r = abs.replace(/^\/+/, '')
      else if (abs === root) r = ''
      else if (abs.startsWith(`${root}/`)) r = abs.slice(root.length + 1).replace(/^\/+/, '')
      if (r !== undefined && (best === undefined || root.length > (best.path.replace(/\/+$/, '') || '/').length)) {
        best = m
        rest = r
      }
    }
    if (best === undefined) throw new ScriptErrno(Errno.NOENT)
    return { fd: best.fd, rel: rest === '' ? '.' : rest }
  }

  #open(path: string, oflags: number, rights: bigint): number {
    const { fd: dirfd, rel } = this.#locate(path)
    const name = utf8.encode(rel)
    return this.#scratch(name.byteLength + 8, (p) => {
      this.#bytes().set(name, p + 8)
      this.#check(this.#call('path_open', dirfd, Lookupflags.SYMLINK_FOLLOW, p + 8, name.byteLength, oflags, rights, 0n, 0, p))
      return this.#view().getUint32(p, true)
    })
  }

  #withFd<T>(fd: number, use: (fd: number) => T): T {
    try {
      return use(fd)
    } finally {
      this.#call('fd_close', fd)
    }
  }

  /**
   * While a plugin's module is evaluated for its snapshot: it sees no input, no arguments, and
   * what it prints to stdout is dropped (SECURITY: nothing of a call can enter a snapshot).
   */
  loading = false

  write(fd: number, s: string): void {
    if (fd !== 1 && fd !== 2) throw new ScriptErrno(Errno.BADF)
    if (this.loading && fd === 1) return
    this.#writeAll(fd, utf8.encode(s))
  }

  /** A call's output, as the exported function returned it. */
  output(data: string | Uint8Array): void {
    this.#writeAll(1, typeof data === 'string' ? utf8.encode(data) : data)
  }

  readFile(path: string, bytes: boolean): string | Uint8Array {
    const data = this.#withFd(this.#open(path, 0, READ_RIGHTS), (fd) => this.#readAll(fd))
    return bytes ? data : text.decode(data)
  }

  writeFile(path: string, data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? utf8.encode(data) : data
    this.#withFd(this.#open(path, Oflags.CREAT | Oflags.TRUNC, WRITE_RIGHTS), (fd) => this.#writeAll(fd, bytes))
  }

  readdir(path: string): string[] {
    return this.#withFd(this.#open(path, Oflags.DIRECTORY, DIR_RIGHTS), (fd) => {
      const names: string[] = []
      let total = 0
      let cookie = 0n
      this.#scratch(16 + CHUNK, (p) => {
        for (;;) {
          this.#check(this.#call('fd_readdir', fd, p + 16, CHUNK, cookie, p))
          const used = Math.min(this.#view().getUint32(p, true), CHUNK)
          const v = this.#view()
          let at = 0
          let progressed = false
          while (at + DIRENT_HEADER <= used) {
            const next = v.getBigUint64(p + 16 + at, true)
            const len = v.getUint32(p + 16 + at + 16, true)
            if (at + DIRENT_HEADER + len > used) break // cut off: asked again from its cookie
            const name = text.decode(this.#bytes().slice(p + 16 + at + DIRENT_HEADER, p + 16 + at + DIRENT_HEADER + len))
            if (name !== '.' && name !== '..') {
              total += len + 16
              if (total > this.#maxBytes) throw new ScriptErrno(Errno.NOMEM)
              names.push(name)
            }
            cookie = next
            progressed = true
            at += DIRENT_HEADER + len
          }
          if (used < CHUNK || !progressed) break
        }
      })
      return names.sort()
    })
  }

  stdin(): string {
    return text.decode(this.stdinBytes())
  }

  stdinBytes(): Uint8Array {
    return this.loading ? new Uint8Array(0) : this.#readAll(0)
  }

  /** `argv` without argv[0] (the script's name), as `args_get` gives it. */
  args(): string[] {
    if (this.loading) return []
    return this.#strings('args_sizes_get', 'args_get').slice(1)
  }

  env(): Record<string, string> {
    const out: Record<string, string> = Object.create(null) as Record<string, string>
    for (const kv of this.#strings('environ_sizes_get', 'environ_get')) {
      const i = kv.indexOf('=')
      if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1)
    }
    return out
  }

  #strings(sizes: string, get: string): string[] {
    const [count, size] = this.#scratch(8, (p) => {
      this.#check(this.#call(sizes, p, p + 4))
      const v = this.#view()
      return [v.getUint32(p, true), v.getUint32(p + 4, true)] as const
    })
    if (count * 4 + size > this.#maxBytes) throw new ScriptErrno(Errno.NOMEM)
    return this.#scratch(count * 4 + size + 1, (p) => {
      this.#check(this.#call(get, p, p + count * 4))
      const all = this.#bytes().slice(p + count * 4, p + count * 4 + size)
      const out: string[] = []
      let start = 0
      for (let i = 0; i < all.length && out.length < count; i++) {
        if (all[i] === 0) {
          out.push(text.decode(all.subarray(start, i)))
          start = i + 1
        }
      }
      return out
    })
  }

  /** Ends the run through `proc_exit` (which unwinds: the caller lets it propagate). */
  exit(code: number): never {
    this.#call('proc_exit', code >>> 0)
    throw new ScriptErrno(Errno.NOSYS) // proc_exit not granted by the policy
  }

  /** 16 random bytes from the run's random source (`random_get`), as four uint32. */
  random(): number[] {
    return this.#scratch(16, (p) => {
      this.#check(this.#call('random_get', p, 16))
      const v = this.#view()
      return [v.getUint32(p, true), v.getUint32(p + 4, true), v.getUint32(p + 8, true), v.getUint32(p + 12, true)]
    })
  }
}

/** The preview1 functions the API calls (beside the engine's own imports). */
export const SCRIPT_API_FUNCTIONS: readonly string[] = [
  'fd_write',
  'fd_read',
  'fd_close',
  'path_open',
  'fd_readdir',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'args_sizes_get',
  'args_get',
  'environ_sizes_get',
  'environ_get',
  'proc_exit',
  'random_get',
]
