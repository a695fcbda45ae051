/**
 * @module How to decode each preview1 call's arguments for a trace: the name and kind of every
 * wasm parameter (wasm32 lowering of the witx), and which are pointers to results to read back
 * after a successful call. Data only; `tracer.ts` decodes with it.
 */

/**
 * `fd`: a descriptor number. `path`: a (ptr, len) pair naming a guest path (consumes two
 * parameters). `iovs` / `buf`: a (ptr, len) pair of buffers. `u32`/`u64`/`s64`: numbers.
 * `x64`: an i64 the call ignores. Flag kinds print their names. `out-*`: a pointer the call
 * writes its result to, read back after success (the structs as their telling fields: a
 * descriptor's type, flags and rights; a file's type and size; a preopen's name length). `ptr`: a pointer to a struct, shown as is.
 */
export type ArgKind =
  | 'fd'
  | 'path'
  | 'iovs'
  | 'buf'
  | 'u32'
  | 'u64'
  | 's64'
  | 'x64'
  | 'ptr'
  | 'oflags'
  | 'fdflags'
  | 'lookupflags'
  | 'fstflags'
  | 'rights'
  | 'whence'
  | 'clockid'
  | 'advice'
  | 'exitcode'
  | 'signal'
  | 'out-fd'
  | 'out-size'
  | 'out-u64'
  | 'out-name'
  | 'out-fdstat'
  | 'out-filestat'
  | 'out-prestat'

export type ArgSpec = readonly [name: string, kind: ArgKind]

const fd: ArgSpec = ['fd', 'fd']
const path: ArgSpec = ['path', 'path']
const iovs: ArgSpec = ['iovs', 'iovs']
const nOut: ArgSpec = ['n', 'out-size']

/** Every preview1 function: its parameters in order (pairs such as `path` stand for two). */
export const TRACE_SIGNATURES: Readonly<Record<string, readonly ArgSpec[]>> = {
  args_get: [
    ['argv', 'ptr'],
    ['argv_buf', 'ptr'],
  ],
  args_sizes_get: [
    ['argc', 'out-size'],
    ['argv_buf_size', 'out-size'],
  ],
  environ_get: [
    ['environ', 'ptr'],
    ['environ_buf', 'ptr'],
  ],
  environ_sizes_get: [
    ['count', 'out-size'],
    ['buf_size', 'out-size'],
  ],
  clock_res_get: [
    ['clock', 'clockid'],
    ['resolution', 'out-u64'],
  ],
  clock_time_get: [
    ['clock', 'clockid'],
    ['precision', 'x64'],
    ['time', 'out-u64'],
  ],
  fd_advise: [fd, ['offset', 'u64'], ['len', 'u64'], ['advice', 'advice']],
  fd_allocate: [fd, ['offset', 'u64'], ['len', 'u64']],
  fd_close: [fd],
  fd_datasync: [fd],
  fd_fdstat_get: [fd, ['stat', 'out-fdstat']],
  fd_fdstat_set_flags: [fd, ['flags', 'fdflags']],
  fd_fdstat_set_rights: [fd, ['base', 'rights'], ['inheriting', 'rights']],
  fd_filestat_get: [fd, ['stat', 'out-filestat']],
  fd_filestat_set_size: [fd, ['size', 'u64']],
  fd_filestat_set_times: [fd, ['atim', 'u64'], ['mtim', 'u64'], ['flags', 'fstflags']],
  fd_pread: [fd, iovs, ['offset', 'u64'], nOut],
  fd_prestat_get: [fd, ['prestat', 'out-prestat']],
  fd_prestat_dir_name: [fd, ['name', 'out-name']],
  fd_pwrite: [fd, iovs, ['offset', 'u64'], nOut],
  fd_read: [fd, iovs, nOut],
  fd_readdir: [fd, ['buf', 'buf'], ['cookie', 'u64'], nOut],
  fd_renumber: [fd, ['to', 'fd']],
  fd_seek: [fd, ['offset', 's64'], ['whence', 'whence'], ['pos', 'out-u64']],
  fd_sync: [fd],
  fd_tell: [fd, ['pos', 'out-u64']],
  fd_write: [fd, iovs, nOut],
  path_create_directory: [fd, path],
  path_filestat_get: [fd, ['flags', 'lookupflags'], path, ['stat', 'out-filestat']],
  path_filestat_set_times: [fd, ['flags', 'lookupflags'], path, ['atim', 'u64'], ['mtim', 'u64'], ['fst', 'fstflags']],
  path_link: [fd, ['flags', 'lookupflags'], path, ['to_fd', 'fd'], ['to', 'path']],
  path_open: [
    fd,
    ['dirflags', 'lookupflags'],
    path,
    ['oflags', 'oflags'],
    ['rights', 'rights'],
    ['inheriting', 'rights'],
    ['fdflags', 'fdflags'],
    ['opened', 'out-fd'],
  ],
  path_readlink: [fd, path, ['buf', 'buf'], nOut],
  path_remove_directory: [fd, path],
  path_rename: [fd, path, ['to_fd', 'fd'], ['to', 'path']],
  path_symlink: [['target', 'path'], fd, path],
  path_unlink_file: [fd, path],
  poll_oneoff: [
    ['in', 'ptr'],
    ['out', 'ptr'],
    ['nsubs', 'u32'],
    ['nevents', 'out-size'],
  ],
  proc_exit: [['code', 'exitcode']],
  proc_raise: [['signal', 'signal']],
  sched_yield: [],
  random_get: [['buf', 'buf']],
  sock_accept: [fd, ['flags', 'fdflags'], ['accepted', 'out-fd']],
  sock_recv: [fd, iovs, ['flags', 'u32'], nOut, ['roflags', 'out-size']],
  sock_send: [fd, iovs, ['flags', 'u32'], nOut],
  sock_shutdown: [fd, ['how', 'u32']],
}

/** Kinds that take two wasm parameters (a pointer and a length). */
export const PAIRED: ReadonlySet<ArgKind> = new Set<ArgKind>(['path', 'iovs', 'buf', 'out-name'])
