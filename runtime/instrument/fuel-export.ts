/**
 * @module Names caplet's rewrites give a module (fuel.ts, memory.ts write them): what a runner
 * reads from or supplies to an instance, without loading the rewriter.
 */
export const FUEL_EXPORT = 'caplet_fuel'

/** Where `importMemory` (memory.ts) puts the module's memory: an import only caplet's host provides. */
export const REUSED_MEMORY_IMPORT = { module: 'caplet', name: 'memory' } as const
