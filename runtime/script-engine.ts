/**
 * @module The JavaScript engine a script runs in: QuickJS-NG built as a WASI reactor
 * (`quickjs-wasi`), loaded through caplet's pipeline (memory cap, fuel); its six WASI imports are
 * served by the run's own `WasiHost`, its six `env.host_*` hooks by this file. Initialised once
 * and snapshotted; each run gets that snapshot (see docs/internals.md, "Script engine snapshots").
 *
 * SECURITY: an instance is reused only if it ended cleanly and neither its memory nor its table
 * grew (so the snapshot copy covers every byte); after a trap, a limit or a host fault it is
 * discarded. Nothing of a run survives in the engine, and the host keeps no per-run state here.
 */
import { QuickJS, JSValueHandle } from 'quickjs-wasi'
import { ProcExit, WasiHost } from '../wasi-host/index.js'
import { virtualClocks } from './guest-clocks.js'
import { FUEL_EXPORT } from './instrument/fuel-export.js'
import { HOST_FUNCTION, PRELUDE } from './script-prelude.js'

/** `EvalFlags.TYPE_MODULE` of quickjs-wasi. */
const EVAL_MODULE = 1
/** Free heap the snapshot keeps (allocated and freed before it is taken): runs that stay within it reuse their instance. */
const HEADROOM_BYTES = 2 * 1024 * 1024
/**
 * The engine's C stack is the first 1 MiB of its memory, growing down to 0 (QuickJS-NG has no
 * stack limit of its own on WASI): deep recursion runs it below 0 and traps out of bounds.
 * A trap with the stack pointer this close to 0 is reported as a stack overflow.
 */
export const STACK_GUARD_BYTES = 64 * 1024
const MAX_TRACKED_REJECTIONS = 16
/** The fuel the one-time initialisation may use (its own, not any run's). */
const INIT_FUEL = 1n << 40n

export { engineBytes, ENGINE_HOST_IMPORTS } from './script-guest.js'

/** The private members of quickjs-wasi's `QuickJS` this driver uses (it instantiates the engine itself, synchronously). */
interface QuickJSInternals {
  setInstance(instance: WebAssembly.Instance): void
  handleHostCall(namePtr: number, nameLen: number, thisPtr: number, argc: number, argvPtr: number): number
  throwHostException(err: unknown): number
  exports: Record<string, unknown> & {
    qjs_init(): number
    qjs_set_module_loader(on: number): void
    qjs_set_promise_rejection_handler(on: number): void
    qjs_set_max_stack_size(bytes: number): void
    qjs_is_uncatchable_error(p: number): number
    wasm_malloc(n: number): number
    wasm_free(p: number): void
    qjs_promise_result(p: number): number
    qjs_get_runtime_ptr(): number
    qjs_get_context_ptr(): number
    qjs_set_runtime_and_context(rt: number, ctx: number): void
  }
}
const newVm = (module: WebAssembly.Module): QuickJS => new (QuickJS as unknown as new (m: WebAssembly.Module) => QuickJS)(module)
const internals = (vm: QuickJS) => vm as unknown as QuickJSInternals

/** What a run supplies to the instance it borrows: its host's WASI functions and its host callback. */
export interface RunBinding {
  wasi: Record<string, (...args: never[]) => number>
  /** The script API's host function (registered under `HOST_FUNCTION`'s name). */
  hostFunction: (args: JSValueHandle[]) => JSValueHandle
  /** Set by the host function to end the run: thrown out of the engine right after the call returns. */
  abort: unknown
  /** Rejected promises with no handler yet, by identity: the reason's value pointer (owned). */
  rejections: Map<number, number>
}

/** One instance of the engine, with the handles that stay valid across resets. */
export class EngineSlot {
  readonly instance: WebAssembly.Instance
  readonly vm: QuickJS
  readonly memory: WebAssembly.Memory
  readonly fuel: WebAssembly.Global | undefined
  readonly table: WebAssembly.Table | undefined
  binding: RunBinding | undefined
  /** The prelude's internals object (`{ report }`), valid in every snapshot state. */
  internalsPtr = 0
  /** The snapshot this slot was last reset to (what `release` checks it against). */
  from: Snapshot | undefined

