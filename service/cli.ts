/**
 * @module The `caplet serve` and `caplet worker` commands: flags to options, one-line errors,
 * and signal handling (SIGTERM/SIGINT drain the runs in flight, then exit).
 */
import { availableParallelism } from 'node:os'
import { PolicyError } from '../runtime/errors.js'
import { DEFAULT_CONFIG, readConfigFile, sha256Hex, type ServiceConfig } from './config.js'
import { ApiError } from './errors.js'

export interface ServiceIo {
  out: (s: string) => void
  err: (s: string) => void
}

export const SERVICE_HELP = `caplet serve — an HTTP API that runs WebAssembly in caplet's sandbox

Usage:
  caplet serve [--port 8080] [--host 127.0.0.1] [--config FILE.json] [--queue redis://HOST:PORT]
  caplet worker --queue redis://HOST:PORT [--concurrency N] [--config FILE.json]

  --port N            Port to listen on (0: any free port). Default 8080.
  --host ADDR         Address to listen on. Default 127.0.0.1; any other address needs tokens.
  --config FILE.json  Operator policy: limits {max, defaults}, tokens, caps (see README).
  --queue URL         Put runs on a BullMQ queue in Redis instead of this machine's pool.
  --queue-name NAME   Queue and key prefix in Redis (default caplet).
  --concurrency N     worker: runs at once (default: the number of cores, at least 2).
  --lock-duration MS  worker: a dead worker's runs are retried after about this (default 30000).
  --metrics-token T   serve: the bearer token GET /metrics takes (at least 16 characters; a
                      config file's metricsToken keeps it out of process listings). Without
                      it, /metrics takes any API token when tokens are configured.
  --no-compile        serve: refuse source (501) instead of compiling it with the toolchain.
  --insecure-no-auth  Serve a non-loopback address without tokens.
  --log-level LEVEL   fatal, error, warn, info (default), debug, silent.
`

function parseFlags(argv: readonly string[]) {
  const f = {
    port: 8080,
    host: '127.0.0.1',
    config: undefined as string | undefined,
    queue: undefined as string | undefined,
    queueName: undefined as string | undefined,
    concurrency: undefined as number | undefined,
    lockDuration: 30_000,
    metricsToken: undefined as string | undefined,
    compile: true,
    insecure: false,
    logLevel: 'info',
    help: false,
  }
  const rest = [...argv]
  const next = (flag: string) => {
    const v = rest.shift()
    if (v === undefined) throw new PolicyError([`${flag} needs a value`])
    return v
  }
  const int = (flag: string, v: string, min: number) => {
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min) throw new PolicyError([`${flag} ${v}: expected an integer >= ${min}`])
    return n
  }
  while (rest.length > 0) {
    const flag = rest.shift()!
    switch (flag) {
      case '--port':
        f.port = int(flag, next(flag), 0)
        if (f.port > 65535) throw new PolicyError([`--port ${f.port}: above 65535`])
        break
      case '--host':
        f.host = next(flag)
        break
      case '--config':
        f.config = next(flag)
        break
      case '--queue':
        f.queue = next(flag)
        break
      case '--queue-name':
        f.queueName = next(flag)
        break
      case '--concurrency':
        f.concurrency = int(flag, next(flag), 1)
        break
      case '--lock-duration':
        f.lockDuration = int(flag, next(flag), 100)
        break
      case '--metrics-token':
        f.metricsToken = next(flag)
        if (f.metricsToken.length < 16) throw new PolicyError(['--metrics-token: must be at least 16 characters'])
        break
      case '--no-compile':
        f.compile = false
        break
      case '--insecure-no-auth':
        f.insecure = true
        break
      case '--log-level':
        f.logLevel = next(flag)
        break
      case '-h':
      case '--help':
        f.help = true
        break
      default:
        throw new PolicyError([`unknown flag ${flag} (see caplet serve --help)`])
    }
  }
  return f
}

