/**
 * @module JavaScript/TypeScript guests need the QuickJS engine loaded from node_modules (swapped
 * in for `runtime/script-guest.ts` by the browser build): not available in `caplet/browser` yet.
 */
import type { HostCaller, StartScript } from '../../script-guest.js'

export type { HostCaller, ScriptGuest, ScriptRun, StartScript } from '../../script-guest.js'

export function registerScriptRunner(_start: StartScript, _forget: (plugin: string) => void): void {}

export function forgetScriptProgram(_plugin: string): void {}

export function scriptRunner(): StartScript {
  throw new Error('[caplet] JavaScript/TypeScript guests are not available in caplet/browser yet')
}

export const ENGINE_HOST_IMPORTS: readonly string[] = []

export function engineBytes(): never {
  throw new Error('[caplet] JavaScript/TypeScript guests are not available in caplet/browser yet')
}

export function bridgedHostCaller(): HostCaller {
  throw new Error('[caplet] JavaScript/TypeScript guests are not available in caplet/browser yet')
}
