/**
 * Red-team: the disk quota (`withQuota`) under sequences of calls meant to get more bytes or
 * inodes than granted: unlink while open, truncate while another descriptor writes, hard-link
 * churn, rename over charged files, sparse growth far out, symlink targets. Direct calls on the
 * import object against a quota-wrapped MemFs at fd 5 (1 MiB, 64 inodes).
 */
import { describe, expect, it } from 'vitest'
import { createMemFs } from '../../wasi-host/fs/mem-fs.js'
import { withQuota, type QuotaFilesystem } from '../../wasi-host/fs/quota.js'
import type { DirHandle, Filesystem } from '../../wasi-host/fs/filesystem.js'
import { Filetype } from '../../wasi-host/abi/constants.js'
import { ALL_RIGHTS, errnoName, harness, O_CREAT, O_EXCL, O_TRUNC, type Harness } from '../wasi-host/harness.js'

const Q = 5
const MiB = 1 << 20

function setup(): { h: Harness; q: QuotaFilesystem; inner: Filesystem } {
  const inner = createMemFs()
  const q = withQuota(inner, { bytes: MiB, inodes: 64 })
  const h = harness({ memoryPages: 20, maximumPages: 20, extraPreopens: [{ guestPath: '/q', fs: q, mode: 'rw' }] })
  return { h, q, inner }
}

/** Apparent bytes of every regular file reachable in `fs` (each inode once). */
function reachableBytes(fs: Filesystem): number {
  const seen = new Set<bigint>()
  let total = 0
  const walk = (d: DirHandle) => {
    for (const e of d.readdir()) {
      if (e.filetype === Filetype.DIRECTORY) {
        const sub = d.openDir(e.name)
        try {
          walk(sub)
        } finally {
          sub.close()
        }
      } else if (!seen.has(e.ino)) {
        seen.add(e.ino)
        total += Number(d.statChild(e.name).size)
      }
    }
  }
  const root = fs.root()
  try {
    walk(root)
  } finally {
    root.close()
  }
  return total
}

function ops(h: Harness) {
  const call = (fn: () => number) => {
    h.resetAlloc()
    return errnoName(fn())
  }
  const open = (path: string, oflags = 0) => {
    h.resetAlloc()
    const r = h.open(path, { dirfd: Q, oflags, base: ALL_RIGHTS })
    return { errno: errnoName(r.errno), fd: r.fd }
  }
  const big = (() => {
    const p = h.alloc(MiB, 8)
    return p
  })()
  h.resetAlloc()
  // Keep the 1 MiB source buffer out of the scratch area: bump the allocator past it.
  const base = big + MiB
  const at = (n: number) => base + n
  const pwrite = (fd: number, offset: bigint, len: number) => {
    const iov = at(0)
    h.setU32(iov, big)
    h.setU32(iov + 4, len)
    return errnoName(h.wasi.fd_pwrite(fd, iov, 1, offset, at(16)))
  }
  const wrote = () => h.u32(at(16))
  const path = (s: string) => {
    const b = new TextEncoder().encode(s)
    new Uint8Array(h.mem.buffer).set(b, at(64))
    return { ptr: at(64), len: b.length }
  }
  const unlink = (s: string) => {
    const p = path(s)
    return errnoName(h.wasi.path_unlink_file(Q, p.ptr, p.len))
  }
  const link = (a: string, b: string) => {
    const p = path(a)
    const bb = new TextEncoder().encode(b)
    new Uint8Array(h.mem.buffer).set(bb, at(512))
    return errnoName(h.wasi.path_link(Q, 0, p.ptr, p.len, Q, at(512), bb.length))
  }
  const rename = (a: string, b: string) => {
    const p = path(a)
    const bb = new TextEncoder().encode(b)
    new Uint8Array(h.mem.buffer).set(bb, at(512))
    return errnoName(h.wasi.path_rename(Q, p.ptr, p.len, Q, at(512), bb.length))
  }
  const symlink = (t: string, n: string) => {
    const tb = new TextEncoder().encode(t)
    new Uint8Array(h.mem.buffer).set(tb, at(1024))
    const p = path(n)
    return errnoName(h.wasi.path_symlink(at(1024), tb.length, Q, p.ptr, p.len))
  }
  return { call, open, pwrite, wrote, unlink, link, rename, symlink }
}

