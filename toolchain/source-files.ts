/**
 * @module The submitted source files: guest-relative names mapped to bytes, validated before any
 * compiler sees them. A name is a relative path of plain components (letters, digits, `_`, `.`,
 * `-`, `+`; no leading `-` or `.`): never absolute, never `..` or `.`, no NUL, no backslash, no
 * empty component. Count, each file's size and the total are bounded. Never touches the disk.
 */
import { CompileError } from '../runtime/errors.js'

export const MAX_SOURCE_FILES = 256
export const MAX_SOURCE_FILE_BYTES = 8 * 1024 * 1024
export const MAX_SOURCE_TOTAL_BYTES = 32 * 1024 * 1024
const MAX_NAME_CHARS = 512
const MAX_DEPTH = 16

/** Validated sources: name -> bytes, in a stable (sorted) order. */
export type SourceFiles = ReadonlyMap<string, Uint8Array>

const COMPONENT = /^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,127}$/

/** Why `name` is not an acceptable guest-relative file name, or undefined when it is. */
export function nameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'is empty'
  if (name.length > MAX_NAME_CHARS) return `is longer than ${MAX_NAME_CHARS} characters`
  if (name.includes('\0')) return 'contains a NUL character'
  if (name.startsWith('/')) return 'is absolute (names are relative to the project, e.g. src/main.c)'
  if (name.includes('\\')) return 'contains a backslash (use / between directories)'
  const parts = name.split('/')
  if (parts.length > MAX_DEPTH) return `is nested deeper than ${MAX_DEPTH} directories`
  for (const part of parts) {
    if (part === '') return 'has an empty component (// or a trailing /)'
    if (part === '.' || part === '..') return `has a "${part}" component`
    if (!COMPONENT.test(part)) return 'may use only letters, digits and _ . - + in each component, not starting with . or -'
  }
  return undefined
}

/** Shows a guest-chosen name safely in a message: quoted, control characters escaped, bounded. */
export function quoteName(name: unknown): string {
  const s = typeof name === 'string' ? name : String(name)
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s)
}

/**
 * Validates and copies the submitted files. Throws CompileError listing every problem.
 * Strings are encoded as UTF-8; byte arrays are copied (a caller reusing its buffer cannot change
 * what is compiled or what the cache key was computed over).
 */
export function validateSources(files: unknown): SourceFiles {
  if (typeof files !== 'object' || files === null || Array.isArray(files)) {
    throw new CompileError('files must be an object mapping file names to their contents')
  }
  const names = Object.keys(files)
  if (names.length === 0) throw new CompileError('no source files given')
  if (names.length > MAX_SOURCE_FILES) throw new CompileError(`too many source files: ${names.length} (at most ${MAX_SOURCE_FILES})`)
  const problems: string[] = []
  const out = new Map<string, Uint8Array>()
  const enc = new TextEncoder()
  let total = 0
  for (const name of names.sort()) {
    const problem = nameProblem(name)
    if (problem) {
      problems.push(`file name ${quoteName(name)} ${problem}`)
      continue
    }
    const value = (files as Record<string, unknown>)[name]
    let bytes: Uint8Array
    if (typeof value === 'string') {
      if (value.length > MAX_SOURCE_FILE_BYTES) {
        problems.push(`${quoteName(name)} is larger than ${MAX_SOURCE_FILE_BYTES} bytes`)
        continue
      }
      bytes = enc.encode(value)
    } else if (value instanceof Uint8Array) {
      bytes = value.slice()
    } else {
      problems.push(`${quoteName(name)}: contents must be a string or a Uint8Array`)
      continue
    }
    if (bytes.byteLength > MAX_SOURCE_FILE_BYTES) {
      problems.push(`${quoteName(name)} is larger than ${MAX_SOURCE_FILE_BYTES} bytes`)
      continue
    }
    total += bytes.byteLength
    out.set(name, bytes)
  }
  if (total > MAX_SOURCE_TOTAL_BYTES) problems.push(`the sources add up to more than ${MAX_SOURCE_TOTAL_BYTES} bytes`)
  // A name that is also a directory of another ("a" and "a/b") cannot be laid out as files.
  for (const name of out.keys()) {
    const parts = name.split('/')
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/')
      if (out.has(dir)) problems.push(`${quoteName(dir)} is both a file and the directory of ${quoteName(name)}`)
    }
  }
  if (problems.length > 0)
    throw new CompileError(
      `invalid sources: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`,
    )
  return out
}

/** The extension-matching helper the languages use: does `name` end with one of `exts`? */
export function hasExtension(name: string, exts: readonly string[]): boolean {
  const lower = name.toLowerCase()
  return exts.some((e) => lower.endsWith(e))
}
