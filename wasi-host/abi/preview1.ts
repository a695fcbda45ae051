/**
 * @module The names of the 46 functions of `wasi_snapshot_preview1`, as the ABI defines them:
 * the one list that the host's tables (`SYSCALLS` in `host.ts`, `SYSCALL_RIGHTS` in `rights.ts`)
 * are typed against, so that a function missing from a table is a compile error, not a lookup
 * that fails open. It must never list a function the ABI does not define.
 */
export const PREVIEW1_FUNCTIONS = [
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

/** The names of every preview1 function this host provides. */
export const WASI_PREVIEW1_FUNCTIONS: readonly string[] = Object.freeze([...PREVIEW1_FUNCTIONS])

/** A function of `wasi_snapshot_preview1`. */
export type Preview1Function = (typeof PREVIEW1_FUNCTIONS)[number]