describe('redteam quota: sequences that try to hold more than granted', () => {
  it('unlink-while-open, truncate-while-writing, rename-over, sparse and allocate growth stay within 1 MiB', () => {
    const { h, q, inner } = setup()
    const o = ops(h)
    // 1. Fill a, keep it open, unlink it: its bytes are still held; b gets nothing.
    const a = o.open('a', O_CREAT)
    expect(o.pwrite(a.fd, 0n, MiB)).toBe('SUCCESS')
    expect(o.unlink('a')).toBe('SUCCESS')
    const b = o.open('b', O_CREAT)
    expect(o.pwrite(b.fd, 0n, 4096)).toBe('DQUOT')
    // 2. Truncate-open c while another descriptor writes far into it.
    expect(o.call(() => h.wasi.fd_close(a.fd))).toBe('SUCCESS')
    const c1 = o.open('c', O_CREAT)
    expect(o.pwrite(c1.fd, 0n, MiB / 2)).toBe('SUCCESS')
    const c2 = o.open('c', O_TRUNC)
    expect(c2.errno).toBe('SUCCESS')
    const r = o.pwrite(c1.fd, BigInt(MiB - 16), 4096)
    expect(['DQUOT', 'SUCCESS']).toContain(r)
    // 3. Sparse growth far out, set_size and allocate past the quota.
    expect(o.pwrite(c1.fd, 1n << 40n, 1)).toBe('DQUOT')
    expect(o.call(() => h.wasi.fd_filestat_set_size(c2.fd, 1n << 40n))).toBe('DQUOT')
    expect(o.call(() => h.wasi.fd_allocate(c2.fd, 0n, 1n << 40n))).toBe('DQUOT')
    // 4. Rename over a charged file while it is open elsewhere.
    const d = o.open('d', O_CREAT | O_EXCL)
    expect(o.rename('d', 'c')).toBe('SUCCESS')
    const e = o.open('e', O_CREAT)
    expect(o.pwrite(e.fd, 0n, MiB)).toBe('DQUOT')
    void d
    expect(q.usage.bytes).toBeLessThanOrEqual(MiB)
    expect(reachableBytes(inner)).toBeLessThanOrEqual(MiB)
  })

  it('hard-link churn, symlink targets and inode exhaustion are charged', () => {
    const { h, q } = setup()
    const o = ops(h)
    const f = o.open('f', O_CREAT)
    expect(f.errno).toBe('SUCCESS')
    let links = 0
    let last = 'SUCCESS'
    for (; links < 10_000 && last === 'SUCCESS'; links++) last = o.link('f', `l${links}`)
    expect(last).toBe('DQUOT')
    expect(links).toBeLessThan(MiB / 264 + 2)
    for (let i = 0; i < links - 1; i++) expect(o.unlink(`l${i}`)).toBe('SUCCESS')
    // 300 KiB symlink targets are refused by length first; 4 KiB ones are charged.
    let syms = 0
    for (; syms < 1000; syms++) if (o.symlink('t'.repeat(4000), `s${syms}`) !== 'SUCCESS') break
    expect(syms).toBeLessThan(64)
    let files = 0
    for (; files < 1000; files++) if (o.open(`n${files}`, O_CREAT | O_EXCL).errno !== 'SUCCESS') break
    expect(q.usage.inodes).toBeLessThanOrEqual(64)
    expect(q.usage.bytes).toBeLessThanOrEqual(MiB)
  })
})
