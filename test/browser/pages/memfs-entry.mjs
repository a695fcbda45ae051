// The memfs package for a test page: bundled by test/browser/support.ts (bundleMemfs) with the
// browser polyfills memfs needs (buffer, events, path, stream, url, process), as a web IDE would.
export { Volume, createFsFromVolume } from 'memfs'
