/**
 * The rights tables checked against the witx: bit positions, what a read-only mount can never
 * hold, the most each kind of descriptor may hold, the table of rights each call needs, and the
 * one table of denial errnos.
 */
import { describe, expect, it } from 'vitest'
import { Errno, Filetype, Rights, RIGHTS_ALL, rightsFromAbi, rightsToAbi } from '../../wasi-host/abi/constants.js'
import {
  denialErrno,
  DIRECTORY_RIGHTS,
  domainRights,
  FILE_RIGHTS,
  maxRightsFor,
  missingRightDenial,
  MUTATING_RIGHTS,
  STDIN_RIGHTS,
  STDOUT_RIGHTS,
  SYSCALL_RIGHTS,
  TARGET_RIGHTS,
} from '../../wasi-host/rights.js'
import { WASI_PREVIEW1_FUNCTIONS } from '../../wasi-host/host.js'
import { WITX_PREVIEW1 } from './harness.js'

/** The `rights` flags of `typenames.witx`, in bit order. */
const WITX_RIGHTS = [
  'FD_DATASYNC',
  'FD_READ',
  'FD_SEEK',
  'FD_FDSTAT_SET_FLAGS',
  'FD_SYNC',
  'FD_TELL',
  'FD_WRITE',
  'FD_ADVISE',
  'FD_ALLOCATE',
  'PATH_CREATE_DIRECTORY',
  'PATH_CREATE_FILE',
  'PATH_LINK_SOURCE',
  'PATH_LINK_TARGET',
  'PATH_OPEN',
  'FD_READDIR',
  'PATH_READLINK',
  'PATH_RENAME_SOURCE',
  'PATH_RENAME_TARGET',
  'PATH_FILESTAT_GET',
  'PATH_FILESTAT_SET_SIZE',
  'PATH_FILESTAT_SET_TIMES',
  'FD_FILESTAT_GET',
  'FD_FILESTAT_SET_SIZE',
  'FD_FILESTAT_SET_TIMES',
  'PATH_SYMLINK',
  'PATH_REMOVE_DIRECTORY',
  'PATH_UNLINK_FILE',
  'POLL_FD_READWRITE',
  'SOCK_SHUTDOWN',
  'SOCK_ACCEPT',
] as const

/** What docs/security.md (invariant 4) says a read-only mount must never grant. */
const RO_FORBIDDEN = [
  'FD_WRITE',
  'FD_FILESTAT_SET_SIZE',
  'FD_ALLOCATE',
  'PATH_CREATE_DIRECTORY',
  'PATH_CREATE_FILE',
  'PATH_LINK_SOURCE',
  'PATH_LINK_TARGET',
  'PATH_RENAME_SOURCE',
  'PATH_RENAME_TARGET',
  'PATH_SYMLINK',
  'PATH_UNLINK_FILE',
  'PATH_REMOVE_DIRECTORY',
  'PATH_FILESTAT_SET_SIZE',
  'PATH_FILESTAT_SET_TIMES',
  'FD_FILESTAT_SET_TIMES',
] as const

/** Read-side rights a read-only mount must keep, or nothing could be read. */
const RO_KEPT = [
  'FD_READ',
  'FD_SEEK',
  'FD_TELL',
  'FD_READDIR',
  'PATH_OPEN',
  'PATH_FILESTAT_GET',
  'PATH_READLINK',
  'FD_FILESTAT_GET',
  'FD_ADVISE',
  'POLL_FD_READWRITE',
  'FD_FDSTAT_SET_FLAGS',
] as const

/** The preview1 functions whose first (or, for path_symlink, third) argument is a descriptor. */
const FD_TAKING = WITX_PREVIEW1.filter((n) => n.startsWith('fd_') || n.startsWith('path_') || n.startsWith('sock_'))

/** Calls that change the filesystem, with the right (per the witx docs) that lets them. */
const MUTATING_CALLS: Record<string, number> = {
  fd_write: Rights.FD_WRITE,
  fd_pwrite: Rights.FD_WRITE,
  fd_allocate: Rights.FD_ALLOCATE,
  fd_filestat_set_size: Rights.FD_FILESTAT_SET_SIZE,
  fd_filestat_set_times: Rights.FD_FILESTAT_SET_TIMES,
  path_create_directory: Rights.PATH_CREATE_DIRECTORY,
  path_filestat_set_times: Rights.PATH_FILESTAT_SET_TIMES,
  path_link: Rights.PATH_LINK_SOURCE,
  path_remove_directory: Rights.PATH_REMOVE_DIRECTORY,
  path_rename: Rights.PATH_RENAME_SOURCE,
  path_symlink: Rights.PATH_SYMLINK,
  path_unlink_file: Rights.PATH_UNLINK_FILE,
}

const has = (set: number, right: number): boolean => (set & right) === right

