/**
 * @module `caplet inspect`: a module's inventory (imports with their call sites, exports,
 * memories, tables, features) and the least-privilege policy it calls for.
 */
export { inspectModule, REPORT_VERSION } from './analyze.js'
export type { CallerReport, ExportReport, ImportGroup, ImportReport, MemoryReport, ModuleReport, TableReport } from './analyze.js'
export { inspectJson, inspectText } from './render.js'
export type { InspectJson } from './render.js'
export { suggestPolicy } from './suggest.js'
export type { PolicySuggestion } from './suggest.js'
