/** What a file of dist/ (built by scripts/build.mjs) loads statically: esbuild's `from "./x.js"`, transitively. */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export const DIST = resolve(import.meta.dirname, '../../dist')

/** A bundle file and every file it imports statically, transitively, each with its text. */
export function staticGraph(file: string, seen = new Map<string, string>()): Map<string, string> {
  if (seen.has(file)) return seen
  const text = readFileSync(join(DIST, file), 'utf8')
  seen.set(file, text)
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s*"\.\/([^"]+)"|^import\s*"\.\/([^"]+)"/gms))
    staticGraph(m[1] ?? m[2]!, seen)
  return seen
}
