/**
 * @module What each `wasi_snapshot_preview1` function does, in a few words, and which kind of
 * capability it touches: the vocabulary `caplet inspect` explains a module with. Data only.
 */

export type Capability =
  'args' | 'env' | 'clock' | 'random' | 'stdio-or-fd' | 'fs-read' | 'fs-write' | 'fs-meta' | 'poll' | 'process' | 'socket'

export interface WasiFunctionInfo {
  /** A few words for people. */
  readonly does: string
  readonly touches: Capability
}

const f = (does: string, touches: Capability): WasiFunctionInfo => ({ does, touches })

/** Every preview1 function caplet provides, described. */
export const WASI_FUNCTIONS: Readonly<Record<string, WasiFunctionInfo>> = {
  args_get: f('read its command-line arguments', 'args'),
  args_sizes_get: f('size its command-line arguments', 'args'),
  environ_get: f('read environment variables', 'env'),
  environ_sizes_get: f('size environment variables', 'env'),
  clock_res_get: f("read a clock's resolution", 'clock'),
  clock_time_get: f('read a clock', 'clock'),
  fd_advise: f('advise on file access patterns', 'stdio-or-fd'),
  fd_allocate: f('reserve space in a file', 'fs-write'),
  fd_close: f('close a descriptor', 'stdio-or-fd'),
  fd_datasync: f("flush a file's data", 'fs-write'),
  fd_fdstat_get: f("read a descriptor's type and rights", 'stdio-or-fd'),
  fd_fdstat_set_flags: f("set a descriptor's flags", 'stdio-or-fd'),
  fd_fdstat_set_rights: f('drop rights of a descriptor', 'stdio-or-fd'),
  fd_filestat_get: f('stat an open file', 'fs-meta'),
  fd_filestat_set_size: f('truncate or extend an open file', 'fs-write'),
  fd_filestat_set_times: f("set an open file's times", 'fs-write'),
  fd_pread: f('read a file at an offset', 'fs-read'),
  fd_prestat_get: f('discover preopened directories', 'fs-meta'),
  fd_prestat_dir_name: f("read a preopened directory's name", 'fs-meta'),
  fd_pwrite: f('write a file at an offset', 'fs-write'),
  fd_read: f('read from a descriptor (stdin, files)', 'stdio-or-fd'),
  fd_readdir: f('list a directory', 'fs-read'),
  fd_renumber: f('move a descriptor to another number', 'stdio-or-fd'),
  fd_seek: f('move a file offset', 'stdio-or-fd'),
  fd_sync: f('flush a file', 'fs-write'),
  fd_tell: f('read a file offset', 'stdio-or-fd'),
  fd_write: f('write to a descriptor (stdout, stderr, files)', 'stdio-or-fd'),
  path_create_directory: f('create a directory', 'fs-write'),
  path_filestat_get: f('stat a path', 'fs-meta'),
  path_filestat_set_times: f("set a path's times", 'fs-write'),
  path_link: f('create a hard link', 'fs-write'),
  path_open: f('open a file or directory by path', 'fs-read'),
  path_readlink: f('read a symlink', 'fs-read'),
  path_remove_directory: f('remove a directory', 'fs-write'),
  path_rename: f('rename a file or directory', 'fs-write'),
  path_symlink: f('create a symlink', 'fs-write'),
  path_unlink_file: f('delete a file', 'fs-write'),
  poll_oneoff: f('wait for descriptors or sleep', 'poll'),
  proc_exit: f('exit with a status', 'process'),
  proc_raise: f('raise a signal', 'process'),
  sched_yield: f('yield the CPU', 'process'),
  random_get: f('read random bytes', 'random'),
  sock_accept: f('accept a connection on a granted socket', 'socket'),
  sock_recv: f('receive from a socket', 'socket'),
  sock_send: f('send on a socket', 'socket'),
  sock_shutdown: f('shut a socket down', 'socket'),
}

export const WASI_MODULE = 'wasi_snapshot_preview1'