/**
 * On a machine of 1 or 2 cores V8's helper threads (Node's `--v8-pool-size`, 4) compete with the
 * server's own for the cores, and its garbage-collection pauses stretch: one helper took the p99 at
 * half the peak load from 13-16 ms to 5-10 ms (bench/results/service.md). The process flag must be
 * given before Node starts, so this only says how; nothing when it was given.
 */
export function helperThreadAdvice(cores: number, execArgv: readonly string[], nodeOptions: string | undefined): string | undefined {
  if (cores > 2) return undefined
  if ([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => a.startsWith('--v8-pool-size'))) return undefined
  return `${cores} core${cores === 1 ? '' : 's'}: start with NODE_OPTIONS=--v8-pool-size=1 for shorter GC pauses (Node's 4 V8 helper threads compete with the server's threads; see README)`
}

/** After a drain, nothing of ours is left running; a library's stray handle must not keep the process. */
const exitSoon = () => {
  setTimeout(() => process.exit(), 2000).unref()
}

/** Resolves when a signal asked to stop. */
const stopSignal = () =>
  new Promise<string>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve(s))
  })

export async function serviceMain(argv: readonly string[], io: ServiceIo): Promise<number> {
  const command = argv[0]
  let f: ReturnType<typeof parseFlags>
  let config: ServiceConfig
  try {
    f = parseFlags(argv.slice(1))
    if (f.help) {
      io.out(SERVICE_HELP)
      return 0
    }
    config = f.config ? readConfigFile(f.config) : DEFAULT_CONFIG
    if (f.metricsToken !== undefined) config = { ...config, metricsTokenSha256: sha256Hex(f.metricsToken) }
    if (command === 'worker' && f.queue === undefined) throw new PolicyError(['caplet worker needs --queue redis://HOST:PORT'])
  } catch (e) {
    if (e instanceof PolicyError) {
      io.err(`caplet: ${e.problems.join('; ')}\n`)
      return 125
    }
    throw e
  }
  const { pino } = await import('pino')
  const log = pino({ name: `caplet-${command}`, level: f.logLevel })
  const cores = availableParallelism()
  const advice = helperThreadAdvice(cores, process.execArgv, process.env.NODE_OPTIONS)
  if (advice !== undefined) log.info({ cores }, advice)
  try {
    if (command === 'worker') {
      const { startQueueWorker } = await import('./queue-worker.js')
      const w = await startQueueWorker({
        queue: f.queue!,
        ...(f.concurrency ? { concurrency: f.concurrency } : {}),
        config,
        lockDurationMs: f.lockDuration,
        log,
        ...(f.queueName ? { queueName: f.queueName } : {}),
      })
      const sig = await stopSignal()
      log.info({ signal: sig }, 'draining')
      await w.close()
      exitSoon()
      return 0
    }
    const { startServer } = await import('./server.js')
    const { toolchainCompiler } = await import('./compile-source.js')
    const compile = f.compile ? toolchainCompiler({ maxModuleBytes: config.maxModuleBytes }) : undefined
    const s = await startServer({
      config,
      host: f.host,
      port: f.port,
      log,
      insecureNoAuth: f.insecure,
      ...(compile ? { compile } : {}),
      ...(f.queue ? { queue: f.queue } : {}),
      ...(f.queueName ? { queueName: f.queueName } : {}),
    })
    io.err(`caplet serve: listening on ${s.url}\n`)
    const sig = await stopSignal()
    log.info({ signal: sig }, 'draining')
    await s.close()
    exitSoon()
    return 0
  } catch (e) {
    if (e instanceof PolicyError) {
      io.err(`caplet: ${e.problems.join('; ')}\n`)
      return 125
    }
    if (e instanceof ApiError) {
      io.err(`caplet: ${e.message}\n`)
      return 125
    }
    const code = (e as NodeJS.ErrnoException)?.code
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      io.err(`caplet: cannot listen on ${f.host}:${f.port}: ${code}\n`)
      return 125
    }
    throw e
  }
}
