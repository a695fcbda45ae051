/**
 * @module `escapeControlCharacters`: the one helper that makes a guest-chosen string (a path, an
 * import or function name, an argument) safe to print on a terminal or in a log line.
 *
 * SECURITY: a guest picks these bytes. Printed raw, an ANSI escape could repaint the terminal,
 * a newline forge a whole trace or denial line, a bidi override (U+202E) reverse what a reader
 * sees, and a zero-width character make two different names look alike. Every such character
 * comes out as a visible escape (`\n`, `\x1b`, `\u{202e}`); nothing else is changed. Never print
 * a guest string without passing it through here (or `quoteGuestString`).
 */

/** C0 and C1 controls, DEL, bidi controls, zero-width and other invisible format characters, line/paragraph separators. */
const UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\ufff9-\ufffb\uffa0]|[\ud800-\udfff]/gu

const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escapeOne(c: string): string {
  const short = SHORT[c]
  if (short !== undefined) return short
  const code = c.charCodeAt(0)
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`
  return `\\u{${code.toString(16)}}`
}

/** `s` with every control, bidi and zero-width character replaced by a visible escape. */
export function escapeControlCharacters(s: string): string {
  UNSAFE.lastIndex = 0
  return UNSAFE.test(s) ? s.replace(UNSAFE, escapeOne) : s
}

/** `s` escaped and in double quotes, with `"` and `\` escaped too, as traces print paths. */
export function quoteGuestString(s: string): string {
  return `"${escapeControlCharacters(s.replace(/\\/g, '\\\\').replace(/"/g, '\\"'))}"`
}
