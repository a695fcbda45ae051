/**
 * @module JavaScript and TypeScript guests, the compile step: `compileScript({ files, entry })`
 * bundles only the submitted files with esbuild (types stripped, ES modules among the files
 * joined into one module, a separate source map) into a `ScriptProgram` that
 * `runtime/script.ts` runs inside QuickJS on caplet's own WASI host.
 *
 * SECURITY: the source is untrusted. Nothing here reads the disk or the network: every import is
 * resolved by an in-memory plugin against the submitted names only; a bare import (`fs`,
 * `node:fs`, `lodash`), an absolute path, a URL or a relative path that climbs out of the
 * submitted tree is an error naming it. No tsconfig, package.json or node_modules is consulted.
 */
import type { BuildFailure, Message, Plugin } from 'esbuild'

/** What `compileScript` returns for a successful compile: plain data, safe to post to a worker or store. */
export interface ScriptProgram {
  readonly kind: 'caplet.script'
  readonly version: 1
  /** The entry file, as submitted. */
  readonly entry: string
  /** The bundle: one ES module. */
  readonly code: string
  /** The bundle's file name in stack traces (what the source map maps from). */
  readonly filename: string
  /** The source map (JSON), its `sources` the submitted names. */
  readonly sourceMap: string
  /** The entry module's named exports (as the bundler saw them); a plugin that exports functions is called through them. */
  readonly exports?: readonly string[]
}

export interface Diagnostic {
  severity: 'error' | 'warning'
  message: string
  /** Submitted file name and 1-based position, when the message has one. */
  file?: string
  line?: number
  column?: number
}

export interface ScriptSource {
  /**
   * The submitted files by relative name (`main.ts`, `lib/util.ts`), or a function that returns a
   * file's text by that name (`undefined` when there is none): the CLI reads beside the entry.
   */
  files: Readonly<Record<string, string>> | ((name: string) => string | undefined)
  /**
   * The file to run (one of the names). Optional when `files` is an object holding exactly one
   * script file (`.ts`, `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`; `.d.ts` files do not count): that
   * file is the entry. Otherwise its absence is a diagnostic naming the candidates.
   */
  entry?: string
  /**
   * How the entry is read whatever its name ends with (the language the caller named: `--lang
   * ts notes.txt`); by default, by its extension. Imported files are read by their extension.
   */
  loader?: ScriptLoader
}

/** esbuild's loader for a TypeScript or a JavaScript file. */
export type ScriptLoader = 'ts' | 'js'

export interface CompileScriptResult {
  /** Undefined when the compile failed; `diagnostics` then has at least one error. */
  program: ScriptProgram | undefined
  diagnostics: Diagnostic[]
}

/** Bounds on what one compile accepts (untrusted input feeds a native bundler). */
export const SCRIPT_LIMITS = { files: 1000, fileBytes: 8 * 1024 * 1024, totalBytes: 32 * 1024 * 1024, nameBytes: 1024 } as const

const BUNDLE_NAME = 'script.js'
const NAMESPACE = 'caplet-script'
const LOADERS: Record<string, 'ts' | 'js' | 'json'> = {
  '.ts': 'ts',
  '.mts': 'ts',
  '.cts': 'ts',
  '.js': 'js',
  '.mjs': 'js',
  '.cjs': 'js',
  '.json': 'json',
}
/** Suffixes tried, in order, for an import without a known extension (as TypeScript resolves). */
const PROBES = ['', '.ts', '.mts', '.js', '.mjs', '.json', '/index.ts', '/index.js', '/index.mjs']

/** Whether a value is a compiled script program (plain data; checked field by field). */
export function isScriptProgram(v: unknown): v is ScriptProgram {
  if (typeof v !== 'object' || v === null) return false
  const p = v as Record<string, unknown>
  return (
    p.kind === 'caplet.script' &&
    p.version === 1 &&
    typeof p.code === 'string' &&
    typeof p.sourceMap === 'string' &&
    typeof p.entry === 'string' &&
    typeof p.filename === 'string' &&
    (p.exports === undefined || (Array.isArray(p.exports) && p.exports.every((n) => typeof n === 'string')))
  )
}

