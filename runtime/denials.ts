/**
 * @module Denial reports: each policy refusal the host recorded, as `result.denials`
 * (`{ call, kind, path?, reason, grant? }`), and the one-line explanation `--explain-denials`
 * prints, naming the flag that would grant it (Deno-style). Guest paths are printed through
 * `escapeControlCharacters`; the only host paths shown are the user's own mount flags.
 */
import type { DenialEvent } from '../wasi-host/denials.js'
import { MOUNT_QUOTA } from '../wasi-host/fs/quota.js'
import { escapeControlCharacters as esc } from '../wasi-host/trace/escape.js'
import type { ResolvedPolicy } from './policy.js'

export interface Denial {
  /** The WASI function (or import) refused. */
  call: string
  /** `read-only`, `missing-right`, `escape`, `cross-domain`, `descriptor-limit`, `quota`, `limit`, `denied-import`. */
  kind: string
  /** The guest path it named, when it named one. */
  path?: string
  fd?: number
  /** Why, for people. */
  reason: string
  /** The flag that would grant it; absent when no flag can (an escape, a right the guest dropped). */
  grant?: string
}

export interface DenialReport {
  denials: Denial[]
  /** All denials, including those past the cap. */
  count: number
}

const VERBS: Readonly<Record<string, string>> = {
  path_open: 'open',
  path_create_directory: 'create the directory',
  path_unlink_file: 'delete',
  path_remove_directory: 'remove the directory',
  path_rename: 'rename',
  path_link: 'hard-link',
  path_symlink: 'create a symlink at',
  path_filestat_set_times: 'set the times of',
  path_filestat_get: 'stat',
  path_readlink: 'read the link',
  fd_write: 'write to',
  fd_pwrite: 'write to',
  fd_read: 'read',
  fd_pread: 'read',
  fd_filestat_set_size: 'resize',
  fd_allocate: 'extend',
  fd_filestat_set_times: 'set the times of',
  fd_readdir: 'list',
}

const LIMIT_FLAGS: Readonly<Record<string, string>> = {
  stdout: '--max-output SIZE',
  stderr: '--max-output SIZE',
  memory: '--memory SIZE',
  timeout: '--timeout DURATION',
  fuel: '--fuel N',
}

/** Turns the host's events into the run's denials. */
export function describeDenials(events: readonly DenialEvent[], policy: ResolvedPolicy): Denial[] {
  return events.map((e) => describe(e, policy))
}

function describe(e: DenialEvent, policy: ResolvedPolicy): Denial {
  const d: Denial = { call: e.call, kind: e.kind, reason: e.detail }
  if (e.path !== undefined) d.path = e.path
  if (e.fd !== undefined) d.fd = e.fd
  const mount = e.mount !== undefined ? policy.mounts.find((m) => m.guest === e.mount) : undefined
  switch (e.kind) {
    case 'read-only':
      d.reason = `mount ${esc(e.mount ?? '?')} is read-only`
      d.grant = `--dir ${mount?.host ?? 'HOST'}:${e.mount ?? 'GUEST'}:rw`
      break
    case 'escape':
      d.reason = `the path leads out of ${e.mount !== undefined ? `mount ${esc(e.mount)}` : 'its mount'} (${e.detail})`
      break
    case 'missing-right':
      d.reason = `descriptor ${e.fd ?? '?'} lacks the right (${e.detail}): dropped by the guest or never held`
      break
    case 'cross-domain':
      d.reason = 'it moves a file from one mount to another'
      break
    case 'descriptor-limit':
      d.reason = `at most ${policy.limits.maxFds} descriptors may be open`
      d.grant = `--max-fds ${policy.limits.maxFds * 2}`
      break
    case 'quota': {
      d.reason = e.detail
      // The quota's own words (host-made, never the guest's) say which count ran out, and whether
      // it was the mount's own limit (a --tmp size; a policy's mounts[].size or inodes) or the run's.
      const files = /\binode\b/.test(e.detail)
      if (!e.detail.endsWith(`(${MOUNT_QUOTA})`)) d.grant = files ? '--max-files N' : '--disk SIZE'
      else if (mount?.tmp === true && !files) d.grant = `--tmp ${e.mount}:SIZE`
      break
    }
    case 'limit':
      d.reason = e.detail
      if (e.limit !== undefined && LIMIT_FLAGS[e.limit] !== undefined) d.grant = LIMIT_FLAGS[e.limit]
      break
    case 'denied-import':
      d.reason = `${esc(e.call)} is not in the policy's syscall allow-list (it returned ENOSYS)`
      d.grant = `--allow-syscalls ${e.call}`
      break
  }
  return d
}

