/**
 * @module The messages between a page and a guest's Web Worker. Plain structured-clone data:
 * no `SharedArrayBuffer`, so it works on pages that are not cross-origin isolated. Output is
 * posted chunk by chunk as the guest writes it, so a worker terminated mid-run (timeout, abort)
 * has already handed over everything it wrote.
 */
import type { ExecutionOutcome, Guest } from '../execute.js'
import type { FileEntry } from './snapshot.js'

export const BROWSER_PROTOCOL_VERSION = 1

/** Where one mount's initial contents come from, as the worker receives it. */
export type MountSource =
  /** Empty (a tmp mount). */
  | { kind: 'empty' }
  /** These entries (a tree, dropped files, a memfs volume's subtree). */
  | { kind: 'entries'; entries: FileEntry[] }
  /** An OPFS directory, read in the worker. */
  | { kind: 'opfs'; dir: FileSystemDirectoryHandle | string }

export interface MountJob {
  source: MountSource
  /** Read the tree back after the run (write-back to a volume, `keep`). */
  collect: boolean
  /** Write the changes back to the OPFS directory after the run. */
  writeBack: boolean
  /** Refuse symlinks and hard links (OPFS cannot store them). */
  noLinks: boolean
  /** Links may not climb with `..` (the tree is written back where an app reads it). */
  hostVisible: boolean
}

export interface BrowserJob extends Guest {
  v: typeof BROWSER_PROTOCOL_VERSION
  type: 'run'
  mounts: MountJob[]
}

/** Validate, rewrite and compile module bytes off the page's thread (large modules take long). */
export interface CompileJob {
  v: typeof BROWSER_PROTOCOL_VERSION
  type: 'compile'
  bytes: Uint8Array
  memoryPages: number | undefined
  fuel: boolean
}

export type BrowserWorkerMessage =
  | { v: typeof BROWSER_PROTOCOL_VERSION; type: 'compiled'; module: WebAssembly.Module }
  /** The bytes are not a module caplet can run: the ModuleError's message (without its prefix). */
  | { v: typeof BROWSER_PROTOCOL_VERSION; type: 'refused'; message: string }
  | { v: typeof BROWSER_PROTOCOL_VERSION; type: 'chunk'; stream: 'stdout' | 'stderr'; bytes: Uint8Array }
  /** One trace line, posted as the call returns. */
  | { v: typeof BROWSER_PROTOCOL_VERSION; type: 'trace'; line: string }
  /** The guest stopped; write-back follows (the run's time limit no longer applies). */
  | { v: typeof BROWSER_PROTOCOL_VERSION; type: 'ran' }
  | {
      v: typeof BROWSER_PROTOCOL_VERSION
      type: 'done'
      outcome: ExecutionOutcome
      trees: (FileEntry[] | undefined)[]
      writeBackError?: string
    }
  | { v: typeof BROWSER_PROTOCOL_VERSION; type: 'failed'; message: string }
