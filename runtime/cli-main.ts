/**
 * @module The process entry of `caplet`: wires `main` to the real process. An unexpected
 * failure is reported in one line and exits 70 (EX_SOFTWARE), never with a stack trace unless
 * CAPLET_DEBUG is set.
 */
import { writeSync } from 'node:fs'
import { startEarlyWorker } from './worker/spawn.js'

// A run on a worker: start it before loading the rest of caplet, so both boot at once.
const argv = process.argv.slice(2)
if ((argv[0] === 'run' || argv[0]?.endsWith('.wasm')) && !argv.includes('--in-process') && !argv.includes('--help')) {
  try {
    startEarlyWorker()
  } catch {
    /* the pool starts one later, and reports why it cannot */
  }
}
// An in-process run: its executor (the WASI host) loads beside the CLI, not after it.
if (argv.includes('--in-process')) import('./in-process.js').catch(() => {})
const { main } = await import('./cli.js')
const write = (fd: number) => (s: string) => {
  writeSync(fd, s)
}
try {
  process.exitCode = await main(argv, {
    out: write(1),
    err: write(2),
    env: process.env,
    stderrIsTTY: process.stderr.isTTY === true,
    oneShot: true,
    interrupts: {
      on: (stop) => {
        const first = (signal: NodeJS.Signals) => {
          off()
          stop(signal)
        }
        const off = () => {
          process.off('SIGINT', first)
          process.off('SIGTERM', first)
        }
        process.once('SIGINT', first)
        process.once('SIGTERM', first)
        return off
      },
      // The handler is gone: the signal now ends the process as it would have (a shell sees it).
      done: (signal) => process.kill(process.pid, signal),
    },
  })
} catch (e) {
  if (process.env.CAPLET_DEBUG) throw e
  writeSync(
    2,
    `caplet: internal error: ${(e as Error)?.message ?? String(e)} (this is a bug in caplet; rerun with CAPLET_DEBUG=1 for details)\n`,
  )
  process.exitCode = 70
}