/**
 * The canonical form of a submitted or imported name: relative, `/`-separated, no `.` or `..`
 * component, no empty component, no NUL or backslash. Undefined when it is none of that.
 */
export function canonicalName(name: string): string | undefined {
  if (name.length === 0 || new TextEncoder().encode(name).length > SCRIPT_LIMITS.nameBytes) return undefined
  if (name.includes('\0') || name.includes('\\') || name.startsWith('/')) return undefined
  const parts = name.split('/')
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return undefined
  return name
}

/** Joins a relative import onto the importer's directory; undefined when it climbs out of the tree. */
function joinRelative(importer: string, spec: string): string | undefined {
  const stack = importer.split('/').slice(0, -1)
  for (const part of spec.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (stack.length === 0) return undefined
      stack.pop()
    } else stack.push(part)
  }
  return stack.length === 0 ? undefined : stack.join('/')
}

function extensionOf(name: string): string {
  const slash = name.lastIndexOf('/')
  const dot = name.lastIndexOf('.')
  return dot > slash ? name.slice(dot) : ''
}

class SourceSet {
  readonly #files: (name: string) => string | undefined
  readonly #cache = new Map<string, string | undefined>()
  #total = 0
  problems: Diagnostic[] = []

  constructor(files: ScriptSource['files']) {
    if (typeof files === 'function') this.#files = files
    else {
      const names = Object.keys(files)
      if (names.length > SCRIPT_LIMITS.files)
        this.problems.push({ severity: 'error', message: `too many files: ${names.length} (at most ${SCRIPT_LIMITS.files})` })
      for (const n of names) {
        if (canonicalName(n) === undefined)
          this.problems.push({
            severity: 'error',
            message: `file name ${JSON.stringify(n)} is not a plain relative name (no "/" at the start, no "." or ".." parts)`,
          })
      }
      const own = new Map(Object.entries(files).filter(([n]) => canonicalName(n) !== undefined))
      this.#files = (name) => own.get(name)
    }
  }

  get(name: string): string | undefined {
    if (this.#cache.has(name)) return this.#cache.get(name)
    let text: string | undefined
    if (this.#cache.size >= SCRIPT_LIMITS.files) throw new Error(`too many files (at most ${SCRIPT_LIMITS.files})`)
    const raw = this.#files(name)
    if (typeof raw === 'string') {
      if (raw.length > SCRIPT_LIMITS.fileBytes) throw new Error(`${name} is larger than ${SCRIPT_LIMITS.fileBytes} bytes`)
      this.#total += raw.length
      if (this.#total > SCRIPT_LIMITS.totalBytes) throw new Error(`the files add up to more than ${SCRIPT_LIMITS.totalBytes} bytes`)
      text = raw
    }
    this.#cache.set(name, text)
    return text
  }

  /** The files read so far that exist, by name (what the bundle depends on, with the names probed and absent). */
  read(): Map<string, string> {
    const out = new Map<string, string>()
    for (const [name, text] of this.#cache) if (text !== undefined) out.set(name, text)
    return out
  }

  /** The submitted name an import resolves to, probing extensions; a `.js` import may name a `.ts` file. */
  resolve(base: string): string | undefined {
    for (const suffix of PROBES) {
      const name = base + suffix
      if (LOADERS[extensionOf(name)] !== undefined && this.get(name) !== undefined) return name
    }
    const ext = extensionOf(base)
    if (ext === '.js' || ext === '.mjs') {
      const ts = base.slice(0, -ext.length) + (ext === '.js' ? '.ts' : '.mts')
      if (this.get(ts) !== undefined) return ts
    }
    return undefined
  }
}

function inMemory(sources: SourceSet, entry: string, loader: ScriptLoader | undefined): Plugin {
  return {
    name: 'caplet-submitted-files',
    setup(b) {
      let entryName: string | undefined
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') {
          let name: string | undefined
          try {
            // A named loader takes the entry by its own name, whatever its extension.
            name = loader !== undefined && sources.get(entry) !== undefined ? entry : sources.resolve(entry)
          } catch (e) {
            return { errors: [{ text: (e as Error).message }] }
          }
          if (name === undefined) return { errors: [{ text: `the entry file ${JSON.stringify(entry)} is not among the submitted files` }] }
          entryName = name
          return { path: name, namespace: NAMESPACE }
        }
        const spec = args.path
        const from = args.importer
        if (!spec.startsWith('./') && !spec.startsWith('../')) {
          return {
            errors: [
              {
                text: `import of ${JSON.stringify(spec)} from ${from}: only the submitted files can be imported, by a relative path such as "./lib.ts" (no packages, no node: modules, no absolute paths or URLs)`,
              },
            ],
          }
        }
        const joined = joinRelative(from, spec)
        if (joined === undefined) return { errors: [{ text: `import of ${JSON.stringify(spec)} from ${from} leaves the submitted files` }] }
        let name: string | undefined
        try {
          name = sources.resolve(joined)
        } catch (e) {
          return { errors: [{ text: (e as Error).message }] }
        }
        if (name === undefined)
          return { errors: [{ text: `import of ${JSON.stringify(spec)} from ${from}: no submitted file ${JSON.stringify(joined)}` }] }
        return { path: name, namespace: NAMESPACE }
      })
      b.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => {
        let text: string | undefined
        try {
          text = sources.get(args.path)
        } catch (e) {
          return { errors: [{ text: (e as Error).message }] }
        }
        if (text === undefined) return { errors: [{ text: `no submitted file ${JSON.stringify(args.path)}` }] }
        // No resolveDir: esbuild then has no directory to look in, so nothing reaches the disk.
        const named = args.path === entryName ? loader : undefined
        return { contents: text, loader: named ?? LOADERS[extensionOf(args.path)] ?? 'js' }
      })
    },
  }
}

