/**
 * @module The guest's Web Worker (`dist/browser-worker.js`): receives a compiled module, a
 * resolved policy and where each mount's contents come from; copies the mounts into MemFs, runs
 * the guest on this thread with the shared `executeGuest` (so the page can terminate it at any
 * instruction), streams output as it is written, then reads writable mounts back and writes
 * OPFS changes back. A worker serves one job after another; each gets a fresh host, fresh
 * mounts and a fresh instance. It must never reach anything the job did not name.
 */
import { createMemFs, type Filesystem } from '../../wasi-host/index.js'
import { ModuleError } from '../errors.js'
import { executeGuest, provideMounts } from '../execute.js'
import * as mounts from '../mounts.js'
import { checkModuleBytes, instrumentModule } from '../module-pipeline.js'
import { limitedSink, type Sink } from '../output.js'
import { withoutLinks } from './no-links.js'
import { opfsDirectory, readOpfs, writeBackOpfs } from './opfs.js'
import { BROWSER_PROTOCOL_VERSION as V, type BrowserJob, type BrowserWorkerMessage, type CompileJob } from './protocol.js'
import { readEntries, writeEntries, type FileEntry } from './snapshot.js'

const scope = globalThis as unknown as { postMessage(m: BrowserWorkerMessage): void; onmessage: ((e: MessageEvent) => void) | null }
const post = (m: BrowserWorkerMessage) => scope.postMessage(m)
provideMounts(mounts)
/** Timestamps of in-memory mounts in a deterministic run: fixed (2000-01-01), like its virtual clock's epoch. */
const FIXED_NOW = () => 946_684_800_000_000_000n
/** What a mount's copy may hold when the policy gives it no size. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER

function chunkSink(stream: 'stdout' | 'stderr'): Sink {
  return (chunk) => post({ v: V, type: 'chunk', stream, bytes: chunk.slice() })
}

/** Each trace line is posted as the call returns, so a run killed while it spins has delivered the lines of every call it made. */
function traceSink(line: string): void {
  post({ v: V, type: 'trace', line })
}

async function serve(job: BrowserJob): Promise<void> {
  if (job?.v !== V || job.type !== 'run') {
    post({ v: V, type: 'failed', message: `worker protocol mismatch: got ${String(job?.v)}` })
    return
  }
  const memOptions = job.policy.deterministic ? { now: FIXED_NOW } : {}
  const mems: Filesystem[] = []
  const initial: (FileEntry[] | undefined)[] = []
  const opfsDirs: (FileSystemDirectoryHandle | undefined)[] = []
  for (const [i, m] of job.mounts.entries()) {
    const limit = job.policy.mounts[i]?.bytes ?? UNBOUNDED
    let entries: FileEntry[] = []
    if (m.source.kind === 'entries') entries = m.source.entries
    else if (m.source.kind === 'opfs') {
      const dir = await opfsDirectory(m.source.dir)
      opfsDirs[i] = dir
      entries = await readOpfs(dir, limit)
    }
    const mem = createMemFs(memOptions)
    const root = mem.root()
    try {
      writeEntries(root, entries)
    } finally {
      root.close()
    }
    mems[i] = mem
    initial[i] = m.writeBack ? entries : undefined
  }
  const given = mems.map((mem, i) => {
    const m = job.mounts[i]!
    let fs: Filesystem = m.noLinks ? withoutLinks(mem) : mem
    if (m.hostVisible) {
      const inner = fs
      fs = { caps: Object.freeze({ ...inner.caps, hostVisible: true }), root: () => inner.root() }
    }
    return fs
  })
  const limits = job.policy.limits
  const outcome = executeGuest(
    job,
    {
      stdout: limitedSink(chunkSink('stdout'), limits.stdoutBytes, 'stdout'),
      stderr: limitedSink(chunkSink('stderr'), limits.stderrBytes, 'stderr'),
      ...(job.policy.trace?.callback === true ? { trace: traceSink } : {}),
    },
    given,
  )
  post({ v: V, type: 'ran' })
  const trees: (FileEntry[] | undefined)[] = []
  let writeBackError: string | undefined
  for (const [i, m] of job.mounts.entries()) {
    if (!m.collect && !m.writeBack) continue
    const after = readEntries(mems[i]!)
    if (m.collect) trees[i] = after
    if (m.writeBack && opfsDirs[i] !== undefined) {
      try {
        await writeBackOpfs(opfsDirs[i]!, initial[i] ?? [], after)
      } catch (e) {
        writeBackError = `${job.policy.mounts[i]?.guest}: writing back to OPFS failed: ${e instanceof Error ? e.message : String(e)}`
      }
    }
  }
  post({ v: V, type: 'done', outcome, trees, ...(writeBackError !== undefined ? { writeBackError } : {}) })
}

/** The shared pipeline (validate, cap tables and memory, meter fuel), then an asynchronous compile. */
async function compile(job: CompileJob): Promise<void> {
  try {
    checkModuleBytes(job.bytes)
    const code = instrumentModule(job.bytes, { memoryPages: job.memoryPages, fuel: job.fuel })
    let module: WebAssembly.Module
    try {
      module = await WebAssembly.compile(code as Uint8Array<ArrayBuffer>)
    } catch (e) {
      throw new ModuleError(`invalid WebAssembly module: ${(e as Error).message}`, { cause: e })
    }
    post({ v: V, type: 'compiled', module })
  } catch (e) {
    if (!(e instanceof ModuleError)) throw e
    post({ v: V, type: 'refused', message: e.reason })
  }
}

scope.onmessage = (e: MessageEvent) => {
  const job = e.data as BrowserJob | CompileJob
  const work = job?.v === V && job.type === 'compile' ? compile(job) : serve(job as BrowserJob)
  work.catch((err: unknown) => {
    post({ v: V, type: 'failed', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
  })
}
