/**
 * @module One run of a compiled JavaScript/TypeScript program on the current thread: borrows an
 * engine instance (`script-engine.ts`), binds it to the run's `WasiHost`, evaluates the bundle
 * as an ES module and drains its jobs. `execute.ts` calls this where a wasm command would have
 * its `_start` called, so clocks, mounts, limits, fuel and the result are the same code path.
 *
 * An uncaught exception prints its name, message and stack with the script's own
 * file:line:column (through the source map) on stderr and exits 1; running out of the memory
 * cap is the `memory` limit. It must never hand an exit, a limit or a trap to the script as an
 * exception the script could catch.
 */
import { JSException, JSValueHandle } from 'quickjs-wasi'
import { Errno, LimitExceeded, ProcExit, type WasiHost } from '../wasi-host/index.js'
import type { ScriptProgram } from '../toolchain/js/index.js'
import { mapStack, SourceMap } from '../toolchain/js/source-map.js'
import { errnoAnswer, ScriptApi, ScriptErrno } from './script-api.js'
import {
  HostFailure,
  registerScriptRunner,
  type HostCaller,
  type KeptEngine,
  type ScriptCall,
  type ScriptGuest,
  type ScriptRun,
} from './script-guest.js'
import {
  engineFor,
  EVAL_MODULE,
  forgetProgram,
  STACK_GUARD_BYTES,
  type EngineSlot,
  type RunBinding,
  type ScriptEngine,
} from './script-engine.js'

const OOM = /^out of memory$/

/**
 * Borrows an engine instance in its snapshot state and binds it to this run's host.
 * `maxBytes` bounds what one API call gathers on the host (the run's memory cap).
 */
export function startScript(
  script: ScriptGuest,
  module: WebAssembly.Module,
  host: WasiHost,
  wasi: Record<string, (...args: never[]) => number>,
  maxBytes: number,
  callHost: HostCaller | undefined,
): ScriptRun {
  const engine = engineFor(script.engineKey, module)
  const kept = script.kept
  const reused = kept?.slot as EngineSlot | undefined
  const slot = reused ?? engine.acquire(script.call?.plugin)
  if (kept !== undefined) kept.slot = slot
  const ex = slot.instance.exports as { wasm_malloc(n: number): number; wasm_free(p: number): void }
  const api = new ScriptApi(
    wasi,
    {
      memory: slot.memory,
      malloc: (n) => ex.wasm_malloc(n),
      free: (p) => ex.wasm_free(p),
    },
    maxBytes,
  )
  const binding: RunBinding = {
    wasi,
    hostFunction: (args) => hostFunction(slot, binding, api, args, (name, input) => callHostFunction(api, callHost, name, input, maxBytes)),
    abort: undefined,
    rejections: new Map(),
  }
  slot.binding = binding
  host.memory.bind(slot.memory)
  // As for any reactor: the engine returns to this driver, with no last call to flush held writes at.
  host.writeBehind.enabled = false
  return {
    instance: slot.instance,
    execute: () =>
      script.call !== undefined
        ? callExport(engine, slot, binding, api, script.program, script.call, kept)
        : execute(slot, binding, api, script.program, reused !== undefined, script.repeat === true),
    release: (clean) => {
      // The wrapper remembers exception handles it created; they belong to this run's memory.
      ;(slot.vm as unknown as { _ownedHandles: Set<unknown> })._ownedHandles.clear()
      if (kept === undefined) engine.release(slot, clean)
      else {
        // SECURITY: the kept instance never goes back to the pool (its state is the plugin's); after a trap or a limit it is dropped.
        slot.binding = undefined
        if (!clean) {
          kept.slot = undefined
          kept.lost = true
        }
      }
    },
  }
}

/** The one host function the prelude wraps: `(op, a, b)` → `{ ok }` or `{ err, errno, msg }`. */
function hostFunction(slot: EngineSlot, binding: RunBinding, api: ScriptApi, args: JSValueHandle[], callHost: HostCaller): JSValueHandle {
  const vm = slot.vm
  try {
    const op = args[0] === undefined ? undefined : vm.dump(args[0])
    const a = args[1] === undefined ? undefined : vm.dump(args[1])
    const b = args[2] === undefined ? undefined : vm.dump(args[2])
    let ok: unknown
    try {
      ok = dispatch(api, callHost, op, a, b)
    } catch (e) {
      if (e instanceof ScriptErrno) return vm.hostToHandle(errnoAnswer(e.errno))
      throw e
    }
    return vm.hostToHandle({ ok })
  } catch (e) {
    // SECURITY: an exit, a limit, a trap or a host fault: never handed to the script as an
    // exception it could catch; the engine is unwound as soon as the trampoline returns.
    binding.abort ??= outOfMemory(e) ? new LimitExceeded('memory', 'the script ran out of memory under the memory limit') : e
    return vm.undefined
  }
}

