/**
 * `layoutDirents`: a listing laid out once as the dirents `fd_readdir` copies out (header, then
 * the name's UTF-8 bytes), `.` and `..` first, with an offset per cookie; `setSelfIno` fills in
 * the directory's own inode. The whole listing is encoded as one text with NUL holes for the
 * headers, so name lengths must be measured right (non-ASCII names, NULs from a broken backend)
 * or every later header lands in the wrong place.
 */
import { describe, expect, it } from 'vitest'
import { Filetype } from '../../wasi-host/abi/constants.js'
import { layoutDirents, setSelfIno, type DirentListing } from '../../wasi-host/abi/structs.js'
import type { DirEntry } from '../../wasi-host/fs/filesystem.js'

interface Parsed {
  next: bigint
  ino: bigint
  type: number
  name: string
  at: number
}

function parse(l: DirentListing): Parsed[] {
  const dv = new DataView(l.bytes.buffer, l.bytes.byteOffset, l.bytes.byteLength)
  const out: Parsed[] = []
  let at = 0
  while (at < l.bytes.byteLength) {
    const len = dv.getUint32(at + 16, true)
    expect(l.bytes.subarray(at + 21, at + 24)).toEqual(new Uint8Array(3)) // padding is zero
    out.push({
      next: dv.getBigUint64(at, true),
      ino: dv.getBigUint64(at + 8, true),
      type: dv.getUint8(at + 20),
      name: new TextDecoder().decode(l.bytes.subarray(at + 24, at + 24 + len)),
      at,
    })
    at += 24 + len
  }
  return out
}

const entry = (name: string, ino: bigint, filetype: Filetype = Filetype.REGULAR_FILE): DirEntry => ({ name, ino, filetype })

describe('layoutDirents', () => {
  it('lays out ".", "..", then every entry with its cookie, inode, type and UTF-8 name', () => {
    const entries = [
      entry('a.txt', 7n),
      entry('sub', 8n, Filetype.DIRECTORY),
      entry('été ☃ 𝄞', 2n ** 63n + 5n),
      entry('l', 9n, Filetype.SYMBOLIC_LINK),
    ]
    const l = layoutDirents(entries)
    const parsed = parse(l)
    expect(parsed.map((p) => p.name)).toEqual(['.', '..', 'a.txt', 'sub', 'été ☃ 𝄞', 'l'])
    expect(parsed.map((p) => p.next)).toEqual([1n, 2n, 3n, 4n, 5n, 6n])
    expect(parsed.map((p) => p.type)).toEqual([
      Filetype.DIRECTORY,
      Filetype.DIRECTORY,
      Filetype.REGULAR_FILE,
      Filetype.DIRECTORY,
      Filetype.REGULAR_FILE,
      Filetype.SYMBOLIC_LINK,
    ])
    expect(parsed.slice(2).map((p) => p.ino)).toEqual([7n, 8n, 2n ** 63n + 5n, 9n])
    // The name length is in bytes: 3 + 1 + 4 + 1 + 2x1 + 1 + 4 bytes for "été ☃ 𝄞".
    expect(new DataView(l.bytes.buffer).getUint32(parsed[4]!.at + 16, true)).toBe(new TextEncoder().encode('été ☃ 𝄞').byteLength)
    // One offset per cookie, and the end.
    expect(l.count).toBe(6)
    expect([...l.offsets]).toEqual([...parsed.map((p) => p.at), l.bytes.byteLength])
  })

  it('fills in the directory inode of "." and ".." when asked, and nothing else', () => {
    const l = layoutDirents([entry('x', 3n)])
    expect(l.selfIno).toBe(false)
    expect(parse(l).map((p) => p.ino)).toEqual([0n, 0n, 3n])
    setSelfIno(l, 42n)
    expect(l.selfIno).toBe(true)
    expect(parse(l).map((p) => p.ino)).toEqual([42n, 42n, 3n])
  })

  it('lays out an empty directory as "." and ".."', () => {
    const l = layoutDirents([])
    expect(parse(l).map((p) => p.name)).toEqual(['.', '..'])
    expect(l.bytes.byteLength).toBe(24 + 1 + 24 + 2)
  })

  it('keeps entries apart when a (broken) backend hands out names holding NUL, or empty ones', () => {
    const entries = [entry('a', 1n), entry('b\0c', 2n), entry('', 3n), entry('d', 4n)]
    expect(
      parse(layoutDirents(entries))
        .slice(2)
        .map((p) => [p.name, p.ino]),
    ).toEqual([
      ['a', 1n],
      ['b\0c', 2n],
      ['', 3n],
      ['d', 4n],
    ])
    const trailing = [entry('a', 1n), entry('b\0', 2n)]
    expect(
      parse(layoutDirents(trailing))
        .slice(2)
        .map((p) => p.name),
    ).toEqual(['a', 'b\0'])
  })
})