  constructor(module: WebAssembly.Module) {
    const vm = newVm(module)
    this.vm = vm
    const wasi: Record<string, (...a: never[]) => number> = {}
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.module !== 'wasi_snapshot_preview1') continue
      const name = imp.name
      // The run's host, whichever run holds the slot; fixed arity (no rest array on the hot path).
      wasi[name] = ((a: never, b: never, c: never, d: never, e: never) => {
        const f = this.binding?.wasi[name]
        if (f === undefined) throw new Error(`engine called ${name} outside a run`)
        return (f as (...x: unknown[]) => number)(a, b, c, d, e)
      }) as (...a: never[]) => number
    }
    const env = {
      host_call: (namePtr: number, nameLen: number, thisPtr: number, argc: number, argvPtr: number) => {
        const r = internals(vm).handleHostCall(namePtr, nameLen, thisPtr, argc, argvPtr)
        const abort = this.binding?.abort
        // SECURITY: an exit, a limit or a fault met inside the API unwinds the whole engine here,
        // after the trampoline returned: the script cannot catch it.
        if (abort !== undefined) throw abort
        return r
      },
      host_interrupt: () => (this.binding?.abort !== undefined ? 1 : 0),
      // QuickJS reports a promise rejected with no handler (isHandled 0) and, if one is attached
      // later, the same promise again (1): what is left at the end is an unhandled rejection.
      host_promise_rejection: (promisePtr: number, reasonPtr: number, isHandled: number) => {
        const e = internals(vm).exports as unknown as { qjs_free_value(p: number): void; qjs_get_value_ptr(p: number): number }
        const rejections = this.binding?.rejections
        const id = e.qjs_get_value_ptr(promisePtr)
        e.qjs_free_value(promisePtr)
        const earlier = rejections?.get(id)
        if (earlier !== undefined) {
          e.qjs_free_value(earlier)
          rejections!.delete(id)
        }
        // Bounded: only the first few are kept (one is reported); the rest only count.
        if (isHandled === 0 && rejections !== undefined && rejections.size < MAX_TRACKED_REJECTIONS) rejections.set(id, reasonPtr)
        else e.qjs_free_value(reasonPtr)
      },
      // Every import was bundled at compile time; anything asked for at run time (a dynamic
      // `import()`) names a module that is not there.
      host_module_normalize: (_base: number, namePtr: number) =>
        internals(vm).throwHostException(
          `cannot import ${JSON.stringify(readCString(this.memory, namePtr))}: scripts import only their own files, bundled when compiled`,
        ),
      host_module_load: (namePtr: number) =>
        internals(vm).throwHostException(`cannot import ${JSON.stringify(readCString(this.memory, namePtr))}`),
      // SECURITY: no host timezone leaks; scripts see UTC.
      host_get_timezone_offset: () => 0,
    }
    this.instance = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi })
    internals(vm).setInstance(this.instance)
    const ex = this.instance.exports
    this.memory = ex.memory as WebAssembly.Memory
    this.fuel = ex[FUEL_EXPORT] instanceof WebAssembly.Global ? (ex[FUEL_EXPORT] as WebAssembly.Global) : undefined
    this.table = ex.__indirect_function_table instanceof WebAssembly.Table ? (ex.__indirect_function_table as WebAssembly.Table) : undefined
  }

  get stackPointer(): WebAssembly.Global {
    return this.instance.exports.__stack_pointer as WebAssembly.Global
  }
}

function readCString(memory: WebAssembly.Memory, ptr: number): string {
  const bytes = new Uint8Array(memory.buffer)
  let end = ptr >>> 0
  const limit = Math.min(bytes.length, end + 4096)
  while (end < limit && bytes[end] !== 0) end++
  return new TextDecoder().decode(bytes.slice(ptr >>> 0, end))
}

/** The wrapper's cached singleton handles: created before the snapshot, so valid in every reset state. */
const SINGLETONS = ['_global', '_undefined', '_null', '_true', '_false'] as const
const SINGLETON_GETTERS = ['global', 'undefined', 'null', 'true', 'false'] as const