function diagnostic(severity: Diagnostic['severity'], m: Message): Diagnostic {
  const d: Diagnostic = { severity, message: m.text }
  if (m.location) {
    d.file = m.location.file.startsWith(`${NAMESPACE}:`) ? m.location.file.slice(NAMESPACE.length + 1) : m.location.file
    d.line = m.location.line
    d.column = m.location.column + 1
  }
  return d
}

/** One line per diagnostic, `file:line:column: error: message`. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[]): string {
  return diagnostics
    .map((d) => `${d.file !== undefined ? `${d.file}:${d.line ?? 0}:${d.column ?? 0}: ` : ''}${d.severity}: ${d.message}`)
    .join('\n')
}

/**
 * The last bundle of files read through a function (the CLI: `caplet run main.ts` bundles once to
 * learn which files the script reads, then hands exactly those to `compile()`, which bundles
 * them for its cache and type check). A later call with those very files, entry and loader takes
 * it instead of bundling again: it would read the same files, resolve the same names (a name
 * probed and absent then is absent now: the files are the ones read) and give the same output.
 * Taken once; a service's record of files is never remembered, so nothing large stays behind.
 */
let lastRead:
  { entry: string | undefined; loader: ScriptLoader | undefined; read: Map<string, string>; result: CompileScriptResult } | undefined

function takeLastRead(source: ScriptSource): CompileScriptResult | undefined {
  const last = lastRead
  if (last === undefined || typeof source.files === 'function') return undefined
  if (last.entry !== source.entry || last.loader !== source.loader) return undefined
  const names = Object.keys(source.files)
  if (names.length !== last.read.size) return undefined
  for (const name of names) if (last.read.get(name) !== source.files[name]) return undefined
  lastRead = undefined
  return { program: last.result.program, diagnostics: [...last.result.diagnostics] }
}

/**
 * Bundles the submitted files into one ES module with its source map. Never throws for what the
 * source contains: failures come back as diagnostics.
 */
export async function compileScript(source: ScriptSource): Promise<CompileScriptResult> {
  const again = takeLastRead(source)
  if (again !== undefined) return again
  const result = await bundle(source)
  if (typeof source.files === 'function' && result.sources !== undefined && result.program !== undefined)
    lastRead = { entry: source.entry, loader: source.loader, read: result.sources.read(), result }
  return { program: result.program, diagnostics: result.diagnostics }
}

