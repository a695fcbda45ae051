import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..')
export const ROOT = join(BENCH, '..')
export const BUILD = join(BENCH, '.build')
export const CACHE = join(BENCH, '.cache')
export const RESULTS = join(BENCH, 'results')
