/**
 * @module The script-side half of the global API a JavaScript/TypeScript guest sees, as source
 * evaluated once inside QuickJS before the engine's memory is snapshotted. It wraps the single
 * host function (`runtime/script-api.ts`) in the documented globals and turns the host's errno
 * answers into ordinary `Error`s made inside the guest (so no host `Error`, and no host stack,
 * ever reaches the script).
 *
 * Globals: `console.log/info/debug` (stdout), `console.error/warn` (stderr), `readFile(path,
 * 'utf8' | 'bytes')`, `writeFile(path, string | Uint8Array)`, `readdir(path)`, `args`, `env`,
 * `stdin` (all of standard input as text, read on first use), `exit(code)`, `callHost(name,
 * input, 'utf8' | 'bytes')` (a plugin's host functions, granted by the embedder). No timers, no
 * network, no `process`, `require`, `fetch` or host `WebAssembly`.
 */

/** Name under which the host function is installed, removed by the prelude before any script runs. */
export const HOST_FUNCTION = '__caplet_host'

/** Evaluates to an object of internals the runner keeps: `{ report(e): string, renew(), output(v), reseed() }`. */
export const PRELUDE = String.raw`(() => {
  'use strict'
  const host = globalThis.${HOST_FUNCTION}
  delete globalThis.${HOST_FUNCTION}
  const define = (name, value) => Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false })
  const lazy = (name, load) => {
    let cached, loaded = false
    Object.defineProperty(globalThis, name, {
      get() { if (!loaded) { cached = load(); loaded = true } return cached },
      set(v) { cached = v; loaded = true },
      configurable: true, enumerable: false,
    })
  }
  const failure = (r, op, path) => {
    const e = new Error(r.err + ': ' + r.msg + (path !== undefined ? ', ' + op + " '" + path + "'" : ''))
    e.code = r.err
    e.errno = r.errno
    if (path !== undefined) e.path = path
    return e
  }
  const call = (op, a, b, path) => {
    const r = host(op, a, b)
    if (r !== null && typeof r === 'object' && r.err !== undefined) throw failure(r, op, path)
    return r === null || r === undefined ? undefined : r.ok
  }
  const inspect = (v, depth, seen) => {
    switch (typeof v) {
      case 'string': return depth === 0 ? v : JSON.stringify(v)
      case 'function': return '[Function' + (v.name ? ': ' + v.name : ' (anonymous)') + ']'
      case 'bigint': return v + 'n'
      case 'symbol': return v.toString()
      case 'undefined': return 'undefined'
      case 'object': break
      default: return String(v)
    }
    if (v === null) return 'null'
    if (v instanceof Error) return v.stack ? v.name + ': ' + v.message + '\n' + v.stack.replace(/\n$/, '') : v.name + ': ' + v.message
    if (seen.includes(v)) return '[Circular]'
    if (depth > 4) return Array.isArray(v) ? '[Array]' : '[Object]'
    const next = seen.concat([v])
    if (Array.isArray(v)) return '[ ' + v.map((x) => inspect(x, depth + 1, next)).join(', ') + ' ]'
    if (v instanceof Uint8Array) return 'Uint8Array(' + v.length + ') [ ' + Array.prototype.slice.call(v, 0, 50).join(', ') + (v.length > 50 ? ', ...' : '') + ' ]'
    if (v instanceof Map) return 'Map(' + v.size + ') { ' + [...v].map(([k, x]) => inspect(k, depth + 1, next) + ' => ' + inspect(x, depth + 1, next)).join(', ') + ' }'
    if (v instanceof Set) return 'Set(' + v.size + ') { ' + [...v].map((x) => inspect(x, depth + 1, next)).join(', ') + ' }'
    if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString()
    const keys = Object.keys(v)
    if (keys.length === 0) return '{}'
    return '{ ' + keys.map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)) + ': ' + inspect(v[k], depth + 1, next)).join(', ') + ' }'
  }
  const line = (args) => args.map((a) => inspect(a, 0, [])).join(' ') + '\n'
  const out = (...a) => { call('write', 1, line(a)) }
  const err = (...a) => { call('write', 2, line(a)) }
  define('console', Object.freeze({ log: out, info: out, debug: out, error: err, warn: err, trace: err }))
  const str = (path, what) => {
    if (typeof path !== 'string') throw new TypeError(what + ': the path must be a string')
    return path
  }
  define('readFile', function readFile(path, encoding) {
    const p = str(path, 'readFile')
    if (encoding !== undefined && encoding !== 'utf8' && encoding !== 'utf-8' && encoding !== 'bytes') throw new TypeError("readFile: encoding must be 'utf8' or 'bytes'")
    return call('read', p, encoding === 'bytes', p)
  })
  define('writeFile', function writeFile(path, data) {
    const p = str(path, 'writeFile')
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new TypeError('writeFile: data must be a string or a Uint8Array')
    call('writeFile', p, data, p)
  })
  define('readdir', function readdir(path) {
    const p = str(path === undefined ? '.' : path, 'readdir')
    return call('readdir', p, undefined, p)
  })
  define('exit', function exit(code) {
    const n = code === undefined ? 0 : Number(code)
    call('exit', Number.isInteger(n) ? n : 1)
  })
  define('callHost', function callHost(name, input, encoding) {
    if (typeof name !== 'string') throw new TypeError('callHost: the name must be a string')
    const data = input === undefined ? '' : input
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new TypeError('callHost: the input must be a string or a Uint8Array')
    if (encoding !== undefined && encoding !== 'utf8' && encoding !== 'utf-8' && encoding !== 'bytes') throw new TypeError("callHost: encoding must be 'utf8' or 'bytes'")
    return call(encoding === undefined || encoding === 'bytes' ? 'host' : 'hostText', name, data)
  })
  const lazies = [
    ['args', () => Object.freeze(call('args'))],
    ['env', () => Object.freeze(call('env'))],
    ['stdin', () => call('stdin')],
  ]
  // A run on an instance that keeps its state (a 'keep' script plugin) reads its own args and stdin.
  // Math.random is reseeded for every run from the host's random source (the policy's, so a
  // deterministic run repeats it); the engine's own seed is fixed in the snapshot.
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, seeded = false
  const renew = () => {
    seeded = false
    for (const [name, load] of lazies) { try { lazy(name, load) } catch (_) { /* the script made it its own */ } }
  }
  renew()
  Object.defineProperty(Math, 'random', {
    value: function random() {
      if (!seeded) { [s0, s1, s2, s3] = call('random'); if ((s0 | s1 | s2 | s3) === 0) s0 = 1; seeded = true }
      // xoshiro128**
      const r = Math.imul(((Math.imul(s1, 5) << 7) | (Math.imul(s1, 5) >>> 25)), 9) >>> 0
      const t = s1 << 9
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
      s3 = (s3 << 11) | (s3 >>> 21)
      return r / 4294967296
    },
    writable: true, configurable: true, enumerable: false,
  })
  const report = (e) => {
    try {
      if (e instanceof Error) {
        // Frames of this prelude are caplet's, not the script's.
        const stack = typeof e.stack === 'string' ? e.stack.split('\n').filter((l) => l !== '' && !l.includes('(<caplet>:')).join('\n') : ''
        return 'Uncaught ' + e.name + ': ' + e.message + (stack ? '\n' + stack : '')
      }
      return 'Uncaught ' + inspect(e, 1, [])
    } catch (_) {
      return 'Uncaught exception'
    }
  }
  // An exported function's return value as a call's output: text, bytes, nothing, or JSON.
  const output = (v) => {
    if (typeof v === 'string' || v instanceof Uint8Array) return v
    if (v instanceof ArrayBuffer) return new Uint8Array(v)
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    if (v === undefined) return ''
    const s = JSON.stringify(v)
    if (typeof s !== 'string') throw new TypeError('the exported function returned ' + typeof v + ', which is not text, bytes or JSON')
    return s
  }
  // A call of an exported function draws its own Math.random seed (its input is its argument, not stdin).
  const reseed = () => { seeded = false }
  return { report, renew, output, reseed }
})()`
