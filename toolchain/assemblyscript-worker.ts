/**
 * @module The AssemblyScript compiler (`asc`) on submitted files, run inside the compiler worker
 * (`compiler-worker-entry.ts`).
 * asc reaches files only through the callbacks given here: they serve the submitted `.ts` files
 * (at /src) and the wasi-shim library (at /shim, read by the parent from caplet's own
 * node_modules) from memory, and nothing else: no host path, no asconfig.json (which could name
 * a transform, i.e. host JavaScript), no transform option. The parent kills the worker at its
 * time limit. Never writes to the disk.
 */
import { posix } from 'node:path'

export interface AscJob {
  kind: 'asc'
  files: Array<[string, Uint8Array]>
  entry: string
  shim: Array<[string, string]>
  use: string[]
  optimize: number
  debug: boolean
  maxOutputBytes: number
}

export interface AscDiagnostic {
  category: number
  message: string
  file?: string
  start?: number
}
export type AscReply =
  { ok: true; module: Uint8Array; diagnostics: AscDiagnostic[] } | { ok: false; diagnostics: AscDiagnostic[]; message: string }

const SRC = '/src'
const SHIM = '/shim'

export async function runAsc(job: AscJob): Promise<AscReply> {
  const asc = await import('assemblyscript/asc')
  const dec = new TextDecoder()
  const sources = new Map<string, string>()
  for (const [name, bytes] of job.files) if (name.endsWith('.ts')) sources.set(name, dec.decode(bytes))
  const shim = new Map(job.shim)
  const diagnostics: AscDiagnostic[] = []
  let output: Uint8Array | undefined
  let tooLarge = false
  const lookup = (filename: string, baseDir: string): string | null => {
    const full = posix.resolve(SRC, baseDir, filename)
    if (!full.endsWith('.ts')) return null
    if (full.startsWith(`${SRC}/`)) return sources.get(full.slice(SRC.length + 1)) ?? null
    if (full.startsWith(`${SHIM}/`)) return shim.get(full.slice(SHIM.length + 1)) ?? null
    return null
  }
  const stderr = asc.createMemoryStream()
  const result = await asc.main(
    [
      job.entry,
      '--baseDir',
      SRC,
      '--outFile',
      'module.wasm',
      '--noColors',
      '--lib',
      SHIM,
      ...job.use.flatMap((u) => ['--use', u]),
      '--exportStart',
      '_start',
      `-O${job.optimize}`,
      ...(job.debug ? ['--debug'] : []),
    ],
    {
      stdout: asc.createMemoryStream(),
      stderr,
      readFile: lookup,
      listFiles: (dirname, baseDir) => {
        const full = posix.resolve(SRC, baseDir, dirname)
        return full === SHIM ? [...shim.keys()].filter((n) => !n.includes('/')) : []
      },
      writeFile: (filename, contents) => {
        if (posix.basename(filename) !== 'module.wasm' || typeof contents === 'string') return
        if (contents.byteLength > job.maxOutputBytes) {
          tooLarge = true
          return
        }
        output = contents.slice()
      },
      reportDiagnostic: (d) => {
        if (diagnostics.length >= 200) return
        const source = d.range?.source?.normalizedPath
        diagnostics.push({ category: d.category, message: d.message, ...(source ? { file: source, start: d.range!.start } : {}) })
      },
    },
  )
  if (tooLarge) return { ok: false, diagnostics, message: `output-too-large` }
  if (result.error || !output) {
    return { ok: false, diagnostics, message: result.error?.message ?? (stderr.toString().split('\n')[0] || 'no output') }
  }
  return { ok: true, module: output, diagnostics }
}
