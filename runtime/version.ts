/** @module caplet's version: shown by `caplet --version` and part of every on-disk cache key. */
export const CAPLET_VERSION = '0.1.0'
