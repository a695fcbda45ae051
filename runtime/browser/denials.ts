/**
 * @module Denials in the page: the shared `describeDenials` names the CLI flag that would grant
 * each one (`--dir HOST:/data:rw`, `--max-fds 12`); a page has no flags, so each grant is
 * rewritten as the `caplet/browser` option that would give it (`mounts[1].mode: 'rw'`,
 * `limits.fds: 12`), and `explainDenials` prints them as the CLI's `--explain-denials` does.
 * A grant with no browser counterpart is dropped, never shown as a flag.
 */
import { denialLines, type Denial } from '../denials.js'

export type { Denial }

/** What an escape's line advises in a page. */
const BROWSER_MOUNT_ADVICE = 'mount what it needs with mounts: [{ guest, tree | opfs | volume }]'

const LIMIT_OPTIONS: Readonly<Record<string, string>> = {
  '--memory': 'limits.memory',
  '--timeout': 'limits.timeout',
  '--fuel': 'limits.fuel',
  '--max-output': 'limits.stdout (limits.stderr)',
  '--max-files': 'limits.inodes',
  '--disk': 'limits.disk',
  '--max-fds': 'limits.fds',
}

/** The browser option for a CLI grant, or undefined when a page has none. */
function browserGrant(grant: string, mounts: readonly string[]): string | undefined {
  const dir = /^--dir [^\s]*:(\/[^:]*):rw$/.exec(grant)
  if (dir !== null) {
    const i = mounts.indexOf(dir[1]!)
    return i < 0 ? undefined : `mounts[${i}].mode: 'rw'`
  }
  const tmp = /^--tmp (\/.*):SIZE$/.exec(grant)
  if (tmp !== null) {
    const i = mounts.indexOf(tmp[1]!)
    return i < 0 ? undefined : `mounts[${i}].size`
  }
  const sys = /^--allow-syscalls (\S+)$/.exec(grant)
  if (sys !== null) return `syscalls: [..., '${sys[1]}']`
  const [flag, value] = grant.split(' ')
  const option = LIMIT_OPTIONS[flag!]
  if (option === undefined) return undefined
  return value !== undefined && /^\d+$/.test(value) ? `${option}: ${value}` : option
}

/** The denials with each grant as the browser option (`mounts` are the guest paths, in order). */
export function browserDenials(denials: readonly Denial[], mounts: readonly string[]): Denial[] {
  return denials.map((d) => {
    if (d.grant === undefined) return d
    const { grant, ...rest } = d
    const g = browserGrant(grant, mounts)
    return g === undefined ? rest : { ...rest, grant: g }
  })
}

/** One line per distinct denial of a run (none when it had none), naming the option that would grant it. */
export function explainDenials(result: { denials?: readonly Denial[] | undefined; denialCount?: number | undefined }): string[] {
  if (result.denials === undefined) return []
  return denialLines({ denials: [...result.denials], count: result.denialCount ?? result.denials.length }, BROWSER_MOUNT_ADVICE)
}
