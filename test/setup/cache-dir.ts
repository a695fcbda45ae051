/**
 * Global setup: every test process gets a private, empty CAPLET_CACHE_DIR (removed afterwards),
 * so a test run never reads or writes the user's own cache (~/.cache/caplet).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'caplet-test-cache-'))
  process.env.CAPLET_CACHE_DIR = dir
  return () => {
    rmSync(dir, { recursive: true, force: true })
  }
}
