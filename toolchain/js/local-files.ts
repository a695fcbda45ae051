/**
 * @module The files of a script given on the command line (`caplet run main.ts`): the entry
 * and whatever it imports by relative path, read on demand from the entry's directory and
 * below. Used by the CLI only; `compileScript` itself never touches the disk.
 *
 * SECURITY: a name is read only if its real path (symlinks resolved) stays beneath the entry's
 * real directory and it is a regular file of bounded size; anything else is "not there", so a
 * symlink planted beside the script cannot pull `/etc/passwd` into the bundle.
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync } from 'node:fs'
import { basename, dirname, join, sep } from 'node:path'
import { canonicalName, SCRIPT_LIMITS, type ScriptSource } from './index.js'

/** Whether a path names a JavaScript or TypeScript entry caplet compiles (`.as.ts` is AssemblyScript). */
export function isScriptPath(path: string): boolean {
  return /\.(m?js|m?ts)$/.test(path) && !/\.as\.ts$/.test(path) && !/\.d\.m?ts$/.test(path)
}

/** The entry's directory as a submission: `{ files: reader, entry: basename }`. @throws Error when the entry is unreadable */
export function scriptFromDisk(entryPath: string): ScriptSource & { entry: string } {
  const root = realpathSync(dirname(entryPath))
  const entry = basename(entryPath)
  const read = (name: string): string | undefined => {
    if (canonicalName(name) === undefined) return undefined
    let real: string
    try {
      real = realpathSync(join(root, ...name.split('/')))
    } catch {
      return undefined
    }
    if (!real.startsWith(root + sep)) return undefined
    let fd: number
    try {
      fd = openSync(real, 'r')
    } catch {
      return undefined
    }
    try {
      const st = fstatSync(fd)
      if (!st.isFile() || st.size > SCRIPT_LIMITS.fileBytes) return undefined
      const buf = Buffer.alloc(st.size)
      let at = 0
      while (at < buf.length) {
        const n = readSync(fd, buf, at, buf.length - at, at)
        if (n === 0) break
        at += n
      }
      return buf.subarray(0, at).toString('utf8')
    } finally {
      closeSync(fd)
    }
  }
  if (read(entry) === undefined) throw new Error(`cannot read ${JSON.stringify(entryPath)}: no such regular file`)
  return { files: read, entry }
}
