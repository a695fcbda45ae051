/**
 * @module What policy resolution asks of the platform: the real path of a host directory (to
 * refuse two writable views of one tree), whether a stdin file is readable, and whether an
 * inherited stream is a terminal. Node's answers; the browser build swaps in
 * `browser/shims/policy-host.ts` (no host directories or files, no terminals). It must never grant anything: it only answers questions about the host.
 */
import { accessSync, constants as fsConstants, realpathSync, statSync } from 'node:fs'
import { isAbsolute, relative } from 'node:path'
import { isatty } from 'node:tty'

/** Whether `inner` is `outer` or lies beneath it (`/` contains everything). */
export function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

/** The canonical path of a host directory, or undefined when it cannot be resolved. */
export function hostRealPath(p: string): string | undefined {
  try {
    return realpathSync(p)
  } catch {
    return undefined
  }
}

/** Whether host fd 0, 1 or 2 is a terminal. */
export function isTerminal(fd: number): boolean {
  return isatty(fd)
}

/** A stdin file must exist and be a readable regular file when the run is resolved (a FIFO could block the host). */
export function readableFile(path: string): boolean {
  try {
    accessSync(path, fsConstants.R_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}
