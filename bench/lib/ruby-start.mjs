// CRuby start-up: the ruby+stdlib.wasm reactor that @ruby/3.3-wasm-wasi ships (fetched at bench
// time), initialised and asked to `require "json"` and print one line. The JS-interop imports
// (rb-js-abi-host) are stubs that are never called by this script.
//   node ruby-start.mjs '<json spec>'   spec: { host: caplet | node-wasi, tier?, wasm, caplet }
// Prints @@RESULT {"ok":true,"results":{"ruby-start":{ns}}, "compileMs", "runMs"}.
import { readFileSync, openSync, closeSync } from 'node:fs'

const spec = JSON.parse(process.argv[2])
const decoder = new TextDecoder()
const SCRIPT = 'require "json"; puts JSON.generate({ "ruby" => RUBY_VERSION, "sum" => (1..1000).sum }); $stdout.flush'

async function main() {
  const t0 = performance.now()
  const bytes = readFileSync(spec.wasm)
  let host, imports, mod, compileMs
  if (spec.host === 'caplet') {
    const caplet = await import(spec.caplet)
    const code = caplet.withTierHints(new Uint8Array(bytes), spec.tier ?? 'auto')
    const tc = performance.now()
    mod = new WebAssembly.Module(code)
    compileMs = performance.now() - tc
    let out = ''
    host = new caplet.WasiHost({
      args: ['ruby'],
      stdout: (c) => {
        out += decoder.decode(c)
      },
      stderr: (c) => {
        out += decoder.decode(c)
      },
    })
    host.output = () => out
    imports = host.imports
  } else {
    const { WASI } = await import('node:wasi')
    process.removeAllListeners('warning')
    const tc = performance.now()
    mod = new WebAssembly.Module(bytes)
    compileMs = performance.now() - tc
    const devnull = openSync('/dev/null', 'w')
    const wasi = new WASI({ version: 'preview1', args: ['ruby'], env: {}, returnOnExit: true, stdout: devnull, stderr: devnull })
    host = { initialize: (i) => wasi.initialize(i), output: () => '(to /dev/null)', close: () => closeSync(devnull) }
    imports = wasi.getImportObject()
  }
  const handles = [0]
  const stubs = new Proxy(
    {},
    {
      get: (_, name) => () => {
        throw new Error(`JS interop call ${String(name)}`)
      },
    },
  )
  const canonical = {
    'resource_new_rb-abi-value': (raw) => {
      handles.push(raw)
      return handles.length - 1
    },
    'resource_get_rb-abi-value': (h) => handles[h],
    'resource_drop_js-abi-value': () => {},
  }
  const inst = new WebAssembly.Instance(mod, { ...imports, 'rb-js-abi-host': stubs, canonical_abi: canonical })
  host.initialize(inst)
  const x = inst.exports
  const view = () => new DataView(x.memory.buffer)
  const cstr = (s) => {
    const b = new TextEncoder().encode(`${s}\0`)
    const p = x.cabi_realloc(0, 0, 1, b.length)
    new Uint8Array(x.memory.buffer).set(b, p)
    return [p, b.length - 1]
  }
  const argv = ['ruby', '-e_=0'].map(cstr)
  const arr = x.cabi_realloc(0, 0, 4, argv.length * 8)
  argv.forEach(([p, l], i) => {
    view().setUint32(arr + i * 8, p, true)
    view().setUint32(arr + i * 8 + 4, l, true)
  })
  x['ruby-init: func(args: list<string>) -> ()'](arr, argv.length)
  x['ruby-init-loadpath: func() -> ()']()
  const [sp, sl] = cstr(SCRIPT)
  const ret = x['rb-eval-string-protect: func(str: string) -> tuple<handle<rb-abi-value>, s32>'](sp, sl)
  const state = view().getInt32(ret + 4, true)
  const total = performance.now() - t0
  if (state !== 0) return { ok: false, error: `ruby raised (state ${state}): ${host.output().slice(-300)}` }
  return { ok: true, results: { 'ruby-start': { ns: total * 1e6, ops: 1, check: '0' } }, compileMs, output: host.output().trim() }
}

let out
try {
  out = await main()
} catch (e) {
  out = { ok: false, error: String(e?.stack ?? e).slice(0, 500) }
}
process.stdout.write(`\n@@RESULT ${JSON.stringify(out)}\n`)
process.exit(0)
