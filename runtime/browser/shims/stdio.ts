/**
 * @module A page has no process stdio (swapped in for `runtime/stdio.ts` by the browser build).
 * `caplet/browser` refuses `'inherit'` streams with a PolicyError, so these are never reached;
 * if they were, they refuse.
 */
export function writeAllSync(_fd: number, _chunk: Uint8Array): never {
  throw new Error('[caplet] the browser has no host stdout or stderr; output is streamed to the page')
}
export function openHostStdin(): never {
  throw new Error('[caplet] the browser has no host stdin; pass stdin as a string or bytes')
}
