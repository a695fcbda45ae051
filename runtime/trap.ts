/**
 * @module Classifies why a guest stopped abnormally, from what the engine or the host threw.
 */
import { GuestFault, HostInvariantError } from '../wasi-host/errors.js'
import { UnknownImportCalled } from './link/stubs.js'
import { escapeControlCharacters } from '../wasi-host/trace/escape.js'

/** Exit code reported when the guest trapped (as a process killed by SIGABRT). */
export const TRAP_EXIT_CODE = 134
/** Exit code reported when a limit stopped the guest (as GNU timeout does). */
export const LIMIT_EXIT_CODE = 124

export type TrapKind =
  | 'unreachable'
  | 'out-of-bounds'
  | 'stack-overflow'
  | 'arithmetic'
  | 'indirect-call'
  | 'memory-fault'
  | 'host-fault'
  | 'unknown-import'
  | 'invalid-code'
  | 'runtime'

export interface TrapInfo {
  kind: TrapKind
  /** One line: what happened. */
  message: string
  /** The syscall that faulted, for `memory-fault` and `host-fault`. */
  syscall?: string
  /** The last few syscalls the guest made, oldest first. */
  recentSyscalls: string[]
  /**
   * The wasm backtrace, innermost first (at most 16 frames): function index, its name from the
   * module's name section (escaped), and the code offset in the module.
   */
  frames?: TrapFrame[]
}

export interface TrapFrame {
  function: number
  name?: string
  /** Byte offset of the instruction in the module as given; -1 when unknown (fuel metering rewrote the code). */
  offset: number
}

const MAX_FRAMES = 16
const MAX_NAME = 128
const WASM_FRAME = /^\s*at (?:(.*) \()?wasm:\/\/wasm\/(.*):wasm-function\[(\d+)\]:0x([0-9a-f]+)\)?\s*$/

/** The wasm frames of an engine error's stack (V8's `at name (wasm://wasm/mod-hash:wasm-function[i]:0xoff)`). */
export function wasmFrames(e: unknown): TrapFrame[] | undefined {
  const stack = e instanceof Error && typeof e.stack === 'string' ? e.stack : undefined
  if (stack === undefined) return undefined
  const frames: TrapFrame[] = []
  for (const line of stack.split('\n')) {
    const m = WASM_FRAME.exec(line)
    if (m === null) continue
    const module = m[2]!.replace(/-[0-9a-f]{8}$/, '')
    let name = m[1]
    if (name !== undefined && module !== '' && name.startsWith(`${module}.`)) name = name.slice(module.length + 1)
    const frame: TrapFrame = { function: Number(m[3]), offset: parseInt(m[4]!, 16) }
    if (name !== undefined && name !== '')
      frame.name = escapeControlCharacters(name.length > MAX_NAME ? `${name.slice(0, MAX_NAME)}…` : name)
    frames.push(frame)
    if (frames.length === MAX_FRAMES) break
  }
  return frames.length > 0 ? frames : undefined
}

/** `main (wasm-function[8]:0x2ed)`. */
export function formatFrame(f: TrapFrame): string {
  return `${f.name ?? `func[${f.function}]`} (wasm-function[${f.function}]${f.offset >= 0 ? `:0x${f.offset.toString(16)}` : ''})`
}

/** Adds the backtrace; offsets are made relative to the caller's module, or dropped when unknown (a metered module). */
function withFrames(info: TrapInfo, e: unknown, codeShift: number | undefined): TrapInfo {
  const frames = wasmFrames(e)
  if (frames !== undefined) {
    for (const f of frames) {
      if (codeShift === undefined) f.offset = -1
      else f.offset -= codeShift
    }
    info.frames = frames
  }
  return info
}

/** Returns a TrapInfo if `e` is a guest trap, or undefined if it is something else. */
export function classifyTrap(e: unknown, recentSyscalls: string[], codeShift?: number): TrapInfo | undefined {
  if (e instanceof GuestFault) {
    return {
      kind: 'memory-fault',
      message: `bad pointer passed to ${e.syscall ?? 'a syscall'}: ${e.message}`,
      syscall: e.syscall,
      recentSyscalls,
    }
  }
  if (e instanceof UnknownImportCalled) {
    return { kind: 'unknown-import', message: e.message, syscall: e.importName, recentSyscalls }
  }
  if (e instanceof HostInvariantError) {
    return { kind: 'host-fault', message: e.message, syscall: e.syscall, recentSyscalls }
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return withFrames({ kind: 'stack-overflow', message: 'call stack exhausted', recentSyscalls }, e, codeShift)
  }
  if (e instanceof WebAssembly.CompileError) {
    // A body validated when first called (module.ts, validateBigModulesLazily) was invalid.
    return { kind: 'invalid-code', message: `invalid WebAssembly module: ${e.message}`, recentSyscalls }
  }
  if (e instanceof WebAssembly.RuntimeError) {
    const m = e.message
    const kind: TrapKind = /unreachable/.test(m)
      ? 'unreachable'
      : /out of bounds|out-of-bounds/.test(m) && !/table/.test(m)
        ? 'out-of-bounds'
        : /divide by zero|divide result|integer overflow|float unrepresentable|invalid conversion/.test(m)
          ? 'arithmetic'
          : /table|indirect|null function|signature mismatch|function signature/.test(m)
            ? 'indirect-call'
            : /call stack/i.test(m)
              ? 'stack-overflow'
              : 'runtime'
    return withFrames({ kind, message: m, recentSyscalls }, e, codeShift)
  }
  return undefined
}
