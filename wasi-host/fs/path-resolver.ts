/**
 * @module The one path resolver (cap-std's algorithm; docs/security.md, docs/decisions.md 1).
 *
 * Walks a guest path one component at a time from a directory handle. `..` pops a stack of
 * handles and never reaches the backend; symlinks are expanded by pushing their target's
 * components onto the worklist. An absolute path, an absolute symlink target, or a `..` with an
 * empty stack is an escape (`PERM`). Every `path_*` call goes through here; backends only ever
 * see single components.
 *
 * SECURITY: never join strings and check a prefix; never ask a backend to resolve `..`.
 */
import { Errno, Filetype } from '../abi/constants.js'
import { WasiError } from '../errors.js'
import type { DirHandle, NodeStat } from './filesystem.js'
import { denial } from '../rights.js'

export interface ResolverLimits {
  /** Symlinks expanded in one lookup before `LOOP` (POSIX SYMLOOP_MAX; cap-std uses 40). */
  maxSymlinks: number
  /** Bytes in a guest path before `NAMETOOLONG`. */
  maxPathBytes: number
  /** Bytes in one component before `NAMETOOLONG`. */
  maxNameBytes: number
  /** Components walked in one lookup (including symlink expansions) before `NAMETOOLONG`. */
  maxComponents: number
}

export const DEFAULT_RESOLVER_LIMITS: ResolverLimits = Object.freeze({
  maxSymlinks: 40,
  maxPathBytes: 4096,
  maxNameBytes: 255,
  maxComponents: 4096,
})

export interface ResolveOptions {
  /** Follow a symlink in the final component (`lookupflags.symlink_follow`). */
  follow: boolean
  /**
   * A trailing slash normally makes a final symlink be followed (`link/` means the directory).
   * Calls that act on the entry itself (`rmdir`, `unlink`, `rename`) set this to keep the link,
   * so `rmdir("link/")` is `NOTDIR`, as on Linux, and never removes the link's target.
   */
  keepLinkWithSlash?: boolean
  /**
   * NOTE: a shortcut for a caller whose action on the final entry itself refuses to follow a
   * symlink (`openFile`: `O_NOFOLLOW`). At a final component that is a plain name with no
   * trailing slash, `probe(dir, name)` runs *instead of* the lookup (one host call fewer). It
   * returns true when its action settled the call (the walk ends there: `probed` is set, `stat`
   * is undefined), or false when the outcome depends on what the name is (a symlink to follow,
   * a directory, nothing there): the walk then goes on exactly as if there were no probe. A
   * probe that returns false must have had no effect. Every other component, and every symlink,
   * still goes through this walk.
   */
  probe?: (dir: DirHandle, name: string) => boolean
}

/** What a path designates: `name` inside `dir`, or `dir` itself when `name` is undefined. */
export interface Resolution {
  dir: DirHandle
  /** The final component; undefined when the path ends in `.` or `..` (it designates `dir`). */
  name: string | undefined
  /** lstat of the target, or undefined if the final component does not exist (or was probed). */
  stat: NodeStat | undefined
  /** `ResolveOptions.probe` ran on `name` and settled the call; nothing was looked up. */
  probed: boolean
  /** The path (or the final symlink's target) ended in `/`: the target must be a directory. */
  trailingSlash: boolean
  /** How many directories `dir` lies beneath the start handle (0 for the start itself). */
  depth: number
  /** Closes the handles the walk opened (never the start handle, nor one passed to `keep`). Idempotent. */
  release(): void
  /** Takes `handle` (one the walk opened) out of what `release` closes: the caller now owns it. */
  keep(handle: DirHandle): void
}

const utf8 = new TextEncoder()

/** Validates a guest path string before any lookup. */
export function validatePath(path: string, limits: ResolverLimits): void {
  if (path.length === 0) throw new WasiError(Errno.NOENT, 'empty path')
  if (path.includes('\0')) throw new WasiError(Errno.INVAL, 'NUL in path')
  // UTF-16 length is a lower bound of UTF-8 length; encode only when it could matter.
  if (path.length * 3 > limits.maxPathBytes && utf8.encode(path).byteLength > limits.maxPathBytes) {
    throw new WasiError(Errno.NAMETOOLONG, 'path too long')
  }
}

function pushComponents(work: string[], path: string): void {
  // Most paths are one component: no split, no scan.
  if (!path.includes('/')) {
    work.push(path)
    return
  }
  const parts = path.split('/')
  for (let i = parts.length - 1; i >= 0; i--) {
    const p = parts[i]!
    if (p !== '') work.push(p)
  }
}

/** A walk's result; it owns the handles the walk opened until `release` (methods, not per-call closures). */
class Walk implements Resolution {
  dir: DirHandle
  name: string | undefined = undefined
  stat: NodeStat | undefined = undefined
  probed = false
  trailingSlash: boolean
  depth = 0
  /** Handles the walk opened, in order; undefined until the first. */
  opened: DirHandle[] | undefined = undefined