describe('rights', () => {
  it('bit positions match the witx `rights` flags, and RIGHTS_ALL is exactly the 30 defined bits', () => {
    WITX_RIGHTS.forEach((name, i) => expect(Rights[name]).toBe(2 ** i))
    expect(Object.keys(Rights).sort()).toEqual([...WITX_RIGHTS].sort())
    expect(RIGHTS_ALL).toBe(2 ** 30 - 1)
  })

  it('converts at the ABI boundary, flagging unknown bits', () => {
    expect(rightsFromAbi(-1n)).toEqual({ rights: RIGHTS_ALL, unknown: true })
    expect(rightsFromAbi(BigInt(RIGHTS_ALL))).toEqual({ rights: RIGHTS_ALL, unknown: false })
    expect(rightsFromAbi(1n << 30n)).toEqual({ rights: 0, unknown: true })
    expect(rightsToAbi(Rights.SOCK_ACCEPT)).toBe(1n << 29n)
  })

  describe('domainRights', () => {
    it("'ro' holds no MUTATING_RIGHTS", () => {
      expect(domainRights('ro') & MUTATING_RIGHTS).toBe(0)
    })

    it("'ro' holds none of the rights docs/security.md forbids on a read-only mount", () => {
      for (const r of RO_FORBIDDEN) expect(has(domainRights('ro'), Rights[r]), r).toBe(false)
    })

    it("'ro' keeps the read-side rights", () => {
      for (const r of RO_KEPT) expect(has(domainRights('ro'), Rights[r]), r).toBe(true)
    })

    it("'rw' holds every right", () => {
      expect(domainRights('rw')).toBe(RIGHTS_ALL)
    })

    it('every mutating call needs a right a read-only mount cannot hold', () => {
      for (const [call, right] of Object.entries(MUTATING_CALLS)) {
        const need = (SYSCALL_RIGHTS as Record<string, number>)[call]!
        expect(has(need, right), call).toBe(true)
        expect(has(domainRights('ro'), need), call).toBe(false)
      }
      for (const right of Object.values(TARGET_RIGHTS)) expect(has(domainRights('ro'), right)).toBe(false)
    })
  })

  describe('the most a descriptor may hold', () => {
    it('maxRightsFor: directories get DIRECTORY_RIGHTS, everything else FILE_RIGHTS', () => {
      expect(maxRightsFor(Filetype.DIRECTORY)).toBe(DIRECTORY_RIGHTS)
      expect(maxRightsFor(Filetype.REGULAR_FILE)).toBe(FILE_RIGHTS)
      expect(maxRightsFor(Filetype.SYMBOLIC_LINK)).toBe(FILE_RIGHTS)
    })

    it('files hold no path_* or socket rights; directories no read, write or seek', () => {
      for (const r of WITX_RIGHTS) {
        if (r.startsWith('PATH_') || r.startsWith('SOCK_') || r === 'FD_READDIR') expect(has(FILE_RIGHTS, Rights[r]), r).toBe(false)
      }
      for (const r of ['FD_READ', 'FD_WRITE', 'FD_SEEK', 'FD_TELL', 'FD_ALLOCATE', 'FD_FILESTAT_SET_SIZE'] as const) {
        expect(has(DIRECTORY_RIGHTS, Rights[r]), r).toBe(false)
      }
    })

    it('stdin cannot write, stdout cannot read, neither can seek', () => {
      expect(has(STDIN_RIGHTS, Rights.FD_WRITE)).toBe(false)
      expect(has(STDIN_RIGHTS, Rights.FD_READ)).toBe(true)
      expect(has(STDOUT_RIGHTS, Rights.FD_READ)).toBe(false)
      expect(has(STDOUT_RIGHTS, Rights.FD_WRITE)).toBe(true)
      expect(has(STDIN_RIGHTS | STDOUT_RIGHTS, Rights.FD_SEEK)).toBe(false)
      expect(has(STDIN_RIGHTS | STDOUT_RIGHTS, Rights.FD_TELL)).toBe(false)
    })
  })

  describe('SYSCALL_RIGHTS', () => {
    it('has an entry for every preview1 call (typed: a missing one does not compile), zero for calls on no descriptor', () => {
      expect(FD_TAKING).toHaveLength(35)
      expect(Object.keys(SYSCALL_RIGHTS).sort()).toEqual([...WITX_PREVIEW1].sort())
      expect([...WASI_PREVIEW1_FUNCTIONS].sort()).toEqual([...WITX_PREVIEW1].sort())
      const noDescriptor = WITX_PREVIEW1.filter((n) => !FD_TAKING.includes(n))
      expect(noDescriptor).toHaveLength(11)
      for (const name of noDescriptor) expect(SYSCALL_RIGHTS[name as keyof typeof SYSCALL_RIGHTS], name).toBe(0)
    })

    it('names the right the witx documents for each call', () => {
      const expected: Record<string, number> = {
        fd_advise: Rights.FD_ADVISE,
        fd_allocate: Rights.FD_ALLOCATE,
        fd_datasync: Rights.FD_DATASYNC,
        fd_fdstat_set_flags: Rights.FD_FDSTAT_SET_FLAGS,
        fd_filestat_get: Rights.FD_FILESTAT_GET,
        fd_filestat_set_size: Rights.FD_FILESTAT_SET_SIZE,
        fd_filestat_set_times: Rights.FD_FILESTAT_SET_TIMES,
        fd_pread: Rights.FD_READ | Rights.FD_SEEK,
        fd_pwrite: Rights.FD_WRITE | Rights.FD_SEEK,
        fd_read: Rights.FD_READ,
        fd_readdir: Rights.FD_READDIR,
        fd_seek: Rights.FD_SEEK,
        fd_sync: Rights.FD_SYNC,
        fd_tell: Rights.FD_TELL,
        fd_write: Rights.FD_WRITE,
        path_create_directory: Rights.PATH_CREATE_DIRECTORY,
        path_filestat_get: Rights.PATH_FILESTAT_GET,
        path_filestat_set_times: Rights.PATH_FILESTAT_SET_TIMES,
        path_link: Rights.PATH_LINK_SOURCE,
        path_open: Rights.PATH_OPEN,
        path_readlink: Rights.PATH_READLINK,
        path_remove_directory: Rights.PATH_REMOVE_DIRECTORY,
        path_rename: Rights.PATH_RENAME_SOURCE,
        path_symlink: Rights.PATH_SYMLINK,
        path_unlink_file: Rights.PATH_UNLINK_FILE,
        sock_accept: Rights.SOCK_ACCEPT,
        sock_recv: Rights.FD_READ,
        sock_send: Rights.FD_WRITE,
        sock_shutdown: Rights.SOCK_SHUTDOWN,
      }
      for (const [call, right] of Object.entries(expected)) {
        expect((SYSCALL_RIGHTS as Record<string, number>)[call], call).toBe(right)
      }
      expect(TARGET_RIGHTS).toEqual({ path_link: Rights.PATH_LINK_TARGET, path_rename: Rights.PATH_RENAME_TARGET })
    })

    it('every right a directory call needs is one a directory may hold, and likewise for files', () => {
      for (const [call, need] of Object.entries(SYSCALL_RIGHTS)) {
        if (call.startsWith('path_') || call === 'fd_readdir') expect(has(DIRECTORY_RIGHTS, need), call).toBe(true)
        if (['fd_read', 'fd_write', 'fd_seek', 'fd_tell', 'fd_pread', 'fd_pwrite', 'fd_allocate', 'fd_filestat_set_size'].includes(call)) {
          expect(has(FILE_RIGHTS, need), call).toBe(true)
        }
      }
    })
  })

  describe('denialErrno', () => {
    it('maps each kind of denial to its one errno', () => {
      expect(denialErrno('missing-right')).toBe(Errno.NOTCAPABLE)
      expect(denialErrno('escape')).toBe(Errno.PERM)
      expect(denialErrno('read-only')).toBe(Errno.ROFS)
      expect(denialErrno('bad-descriptor')).toBe(Errno.BADF)
      expect(denialErrno('not-a-directory-fd')).toBe(Errno.NOTDIR)
      expect(denialErrno('cross-domain')).toBe(Errno.XDEV)
      expect(denialErrno('not-open-for-io')).toBe(Errno.BADF)
    })

    it('classifies a failed rights check: never open for I/O, read-only mount, or dropped', () => {
      const R = Rights
      // Read/write never held since open: POSIX "not open for reading/writing" (BADF).
      expect(missingRightDenial(R.FD_READ, 0, R.FD_WRITE, false)).toBe('not-open-for-io')
      expect(missingRightDenial(R.FD_WRITE, R.FD_READ, R.FD_READ, true)).toBe('not-open-for-io')
      expect(missingRightDenial(R.FD_WRITE | R.FD_SEEK, R.FD_READ | R.FD_SEEK, R.FD_READ | R.FD_SEEK, false)).toBe('not-open-for-io')
      // Held at open, dropped since: NOTCAPABLE, even on a read-only mount.
      expect(missingRightDenial(R.FD_READ, 0, R.FD_READ, false)).toBe('missing-right')
      expect(missingRightDenial(R.FD_READ, 0, R.FD_READ, true)).toBe('missing-right')
      // A mutating right on a read-only mount: ROFS; elsewhere NOTCAPABLE.
      expect(missingRightDenial(R.FD_ALLOCATE, 0, 0, true)).toBe('read-only')
      expect(missingRightDenial(R.PATH_CREATE_FILE, 0, 0, true)).toBe('read-only')
      expect(missingRightDenial(R.FD_ALLOCATE, 0, 0, false)).toBe('missing-right')
      // A non-mutating right missing on a read-only mount is still NOTCAPABLE.
      expect(missingRightDenial(R.PATH_OPEN, 0, 0, true)).toBe('missing-right')
    })
  })
})
