/**
 * @module The Node backends of the WASI host (`caplet/node`): a host directory as a `Filesystem`,
 * and writing an overlay's changes back (`applyOverlay`) or out (`exportOverlay`). This is the
 * only public entry that touches the host's files; it must never write outside the directory
 * it was given.
 */
export { createHostDirFs } from './host-dir-fs.js'
export type { HostDirFs, HostDirFsOptions, HostDirStrategy } from './host-dir-fs.js'
export { applyOverlay, exportOverlay, OverlayApplyError, OVERLAY_MANIFEST } from './overlay-apply.js'
export type { OverlayManifest } from './overlay-apply.js'
export { createNodeClocks } from './clocks.js'
