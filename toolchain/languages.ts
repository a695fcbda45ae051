/**
 * @module The language registry: each language's name, aliases, file extensions and how to load
 * its compiler. Compilers are loaded only when used (`load()`), so naming a language costs
 * nothing. To add a language, append an entry to LANGUAGES; the longest matching extension
 * wins, so `.as.ts` (AssemblyScript) beats a plain `.ts` (TypeScript, run in QuickJS).
 * A language never reads the disk for sources: it gets the validated files in memory.
 */
import type { Diagnostic } from './diagnostics.js'
import type { ScriptProgram } from './js/index.js'
import type { SourceFiles } from './source-files.js'

/** The user-chosen build options, validated and normalised (part of the cache key). */
export interface BuildOptions {
  /** Optimisation level (-O0..-O3); each language maps it to its own. */
  optimize: 0 | 1 | 2 | 3
  /** Keep debug information (-g). */
  debug: boolean
  /** Preprocessor definitions (-D NAME[=VALUE]), sorted by name. C and C++ only. */
  defines: Array<[name: string, value: string | null]>
  /** Language standard (-std=), from the language's list. */
  std: string | undefined
}

/** Everything a language's compiler gets. Limits are enforced by the compiler module. */
export interface CompileContext {
  files: SourceFiles
  entry: string | undefined
  options: BuildOptions
  timeoutMs: number
  maxOutputBytes: number
  trustSource: boolean
  signal: AbortSignal | undefined
  env: Readonly<Record<string, string | undefined>>
  /** TypeScript: type-check before bundling (default true; `--no-check` turns it off). */
  typeCheck: boolean
}

/** What a language's compiler makes: a WebAssembly module, or a script program for QuickJS. */
export type CompiledModule =
  | { kind: 'wasm'; module: Uint8Array<ArrayBuffer>; diagnostics: Diagnostic[] }
  | { kind: 'script'; program: ScriptProgram; diagnostics: Diagnostic[] }

export interface LanguageCompiler {
  /** The compiler's identity for the cache key (name and version); may throw ToolchainError. */
  identity(ctx: CompileContext): Promise<string> | string
  /** Compiles, or throws CompileError (with diagnostics) / ToolchainError. */
  compile(ctx: CompileContext): Promise<CompiledModule>
}

export interface Language {
  /** The canonical name, as given to `compile({ language })` and `--lang`. */
  name: string
  /** What `compile()` makes of it: a WebAssembly module, or a script run inside QuickJS. */
  output: 'wasm' | 'script'
  aliases: readonly string[]
  /** Extensions that select this language for a file (lower case, with the dot). */
  extensions: readonly string[]
  /** One line for help and errors. */
  description: string
  /** Accepted `std` values (none: the option is refused). */
  standards: readonly string[]
  /** Whether -D definitions mean anything to this language. */
  defines: boolean
  load(): Promise<LanguageCompiler>
}

export const LANGUAGES: readonly Language[] = [
  {
    name: 'c',
    output: 'wasm',
    aliases: ['C'],
    extensions: ['.c'],
    description: 'C (clang, wasm32-wasi, wasi-libc)',
    standards: ['c89', 'c99', 'c11', 'c17', 'c23', 'gnu89', 'gnu99', 'gnu11', 'gnu17', 'gnu23'],
    defines: true,
    load: async () => (await import('./clang.js')).cCompiler,
  },
  {
    name: 'cpp',
    output: 'wasm',
    aliases: ['c++', 'cxx', 'C++'],
    extensions: ['.cpp', '.cc', '.cxx', '.c++'],
    description: 'C++ (clang, libc++, no exceptions)',
    standards: ['c++11', 'c++14', 'c++17', 'c++20', 'c++23', 'gnu++11', 'gnu++14', 'gnu++17', 'gnu++20', 'gnu++23'],
    defines: true,
    load: async () => (await import('./clang.js')).cppCompiler,
  },
  {
    name: 'wat',
    output: 'wasm',
    aliases: ['wast'],
    extensions: ['.wat'],
    description: 'WebAssembly text (wabt)',
    standards: [],
    defines: false,
    load: async () => (await import('./wat.js')).watCompiler,
  },
  {
    name: 'as',
    output: 'wasm',
    aliases: ['assemblyscript'],
    extensions: ['.as.ts', '.as'],
    description: 'AssemblyScript (asc + wasi-shim)',
    standards: [],
    defines: false,
    load: async () => (await import('./assemblyscript.js')).assemblyScriptCompiler,
  },
  {
    name: 'typescript',
    output: 'script',
    aliases: ['ts'],
    extensions: ['.ts', '.mts', '.cts'],
    description: 'TypeScript (type-checked, bundled by esbuild, run in QuickJS)',
    standards: [],
    defines: false,
    load: async () => (await import('./script.js')).typeScriptCompiler,
  },
  {
    name: 'javascript',
    output: 'script',
    aliases: ['js'],
    extensions: ['.js', '.mjs', '.cjs'],
    description: 'JavaScript (bundled by esbuild, run in QuickJS)',
    standards: [],
    defines: false,
    load: async () => (await import('./script.js')).javaScriptCompiler,
  },
]

export function languageByName(name: string): Language | undefined {
  return LANGUAGES.find((l) => l.name === name || l.aliases.includes(name))
}

/** The language a file name selects by its extension (longest match), or undefined. */
export function languageForFile(file: string): Language | undefined {
  const lower = file.toLowerCase()
  let best: Language | undefined
  let bestLen = 0
  for (const l of LANGUAGES) {
    for (const ext of l.extensions) {
      if (lower.endsWith(ext) && ext.length > bestLen) {
        best = l
        bestLen = ext.length
      }
    }
  }
  return best
}

export function languageNames(): string {
  return LANGUAGES.map((l) => l.name).join(', ')
}
