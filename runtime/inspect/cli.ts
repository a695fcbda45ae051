/**
 * @module `caplet inspect MODULE [--json]`: reads a module file and prints its report. Never
 * compiles or runs the module; a malformed one is one line naming the byte offset.
 */
import { readFileSync } from 'node:fs'
import { ModuleError } from '../errors.js'
import { inspectModule } from './analyze.js'
import { inspectJson, inspectText } from './render.js'

export const INSPECT_HELP = `Usage: caplet inspect [--json] MODULE.wasm

Shows everything MODULE can ever ask of the host: its imports grouped by module (WASI functions
described, others flagged), the functions that call each import and how often, whether an import
is reachable through a table, its exports, memories, tables, start function, whether it is a
command or a reactor, the WebAssembly features it uses, its custom sections, and a suggested
least-privilege policy. The module is read, never run.

  --json      Print the report as JSON (keys documented in the README).
`

export interface InspectIo {
  out: (s: string) => void
  err: (s: string) => void
}

/** Runs `caplet inspect`; resolves with the exit code (0, 125 bad usage, 126 bad module). */
export function inspectMain(argv: readonly string[], io: InspectIo): number {
  let json = false
  let file: string | undefined
  for (const a of argv) {
    if (a === '--json') json = true
    else if (a === '-h' || a === '--help') {
      io.out(INSPECT_HELP)
      return 0
    } else if (a.startsWith('-') && file === undefined) {
      io.err(`caplet: inspect: unknown flag ${a} (see caplet inspect --help)\n`)
      return 125
    } else if (file === undefined) file = a
    else {
      io.err(`caplet: inspect takes one module (got ${JSON.stringify(a)} too)\n`)
      return 125
    }
  }
  if (file === undefined) {
    io.err('caplet: inspect needs a module: caplet inspect [--json] MODULE.wasm\n')
    return 125
  }
  let bytes: Uint8Array
  try {
    bytes = readFileSync(file)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    io.err(
      `caplet: cannot read module ${JSON.stringify(file)}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : String(code ?? e)}\n`,
    )
    return 126
  }
  try {
    const report = inspectModule(bytes)
    io.out(json ? JSON.stringify(inspectJson(report), null, 2) + '\n' : inspectText(report, file))
    return 0
  } catch (e) {
    if (e instanceof ModuleError) {
      io.err(`caplet: ${e.reason}\n`)
      return 126
    }
    throw e
  }
}
