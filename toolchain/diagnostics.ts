/**
 * @module Compiler diagnostics: one shape for every language, parsed from a compiler's text
 * output, bounded in count and size, and rendered back as text. File names in a diagnostic are
 * the guest-relative names of the submitted files; this module never lets a host path through
 * (callers hand it a `redact` list of every host path the compiler could have printed).
 */

export type Severity = 'error' | 'warning' | 'note'

export interface Diagnostic {
  severity: Severity
  message: string
  /** The submitted file's guest-relative name (or a system header's path inside the jail). */
  file?: string
  line?: number
  column?: number
}

/** At most this many diagnostics are kept; the rest are counted in one last note. */
export const MAX_DIAGNOSTICS = 200
/** A single message is cut to this many characters. */
export const MAX_MESSAGE_CHARS = 2000

const LOCATED = /^(.+?):(\d+):(\d+): (fatal error|error|warning|note|remark): (.*)$/
const UNLOCATED = /^(?:[\w.+-]+: )?(fatal error|error|warning|note): (.*)$/

const INCLUDED = /^(?:In file included from |\s+from )\S+:\d+[:,]$/
const GENERATED = /^\d+ (?:errors?|warnings?)(?: and \d+ warnings?)? generated\.$/

function severityOf(word: string): Severity {
  if (word === 'warning') return 'warning'
  if (word === 'note' || word === 'remark') return 'note'
  return 'error'
}

/** Replaces every occurrence of each host path in `text` by its guest name ('' drops it). */
export function redactPaths(text: string, redact: ReadonlyArray<readonly [hostPath: string, replacement: string]>): string {
  let out = text
  for (const [host, replacement] of redact) {
    if (host.length > 0) out = out.split(host).join(replacement)
  }
  return out
}

/**
 * Parses compiler output of the `file:line:col: severity: message` form (clang, wasm-ld, wabt).
 * Lines that are neither (carets, source excerpts, "In file included from") are appended to the
 * previous diagnostic's message, so nothing the compiler said is lost.
 */
export function parseDiagnostics(text: string): Diagnostic[] {
  const out: Diagnostic[] = []
  // "In file included from a.c:2:" lines come before the diagnostic they explain.
  let context: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (INCLUDED.test(line)) {
      context.push(line.trim())
      continue
    }
    const m = LOCATED.exec(line)
    if (m) {
      const message = context.length > 0 ? `${m[5]!}\n${context.join('\n')}` : m[5]!
      context = []
      out.push({ severity: severityOf(m[4]!), message, file: m[1]!, line: Number(m[2]), column: Number(m[3]) })
      continue
    }
    const u = UNLOCATED.exec(line)
    if (u) {
      out.push({ severity: severityOf(u[1]!), message: u[2]! })
      continue
    }
    if (line.trim() === '' || GENERATED.test(line)) continue
    const last = out[out.length - 1]
    if (last) last.message += `\n${line}`
    else out.push({ severity: 'note', message: line })
  }
  return bound(out)
}

/** Caps the count and the size of each message. */
export function bound(diagnostics: Diagnostic[]): Diagnostic[] {
  const kept = diagnostics
    .slice(0, MAX_DIAGNOSTICS)
    .map((d) => (d.message.length > MAX_MESSAGE_CHARS ? { ...d, message: `${d.message.slice(0, MAX_MESSAGE_CHARS)} [...]` } : d))
  if (diagnostics.length > MAX_DIAGNOSTICS) {
    kept.push({ severity: 'note', message: `${diagnostics.length - MAX_DIAGNOSTICS} more diagnostics not shown` })
  }
  return kept
}

/** One diagnostic as the compiler would print it (`main.c:3:5: error: ...`). */
export function formatDiagnostic(d: Diagnostic): string {
  const where =
    d.file !== undefined ? `${d.file}${d.line !== undefined ? `:${d.line}${d.column !== undefined ? `:${d.column}` : ''}` : ''}: ` : ''
  return `${where}${d.severity}: ${d.message}`
}

export function formatDiagnostics(diagnostics: readonly Diagnostic[]): string {
  return diagnostics.map((d) => `${formatDiagnostic(d)}\n`).join('')
}

/** The first error's one-line summary, for an exception message. */
export function summarize(diagnostics: readonly Diagnostic[], fallback: string): string {
  const errors = diagnostics.filter((d) => d.severity === 'error')
  const first = errors[0]
  if (!first) return fallback
  const line = formatDiagnostic({ ...first, message: first.message.split('\n')[0]! })
  return errors.length > 1 ? `${line} (and ${errors.length - 1} more errors)` : line
}