/** The entry named, or the one script file of an object of files; else a diagnostic saying why there is none. */
function entryOf(source: ScriptSource): string | Diagnostic {
  if (source.entry !== undefined) {
    if (typeof source.entry === 'string' && canonicalName(source.entry) !== undefined) return source.entry
    return { severity: 'error', message: `the entry ${JSON.stringify(source.entry)} is not a plain relative file name` }
  }
  if (typeof source.files === 'function')
    return { severity: 'error', message: 'no entry: name the file to run with `entry` (the files are read by name, so none can be picked)' }
  const candidates = Object.keys(source.files).filter((n) => {
    const loader = LOADERS[extensionOf(n)]
    return loader !== undefined && loader !== 'json' && !/\.d\.[mc]?ts$/.test(n)
  })
  if (candidates.length === 1) return candidates[0]!
  return {
    severity: 'error',
    message:
      candidates.length === 0
        ? 'no entry: none of the files is a script (.ts, .mts, .cts, .js, .mjs, .cjs)'
        : `no entry: ${candidates.length} script files (${candidates
            .slice(0, 5)
            .map((n) => JSON.stringify(n))
            .join(', ')}${candidates.length > 5 ? ', …' : ''}); name the one to run with \`entry\``,
  }
}

async function bundle(source: ScriptSource): Promise<CompileScriptResult & { sources?: SourceSet }> {
  const sources = new SourceSet(source.files)
  const picked = entryOf(source)
  const entry = typeof picked === 'string' ? picked : undefined
  if (typeof picked !== 'string') sources.problems.push(picked)
  if (source.loader !== undefined && source.loader !== 'ts' && source.loader !== 'js')
    sources.problems.push({ severity: 'error', message: `the loader ${JSON.stringify(source.loader)} is not "ts" or "js"` })
  if (sources.problems.length > 0) return { program: undefined, diagnostics: sources.problems }
  try {
    // Loaded on first use: importing caplet to run a .wasm must not pay for the bundler.
    const { build } = await import('esbuild')
    const out = await build({
      entryPoints: [entry!],
      plugins: [inMemory(sources, entry!, source.loader)],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      target: 'es2023',
      outfile: BUNDLE_NAME,
      sourcemap: 'external',
      sourcesContent: false,
      charset: 'utf8',
      tsconfigRaw: {},
      logLevel: 'silent',
      absWorkingDir: '/',
      // No `process.env.X` substitution or other host values baked in.
      define: {},
      metafile: true,
    })
    let code = ''
    let map = ''
    for (const f of out.outputFiles) {
      if (f.path.endsWith('.map')) map = f.text
      else code = f.text
    }
    code = code.replace(/\n\/\/# sourceMappingURL=\S*\n?$/, '\n')
    map = withSubmittedNames(map)
    const exported = Object.entries(out.metafile.outputs).find(([path]) => !path.endsWith('.map'))?.[1].exports ?? []
    return {
      program: {
        kind: 'caplet.script',
        version: 1,
        entry: entry!,
        code,
        filename: BUNDLE_NAME,
        sourceMap: map,
        ...(exported.length > 0 ? { exports: exported } : {}),
      },
      diagnostics: out.warnings.map((w) => diagnostic('warning', w)),
      sources,
    }
  } catch (e) {
    const f = e as BuildFailure
    if (Array.isArray(f.errors)) {
      return {
        program: undefined,
        diagnostics: [...f.errors.map((m) => diagnostic('error', m)), ...(f.warnings ?? []).map((m) => diagnostic('warning', m))],
      }
    }
    return {
      program: undefined,
      diagnostics: [{ severity: 'error', message: `the bundler failed: ${e instanceof Error ? e.message : String(e)}` }],
    }
  }
}

/** esbuild names sources `caplet-script:NAME`; the map should say the names the author submitted. */
function withSubmittedNames(map: string): string {
  try {
    const v = JSON.parse(map) as { sources?: string[] }
    if (Array.isArray(v.sources)) v.sources = v.sources.map((s) => s.replace(new RegExp(`^(\\.\\./)*${NAMESPACE}:`), ''))
    return JSON.stringify(v)
  } catch {
    return map
  }
}
