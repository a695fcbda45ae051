/**
 * @module A `Filesystem` wrapper for backends that cannot store links (the browser's Origin
 * Private File System has neither symlinks nor hard links): `symlink` and `link` fail with
 * `NOTSUP`, so a guest learns it at once rather than losing the link at write-back. Everything
 * else passes through; directories opened through it stay wrapped.
 */
import { Errno, WasiError, type DirHandle, type Filesystem } from '../../wasi-host/index.js'

function wrapDir(inner: DirHandle): DirHandle {
  return {
    kind: 'dir',
    stat: () => inner.stat(),
    setTimes: (a, m) => inner.setTimes(a, m),
    statChild: (n) => inner.statChild(n),
    openDir: (n) => wrapDir(inner.openDir(n)),
    openFile: (n, o) => inner.openFile(n, o),
    readlink: (n) => inner.readlink(n),
    mkdir: (n) => inner.mkdir(n),
    symlink: () => {
      throw new WasiError(Errno.NOTSUP, 'this mount cannot store symlinks')
    },
    unlink: (n) => inner.unlink(n),
    rmdir: (n) => inner.rmdir(n),
    rename: (n, to, toName) => inner.rename(n, unwrap(to), toName),
    link: () => {
      throw new WasiError(Errno.NOTSUP, 'this mount cannot store hard links')
    },
    setTimesChild: (n, a, m) => inner.setTimesChild(n, a, m),
    readdir: () => inner.readdir(),
    close: () => inner.close(),
    [INNER]: inner,
  } as DirHandle
}

const INNER = Symbol('inner')
/** A rename's target directory is handed to the inner backend as its own handle (else `XDEV`). */
function unwrap(d: DirHandle): DirHandle {
  return (d as unknown as { [INNER]?: DirHandle })[INNER] ?? d
}

export function withoutLinks(fs: Filesystem): Filesystem {
  const caps = Object.freeze({ ...fs.caps, symlinks: false, hardLinks: false, writeBehind: false })
  return { caps, root: () => wrapDir(fs.root()) }
}