/** What an escape's line advises: how to give the guest what it reached for (the CLI's flag by default). */
export const CLI_MOUNT_ADVICE = 'mount what it needs with --dir HOST:GUEST'

const LIMIT_WORDS: Readonly<Record<string, string>> = {
  timeout: 'the run reached its time limit',
  fuel: 'the run used up its fuel',
  memory: 'the guest reached its memory limit',
  stdout: 'stdout reached its byte limit',
  stderr: 'stderr reached its byte limit',
}

/**
 * A run a limit stopped carries that limit as a denial, with the flag that raises it, when no host
 * call recorded it already (time, fuel and memory stop the guest outside any host call).
 */
export function withLimitDenial<R extends { limit?: string; denials?: Denial[]; denialCount?: number }>(
  result: R,
  policy: ResolvedPolicy,
): R {
  const limit = result.limit
  if (limit === undefined || LIMIT_WORDS[limit] === undefined || result.denials?.some((d) => d.kind === 'limit')) return result
  const d: Denial = { call: limit, kind: 'limit', reason: limitReason(limit, policy) }
  if (LIMIT_FLAGS[limit] !== undefined) d.grant = LIMIT_FLAGS[limit]
  return { ...result, denials: [...(result.denials ?? []), d], denialCount: (result.denialCount ?? 0) + 1 }
}

function limitReason(limit: string, policy: ResolvedPolicy): string {
  const l = policy.limits
  const at =
    limit === 'timeout' && l.timeoutMs !== undefined
      ? ` (${l.timeoutMs} ms)`
      : limit === 'fuel' && l.fuel !== undefined
        ? ` (${l.fuel})`
        : limit === 'memory'
          ? ` (${l.memoryPages * 64} KiB)`
          : ''
  return `${LIMIT_WORDS[limit]!}${at}`
}

/** One line per distinct denial (same call, path, reason and grant), with a count when repeated. */
export function denialLines(report: DenialReport, mountAdvice: string = CLI_MOUNT_ADVICE): string[] {
  const seen = new Map<string, { d: Denial; n: number }>()
  for (const d of report.denials) {
    const key = `${d.call}\0${d.path ?? ''}\0${d.reason}\0${d.grant ?? ''}`
    const s = seen.get(key)
    if (s) s.n++
    else seen.set(key, { d, n: 1 })
  }
  const lines = [...seen.values()].map(({ d, n }) => {
    // A limit ended the run: its line says so (the CLI prints no other line for the stop).
    if (d.kind === 'limit') {
      const where = LIMIT_WORDS[d.call] !== undefined ? '' : ` in ${esc(d.call)}`
      return `caplet: guest stopped${where}: ${d.reason} (${d.grant !== undefined ? `raise it with ${esc(d.grant)}` : 'no flag raises it'})`
    }
    const what =
      d.kind === 'denied-import'
        ? `the guest called ${esc(d.call)}`
        : `the guest tried to ${d.kind === 'read-only' && d.call === 'path_open' ? 'write' : (VERBS[d.call] ?? esc(d.call))} ${d.path !== undefined ? esc(d.path) : d.fd !== undefined ? `fd ${d.fd}` : ''}`.trimEnd()
    const how =
      d.grant !== undefined
        ? `grant with ${esc(d.grant)}`
        : d.kind === 'escape'
          ? `nothing outside a mount is reachable; ${mountAdvice}`
          : 'no flag grants it'
    return `caplet: ${what}: ${d.reason} (${how})${n > 1 ? ` [${n} times]` : ''}`
  })
  const shown = report.denials.length
  if (report.count > shown) lines.push(`caplet: ... and ${report.count - shown} more denials not recorded`)
  return lines
}
