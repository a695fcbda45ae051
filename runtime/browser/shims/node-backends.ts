/**
 * @module The browser's stand-in for `caplet/node` (`wasi-host/node/index.ts`, swapped in by the
 * browser build): the clocks of a browser worker, and host directories and overlays that refuse
 * (a page has none; `caplet/browser` refuses such mounts before any run).
 */
export { createNodeClocks } from './clocks.js'
export { createHostDirFs } from './host-dir-fs.js'
export { applyOverlay, exportOverlay } from './overlay-apply.js'