/**
 * One of the embedder's host functions. SECURITY: what comes back is bounded by the memory the
 * engine could hold, and text must be valid UTF-8; a failure (or an ungranted name) ends the
 * run, as it fails a wasm plugin's call: the script cannot catch it.
 */
function callHostFunction(api: ScriptApi, callHost: HostCaller | undefined, name: string, input: Uint8Array, maxBytes: number): Uint8Array {
  if (api.loading) throw new HostFailure(name, `host function ${name} called by the module's top level: host functions are for calls`)
  if (callHost === undefined) throw new HostFailure(name, `no host function ${name} was granted`)
  const out = callHost(name, input)
  if (out.byteLength > maxBytes) throw new HostFailure(name, `host function ${name} returned more than the plugin's memory limit`)
  return out
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const utf8Text = new TextDecoder()
const utf8 = new TextEncoder()

function dispatch(api: ScriptApi, callHost: HostCaller, op: unknown, a: unknown, b: unknown): unknown {
  switch (op) {
    case 'host':
    case 'hostText':
      if (typeof a === 'string' && (typeof b === 'string' || b instanceof Uint8Array)) {
        const out = callHost(a, typeof b === 'string' ? utf8.encode(b) : b)
        if (op === 'host') return out
        try {
          return strictUtf8.decode(out)
        } catch {
          throw new ScriptErrno(Errno.ILSEQ)
        }
      }
      break
    case 'write':
      if ((a === 1 || a === 2) && typeof b === 'string') return api.write(a, b)
      break
    case 'read':
      if (typeof a === 'string') return api.readFile(a, b === true)
      break
    case 'writeFile':
      if (typeof a === 'string' && (typeof b === 'string' || b instanceof Uint8Array)) return api.writeFile(a, b)
      break
    case 'readdir':
      if (typeof a === 'string') return api.readdir(a)
      break
    case 'stdin':
      return api.stdin()
    case 'args':
      return api.args()
    case 'env':
      return { ...api.env() }
    case 'random':
      return api.random()
    case 'exit':
      if (typeof a === 'number' && Number.isInteger(a)) return api.exit(a)
      break
  }
  throw new ScriptErrno(Errno.INVAL) // a call the prelude never makes
}

/**
 * Programs' QuickJS bytecode on this thread, by source (then file name): compiled from the source
 * by this engine only (SECURITY: QuickJS trusts the bytecode it reads, so none ever comes from
 * outside), from nothing but the program, so it carries nothing of a run. `null`: the source does
 * not compile (the run parses it, to report the error). Keyed by the source string itself, whose
 * hash V8 keeps: no key is built per call. Bounded by total size, least recently used first out.
 */
const bytecodes = new Map<string, { filename: string; bc: Uint8Array | null }>()
let bytecodeBytes = 0
const MAX_BYTECODE_BYTES = 32 * 1024 * 1024

/** The program's bytecode, compiled in this run's engine instance on first use (with the run's fuel and memory). */
function bytecodeOf(vm: EngineSlot['vm'], program: ScriptProgram): Uint8Array | null {
  const { code, filename } = program
  const known = bytecodes.get(code)
  if (known !== undefined && known.filename === filename) {
    bytecodes.delete(code)
    bytecodes.set(code, known)
    return known.bc
  }
  let bc: Uint8Array | null
  try {
    bc = vm.compile(code, filename, EVAL_MODULE)
  } catch (e) {
    // No room for the source under this run's memory cap: this run parses it (and reports that); a later one compiles.
    if (e instanceof Error && e.message === 'wasm_malloc failed') return null
    // A syntax error: every run parses the source, to report it.
    if (e instanceof Error && e.message.startsWith('Compilation error')) bc = null
    else throw e
  }
  const size = (bc?.byteLength ?? 0) + code.length + filename.length
  if (size > MAX_BYTECODE_BYTES) return bc
  forget(code)
  while (bytecodeBytes + size > MAX_BYTECODE_BYTES) forget(bytecodes.keys().next().value!)
  bytecodes.set(code, { filename, bc })
  bytecodeBytes += size
  return bc
}

function forget(code: string): void {
  const old = bytecodes.get(code)
  if (old === undefined) return
  bytecodes.delete(code)
  bytecodeBytes -= (old.bc?.byteLength ?? 0) + code.length + old.filename.length
}

function execute(slot: EngineSlot, binding: RunBinding, api: ScriptApi, program: ScriptProgram, renew: boolean, repeat: boolean): number {
  const vm = slot.vm
  try {
    if (renew) internal(slot, 'renew').dispose()
    let promise: JSValueHandle
    try {
      const bc = repeat ? bytecodeOf(vm, program) : null
      promise = bc !== null ? vm.evalBytecode(bc) : vm.evalCode(program.code, program.filename, EVAL_MODULE)
    } catch (e) {
      if (e instanceof JSException) return uncaught(slot, api, program, e)
      // The wrapper could not allocate the source in the engine's memory.
      if (e instanceof Error && e.message === 'wasm_malloc failed')
        throw new LimitExceeded('memory', 'the script does not fit in the memory limit')
      throw e
    }
    const settled = settle(slot, binding, api, program, promise, "the script's top-level await never settled")
    if (typeof settled === 'number') return settled
    settled.dispose()
    return 0
  } catch (e) {
    return ended(slot, binding, e)
  }
}

/**
 * A call of an exported function (the export convention). The module is evaluated once: in a
 * kept instance on its first call, else on this thread's first call of the plugin, before the
 * call's input is readable (`api.loading`), then snapshotted (`keepProgram`) for every later call.
 * The function gets the input (text or bytes), its return value (awaited) is the output.
 */
function callExport(
  engine: ScriptEngine,
  slot: EngineSlot,
  binding: RunBinding,
  api: ScriptApi,
  program: ScriptProgram,
  call: ScriptCall,
  kept: KeptEngine | undefined,
): number {
  const vm = slot.vm
  try {
    // A kept instance's first call starts from the program snapshot when this thread has it (`from`): evaluated already.
    let ns = kept?.namespace ?? slot.from?.namespace
    if (kept !== undefined) kept.namespace = ns
    if (ns === undefined) {
      api.loading = true
      let promise: JSValueHandle
      try {
        promise = vm.evalCode(program.code, program.filename, EVAL_MODULE)
      } catch (e) {
        if (e instanceof JSException) return uncaught(slot, api, program, e)
        if (e instanceof Error && e.message === 'wasm_malloc failed')
          throw new LimitExceeded('memory', 'the script does not fit in the memory limit')
        throw e
      }
      const settled = settle(slot, binding, api, program, promise)
      if (typeof settled === 'number') return settled
      api.loading = false
      ns = handlePtr(settled)
      if (kept !== undefined) kept.namespace = ns
      else engine.keepProgram(call.plugin, slot, ns)
    }
    const namespace = newHandle(vm, ns, true)
    if (call.name === '') {
      const names = namespace.keys()
      const fns = names.filter((n) => {
        const f = namespace.getProp(n)
        const is = vm.typeof(f) === 'function'
        f.dispose()
        return is
      })
      api.output(JSON.stringify(fns))
      return 0
    }
    internal(slot, 'reseed').dispose()
    const fn = namespace.getProp(call.name)
    if (vm.typeof(fn) !== 'function') {
      fn.dispose()
      api.write(2, `caplet: the plugin exports no function ${JSON.stringify(call.name)}\n`)
      return 2
    }
    const input = api.stdinBytes()
    const arg = call.bytes ? vm.newUint8Array(input) : vm.newString(utf8Text.decode(input))
    let returned: JSValueHandle
    try {
      returned = vm.callFunction(fn, vm.undefined, arg)
    } catch (e) {
      if (e instanceof JSException) return uncaught(slot, api, program, e)
      throw e
    } finally {
      fn.dispose()
      arg.dispose()
    }
    let value = returned
    if (returned.isPromise) {
      const settled = settle(slot, binding, api, program, returned)
      returned.dispose()
      if (typeof settled === 'number') return settled
      value = settled
    } else {
      const done = drain(slot, binding, api, program)
      if (done !== undefined) {
        returned.dispose()
        return done
      }
    }
    let out: JSValueHandle
    try {
      out = internal(slot, 'output', value)
    } catch (e) {
      if (e instanceof JSException) return uncaught(slot, api, program, e)
      throw e
    } finally {
      value.dispose()
    }
    const data: unknown = vm.dump(out)
    out.dispose()
    // SECURITY: `output()` runs among the script's globals (it may have replaced `instanceof` or JSON): checked here.
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      api.write(2, 'caplet: the exported function returned a value that is neither text, bytes nor JSON\n')
      return 1
    }
    api.output(data)
    return 0
  } catch (e) {
    return ended(slot, binding, e)
  }
}

