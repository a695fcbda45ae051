/**
 * @module The TypeScript type check of submitted files, run inside the compiler worker
 * (`compiler-worker-entry.ts`) under a time limit and heap cap. The compiler host serves the
 * submitted files (at /src) and the script globals from memory, and TypeScript's own `lib.*.d.ts`
 * from the installed package; nothing else exists for it: no node_modules, no @types, no
 * tsconfig, no host path. Never writes.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { SCRIPT_GLOBALS_DTS, SCRIPT_GLOBALS_FILE } from './script-globals.js'

export interface TypecheckJob {
  kind: 'typecheck'
  /** Submitted name -> text. */
  files: Array<[string, string]>
  entry: string
}

export interface TypecheckDiagnostic {
  severity: 'error' | 'warning' | 'note'
  message: string
  file?: string
  line?: number
  column?: number
}
export interface TypecheckReply {
  ok: true
  diagnostics: TypecheckDiagnostic[]
}

const SRC = '/src/'
const LIB_NAME = /^lib\.[a-z0-9.]+\.d\.ts$/
const MAX_DIAGNOSTICS = 200

export async function runTypecheck(job: TypecheckJob): Promise<TypecheckReply> {
  const ts = ((await import('typescript')) as unknown as { default: typeof import('typescript') }).default
  const sources = new Map<string, string>(job.files.map(([n, t]) => [SRC + n, t]))
  // An entry named otherwise (`--lang ts notes.txt`) is checked as TypeScript under a name of
  // TypeScript's, beside it (its imports resolve the same); diagnostics give its own name back.
  let checked = SRC + job.entry
  if (!/\.[mc]?ts$/.test(job.entry)) {
    while (sources.has(`${checked}.ts`)) checked += '_'
    checked += '.ts'
    sources.set(checked, sources.get(SRC + job.entry) ?? '')
  }
  const nameOf = (path: string) => (path === checked ? job.entry : path.slice(SRC.length))
  sources.set(SRC + SCRIPT_GLOBALS_FILE, SCRIPT_GLOBALS_DTS)
  const options: import('typescript').CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,
    lib: ['lib.es2023.d.ts'],
    types: [],
    strict: true,
    noEmit: true,
    allowJs: true,
    checkJs: false,
    resolveJsonModule: true,
    allowImportingTsExtensions: true,
    isolatedModules: true,
    skipLibCheck: true,
    noResolve: false,
    esModuleInterop: true,
  }
  const libDir = dirname(ts.getDefaultLibFilePath(options))
  const libText = (name: string): string | undefined => {
    if (!LIB_NAME.test(name)) return undefined
    try {
      return readFileSync(join(libDir, name), 'utf8')
    } catch {
      return undefined
    }
  }
  const text = (path: string): string | undefined => {
    if (sources.has(path)) return sources.get(path)
    if (path.startsWith('/lib/')) return libText(path.slice(5))
    return undefined
  }
  const host: import('typescript').CompilerHost = {
    getSourceFile: (path, languageVersion) => {
      const t = text(path)
      return t === undefined ? undefined : ts.createSourceFile(path, t, languageVersion, true)
    },
    getDefaultLibFileName: (o) => `/lib/${ts.getDefaultLibFileName(o)}`,
    getDefaultLibLocation: () => '/lib',
    writeFile: () => {
      /* noEmit */
    },
    getCurrentDirectory: () => SRC,
    getCanonicalFileName: (f) => f,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => '\n',
    fileExists: (path) => text(path) !== undefined,
    readFile: (path) => text(path),
    directoryExists: (dir) => {
      const d = dir.endsWith('/') ? dir : `${dir}/`
      return d === '/lib/' || [...sources.keys()].some((p) => p.startsWith(d))
    },
    getDirectories: () => [],
    realpath: (p) => p,
  }
  const program = ts.createProgram({ rootNames: [checked, SRC + SCRIPT_GLOBALS_FILE], options, host })
  const diagnostics: TypecheckDiagnostic[] = []
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (diagnostics.length >= MAX_DIAGNOSTICS) break
    const severity =
      d.category === ts.DiagnosticCategory.Error ? 'error' : d.category === ts.DiagnosticCategory.Warning ? 'warning' : 'note'
    const message = `${ts.flattenDiagnosticMessageText(d.messageText, '\n')} (TS${d.code})`
    if (d.file && d.start !== undefined && d.file.fileName.startsWith(SRC)) {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start)
      diagnostics.push({ severity, message, file: nameOf(d.file.fileName), line: line + 1, column: character + 1 })
    } else if (!d.file) {
      diagnostics.push({ severity, message })
    }
  }
  return { ok: true, diagnostics }
}
