/**
 * @module Socket grants in the policy: `sockets: [{ listen: '127.0.0.1:8080' } | { listen:
 * 'unix:/path' } | { connect: '127.0.0.1:5432', name: 'db' }]`, parsed into the plain data the
 * `net` service opens (`NetGrantSpec`). Only literal IP addresses and Unix socket paths: a
 * name would need DNS, which is a way out of the policy (what it resolves to can change).
 */
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import type { NetGrantSpec } from '../wasi-host/node/net-service.js'

/** One socket the guest gets: a listener on a local address, or a connection to one address. */
export type SocketSpec = { listen: string; name?: string } | { connect: string; name?: string }

/** Names go into `LISTEN_FDNAMES` (colon-separated), so they are short and plain. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** Parses one address; returns the grant or the problem. */
export function parseSocketAddress(kind: 'listen' | 'connect', text: string, name: string | undefined): NetGrantSpec | string {
  if (name !== undefined && !NAME.test(name)) return `name ${JSON.stringify(name)} must be 1-64 letters, digits, "_", "." or "-"`
  const named = name !== undefined ? { name } : {}
  if (text.startsWith('unix:')) {
    const path = text.slice(5)
    if (path === '' || path.includes('\0')) return `${JSON.stringify(text)}: expected unix:/path/to/socket`
    return { kind, path: resolve(path), ...named } as NetGrantSpec
  }
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text)
  if (!m) return `${JSON.stringify(text)}: expected IP:PORT ([IPv6]:PORT) or unix:/path, e.g. 127.0.0.1:8080`
  const host = m[1]!
  const port = Number(m[2])
  if (isIP(host) === 0) return `${JSON.stringify(host)} is not a literal IP address (names are not resolved: no DNS)`
  if (!Number.isInteger(port) || port > 65535 || (kind === 'connect' && port === 0)) {
    return `port ${m[2]} out of range (${kind === 'listen' ? '0-65535; 0 picks a free port' : '1-65535'})`
  }
  return { kind, host, port, ...named } as NetGrantSpec
}

/** Parses every grant; problems name the field (`sockets[1].connect`). */
export function parseSocketGrants(specs: readonly SocketSpec[], problems: string[]): NetGrantSpec[] {
  const out: NetGrantSpec[] = []
  specs.forEach((s, i) => {
    const kind = typeof (s as { listen?: unknown }).listen === 'string' ? 'listen' : 'connect'
    const text = kind === 'listen' ? (s as { listen: string }).listen : (s as { connect: string }).connect
    const g = parseSocketAddress(kind, text, s.name)
    if (typeof g === 'string') problems.push(`sockets[${i}].${kind}: ${g}`)
    else out.push(g)
  })
  return out
}

/** How the embedder learns what its grants became: the bound address of each (port 0 resolved). */
export interface ListeningSocket {
  role: 'listener' | 'connection'
  /** e.g. `127.0.0.1:40123`, `[::1]:8080`, `unix:/run/app.sock`. */
  address: string
  name?: string
  /** The guest's descriptor number. */
  fd: number
}

/**
 * The systemd socket-activation variables (`sd_listen_fds`): `LISTEN_FDS` (how many), their
 * names, and, since caplet's sockets start after the preopened directories rather than at 3,
 * `LISTEN_FDS_START` (the first one's number; 3 when nothing is mounted).
 */
export function listenEnv(first: number, names: readonly (string | undefined)[]): Record<string, string> {
  return {
    LISTEN_FDS: String(names.length),
    LISTEN_FDNAMES: names.map((n) => n ?? 'unknown').join(':'),
    LISTEN_FDS_START: String(first),
  }
}