/** Calls one of the prelude's internals (`renew`, `output`); the result is the caller's to dispose. */
/**
 * How a script that threw ends: the exit code of its `proc_exit` (or of an abort that stopped it),
 * else the error, a deep recursion that ran into the engine's stack guard named as one.
 */
function ended(slot: EngineSlot, binding: RunBinding, e: unknown): number {
  const end = binding.abort ?? e
  if (end instanceof ProcExit) return end.code
  if (end instanceof WebAssembly.RuntimeError && (slot.stackPointer.value as number) < STACK_GUARD_BYTES) {
    throw new RangeError('Maximum call stack size exceeded: the script recursed too deeply', { cause: end })
  }
  throw end
}

function internal(slot: EngineSlot, name: 'renew' | 'output' | 'reseed', ...args: JSValueHandle[]): JSValueHandle {
  const f = newHandle(slot.vm, slot.internalsPtr, true).getProp(name)
  try {
    return slot.vm.callFunction(f, slot.vm.undefined, ...args)
  } finally {
    f.dispose()
  }
}

/** Runs the pending jobs; an exit code when the run ends there (an uncaught exception, an unhandled rejection). */
function drain(slot: EngineSlot, binding: RunBinding, api: ScriptApi, program: ScriptProgram): number | undefined {
  try {
    slot.vm.executePendingJobs()
  } catch (e) {
    if (e instanceof JSException) return uncaught(slot, api, program, e)
    throw e
  }
  const unhandled = binding.rejections.values().next()
  if (!unhandled.done) {
    const reason = newHandle(slot.vm, unhandled.value)
    binding.rejections.clear()
    return uncaught(slot, api, program, reason, ' (in promise)')
  }
  return undefined
}

