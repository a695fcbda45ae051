/**
 * @module Maps the `code` of a Node host error (`ENOENT`, `EACCES`, …) to a WASI errno.
 *
 * SECURITY / error model: only errors the host kernel really returned are mapped. Anything else
 * (a Node validation error such as `ERR_OUT_OF_RANGE`, a bug, a code missing from the table) is
 * handed back unchanged, so the dispatcher turns it into a trap marked as a host fault instead of
 * a made-up `EIO` (docs/security.md, "How they are kept"). Node-only: lives under `wasi-host/node/`.
 */
import { Errno } from '../abi/constants.js'
import { WasiError } from '../errors.js'

/** POSIX error codes as Node spells them in `err.code`, and the WASI errno each one means. */
const HOST_ERRNO: ReadonlyMap<string, Errno> = new Map<string, Errno>([
  ['E2BIG', Errno['2BIG']],
  ['EACCES', Errno.ACCES],
  ['EADDRINUSE', Errno.ADDRINUSE],
  ['EADDRNOTAVAIL', Errno.ADDRNOTAVAIL],
  ['EAFNOSUPPORT', Errno.AFNOSUPPORT],
  ['EAGAIN', Errno.AGAIN],
  ['EWOULDBLOCK', Errno.AGAIN],
  ['EALREADY', Errno.ALREADY],
  ['EBADF', Errno.BADF],
  ['EBUSY', Errno.BUSY],
  ['ECANCELED', Errno.CANCELED],
  ['ECONNABORTED', Errno.CONNABORTED],
  ['ECONNREFUSED', Errno.CONNREFUSED],
  ['ECONNRESET', Errno.CONNRESET],
  ['EDEADLK', Errno.DEADLK],
  ['EDESTADDRREQ', Errno.DESTADDRREQ],
  ['EDQUOT', Errno.DQUOT],
  ['EEXIST', Errno.EXIST],
  ['EFBIG', Errno.FBIG],
  ['EHOSTUNREACH', Errno.HOSTUNREACH],
  ['EILSEQ', Errno.ILSEQ],
  ['EINPROGRESS', Errno.INPROGRESS],
  ['EINTR', Errno.INTR],
  ['EINVAL', Errno.INVAL],
  // A real I/O error reported by the host's kernel or device: passing it on is not "inventing" one.
  ['EIO', Errno.IO],
  ['EISCONN', Errno.ISCONN],
  ['EISDIR', Errno.ISDIR],
  ['ELOOP', Errno.LOOP],
  ['EMFILE', Errno.MFILE],
  ['EMLINK', Errno.MLINK],
  ['EMSGSIZE', Errno.MSGSIZE],
  ['ENAMETOOLONG', Errno.NAMETOOLONG],
  ['ENETDOWN', Errno.NETDOWN],
  ['ENETRESET', Errno.NETRESET],
  ['ENETUNREACH', Errno.NETUNREACH],
  ['ENFILE', Errno.NFILE],
  ['ENOBUFS', Errno.NOBUFS],
  ['ENODEV', Errno.NODEV],
  ['ENOENT', Errno.NOENT],
  ['ENOLCK', Errno.NOLCK],
  ['ENOMEM', Errno.NOMEM],
  ['ENOPROTOOPT', Errno.NOPROTOOPT],
  ['ENOSPC', Errno.NOSPC],
  ['ENOSYS', Errno.NOSYS],
  ['ENOTCONN', Errno.NOTCONN],
  ['ENOTDIR', Errno.NOTDIR],
  ['ENOTEMPTY', Errno.NOTEMPTY],
  ['ENOTSOCK', Errno.NOTSOCK],
  ['ENOTSUP', Errno.NOTSUP],
  ['ENOTTY', Errno.NOTTY],
  ['EOPNOTSUPP', Errno.NOTSUP],
  ['ENXIO', Errno.NXIO],
  ['EOVERFLOW', Errno.OVERFLOW],
  ['EPERM', Errno.PERM],
  ['EPIPE', Errno.PIPE],
  ['EPROTO', Errno.PROTO],
  ['EPROTONOSUPPORT', Errno.PROTONOSUPPORT],
  ['EPROTOTYPE', Errno.PROTOTYPE],
  ['ERANGE', Errno.RANGE],
  ['EROFS', Errno.ROFS],
  ['ESPIPE', Errno.SPIPE],
  ['ESTALE', Errno.STALE],
  ['ETIMEDOUT', Errno.TIMEDOUT],
  ['ETXTBSY', Errno.TXTBSY],
  ['EXDEV', Errno.XDEV],
])

/** The WASI errno for a host error code, or `undefined` if the code is not a known POSIX error. */
export function hostErrno(code: unknown): Errno | undefined {
  return typeof code === 'string' ? HOST_ERRNO.get(code) : undefined
}

/**
 * Turns a thrown host error into a `WasiError` when its `code` is a known POSIX error; returns
 * any other value unchanged (including an existing `WasiError`) so the caller rethrows it as is.
 *
 * @example
 * try { fs.mkdirSync(p) } catch (e) { throw wasiErrorFrom(e) }
 */
export function wasiErrorFrom(err: unknown): unknown {
  if (err instanceof WasiError || typeof err !== 'object' || err === null) return err
  const { code, syscall, path } = err as NodeJS.ErrnoException
  const errno = hostErrno(code)
  if (errno === undefined) return err
  // The detail is host-only (traces); it may name the host path, never reaches the guest.
  return new WasiError(errno, `${code} from ${syscall ?? 'host'}${path === undefined ? '' : ` ${path}`}`)
}
