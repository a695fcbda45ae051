/**
 * @module The browser's answers to policy resolution (swapped in for `runtime/policy-host.ts` by
 * the browser build): a page has no host directories and no terminals. The browser entry refuses
 * host mounts before resolution, so `hostRealPath` is never asked; if it were, it answers
 * "cannot resolve", which grants nothing.
 */

/** Whether POSIX path `inner` is `outer` or lies beneath it (both already absolute). */
export function within(inner: string, outer: string): boolean {
  const o = outer.endsWith('/') ? outer : `${outer}/`
  return inner === outer || inner.startsWith(o)
}

export function hostRealPath(_p: string): string | undefined {
  return undefined
}

export function isTerminal(_fd: number): boolean {
  return false
}

/** A page has no host files to read stdin from. */
export function readableFile(_path: string): boolean {
  return false
}
