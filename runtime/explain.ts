/**
 * @module `caplet run --explain`: the exposure of a policy, before anything runs, in the spirit
 * of `systemd-analyze security`: what the guest can read, write and create, the network, the
 * environment, clocks and randomness it sees, the imports it may link, and how much of each
 * resource it may consume, with every unlimited one flagged. Only what the user's own policy
 * says is printed (their host paths included); nothing from the module.
 */
import type { ResolvedPolicy } from './policy.js'

function size(bytes: number): string {
  for (const [unit, n] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= n) return `${+(bytes / n).toFixed(1)} ${unit}`
  }
  return `${bytes} B`
}

const UNLIMITED = 'UNLIMITED'

function stdinOf(s: ResolvedPolicy['stdin']): string {
  if (s === 'inherit') return "caplet's own stdin"
  if (s instanceof Uint8Array) return s.byteLength === 0 ? 'empty' : `${s.byteLength} bytes given`
  return `the file ${s.file}`
}

/** One line per aspect of the run's exposure. */
export function explainPolicy(p: ResolvedPolicy): string[] {
  const reads: string[] = []
  const writes: string[] = []
  for (const m of p.mounts) {
    const where = m.tmp ? 'in memory' : `host ${m.host ?? '(a backend object)'}`
    if (m.mode === 'ro') reads.push(`${m.guest} (${where}, read-only)`)
    else if (m.mode === 'overlay')
      writes.push(
        `${m.guest} (${where}, copy-on-write: changes stay in memory${m.apply ? ', then applied to the host' : m.saveTo !== undefined ? `, then saved to ${m.saveTo}` : ', then discarded'})`,
      )
    else writes.push(`${m.guest} (${where}${m.bytes !== undefined ? `, at most ${size(m.bytes)}` : ''})`)
  }
  const l = p.limits
  const limit = (v: string | undefined) => v ?? UNLIMITED
  const env = Object.keys(p.env)
  const lines = [
    'caplet: what this run grants the guest',
    `  reads      ${[...reads, ...writes.map((w) => w.replace(/ \(/, ' (read-write, '))].join('; ') || 'nothing: no directory is mounted'}`,
    `  writes     ${writes.join('; ') || 'no file: nothing writable is mounted'}`,
    `  creates    ${
      writes.length === 0
        ? 'nothing'
        : `files and directories in ${p.mounts
            .filter((m) => m.mode !== 'ro')
            .map((m) => m.guest)
            .join(
              ', ',
            )}; at most ${l.inodes !== undefined ? l.inodes : `${UNLIMITED} files`}${l.inodes !== undefined ? ' files' : ''}, ${l.diskBytes !== undefined ? size(l.diskBytes) : `${UNLIMITED} bytes`} across host mounts`
    }`,
    '  network    none: no socket is granted',
    `  env        ${env.length === 0 ? 'none' : env.join(', ')}`,
    `  stdin      ${stdinOf(p.stdin)}`,
    `  clocks     ${p.deterministic ? 'virtual (deterministic)' : `real time, coarsened to ${Number(p.clocks.resolutionNs) / 1000} µs; CPU time: ${p.clocks.cputime}`}`,
    `  random     ${p.deterministic ? `seeded (${p.seed}): the same bytes every run` : "the host's entropy"}`,
    `  syscalls   ${p.syscalls !== undefined ? `only ${p.syscalls.join(', ')}` : 'all 46 WASI preview1 functions'}${p.denySyscalls !== undefined ? `, except ${p.denySyscalls.join(', ')}` : ''}${p.deniedSyscalls === 'enosys' ? ' (denied ones return ENOSYS)' : ''}`,
    `  imports    ${p.unknownImports === 'reject' ? 'anything else refused' : p.unknownImports === 'trap' ? 'anything else traps when called' : 'anything else returns zeros'}`,
    `  memory     ${size(l.memoryPages * 65536)}${l.memoryExplicit ? '' : ' (default)'}`,
    `  time       ${l.timeoutMs !== undefined ? `${l.timeoutMs} ms` : UNLIMITED}; fuel ${limit(l.fuel?.toString())}`,
    `  output     stdout ${l.stdoutBytes !== undefined ? size(l.stdoutBytes) : UNLIMITED}, stderr ${l.stderrBytes !== undefined ? size(l.stderrBytes) : UNLIMITED}`,
    `  fds        ${l.maxFds}`,
  ]
  const unlimited = [
    l.timeoutMs === undefined && l.fuel === undefined ? 'time (--timeout, --fuel)' : '',
    l.stdoutBytes === undefined || l.stderrBytes === undefined ? 'output (--max-output)' : '',
    writes.length > 0 && l.diskBytes === undefined && p.mounts.some((m) => m.host !== undefined && m.mode === 'rw')
      ? 'disk (--disk, --max-files)'
      : '',
  ].filter(Boolean)
  if (unlimited.length > 0) lines.push(`  UNLIMITED: ${unlimited.join(', ')}`)
  return lines
}
