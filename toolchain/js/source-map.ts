/**
 * @module Reads a version-3 source map (as esbuild emits it) and maps a generated position back
 * to the script's own file, line and column, so an uncaught exception names the line the author
 * wrote. Pure data in, data out: it never reads files, and a malformed map yields no mapping
 * (never an exception: the map travels with a program an untrusted party may have built).
 */

/** One generated line's segments: [generatedColumn, sourceIndex, sourceLine, sourceColumn], 0-based. */
type Segment = [number, number, number, number]

export interface OriginalPosition {
  /** The submitted file's name, as it was submitted (e.g. `lib/util.ts`). */
  file: string
  /** 1-based, as editors and stack traces count. */
  line: number
  column: number
}

const BASE64 = new Int8Array(128).fill(-1)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) BASE64[c.charCodeAt(0)] = i

/** Upper bound on what is decoded, whatever the map claims (a map is data from the compile step). */
const MAX_MAPPINGS_CHARS = 64 * 1024 * 1024

export class SourceMap {
  readonly #sources: string[]
  /** Per generated line, its segments in generated-column order; decoded on first use. */
  #lines: Segment[][] | undefined
  readonly #mappings: string

  constructor(json: string) {
    let sources: string[] = []
    let mappings = ''
    try {
      const v = JSON.parse(json) as { sources?: unknown; mappings?: unknown }
      if (Array.isArray(v.sources)) sources = v.sources.map((s) => (typeof s === 'string' ? s : '?'))
      if (typeof v.mappings === 'string' && v.mappings.length <= MAX_MAPPINGS_CHARS) mappings = v.mappings
    } catch {
      // No usable map: positions stay as generated.
    }
    this.#sources = sources
    this.#mappings = mappings
  }

  /** The original position of a 1-based generated line and column, if the map covers it. */
  original(line: number, column: number): OriginalPosition | undefined {
    const lines = (this.#lines ??= decodeMappings(this.#mappings))
    const segs = lines[line - 1]
    if (segs === undefined || segs.length === 0) return undefined
    const col = column - 1
    // The last segment starting at or before the column (binary search).
    let lo = 0
    let hi = segs.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (segs[mid]![0] <= col) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    const seg = segs[found === -1 ? 0 : found]!
    if (seg[1] < 0) return undefined
    const file = this.#sources[seg[1]]
    if (file === undefined) return undefined
    return { file, line: seg[2] + 1, column: seg[3] + 1 }
  }
}

function decodeMappings(mappings: string): Segment[][] {
  const lines: Segment[][] = []
  let line: Segment[] = []
  let src = 0,
    srcLine = 0,
    srcCol = 0
  let genCol = 0
  let i = 0
  const fields: number[] = []
  const n = mappings.length
  while (i <= n) {
    const c = i < n ? mappings.charCodeAt(i) : 59 /* ; ends the last line */
    if (c === 59 /* ; */ || c === 44 /* , */) {
      if (fields.length >= 4) {
        genCol += fields[0]!
        src += fields[1]!
        srcLine += fields[2]!
        srcCol += fields[3]!
        line.push([genCol, src, srcLine, srcCol])
      } else if (fields.length >= 1) {
        genCol += fields[0]!
        line.push([genCol, -1, 0, 0])
      }
      fields.length = 0
      if (c === 59) {
        lines.push(line)
        line = []
        genCol = 0
      }
      i++
      continue
    }
    // One base64 VLQ value.
    let value = 0
    let shift = 0
    for (;;) {
      const d = i < n ? (BASE64[mappings.charCodeAt(i) & 127] ?? -1) : -1
      if (d < 0 || shift > 30) return lines // malformed: keep what decoded
      i++
      value += (d & 31) * 2 ** shift
      shift += 5
      if ((d & 32) === 0) break
    }
    fields.push(value % 2 === 1 ? -Math.floor(value / 2) : Math.floor(value / 2))
  }
  return lines
}

/**
 * Rewrites every `(FILE:LINE:COL)` / `FILE:LINE:COL` position of `generated` in a QuickJS stack
 * trace to the original file, line and column; frames the map does not cover keep their text.
 */
export function mapStack(stack: string, generated: string, map: SourceMap): string {
  const escaped = generated.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return stack.replace(new RegExp(`${escaped}:(\\d+):(\\d+)`, 'g'), (whole, l: string, c: string) => {
    const o = map.original(Number(l), Number(c))
    return o ? `${o.file}:${o.line}:${o.column}` : whole
  })
}
