/**
 * @module The name of the fuel counter a metered module exports (fuel.ts writes it): what a runner
 * reads from an instance, without loading the rewriter.
 */
export const FUEL_EXPORT = 'caplet_fuel'
