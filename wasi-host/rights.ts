/**
 * @module The rights model (docs/security.md, docs/decisions.md 2-4): the one table of the rights each call
 * needs, the most a descriptor of each kind may hold, the rights a mount's mode allows, and the
 * one table of denial errnos.
 *
 * SECURITY: rights only shrink. A child opened through `path_open` gets at most
 * `requested & dir.inheriting & maxFor(filetype) & domain`; `fd_fdstat_set_rights` may only drop
 * bits. The checks themselves happen in one place, the dispatcher (`host.ts`), from `SYSCALL_RIGHTS`.
 */
import { Errno, Filetype, Rights as R, RIGHTS_ALL } from './abi/constants.js'
import { WasiError } from './errors.js'
import type { Preview1Function } from './abi/preview1.js'

/** Every right that changes the filesystem. A read-only mount holds none of them. */
export const MUTATING_RIGHTS =
  R.FD_WRITE |
  R.FD_ALLOCATE |
  R.FD_FILESTAT_SET_SIZE |
  R.FD_FILESTAT_SET_TIMES |
  R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET |
  R.PATH_RENAME_SOURCE |
  R.PATH_RENAME_TARGET |
  R.PATH_SYMLINK |
  R.PATH_UNLINK_FILE |
  R.PATH_REMOVE_DIRECTORY |
  R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES

/** Rights that only make sense on a regular file (or a stream). */
export const FILE_RIGHTS =
  R.FD_DATASYNC |
  R.FD_READ |
  R.FD_SEEK |
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_TELL |
  R.FD_WRITE |
  R.FD_ADVISE |
  R.FD_ALLOCATE |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_SIZE |
  R.FD_FILESTAT_SET_TIMES |
  R.POLL_FD_READWRITE

/** Rights that only make sense on a directory. */
export const DIRECTORY_RIGHTS =
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_DATASYNC |
  R.FD_ADVISE |
  R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET |
  R.PATH_OPEN |
  R.FD_READDIR |
  R.PATH_READLINK |
  R.PATH_RENAME_SOURCE |
  R.PATH_RENAME_TARGET |
  R.PATH_FILESTAT_GET |
  R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY |
  R.PATH_UNLINK_FILE |
  R.POLL_FD_READWRITE

/** Rights of the standard streams: no seeking, no metadata changes. */
export const STDIN_RIGHTS = R.FD_READ | R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE
export const STDOUT_RIGHTS = R.FD_WRITE | R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE

/** A connection socket: read, write, shut down, poll; no seeking, no metadata changes. */
export const CONNECTION_RIGHTS = R.FD_READ | R.FD_WRITE | R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE | R.SOCK_SHUTDOWN

/**
 * A listening socket: accept and poll, nothing else. Its inheriting rights are what an accepted
 * connection may get at most (`sock_accept` grants `inheriting & CONNECTION_RIGHTS`).
 */
export const LISTENER_RIGHTS = R.SOCK_ACCEPT | R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE

/**
 * A connect grant's connection: a connection that may also dial its one address again
 * (`sock_accept` on it); the new connections get `CONNECTION_RIGHTS` (its inheriting rights).
 */
export const REDIAL_CONNECTION_RIGHTS = CONNECTION_RIGHTS | R.SOCK_ACCEPT

export type MountMode = 'ro' | 'rw'

/** The rights a mount's mode permits at all, for every descriptor beneath it. */
export function domainRights(mode: MountMode): number {
  return mode === 'ro' ? RIGHTS_ALL & ~MUTATING_RIGHTS : RIGHTS_ALL
}

/** The most a descriptor of this file type can hold. */
export function maxRightsFor(filetype: number): number {
  if (filetype === Filetype.DIRECTORY) return DIRECTORY_RIGHTS
  return FILE_RIGHTS
}

/**
 * The rights each preview1 call needs on its descriptor argument(s). The dispatcher checks
 * these before the implementation runs; implementations add only effect-derived checks that a
 * static table cannot express (`path_open`'s `TRUNC`, `CREAT`, write intent).
 */
