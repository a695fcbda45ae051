/**
 * @module Human units for sizes (`64MiB`, `10m`, `1.5GB`) and durations (`2s`, `500ms`, `1m`).
 * Binary multiples for sizes either way they are spelt (`64MB` = `64MiB`), as memory limits are
 * counted in pages of 64 KiB and nobody means 10^6 bytes there.
 */

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  us: 0.001,
  µs: 0.001,
}

/** Bytes from a number or a string such as `64MiB`. @throws RangeError with what was wrong */
export function parseSize(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`size must be a non-negative integer number of bytes, got ${value}`)
    return value
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value)
  const mult = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || mult === undefined) throw new RangeError(`not a size: ${JSON.stringify(value)} (use e.g. 512KiB, 64MiB, 1GiB)`)
  const bytes = Math.floor(Number(m[1]) * mult)
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`size too large: ${JSON.stringify(value)}`)
  return bytes
}

/** Milliseconds from a number (ms) or a string such as `2s`, `500ms`, `1.5m`. @throws RangeError */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`duration must be a non-negative number of milliseconds, got ${value}`)
    return value
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Zµ]*)\s*$/.exec(value)
  const unit = m ? (m[2] === '' ? 'ms' : m[2]!.toLowerCase()) : ''
  const mult = DURATION_UNITS[unit]
  if (!m || mult === undefined) throw new RangeError(`not a duration: ${JSON.stringify(value)} (use e.g. 500ms, 2s, 1m)`)
  return Number(m[1]) * mult
}

/** Formats bytes for messages: `64 MiB`. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= n && bytes % (n / 1024) === 0) return `${+(bytes / n).toFixed(2)} ${unit}`
  }
  return `${bytes} B`
}
