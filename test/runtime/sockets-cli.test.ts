/**
 * The sockets flags of `caplet run`: --listen (port 0 printed), --connect, --listen-env,
 * --max-connections and friends, parsed into the policy; clear one-line errors otherwise.
 */
import { spawn, spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseArgs } from '../../runtime/cli.js'
import { echoRoundTrip } from '../support/net-clients.js'

const root = resolve(import.meta.dirname, '../..')
const bin = join(root, 'bin/caplet.js')
const echo = join(root, 'samples/echo-server.wasm')

describe('caplet run with sockets', () => {
  it('parses the socket flags into the policy, in the order given', () => {
    const inv = parseArgs(
      [
        'run',
        '--listen',
        '127.0.0.1:0',
        '--connect',
        'db=10.0.0.5:5432',
        '--connect',
        '[::1]:80',
        '--listen-env',
        '--max-connections',
        '8',
        '--max-bytes-in',
        '1MiB',
        '--max-bytes-out',
        '2MiB',
        '--idle-timeout',
        '5s',
        echo,
      ],
      {},
    )
    if (typeof inv === 'string') throw new Error(inv)
    expect(inv.options.sockets).toEqual([{ listen: '127.0.0.1:0' }, { connect: '10.0.0.5:5432', name: 'db' }, { connect: '[::1]:80' }])
    expect(inv.options.listenEnv).toBe(true)
    expect(inv.options.limits).toMatchObject({ connections: 8, bytesIn: '1MiB', bytesOut: '2MiB', idleTimeout: '5s' })
  })

  it('prints where it listens, and serves a real client', async () => {
    const p = spawn(process.execPath, [bin, 'run', '--listen', '127.0.0.1:0', echo, '1'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    const port = await new Promise<number>((resolvePort, reject) => {
      p.stderr.on('data', (d) => {
        err += d
        const m = /caplet: listening on 127\.0\.0\.1:(\d+) \(fd 3\)/.exec(err)
        if (m) resolvePort(Number(m[1]))
      })
      p.once('exit', () => reject(new Error(err)))
    })
    expect((await echoRoundTrip(port, Buffer.from('via the CLI'))).toString()).toBe('via the CLI')
    const code = await new Promise((r) => p.once('exit', r))
    expect(code).toBe(0)
    expect(err).toContain('echo-server: served 1 connections')
  })

  it('refuses a name, a refused connection and a bad count with one clear line (exit 125)', () => {
    const cases: [string[], RegExp][] = [
      [
        ['--listen', 'localhost:8080'],
        /^caplet: invalid policy: sockets\[0\]\.listen: "localhost" is not a literal IP address \(names are not resolved: no DNS\)\n$/,
      ],
      [['--connect', '127.0.0.1:1'], /^caplet: cannot open the granted socket: connect 127\.0\.0\.1:1: ECONNREFUSED\n$/],
      [['--max-connections', '0'], /^caplet: --max-connections 0: expected a whole number from 1\b.*\n$/],
    ]
    for (const [flags, message] of cases) {
      const r = spawnSync(process.execPath, [bin, 'run', ...flags, echo], { encoding: 'utf8' })
      expect(r.stderr).toMatch(message)
      expect(r.status).toBe(125)
    }
  })

  it('documents the flags and how a server finds its listener', () => {
    const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' })
    for (const s of [
      '--listen ADDR',
      '--connect [NAME=]ADDR',
      '--listen-env',
      '--max-connections N',
      'SOCK_ACCEPT',
      'net.FileListener',
      'TcpListener::from_raw_fd',
    ]) {
      expect(r.stdout).toContain(s)
    }
  })
})