export interface Snapshot {
  /** A program's snapshot: the pointer of its module namespace (its exports), evaluated before the snapshot. */
  namespace?: number
  /** Pointers of the singleton handles (SECURITY: a handle made lazily during a run would point into memory the next reset frees). */
  singletons: number[]
  bytes: Uint8Array
  stackPointer: number
  runtimePtr: number
  contextPtr: number
  internalsPtr: number
  /**
   * The function table's size. The engine's own code never writes its table (C compiled by clang
   * emits no table.set; quickjs-wasi's JS side does only to load native extensions, which caplet
   * never loads), so a run can change it only by growing it: a grown table is never reused.
   */
  tableLength: number
}

/** Program snapshots an engine keeps on one thread (each the engine's memory, 3.4 MiB or more). */
const MAX_PROGRAMS = 4

/**
 * Per-thread engine for one compiled module: its snapshot, the snapshots of programs evaluated
 * in it (by plugin id), and at most one spare, clean instance.
 */
export class ScriptEngine {
  readonly #module: WebAssembly.Module
  #snapshot: Snapshot | undefined
  #spare: EngineSlot | undefined
  readonly #programs = new Map<string, Snapshot>()

  constructor(module: WebAssembly.Module) {
    this.#module = module
  }

  /** Whether the snapshot exists (the first run on a thread builds it: the cold start). */
  get warm(): boolean {
    return this.#snapshot !== undefined
  }

