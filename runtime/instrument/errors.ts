/**
 * @module The one error type of the binary rewriter. Every refusal carries a machine-readable
 * `code` (so the runtime can map it to a policy or module error) and the numbers behind it.
 */

export type InstrumentErrorCode =
  /** The bytes are not a well-formed module (bad header, truncated section, bad LEB128, …). */
  | 'MALFORMED'
  /** A defined memory's minimum is already above the cap: the module could never start under it. */
  | 'MEMORY_MIN_EXCEEDS_CAP'
  /** An opcode (or prefixed sub-opcode) the rewriter does not know: refused rather than guessed. */
  | 'UNKNOWN_OPCODE'
  /** A known construct fuel metering cannot account for soundly (exceptions, GC, typed function references). */
  | 'UNSUPPORTED_FEATURE'
  /** The export name the fuel counter needs is already used by the module. */
  | 'EXPORT_NAME_TAKEN'
  /** A caller-supplied option is out of range. */
  | 'BAD_OPTION'
  /** The module declares more tables, or larger ones, than the cap allows. */
  | 'TABLES_EXCEED_CAP'

export interface InstrumentErrorDetails {
  /** For MEMORY_MIN_EXCEEDS_CAP: the memory's index, its declared minimum and the cap, in 64 KiB pages. */
  memoryIndex?: number
  minPages?: number
  capPages?: number
  /** For code errors: the function index (imports counted) and the byte offset in the module. */
  functionIndex?: number
  offset?: number
  /** The opcode, e.g. `0xfd 0x9a`. */
  opcode?: string
  exportName?: string
}

export class InstrumentError extends Error {
  readonly code: InstrumentErrorCode
  readonly details: InstrumentErrorDetails
  /** The message without its `[caplet]` prefix. */
  readonly reason: string

  constructor(code: InstrumentErrorCode, message: string, details: InstrumentErrorDetails = {}) {
    super(`[caplet] ${message}`)
    this.reason = message
    this.name = 'InstrumentError'
    this.code = code
    this.details = details
  }
}

export function malformed(message: string, offset?: number): InstrumentError {
  return new InstrumentError(
    'MALFORMED',
    offset === undefined ? `malformed module: ${message}` : `malformed module at byte ${offset}: ${message}`,
    offset === undefined ? {} : { offset },
  )
}