  constructor(start: DirHandle, trailingSlash: boolean) {
    this.dir = start
    this.trailingSlash = trailingSlash
  }

  release(): void {
    const opened = this.opened
    if (opened === undefined) return
    for (let i = opened.length - 1; i >= 0; i--) opened[i]!.close()
    opened.length = 0
  }

  keep(handle: DirHandle): void {
    const opened = this.opened
    const i = opened === undefined ? -1 : opened.indexOf(handle)
    if (i >= 0) opened!.splice(i, 1)
  }

  found(dir: DirHandle, name: string | undefined, stat: NodeStat | undefined, depth: number): Resolution {
    this.dir = dir
    this.name = name
    this.stat = stat
    this.depth = depth
    return this
  }
}

/**
 * Resolves `path` beneath `start`.
 * @throws WasiError PERM (escape), NOENT, NOTDIR, LOOP, NAMETOOLONG, INVAL, ILSEQ
 */
export function resolve(
  start: DirHandle,
  path: string,
  options: ResolveOptions,
  limits: ResolverLimits = DEFAULT_RESOLVER_LIMITS,
): Resolution {
  validatePath(path, limits)
  if (path.startsWith('/')) throw denial('escape', 'absolute path escapes the capability')

  const walk = new Walk(start, path.endsWith('/'))
  const stack: DirHandle[] = []
  const probe = options.probe
  let base = start
  let symlinks = 0
  let walked = 0
  const work: string[] = []
  pushComponents(work, path)

  try {
    if (work.length === 0) {
      // Only possible for a path made of slashes, already refused as absolute.
      throw new WasiError(Errno.NOENT, 'empty path')
    }
    for (;;) {
      const component = work.pop()!
      const last = work.length === 0
      if (++walked > limits.maxComponents) throw new WasiError(Errno.NAMETOOLONG, 'too many components')
      if (component === '.') {
        if (last) return walk.found(base, undefined, base.stat(), stack.length)
        continue
      }
      if (component === '..') {
        const parent = stack.pop()
        if (parent === undefined) throw denial('escape', '".." escapes the capability')
        base = parent
        if (last) return walk.found(base, undefined, base.stat(), stack.length)
        continue
      }
      // A UTF-16 length is at least a third of the UTF-8 length: encode only when it could matter.
      if (component.length * 3 > limits.maxNameBytes && utf8.encode(component).byteLength > limits.maxNameBytes) {
        throw new WasiError(Errno.NAMETOOLONG, 'component too long')
      }
      if (last && probe !== undefined && !walk.trailingSlash && probe(base, component)) {
        walk.probed = true
        return walk.found(base, component, undefined, stack.length)
      }
      if (!last) {
        // Mid-path, almost every component is a plain directory: open it at once (no follow, so
        // a symlink fails here), one backend call instead of a stat and an open. Any refusal falls
        // through to the lookup below, which decides as before (a symlink, NOTDIR, NOENT).
        let next: DirHandle | undefined
        try {
          next = base.openDir(component)
        } catch (e) {
          if (!(e instanceof WasiError)) throw e
        }
        if (next !== undefined) {
          ;(walk.opened ??= []).push(next)
          stack.push(base)
          base = next
          continue
        }
      }
      let stat: NodeStat
      try {
        stat = base.statChild(component)
      } catch (e) {
        if (last && e instanceof WasiError && e.errno === Errno.NOENT) {
          return walk.found(base, component, undefined, stack.length)
        }
        throw e
      }
      if (stat.filetype === Filetype.SYMBOLIC_LINK && (!last || options.follow || (walk.trailingSlash && !options.keepLinkWithSlash))) {
        if (++symlinks > limits.maxSymlinks) throw new WasiError(Errno.LOOP, 'too many symlinks')
        const target = base.readlink(component)
        if (target.length === 0) throw new WasiError(Errno.NOENT, 'empty symlink target')
        if (target.startsWith('/')) throw denial('escape', 'absolute symlink target escapes the capability')
        validatePath(target, limits)
        if (last) walk.trailingSlash = walk.trailingSlash || target.endsWith('/')
        pushComponents(work, target)
        if (work.length === 0) {
          // A target of only slashes cannot happen here (not absolute, not empty).
          throw new WasiError(Errno.NOENT, 'empty symlink target')
        }
        continue
      }
      if (last) return walk.found(base, component, stat, stack.length)
      if (stat.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'not a directory')
      const next = base.openDir(component)
      ;(walk.opened ??= []).push(next)
      stack.push(base)
      base = next
    }
  } catch (e) {
    walk.release()
    throw e
  }
}
