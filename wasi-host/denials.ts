/**
 * @module The run's record of policy refusals: every call the policy refused (a missing right,
 * an escape, a read-only mount, a move across mounts, a limit, a denied import) as a structured
 * event, capped, with the total counted. Ordinary errors (a missing file in a granted
 * directory) are not denials. Guest paths only, never a host path; strings are stored as the
 * guest gave them and escaped by whoever prints them.
 */
import { Rights } from './abi/constants.js'
import type { DenialKind, MountMode } from './rights.js'

export type DenialEventKind = DenialKind | 'limit' | 'denied-import'

export interface DenialEvent {
  /** The WASI function refused (or the import name, for a denied import). */
  call: string
  kind: DenialEventKind
  /** The errno the guest saw (`NOTCAPABLE`, `PERM`, `ROFS`…), or `trap`/`ENOSYS`. */
  errno: string
  /** What was refused, for people (host-side; never shown to the guest). */
  detail: string
  fd?: number
  /** The guest path the call named, as far as the host knows it (`/data/…/x` below a subdirectory). */
  path?: string
  /** The guest path of the mount the call went through, and its mode. */
  mount?: string
  mode?: MountMode
  /** For `limit`: which (`stdout`, `stderr`, `memory`…). */
  limit?: string
}

/** Events kept per run; the rest are only counted. */
export const MAX_DENIAL_EVENTS = 64

export class DenialLog {
  readonly events: DenialEvent[] = []
  /** Every denial, including those past the cap. */
  count = 0
  /** Writes a quota refused (`--disk`, `--max-files`), including those past the cap. */
  quota = 0

  record(e: DenialEvent): void {
    this.count++
    if (e.kind === 'quota') this.quota++
    if (this.events.length < MAX_DENIAL_EVENTS) this.events.push(e)
  }
}

const RIGHT_NAMES = Object.entries(Rights) as [string, number][]

/** `FD_WRITE|PATH_CREATE_FILE` for a set of rights bits. */
export function rightNames(bits: number): string {
  const names = RIGHT_NAMES.filter(([, b]) => (bits & b) !== 0).map(([n]) => n)
  return names.length === 0 ? '0' : names.join('|')
}
