// Runs one guest on one host, in this (child) process, and prints one line:
//   @@RESULT {"ok":true,"results":{name:{ns,ops,check}},"wallMs":…,"runs":[…]}
// The orchestrator (bench/run.mjs) spawns this once per sample, so every host starts from the
// same state and a crashing host (node:wasi on Node 20, nodejs/node#53087) costs one sample.
//
//   node host-run.mjs '<json spec>'
// spec: { host, wasm, args, dir?, memfs?, repeat?, kind? }
//   host: caplet | caplet-memfs | caplet-worker | caplet-fuel | caplet-prepared | caplet-worker-prepared
//         | node-wasi | bjorn3 | wasmer
//         (caplet-prepared: prepareSync once, then program.runSync() per run; caplet-worker-prepared:
//         prepare once, then program.run() per run; the others call runSync()/run() per run)
//   kind: 'guest' (default: the guest reports RESULT lines) | 'warm' (repeat the whole run,
//         report the median wall time per run) | 'ruby' (CRuby start-up: init + eval)
import { closeSync, openSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'

const spec = JSON.parse(process.argv[2])
const decoder = new TextDecoder()
const bytes = readFileSync(spec.wasm)
const args = spec.args ?? []

function parseResults(text) {
  const out = {}
  for (const m of text.matchAll(/^RESULT (\S+) ns=(\d+) ops=(\d+) check=(\d+)$/gm)) {
    out[m[1]] = { ns: Number(m[2]), ops: Number(m[3]), check: m[4] }
  }
  const fail = text.match(/^FAIL .*$/m)
  return { results: out, fail: fail?.[0] }
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

// ---- hosts: each returns { stderr: string, exitCode } for one run of the module ------------

async function hostFactory(name) {
  switch (name) {
    case 'caplet':
    case 'caplet-memfs':
    case 'caplet-fuel':
    case 'caplet-worker':
    case 'caplet-prepared':
    case 'caplet-worker-prepared': {
      const caplet = await import(spec.caplet)
      const worker = name === 'caplet-worker' || name === 'caplet-worker-prepared'
      const options = {
        args,
        stdout: 'discard',
        stderr: 'capture',
        mounts:
          spec.dir === undefined
            ? []
            : name === 'caplet-memfs'
              ? [{ guest: '/data', fs: caplet.createMemFs() }]
              : [{ guest: '/data', host: spec.dir, mode: 'rw' }],
        ...(name === 'caplet-fuel' ? { limits: { fuel: 1e15 } } : {}),
        isolation: worker ? 'worker' : 'in-process',
      }
      // A prepared program validates the policy and loads the module here, once.
      const program =
        name === 'caplet-prepared'
          ? caplet.prepareSync(bytes, options)
          : name === 'caplet-worker-prepared'
            ? await caplet.prepare(bytes, options)
            : undefined
      return async (extraImports) => {
        if (extraImports) throw new Error('caplet runs WASI-only modules through run()')
        const r =
          program !== undefined
            ? worker
              ? await program.run()
              : program.runSync()
            : worker
              ? await caplet.run(bytes, options)
              : caplet.runSync(bytes, options)
        if (r.trap) throw new Error(`trap: ${r.trap.message}`)
        if (r.limit) throw new Error(`limit: ${r.limit}`)
        return { stderr: decoder.decode(r.stderr), exitCode: r.exitCode }
      }
    }
    case 'node-wasi': {
      const { WASI } = await import('node:wasi')
      process.removeAllListeners('warning')
      const mod = new WebAssembly.Module(bytes)
      const devnull = openSync('/dev/null', 'w')
      const errDir = mkdtempSync(join(tmpdir(), 'bench-err-'))
      return async (extraImports) => {
        const errPath = join(errDir, 'stderr')
        const errFd = openSync(errPath, 'w')
        const wasi = new WASI({
          version: 'preview1',
          args,
          env: {},
          returnOnExit: true,
          preopens: spec.dir === undefined ? {} : { '/data': spec.dir },
          stdout: devnull,
          stderr: errFd,
        })
        const inst = new WebAssembly.Instance(mod, { ...wasi.getImportObject(), ...extraImports?.(inst) })
        let exitCode = 0
        if (extraImports) wasi.initialize(inst)
        else exitCode = wasi.start(inst)
        closeSync(errFd)
        const stderr = readFileSync(errPath, 'utf8')
        return { stderr, exitCode, instance: inst }
      }
    }
    case 'bjorn3': {
      const shim = await import('@bjorn3/browser_wasi_shim')
      const mod = new WebAssembly.Module(bytes)
      return async () => {
        let stderr = ''
        const fds = [
          new shim.OpenFile(new shim.File([])),
          new shim.ConsoleStdout(() => {}),
          new shim.ConsoleStdout((b) => {
            stderr += decoder.decode(b)
          }),
          ...(spec.dir === undefined ? [] : [new shim.PreopenDirectory('/data', new Map())]),
        ]
        // debug: false, or this version logs every path to the console (its default is on).
        const wasi = new shim.WASI(args, [], fds, { debug: false })
        const inst = new WebAssembly.Instance(mod, { wasi_snapshot_preview1: wasi.wasiImport })
        const exitCode = wasi.start(inst)
        return { stderr, exitCode }
      }
    }
    case 'wasmer': {
      const { init, WASI, MemFS } = await import('@wasmer/wasi')
      await init()
      const mod = new WebAssembly.Module(bytes)
      return async () => {
        const fs = new MemFS()
        if (spec.dir !== undefined) fs.createDir('/data')
        const wasi = new WASI({ args, env: {}, preopens: spec.dir === undefined ? {} : { '/data': '/data' }, fs })
        const inst = wasi.instantiate(mod, {})
        const exitCode = wasi.start(inst)
        wasi.getStdoutBuffer() // drain: this host keeps stdout in memory
        return { stderr: wasi.getStderrString(), exitCode }
      }
    }
    default:
      throw new Error(`unknown host ${name}`)
  }
}

async function main() {
  const t0 = performance.now()
  const runOnce = await hostFactory(spec.host)
  const setupMs = performance.now() - t0
  if ((spec.kind ?? 'guest') === 'guest') {
    const t = performance.now()
    const r = await runOnce()
    const wallMs = performance.now() - t
    const parsed = parseResults(r.stderr)
    if (parsed.fail || r.exitCode !== 0) return { ok: false, error: parsed.fail ?? `exit ${r.exitCode}: ${r.stderr.slice(-300)}` }
    return { ok: true, results: parsed.results, wallMs, setupMs }
  }
  if (spec.kind === 'warm') {
    const n = spec.repeat ?? 50
    for (let i = 0; i < Math.min(10, n); i++) await runOnce()
    const times = []
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      const r = await runOnce()
      times.push(performance.now() - t)
      if (r.exitCode !== 0) return { ok: false, error: `exit ${r.exitCode}` }
    }
    return { ok: true, results: { warm: { ns: median(times) * 1e6, ops: 1, check: '0' } }, runs: times }
  }
  throw new Error(`unknown kind ${spec.kind}`)
}

let out
try {
  out = await main()
} catch (e) {
  out = { ok: false, error: String(e?.stack ?? e).slice(0, 500) }
}
process.stdout.write(`\n@@RESULT ${JSON.stringify(out)}\n`)
if (spec.dir && spec.cleanup) rmSync(spec.dir, { recursive: true, force: true })
process.exit(0)
