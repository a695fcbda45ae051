// Globals memfs's dependencies expect, injected by esbuild into the test page's memfs bundle.
import processPolyfill from 'process/browser.js'
export { Buffer } from 'buffer'
export const process = processPolyfill
