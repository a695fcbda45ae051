/**
 * @module Overlays write to host directories, which a browser does not have (swapped in for
 * `wasi-host/node/overlay-apply.ts` by the browser build). `caplet/browser` refuses overlay mounts
 * with a PolicyError, so these are never reached; if they were, they refuse.
 */
export function applyOverlay(): never {
  throw new Error('[caplet] overlays are not available in the browser')
}
export function exportOverlay(): never {
  throw new Error('[caplet] overlays are not available in the browser')
}
