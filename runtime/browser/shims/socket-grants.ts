/**
 * @module A page has no sockets (swapped in for `runtime/socket-grants.ts` by the browser build):
 * `caplet/browser` refuses socket options with a PolicyError naming the field; the shared policy
 * resolution refuses them here too, should any reach it.
 */
import type { NetGrantSpec } from '../../../wasi-host/node/net-service.js'
import type { SocketSpec } from '../../socket-grants.js'

export type { ListeningSocket, SocketSpec } from '../../socket-grants.js'

export function parseSocketAddress(_kind: 'listen' | 'connect', _text: string, _name: string | undefined): string {
  return 'sockets are not available in the browser'
}

export function parseSocketGrants(specs: readonly SocketSpec[], problems: string[]): NetGrantSpec[] {
  if (specs.length > 0) problems.push('sockets: not available in the browser')
  return []
}

export function listenEnv(_first: number, _names: readonly (string | undefined)[]): Record<string, string> {
  return {}
}
