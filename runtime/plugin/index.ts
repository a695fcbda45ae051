/**
 * @module Plugins: load a WebAssembly module once, call its exports with data many times.
 */
export { plugin, pluginSync } from './plugin.js'
export { HostInput } from './host-input.js'
export { scriptPlugin, type ScriptPluginOptions } from './script-plugin.js'
export type { CallOptions, HostFunction, HostFunctions, HostOutput, HttpOptions, Plugin, PluginOptions } from './types.js'
