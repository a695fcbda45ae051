// The browser build's module swaps: the Node-only modules the shared runtime imports (host
// directories, host stdio, Node clocks, realpath/isatty in policy resolution) are replaced by
// their browser counterparts in runtime/browser/shims/, so execute.ts, mounts.ts, output.ts and
// policy.ts are shared, not copied. Any other Node built-in fails the build.
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const SHIMS = {
  'runtime/policy-host.ts': 'runtime/browser/shims/policy-host.ts',
  'runtime/stdio.ts': 'runtime/browser/shims/stdio.ts',
  'wasi-host/node/index.ts': 'runtime/browser/shims/node-backends.ts',
  'wasi-host/node/clocks.ts': 'runtime/browser/shims/clocks.ts',
  'wasi-host/node/host-dir-fs.ts': 'runtime/browser/shims/host-dir-fs.ts',
  'wasi-host/node/overlay-apply.ts': 'runtime/browser/shims/overlay-apply.ts',
  'runtime/script-guest.ts': 'runtime/browser/shims/script-guest.ts',
  'runtime/socket-grants.ts': 'runtime/browser/shims/socket-grants.ts',
  'runtime/trace-output.ts': 'runtime/browser/shims/trace-output.ts',
}

/** @type {import('esbuild').Plugin} */
export const browserShims = {
  name: 'caplet-browser-shims',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const target = relative(root, join(args.resolveDir, args.path)).replace(/\.js$/, '.ts')
      const shim = SHIMS[target]
      return shim ? { path: join(root, shim) } : undefined
    })
    b.onResolve({ filter: /^(node:|fs$|path$|os$|crypto$|url$|tty$|worker_threads$|child_process$)/ }, (args) => ({
      errors: [{ text: `Node import "${args.path}" in ${relative(root, args.importer)} reached the browser build` }],
    }))
  },
}

/** esbuild options for the two browser bundles: the API (main thread) and the guest's worker. */
export const browserEntries = {
  browser: 'runtime/browser/index.ts',
  'browser-worker': 'runtime/browser/worker.ts',
}
