/**
 * @module The least-privilege policy a module's imports call for: what it can never do (so
 * needs no grant), what each capability it imports would let it do if granted, and a command
 * line with the narrowest syscall allow-list. Advice only: it grants nothing by itself.
 */
import type { ModuleReport } from './analyze.js'
import { WASI_FUNCTIONS } from './wasi-functions.js'

export interface PolicySuggestion {
  /** One sentence each, for people. */
  advice: string[]
  /** The WASI functions the module imports: the narrowest `--allow-syscalls` list. */
  syscalls: string[]
  /** Flags to run it with. */
  flags: string[]
}

const PATH_WRITES = [
  'path_create_directory',
  'path_link',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'path_filestat_set_times',
]

export function suggestPolicy(r: ModuleReport): PolicySuggestion {
  const wasi = new Set<string>()
  for (const g of r.imports) for (const i of g.imports) if (i.provided) wasi.add(i.name)
  const has = (n: string) => wasi.has(n)
  const advice: string[] = []
  const flags: string[] = []
  if (!has('path_open')) {
    advice.push(
      has('fd_prestat_get')
        ? 'never imports path_open: it can list mounts but open nothing in them; needs no --dir'
        : 'never imports path_open: needs no mounts (no --dir, --tmp or --overlay)',
    )
  } else {
    const writes = PATH_WRITES.filter(has)
    advice.push(
      'imports path_open: can open files in the directories you mount, and only there; mount what it needs read-only (--dir HOST:GUEST:ro)',
    )
    if (writes.length > 0)
      advice.push(`can change a writable mount (${writes.join(', ')}): prefer --overlay HOST:GUEST or --tmp GUEST over a read-write --dir`)
    flags.push('--dir HOST:GUEST:ro')
  }
  const socks = [...wasi].filter((n) => n.startsWith('sock_'))
  if (has('sock_accept')) advice.push('imports sock_accept: can serve a granted listening socket (none unless you grant one)')
  else if (socks.length > 0) advice.push(`imports ${socks.join(', ')}: can use a granted socket (none unless you grant one)`)
  else advice.push('imports no socket call: no network whatever the policy')
  if (has('clock_time_get') || has('clock_res_get')) advice.push('reads the clock: consider --deterministic for reproducible runs')
  if (has('random_get')) advice.push('reads random bytes: --deterministic --seed N makes them reproducible')
  if (has('environ_get')) advice.push('reads environment variables: it sees only those you pass with --env')
  else advice.push('never reads environment variables: --env is useless to it')
  if (has('poll_oneoff')) advice.push('can sleep or wait (poll_oneoff): set --timeout')
  if (has('fd_read')) advice.push('can read stdin (fd_read): give it --stdin FILE or an empty one')
  if (r.unknownImports.length > 0) {
    advice.push(
      `imports ${r.unknownImports.length} function${r.unknownImports.length === 1 ? '' : 's'} caplet does not provide: run it with --trap-unknown-imports (each traps if called) or --default-unknown-imports (each returns 0)`,
    )
    flags.push('--trap-unknown-imports')
  }
  if (r.memories.some((m) => m.capped)) {
    const maxPages = Math.max(...r.memories.map((m) => m.max ?? Infinity))
    advice.push(
      maxPages === Infinity
        ? 'declares no memory maximum: caplet caps it at 1 GiB; set --memory to what it needs'
        : 'caplet caps its memory at --memory (default 1 GiB)',
    )
  }
  advice.push('untrusted code: set --timeout and --fuel, and --max-output')
  const syscalls = [...wasi].sort()
  if (syscalls.length > 0 && syscalls.length < Object.keys(WASI_FUNCTIONS).length) flags.unshift(`--allow-syscalls ${syscalls.join(',')}`)
  flags.push('--memory 256MiB', '--timeout 10s', '--max-output 16MiB')
  return { advice, syscalls, flags }
}
