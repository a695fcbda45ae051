/**
 * @module The declarations of a script's global API (what `runtime/script-prelude.ts` defines),
 * as the text of a `.d.ts` the TypeScript check compiles beside the submitted files, so
 * `readFile`, `console`, `args`, `exit` etc. type-check and a Node or DOM global does not.
 * Keep it in step with the prelude.
 */
export const SCRIPT_GLOBALS_FILE = 'caplet-script-globals.d.ts'

export const SCRIPT_GLOBALS_DTS = `
interface CapletConsole {
  log(...data: unknown[]): void
  info(...data: unknown[]): void
  debug(...data: unknown[]): void
  error(...data: unknown[]): void
  warn(...data: unknown[]): void
  trace(...data: unknown[]): void
}
/** A failed file operation: \`code\` is the errno name (ENOENT, EPERM, EROFS, ...). */
interface CapletFileError extends Error { code: string; errno: number; path?: string }
declare var console: CapletConsole
/** Reads a file in the policy's mounts, as UTF-8 text (default) or bytes. */
declare function readFile(path: string, encoding?: 'utf8' | 'utf-8'): string
declare function readFile(path: string, encoding: 'bytes'): Uint8Array
/** Writes (creates or truncates) a file in a writable mount. */
declare function writeFile(path: string, data: string | Uint8Array): void
/** The names in a directory of the mounts (default '.'). */
declare function readdir(path?: string): string[]
/**
 * Calls a host function the embedder granted to this plugin (\`scriptPlugin(program, { host })\`)
 * with \`input\`; returns its output as bytes, or as text with 'utf8'. An ungranted name or a
 * failing host function ends the call (it cannot be caught).
 */
declare function callHost(name: string, input?: string | Uint8Array, encoding?: 'bytes'): Uint8Array
declare function callHost(name: string, input: string | Uint8Array | undefined, encoding: 'utf8' | 'utf-8'): string
/** Ends the run with this exit code (cannot be caught). */
declare function exit(code?: number): never
/** The arguments after the script's name. */
declare var args: readonly string[]
/** The granted environment. */
declare var env: Readonly<Record<string, string>>
/** All of standard input as text (read on first use). */
declare var stdin: string
`
