/**
 * @module The public API (program.ts) with the in-process executor loaded, so that the
 * synchronous calls (`runSync`, `prepareSync(...).runSync`) can run on the caller's thread.
 */
import * as inProcess from './in-process.js'
import { provideInProcess } from './program.js'

provideInProcess(inProcess)

export * from './program.js'