/** Drains the jobs and takes the promise's value (a new handle), or the exit code the run ends with. */
function settle(
  slot: EngineSlot,
  binding: RunBinding,
  api: ScriptApi,
  program: ScriptProgram,
  promise: JSValueHandle,
  pending = 'the promise never settled',
): JSValueHandle | number {
  const vm = slot.vm
  const ex = (vm as unknown as { exports: { qjs_promise_result(p: number): number } }).exports
  try {
    vm.executePendingJobs()
  } catch (e) {
    if (e instanceof JSException) return uncaught(slot, api, program, e)
    throw e
  }
  const state = promise.promiseState
  if (state === 2) return uncaught(slot, api, program, newHandle(vm, ex.qjs_promise_result(handlePtr(promise))))
  if (state === 0) {
    api.write(2, `caplet: ${pending} (nothing left to run)\n`)
    return 13
  }
  // As Node does: a promise rejected and never handled ends the run with 1.
  const unhandled = binding.rejections.values().next()
  if (!unhandled.done) {
    const reason = newHandle(vm, unhandled.value)
    binding.rejections.clear()
    return uncaught(slot, api, program, reason, ' (in promise)')
  }
  return newHandle(vm, ex.qjs_promise_result(handlePtr(promise)))
}

/** Prints an uncaught exception (source-mapped) to stderr and returns 1, or ends the run on out-of-memory. */
function uncaught(slot: EngineSlot, api: ScriptApi, program: ScriptProgram, e: JSException | JSValueHandle, how = ''): number {
  if (e instanceof JSException && e.name === 'InternalError' && OOM.test(e.message)) {
    throw new LimitExceeded('memory', 'the script ran out of memory under the memory limit')
  }
  const vm = slot.vm
  const value = e instanceof JSException ? e.handle : e
  // The engine's own out-of-memory error is uncatchable: only the allocator failing under the cap makes it.
  if (
    (vm as unknown as { exports: { qjs_is_uncatchable_error(p: number): number } }).exports.qjs_is_uncatchable_error(handlePtr(value)) !== 0
  ) {
    throw new LimitExceeded('memory', 'the script ran out of memory under the memory limit')
  }
  let text: string
  try {
    const report = newHandle(vm, slot.internalsPtr, true).getProp('report')
    text = vm.callFunction(report, vm.undefined, value).toString()
  } catch (err) {
    if (err instanceof JSException && err.name === 'InternalError' && OOM.test(err.message)) {
      throw new LimitExceeded('memory', 'the script ran out of memory under the memory limit')
    }
    if (!(err instanceof JSException)) throw err
    text = e instanceof JSException ? `Uncaught ${e.name}: ${e.message}` : 'Uncaught exception'
  }
  if (how !== '') text = text.replace(/^Uncaught/, `Uncaught${how}`)
  api.write(2, `${mapStack(text, program.filename, new SourceMap(program.sourceMap))}\n`)
  return 1
}

/** The engine could not allocate a value the host hands it (its own out-of-memory error, or the wrapper's malloc failing). */
function outOfMemory(e: unknown): boolean {
  return (
    (e instanceof JSException && e.name === 'InternalError' && OOM.test(e.message)) ||
    (e instanceof Error && e.message === 'wasm_malloc failed')
  )
}

/** quickjs-wasi's handle constructor and pointer are internal to it; this driver owns the engine instance. */
const newHandle = (vm: unknown, ptr: number, singleton = false): JSValueHandle =>
  new (JSValueHandle as unknown as new (vm: unknown, ptr: number, singleton: boolean) => JSValueHandle)(vm, ptr, singleton)
const handlePtr = (h: JSValueHandle): number => (h as unknown as { ptr: number }).ptr

registerScriptRunner(startScript, forgetProgram)
