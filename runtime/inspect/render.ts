/**
 * @module The text and JSON forms of `caplet inspect`. Every name a module chose (imports,
 * exports, function and custom-section names) is printed through `escapeControlCharacters`,
 * so a hostile module cannot forge terminal output. Never prints host paths other than the
 * module path the user gave.
 */
import { escapeControlCharacters as esc } from '../../wasi-host/trace/escape.js'
import type { CallerReport, ImportReport, ModuleReport } from './analyze.js'
import { suggestPolicy, type PolicySuggestion } from './suggest.js'

/** At most this many callers are listed per import in text (JSON has them all). */
const MAX_CALLERS = 4

export interface InspectJson extends ModuleReport {
  policy: PolicySuggestion
}

export function inspectJson(r: ModuleReport): InspectJson {
  return { ...r, policy: suggestPolicy(r) }
}

/** A size for people, rounded: `1.2 MiB`, `812 B`. */
function formatSize(bytes: number): string {
  for (const [unit, n] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= n) return `${+(bytes / n).toFixed(1)} ${unit}`
  }
  return `${bytes} B`
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

function fnName(index: number, name: string | null): string {
  return name !== null ? esc(name) : `func[${index}]`
}

function callers(list: readonly CallerReport[]): string {
  const shown = list.slice(0, MAX_CALLERS).map((c) => `${fnName(c.index, c.name)}${c.sites > 1 ? ` (${c.sites})` : ''}`)
  if (list.length > MAX_CALLERS) shown.push(`${list.length - MAX_CALLERS} more`)
  return shown.join(', ')
}

function importLine(i: ImportReport, width: number): string {
  const name = esc(i.name).padEnd(width)
  if (i.kind !== 'function') return `    ${name}  ${i.kind}`
  const what = i.provided ? i.description! : 'NOT PROVIDED by caplet'
  const where = i.callSites === 0 ? 'no direct call' : `${plural(i.callSites, 'call site')} in ${callers(i.callers)}`
  const flags = [i.reachableViaTable ? 'reachable through a table' : '', i.exported ? 're-exported' : ''].filter(Boolean)
  return `    ${name}  ${what}; ${where}${flags.length > 0 ? `; ${flags.join(', ')}` : ''}`
}

function pages(n: number | null): string {
  return n === null ? 'none' : `${n} (${formatSize(n * 65536)})`
}

/** The report for people. `file` is the path the user gave, printed as given (escaped). */
export function inspectText(r: ModuleReport, file: string): string {
  const out: string[] = []
  const kind =
    r.kind === 'command'
      ? 'command (exports _start)'
      : r.exports.some((e) => e.name === '_initialize')
        ? 'reactor (exports _initialize)'
        : 'reactor (no _start)'
  out.push(`module ${esc(file)}: ${formatSize(r.size)}, ${kind}`)
  out.push(
    `functions: ${r.functions.imported} imported, ${r.functions.defined} defined; ${plural(r.indirectCallSites, 'indirect call site')}`,
  )
  out.push('')
  const total = r.imports.reduce((n, g) => n + g.imports.length, 0)
  out.push(total === 0 ? 'imports: none (it cannot ask the host for anything)' : `imports (${total}):`)
  for (const g of r.imports) {
    out.push(`  ${esc(g.module)}${g.wasi ? '' : '  [not WASI]'}`)
    const width = Math.min(24, Math.max(...g.imports.map((i) => esc(i.name).length)))
    for (const i of g.imports) out.push(importLine(i, width))
  }
  out.push('')
  out.push(r.exports.length === 0 ? 'exports: none' : `exports (${r.exports.length}):`)
  for (const e of r.exports) {
    const fn = e.kind === 'function' && e.function !== null && e.function !== e.name ? ` (${esc(e.function)})` : ''
    out.push(`  ${esc(e.name)}: ${e.kind} ${e.index}${fn}`)
  }
  out.push('')
  if (r.memories.length === 0) out.push('memory: none')
  for (const m of r.memories) {
    const traits = [m.imported ? 'imported' : '', m.shared ? 'shared' : '', m.memory64 ? 'memory64' : ''].filter(Boolean)
    out.push(
      `memory ${m.index}: min ${pages(m.min)} pages, max ${pages(m.max)}${traits.length > 0 ? `, ${traits.join(', ')}` : ''}; ${m.capped ? 'capped by caplet at --memory (default 1 GiB)' : 'not capped by caplet (imported)'}`,
    )
  }
  if (r.tables.length === 0) out.push('tables: none')
  for (const t of r.tables)
    out.push(`table ${t.index}: ${t.elementType}, min ${t.min}, max ${t.max ?? 'none'}${t.imported ? ', imported' : ''}`)
  out.push(`start function: ${r.start === null ? 'none' : fnName(r.start.index, r.start.name)}`)
  out.push(`features: ${r.features.length === 0 ? 'MVP only' : r.features.join(', ')}`)
  out.push(
    `custom sections: ${r.customSections.length === 0 ? 'none' : r.customSections.map((c) => `${esc(c.name)} (${formatSize(c.size)})`).join(', ')}`,
  )
  for (const n of r.notes) out.push(`note: ${esc(n)}`)
  out.push('')
  const p = suggestPolicy(r)
  out.push('suggested policy:')
  for (const a of p.advice) out.push(`  - ${a}`)
  out.push(`  caplet run ${p.flags.join(' ')} ${esc(file)}`)
  return out.join('\n') + '\n'
}
