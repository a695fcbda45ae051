/**
 * @module WASI preview1 constants, spelled as in the witx (`wasi_snapshot_preview1`).
 * Numbers only; no behaviour lives here.
 */

export const Errno = {
  SUCCESS: 0,
  '2BIG': 1,
  ACCES: 2,
  ADDRINUSE: 3,
  ADDRNOTAVAIL: 4,
  AFNOSUPPORT: 5,
  AGAIN: 6,
  ALREADY: 7,
  BADF: 8,
  BADMSG: 9,
  BUSY: 10,
  CANCELED: 11,
  CHILD: 12,
  CONNABORTED: 13,
  CONNREFUSED: 14,
  CONNRESET: 15,
  DEADLK: 16,
  DESTADDRREQ: 17,
  DOM: 18,
  DQUOT: 19,
  EXIST: 20,
  FAULT: 21,
  FBIG: 22,
  HOSTUNREACH: 23,
  IDRM: 24,
  ILSEQ: 25,
  INPROGRESS: 26,
  INTR: 27,
  INVAL: 28,
  IO: 29,
  ISCONN: 30,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  MLINK: 34,
  MSGSIZE: 35,
  MULTIHOP: 36,
  NAMETOOLONG: 37,
  NETDOWN: 38,
  NETRESET: 39,
  NETUNREACH: 40,
  NFILE: 41,
  NOBUFS: 42,
  NODEV: 43,
  NOENT: 44,
  NOEXEC: 45,
  NOLCK: 46,
  NOLINK: 47,
  NOMEM: 48,
  NOMSG: 49,
  NOPROTOOPT: 50,
  NOSPC: 51,
  NOSYS: 52,
  NOTCONN: 53,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTRECOVERABLE: 56,
  NOTSOCK: 57,
  NOTSUP: 58,
  NOTTY: 59,
  NXIO: 60,
  OVERFLOW: 61,
  OWNERDEAD: 62,
  PERM: 63,
  PIPE: 64,
  PROTO: 65,
  PROTONOSUPPORT: 66,
  PROTOTYPE: 67,
  RANGE: 68,
  ROFS: 69,
  SPIPE: 70,
  SRCH: 71,
  STALE: 72,
  TIMEDOUT: 73,
  TXTBSY: 74,
  XDEV: 75,
  NOTCAPABLE: 76,
} as const
export type Errno = (typeof Errno)[keyof typeof Errno]

const errnoNames: string[] = []
for (const [k, v] of Object.entries(Errno)) errnoNames[v] = k
/** `errnoName(44)` → `"NOENT"`; for messages and traces. */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `ERRNO_${errno}`
}

/**
 * Capsicum-style rights, bit positions from the witx `rights` flags. All 30 defined bits fit in an
 * int32, so the host keeps rights as plain numbers (no bigint arithmetic on the hot path) and
 * converts at the ABI boundary (`rightsFromAbi`, `rightsToAbi`).
 */
export const Rights = {
  FD_DATASYNC: 1 << 0,
  FD_READ: 1 << 1,
  FD_SEEK: 1 << 2,
  FD_FDSTAT_SET_FLAGS: 1 << 3,
  FD_SYNC: 1 << 4,
  FD_TELL: 1 << 5,
  FD_WRITE: 1 << 6,
  FD_ADVISE: 1 << 7,
  FD_ALLOCATE: 1 << 8,
  PATH_CREATE_DIRECTORY: 1 << 9,
  PATH_CREATE_FILE: 1 << 10,
  PATH_LINK_SOURCE: 1 << 11,
  PATH_LINK_TARGET: 1 << 12,
  PATH_OPEN: 1 << 13,
  FD_READDIR: 1 << 14,
  PATH_READLINK: 1 << 15,
  PATH_RENAME_SOURCE: 1 << 16,
  PATH_RENAME_TARGET: 1 << 17,
  PATH_FILESTAT_GET: 1 << 18,
  PATH_FILESTAT_SET_SIZE: 1 << 19,
  PATH_FILESTAT_SET_TIMES: 1 << 20,
  FD_FILESTAT_GET: 1 << 21,
  FD_FILESTAT_SET_SIZE: 1 << 22,
  FD_FILESTAT_SET_TIMES: 1 << 23,
  PATH_SYMLINK: 1 << 24,
  PATH_REMOVE_DIRECTORY: 1 << 25,
  PATH_UNLINK_FILE: 1 << 26,
  POLL_FD_READWRITE: 1 << 27,
  SOCK_SHUTDOWN: 1 << 28,
  SOCK_ACCEPT: 1 << 29,
} as const
export const RIGHTS_ALL = (1 << 30) - 1
const RIGHTS_ALL_ABI = BigInt(RIGHTS_ALL)
const RIGHTS_UNKNOWN_ABI = BigInt.asUintN(64, ~RIGHTS_ALL_ABI)

/** A guest-supplied u64 rights value; bits the host does not know are reported separately. */
export function rightsFromAbi(v: bigint): { rights: number; unknown: boolean } {
  return { rights: Number(v & RIGHTS_ALL_ABI), unknown: (v & RIGHTS_UNKNOWN_ABI) !== 0n }
}
export function rightsToAbi(rights: number): bigint {
  return BigInt(rights >>> 0)
}

export const Filetype = {
  UNKNOWN: 0,
  BLOCK_DEVICE: 1,
  CHARACTER_DEVICE: 2,
  DIRECTORY: 3,
  REGULAR_FILE: 4,
  SOCKET_DGRAM: 5,
  SOCKET_STREAM: 6,
  SYMBOLIC_LINK: 7,
} as const
export type Filetype = (typeof Filetype)[keyof typeof Filetype]

export const Oflags = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const
export const OFLAGS_ALL = 0xf
export const Fdflags = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const
export const FDFLAGS_ALL = 0x1f
export const Lookupflags = { SYMLINK_FOLLOW: 1 } as const
export const Fstflags = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const
export const FSTFLAGS_ALL = 0xf
export const Whence = { SET: 0, CUR: 1, END: 2 } as const
export const Clockid = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME_ID: 2, THREAD_CPUTIME_ID: 3 } as const
export const Eventtype = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const
export const Subclockflags = { ABSTIME: 1 } as const
export const Eventrwflags = { HANGUP: 1 } as const
export const Advice = { NORMAL: 0, SEQUENTIAL: 1, RANDOM: 2, WILLNEED: 3, DONTNEED: 4, NOREUSE: 5 } as const
export const Riflags = { RECV_PEEK: 1, RECV_WAITALL: 2 } as const
export const Roflags = { RECV_DATA_TRUNCATED: 1 } as const
export const Sdflags = { RD: 1, WR: 2 } as const
export const Preopentype = { DIR: 0 } as const
/** Highest valid `signal` value (SIGSYS = 30). */
export const SIGNAL_MAX = 30

/** Byte layouts of the structs the host reads or writes (wasm32). */
export const Layout = {
  iovec: { size: 8, align: 4 },
  fdstat: { size: 24, align: 8 },
  filestat: { size: 64, align: 8 },
  prestat: { size: 8, align: 4 },
  dirent: { size: 24, align: 8 },
  subscription: { size: 48, align: 8 },
  event: { size: 32, align: 8 },
} as const