export const SYSCALL_RIGHTS = {
  // Calls on no descriptor (or, fd_close and fd_renumber, on any descriptor) need no right.
  args_get: 0,
  args_sizes_get: 0,
  environ_get: 0,
  environ_sizes_get: 0,
  clock_res_get: 0,
  clock_time_get: 0,
  poll_oneoff: 0,
  proc_exit: 0,
  proc_raise: 0,
  sched_yield: 0,
  random_get: 0,
  fd_advise: R.FD_ADVISE,
  fd_allocate: R.FD_ALLOCATE,
  fd_close: 0,
  fd_datasync: R.FD_DATASYNC,
  fd_fdstat_get: 0,
  fd_fdstat_set_flags: R.FD_FDSTAT_SET_FLAGS,
  fd_fdstat_set_rights: 0,
  fd_filestat_get: R.FD_FILESTAT_GET,
  fd_filestat_set_size: R.FD_FILESTAT_SET_SIZE,
  fd_filestat_set_times: R.FD_FILESTAT_SET_TIMES,
  fd_pread: R.FD_READ | R.FD_SEEK,
  fd_prestat_get: 0,
  fd_prestat_dir_name: 0,
  fd_pwrite: R.FD_WRITE | R.FD_SEEK,
  fd_read: R.FD_READ,
  fd_readdir: R.FD_READDIR,
  fd_renumber: 0,
  fd_seek: R.FD_SEEK,
  fd_sync: R.FD_SYNC,
  fd_tell: R.FD_TELL,
  fd_write: R.FD_WRITE,
  path_create_directory: R.PATH_CREATE_DIRECTORY,
  path_filestat_get: R.PATH_FILESTAT_GET,
  path_filestat_set_times: R.PATH_FILESTAT_SET_TIMES,
  path_link: R.PATH_LINK_SOURCE,
  path_open: R.PATH_OPEN,
  path_readlink: R.PATH_READLINK,
  path_remove_directory: R.PATH_REMOVE_DIRECTORY,
  path_rename: R.PATH_RENAME_SOURCE,
  path_symlink: R.PATH_SYMLINK,
  path_unlink_file: R.PATH_UNLINK_FILE,
  sock_accept: R.SOCK_ACCEPT,
  sock_recv: R.FD_READ,
  sock_send: R.FD_WRITE,
  sock_shutdown: R.SOCK_SHUTDOWN,
} as const satisfies Record<Preview1Function, number>

/** Rights needed on the second descriptor of two-handle calls (the dispatcher refuses a two-handle call missing here). */
export const TARGET_RIGHTS: Readonly<Partial<Record<Preview1Function, number>>> = {
  path_link: R.PATH_LINK_TARGET,
  path_rename: R.PATH_RENAME_TARGET,
}

/** Why a call was refused. Every denial maps to exactly one errno, here. */
export type DenialKind =
  | 'missing-right'
  | 'escape'
  | 'read-only'
  | 'cross-domain'
  | 'not-a-directory-fd'
  | 'bad-descriptor'
  | 'not-open-for-io'
  | 'descriptor-limit'
  | 'quota'

const DENIAL_ERRNO: Record<DenialKind, Errno> = {
  'missing-right': Errno.NOTCAPABLE,
  escape: Errno.PERM,
  'read-only': Errno.ROFS,
  'cross-domain': Errno.XDEV,
  'not-a-directory-fd': Errno.NOTDIR,
  'bad-descriptor': Errno.BADF,
  // POSIX: read or write on a descriptor not opened for it is EBADF (node:wasi and wasmtime agree).
  'not-open-for-io': Errno.BADF,
  'descriptor-limit': Errno.MFILE,
  quota: Errno.DQUOT,
}

/**
 * Denials the run reports (`WasiHost.denials`): refusals the policy caused. Wrong descriptor
 * kinds, free numbers and I/O on a descriptor not opened for it are the guest's own errors.
 */
const REPORTED: ReadonlySet<DenialKind> = new Set<DenialKind>([
  'missing-right',
  'escape',
  'read-only',
  'cross-domain',
  'descriptor-limit',
  'quota',
])

/**
 * The error for a denial: its errno from the one table, and the kind, so the host can report
 * it (`result.denials`, traces) whatever errno the guest sees.
 */
export function denial(kind: DenialKind, detail: string): WasiError {
  return new WasiError(DENIAL_ERRNO[kind], detail, REPORTED.has(kind) ? kind : undefined)
}

/**
 * Classifies a failed rights check. A read or write right the descriptor never had is POSIX's
 * "not open for reading/writing"; a change refused on a read-only mount reads as `ROFS`; any
 * other missing right (including one the guest dropped itself) is `NOTCAPABLE`.
 */
export function missingRightDenial(need: number, held: number, atOpen: number, readOnlyMount: boolean): DenialKind {
  const missing = need & ~held
  if ((missing & ~atOpen & (R.FD_READ | R.FD_WRITE)) !== 0) return 'not-open-for-io'
  if (readOnlyMount && (missing & MUTATING_RIGHTS) === missing) return 'read-only'
  return 'missing-right'
}

/** The errno the guest sees for a kind of denial (docs/decisions.md, 5). */
export function denialErrno(kind: DenialKind): Errno {
  return DENIAL_ERRNO[kind]
}