  /**
   * An instance in the snapshot's state, ready for one run: the snapshot of the program `id`
   * names (see `keepProgram`) if this thread has it, else the engine's own.
   */
  acquire(id?: string): EngineSlot {
    const base = (this.#snapshot ??= this.#initialise())
    let snap = base
    const program = id === undefined ? undefined : this.#programs.get(id)
    if (program !== undefined) {
      snap = program
      this.#programs.delete(id!)
      this.#programs.set(id!, program)
    }
    const spare = this.#spare
    this.#spare = undefined
    if (spare !== undefined && spare.memory.buffer.byteLength <= snap.bytes.byteLength) {
      // Reset: grown to the snapshot's size (never larger: checked at release), so this overwrites every byte.
      const grow = (snap.bytes.byteLength - spare.memory.buffer.byteLength) / 65536
      if (grow > 0) spare.memory.grow(grow)
      new Uint8Array(spare.memory.buffer).set(snap.bytes)
      spare.stackPointer.value = snap.stackPointer
      spare.from = snap
      return spare
    }
    const slot = new EngineSlot(this.#module)
    const pages = snap.bytes.byteLength / 65536
    const have = slot.memory.buffer.byteLength / 65536
    if (pages > have) slot.memory.grow(pages - have)
    new Uint8Array(slot.memory.buffer).set(snap.bytes)
    slot.stackPointer.value = snap.stackPointer
    slot.from = snap
    internals(slot.vm).exports.qjs_set_runtime_and_context(snap.runtimePtr, snap.contextPtr)
    slot.internalsPtr = snap.internalsPtr
    const fields = slot.vm as unknown as Record<string, JSValueHandle>
    SINGLETONS.forEach((f, i) => {
      fields[f] = new JSValueHandle(slot.vm, snap.singletons[i]!, true)
    })
    this.#registerHostFunction(slot)
    return slot
  }

  /** Gives a slot back after its run; kept for the next run only if `clean` and provably resettable. */
  release(slot: EngineSlot, clean: boolean): void {
    slot.binding = undefined
    const snap = slot.from
    if (!clean || snap === undefined || slot.memory.buffer.byteLength !== snap.bytes.byteLength || !sameTable(slot.table, snap.tableLength))
      return
    this.#spare = slot
  }

  forgetProgram(id: string): void {
    this.#programs.delete(id)
  }

  /**
   * Snapshots `slot` (idle between engine calls, a program evaluated in it, `namespace` its
   * exports) as the program `id`'s: later `acquire(id)` on this thread start from it. Makes
   * headroom first, as the engine's own snapshot does. Least recently used out past a few.
   * SECURITY: called only before the run's input reached the engine (see script-run.ts).
   */
  keepProgram(id: string, slot: EngineSlot, namespace: number): void {
    const base = this.#snapshot
    // A grown table could not be given to a new instance (tables are not snapshotted): no snapshot, each call evaluates.
    if (base === undefined || !sameTable(slot.table, base.tableLength)) return
    const ex = internals(slot.vm).exports
    const block = ex.wasm_malloc(HEADROOM_BYTES)
    if (block !== 0) ex.wasm_free(block)
    const snap: Snapshot = {
      ...base,
      namespace,
      bytes: new Uint8Array(slot.memory.buffer).slice(),
      stackPointer: slot.stackPointer.value as number,
      tableLength: slot.table?.length ?? 0,
    }
    if (!this.#programs.has(id) && this.#programs.size >= MAX_PROGRAMS) this.#programs.delete(this.#programs.keys().next().value!)
    this.#programs.set(id, snap)
    slot.from = snap
  }

  #registerHostFunction(slot: EngineSlot): void {
    slot.vm.registerHostCallback(HOST_FUNCTION, function (this: JSValueHandle, ...args: JSValueHandle[]) {
      const b = slot.binding
      if (b === undefined) return slot.vm.undefined
      return b.hostFunction(args)
    })
  }

  /** Initialises the runtime and context, evaluates the prelude, makes headroom, and snapshots. */
  #initialise(): Snapshot {
    const slot = new EngineSlot(this.#module)
    // A host of its own: virtual clocks and a zero random source, so the snapshot is the same
    // on every thread (QuickJS seeds its own Math.random from the clock; the prelude replaces it).
    const host = new WasiHost({
      clocks: virtualClocks(1000n),
      randomFill: (d) => d.fill(0),
      functions: WebAssembly.Module.imports(this.#module)
        .filter((i) => i.module === 'wasi_snapshot_preview1')
        .map((i) => i.name),
    })
    slot.binding = {
      wasi: host.imports.wasi_snapshot_preview1,
      hostFunction: () => slot.vm.undefined,
      abort: undefined,
      rejections: new Map(),
    }
    if (slot.fuel) slot.fuel.value = INIT_FUEL
    host.initialize(slot.instance)
    const ex = internals(slot.vm).exports
    if (ex.qjs_init() !== 0) throw new Error('the JavaScript engine failed to initialise')
    ex.qjs_set_module_loader(1)
    ex.qjs_set_promise_rejection_handler(1)
    const fn = slot.vm.newFunction(HOST_FUNCTION, () => slot.vm.undefined)
    slot.vm.setProp(slot.vm.global, HOST_FUNCTION, fn)
    fn.dispose()
    // The singletons are cached in the wrapper now, so their values are in the snapshot.
    const singletons = SINGLETON_GETTERS.map((g) => slot.vm[g].ptr)
    const internalsHandle = slot.vm.evalCode(PRELUDE, '<caplet>')
    slot.internalsPtr = internalsHandle.ptr
    // Headroom: the allocator keeps a freed top chunk (wasm memory never shrinks), so runs that
    // allocate less than this do not grow memory and their instance can be reset and reused.
    const block = ex.wasm_malloc(HEADROOM_BYTES)
    if (block !== 0) ex.wasm_free(block)
    const snap: Snapshot = {
      singletons,
      bytes: new Uint8Array(slot.memory.buffer).slice(),
      stackPointer: slot.stackPointer.value as number,
      runtimePtr: ex.qjs_get_runtime_ptr(),
      contextPtr: ex.qjs_get_context_ptr(),
      internalsPtr: slot.internalsPtr,
      tableLength: slot.table?.length ?? 0,
    }
    host.close()
    slot.binding = undefined
    this.#snapshot = snap
    this.#registerHostFunction(slot)
    slot.from = snap
    this.#spare = slot
    return snap
  }
}

function sameTable(t: WebAssembly.Table | undefined, length: number): boolean {
  return (t?.length ?? 0) === length
}

/** Engines of this thread, by a key naming the compiled module (engine digest + instrumentation). */
const engines = new Map<string, ScriptEngine>()
const MAX_ENGINES = 4

export function engineFor(key: string, module: WebAssembly.Module): ScriptEngine {
  let e = engines.get(key)
  if (e === undefined) {
    if (engines.size >= MAX_ENGINES) engines.delete(engines.keys().next().value!)
    e = new ScriptEngine(module)
    engines.set(key, e)
  }
  return e
}

/** Drops the program snapshots of plugin `id` from this thread's engines. */
export function forgetProgram(id: string): void {
  for (const e of engines.values()) e.forgetProgram(id)
}

export { EVAL_MODULE, ProcExit }
