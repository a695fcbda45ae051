/**
 * @module The TypeScript type check of a script's files: `typecheckScript()` runs the checker
 * (`typecheck-worker.ts`) in the compiler worker under a time limit and heap cap, and returns
 * its diagnostics as `file:line:column` (the submitted names). Only the entry and what it
 * imports are checked, against ES2023 and the script globals (`script-globals.ts`).
 */
import { runCompilerJob } from '../compiler-worker.js'
import type { Diagnostic } from '../diagnostics.js'
import type { TypecheckReply } from './typecheck-worker.js'

/** The checker's JS heap: TypeScript itself takes ~100 MiB; a type-level bomb stops here. */
export const TYPECHECK_HEAP_MB = 512

export interface TypecheckRequest {
  /** Submitted name -> text. */
  files: ReadonlyMap<string, string>
  entry: string
  timeoutMs: number
  signal?: AbortSignal | undefined
}

/** The checker's diagnostics (errors, warnings); rejects with CompileError only when a limit stops it. */
export async function typecheckScript(r: TypecheckRequest): Promise<Diagnostic[]> {
  const reply = await runCompilerJob<TypecheckReply>(
    { kind: 'typecheck', files: [...r.files], entry: r.entry },
    { timeoutMs: r.timeoutMs, heapMb: TYPECHECK_HEAP_MB, signal: r.signal, what: 'the TypeScript type check' },
  )
  return reply.diagnostics
}
