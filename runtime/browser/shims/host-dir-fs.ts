/**
 * @module Host directories do not exist in a browser (swapped in for `wasi-host/node/host-dir-fs.ts`
 * by the browser build). `caplet/browser` refuses `host` mounts with a PolicyError before any run,
 * so this is never reached; if it were, it refuses rather than grant anything.
 */
export function createHostDirFs(_hostPath: string): never {
  throw new Error('[caplet] host directories are not available in the browser')
}
