/**
 * @module The compiler worker thread (bundled as dist/compiler-worker.js): runs one job (WAT,
 * AssemblyScript or the TypeScript check) given as workerData and posts its reply. The parent
 * (`compiler-worker.ts`) terminates it at the time limit; V8 stops it at the heap cap. An
 * unexpected failure is posted as `{ crashed }`: one line, never a stack.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { AscJob, AscReply } from './assemblyscript-worker.js'
import type { TypecheckJob, TypecheckReply } from './js/typecheck-worker.js'
import type { WatJob, WatReply } from './wat-worker.js'

export type CompilerJob = AscJob | WatJob | TypecheckJob
export type CompilerReply = AscReply | WatReply | TypecheckReply

async function handle(job: CompilerJob): Promise<CompilerReply> {
  switch (job.kind) {
    case 'asc':
      return (await import('./assemblyscript-worker.js')).runAsc(job)
    case 'wat':
      return (await import('./wat-worker.js')).runWat(job)
    case 'typecheck':
      return (await import('./js/typecheck-worker.js')).runTypecheck(job)
  }
}

if (parentPort) {
  handle(workerData as CompilerJob).then(
    (reply) => parentPort!.postMessage(reply),
    (e: unknown) => parentPort!.postMessage({ crashed: e instanceof Error ? e.message : String(e) }),
  )
}
