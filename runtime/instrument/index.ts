/**
 * @module The WebAssembly binary rewriter: pure functions over `Uint8Array`, no `node:` import and
 * no dependency, so the same code runs in Node and in a browser.
 *
 * - `capMemory`: cap the declared maximum of every defined memory.
 * - `meterFuel`: a deterministic instruction budget (see `fuel.ts` for what one unit is).
 * - `addTierHints`: which functions the engine should compile optimised up front.
 * - `parseSections` / `encodeSections` and the LEB128 helpers they are built on; `skipImmediates`
 *   and `readBodies`, the one decoder of function bodies.
 */
export { InstrumentError } from './errors.js'
export type { InstrumentErrorCode, InstrumentErrorDetails } from './errors.js'
export { ByteWriter, encodeS32, encodeS64, encodeU32, encodeU64, readS32, readS33, readS64, readU32, readU64, skipLeb } from './leb128.js'
export type { Decoded } from './leb128.js'
export { SectionId, encodeSections, findSection, parseSections, putSection } from './sections.js'
export type { ParsedModule, Section } from './sections.js'
export { MAX_PAGES_32, MAX_PAGES_64, REUSED_MEMORY_IMPORT, WASM_PAGE_SIZE, beforeEdit, capMemory, importMemory } from './memory.js'
export { DEFAULT_TABLE_CAP, capTables } from './tables.js'
export type { TableCap } from './tables.js'
export type { CappedMemory, ImportedMemory, InPlaceEdit, MemoryCapResult } from './memory.js'
export { FUEL_EXPORT, MAX_FUEL, meterFuel, remainingFuel, setFuel } from './fuel.js'
export type { FuelMeterResult, FuelOptions } from './fuel.js'
export { addTierHints, insertTierHints, tierHints, tierHintsFit } from './tier-hints.js'
export type { Tier, TierHints } from './tier-hints.js'
export { prefixedKind, readBodies, readLocals, skipImmediates, skipMemArg, UNDECODABLE, walkCode, WalkIncomplete } from './code-decoder.js'
export type { CodeBodies, CodeVisitor, Locals } from './code-decoder.js'
