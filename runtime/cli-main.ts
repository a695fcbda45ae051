/**
 * @module The process entry of `caplet`: wires `main` to the real process. An unexpected
 * failure is reported in one line and exits 70 (EX_SOFTWARE), never with a stack trace unless
 * CAPLET_DEBUG is set.
 */
import { writeSync } from 'node:fs'
import { main } from './cli.js'

const write = (fd: number) => (s: string) => { writeSync(fd, s) }
try {
  process.exitCode = await main(process.argv.slice(2), { out: write(1), err: write(2), env: process.env, stderrIsTTY: process.stderr.isTTY === true })
} catch (e) {
  if (process.env.CAPLET_DEBUG) throw e
  writeSync(2, `caplet: internal error: ${(e as Error)?.message ?? String(e)} (this is a bug in caplet; rerun with CAPLET_DEBUG=1 for details)\n`)
  process.exitCode = 70
}
