/**
 * @module The bubblewrap jail a native compiler runs in. Inside it the compiler sees only its
 * own tree, the shared libraries it loads, its linker, the WASI sysroot (all read-only), the
 * submitted sources at /src (read-only), an output directory at /out and a size-capped /tmp.
 * No /etc, /proc, /dev, /home or host /tmp; every namespace unshared (no network), all
 * capabilities dropped, a new session (no terminal injection), an empty environment, and the
 * jail dies with its parent. Never binds a path derived from the submitted source.
 */
import { dirname, normalize } from 'node:path'
import type { ClangInstall } from './clang-install.js'

export const JAIL_SRC = '/src'
export const JAIL_OUT = '/out'
export const JAIL_TMP = '/tmp'

export interface JailLayout {
  /** Host directory bound read-only at /src. */
  src: string
  /** Host directory bound read-write at /out. */
  out: string
  /** Size of the jail's /tmp in bytes. */
  tmpBytes: number
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`)
}

/** bwrap arguments up to (not including) the command. */
export function bubblewrapArgs(install: ClangInstall, layout: JailLayout): string[] {
  const args = [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--clearenv',
    '--setenv',
    'PATH',
    dirname(install.linker),
    '--setenv',
    'LC_ALL',
    'C',
    '--setenv',
    'TMPDIR',
    JAIL_TMP,
    '--setenv',
    'SOURCE_DATE_EPOCH',
    '0',
    '--ro-bind',
    install.root,
    install.root,
  ]
  const bound = [install.root]
  const bind = (src: string, dest: string) => {
    const d = normalize(dest)
    if (bound.some((b) => under(d, b))) return
    args.push('--ro-bind', src, d)
    bound.push(d)
  }
  for (const lib of install.libraries) bind(lib, lib)
  bind(install.linkerReal, install.linker)
  bind(install.resourceDir, install.resourceDir)
  for (const dir of install.sysrootDirs) bind(dir, dir)
  args.push(
    '--size',
    String(layout.tmpBytes),
    '--tmpfs',
    JAIL_TMP,
    '--ro-bind',
    layout.src,
    JAIL_SRC,
    '--bind',
    layout.out,
    JAIL_OUT,
    '--remount-ro',
    '/',
    '--chdir',
    JAIL_SRC,
  )
  return args
}
