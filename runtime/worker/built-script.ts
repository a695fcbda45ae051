/**
 * @module Finds a worker bundle that the build put in `dist/`: beside this module when running
 * from `dist/`, or in the repository's `dist/` when running from source (tests).
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const found = new Map<string, URL>()

/** The URL of `dist/<name>`. @throws Error when the bundle was not built. */
export function builtScript(name: string): URL {
  const cached = found.get(name)
  if (cached) return cached
  for (const candidate of [
    new URL(`./${name}`, import.meta.url),
    new URL(`../../dist/${name}`, import.meta.url),
    new URL(`../dist/${name}`, import.meta.url),
  ]) {
    if (existsSync(fileURLToPath(candidate))) {
      found.set(name, candidate)
      return candidate
    }
  }
  throw new Error(`caplet bundle not found (dist/${name}); run \`npm run build\``)
}
