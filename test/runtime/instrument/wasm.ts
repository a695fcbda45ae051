/**
 * @module A few lines of WebAssembly assembly for the instrument tests: build small modules from
 * raw instruction bytes, with no dependency. Bodies are plain byte arrays; `op` names the
 * opcodes the tests use so a body reads like the text format.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ProcExit, WasiHost } from '../../../wasi-host/index.js'
import { remainingFuel, setFuel } from '../../../runtime/instrument/index.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..')

export const I32 = 0x7f
export const I64 = 0x7e
export const F32 = 0x7d
export const F64 = 0x7c
export const V128 = 0x7b
export const FUNCREF = 0x70
export const EXTERNREF = 0x6f

export const op = {
  unreachable: 0x00,
  nop: 0x01,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  br_table: 0x0e,
  return: 0x0f,
  call: 0x10,
  call_indirect: 0x11,
  return_call: 0x12,
  return_call_indirect: 0x13,
  drop: 0x1a,
  select: 0x1b,
  select_t: 0x1c,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  global_get: 0x23,
  global_set: 0x24,
  table_get: 0x25,
  table_set: 0x26,
  i32_load: 0x28,
  i64_load: 0x29,
  i32_store: 0x36,
  i32_store8: 0x3a,
  memory_size: 0x3f,
  memory_grow: 0x40,
  i32_const: 0x41,
  i64_const: 0x42,
  f32_const: 0x43,
  f64_const: 0x44,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_lt_s: 0x48,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i64_add: 0x7c,
  i32_extend8_s: 0xc0,
  ref_null: 0xd0,
  ref_is_null: 0xd1,
  ref_func: 0xd2,
  void: 0x40,
} as const

export function u32(n: number): number[] {
  const out: number[] = []
  let v = n >>> 0
  do {
    let b = v & 0x7f
    v >>>= 7
    if (v !== 0) b |= 0x80
    out.push(b)
  } while (v !== 0)
  return out
}

export function s32(n: number): number[] {
  const out: number[] = []
  let v = n | 0
  for (;;) {
    const b = v & 0x7f
    v >>= 7
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b)
      return out
    }
    out.push(b | 0x80)
  }
}

export function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)]
  return [...u32(b.length), ...b]
}

export function vec(items: number[][]): number[] {
  return [...u32(items.length), ...items.flat()]
}

export function section(id: number, payload: number[]): number[] {
  return [id, ...u32(payload.length), ...payload]
}

export interface FuncSpec {
  params?: number[]
  results?: number[]
  /** Extra locals, one value type each. */
  locals?: number[]
  /** Instructions, without the final `end`. */
  body: number[]
  export?: string
}

export interface ModuleSpec {
  /** Extra function types (referenced by index from block types or call_indirect), placed first. */
  types?: { params: number[]; results: number[] }[]
  imports?: { module: string; name: string; desc: number[] }[]
  funcs?: FuncSpec[]
  /** Memory limits bytes, e.g. [0x00, 1] or [0x01, 1, 16]; exported as "memory" unless `exportMemory` is false. */
  memory?: number[]
  exportMemory?: boolean
  table?: number[]
  globals?: number[][]
  exports?: { name: string; kind: number; index: number }[]
  start?: number
  elements?: number[][]
  data?: number[][]
  datacount?: number
  custom?: { name: string; bytes: number[] }[]
}

/** A module from a spec; function indices count the imported functions first. */
export function buildModule(spec: ModuleSpec): Uint8Array {
  const types: string[] = []
  const typeBytes: number[][] = []
  const typeOf = (params: number[], results: number[]) => {
    const key = `${params.join(',')}>${results.join(',')}`
    let i = types.indexOf(key)
    if (i < 0) {
      i = types.length
      types.push(key)
      typeBytes.push([0x60, ...vec(params.map((t) => [t])), ...vec(results.map((t) => [t]))])
    }
    return i
  }
  for (const t of spec.types ?? []) typeOf(t.params, t.results)
  const funcs = spec.funcs ?? []
  const funcTypes = funcs.map((f) => typeOf(f.params ?? [], f.results ?? []))
  const importedFuncs = (spec.imports ?? []).filter((i) => i.desc[0] === 0x00).length

  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  out.push(...section(1, vec(typeBytes)))
  if (spec.imports?.length) out.push(...section(2, vec(spec.imports.map((i) => [...name(i.module), ...name(i.name), ...i.desc]))))
  if (funcs.length) out.push(...section(3, vec(funcTypes.map((t) => u32(t)))))
  if (spec.table) out.push(...section(4, vec([spec.table])))
  if (spec.memory) out.push(...section(5, vec([spec.memory])))
  if (spec.globals?.length) out.push(...section(6, vec(spec.globals)))
  const exports: number[][] = []
  funcs.forEach((f, i) => {
    if (f.export !== undefined) exports.push([...name(f.export), 0x00, ...u32(importedFuncs + i)])
  })
  if (spec.memory && spec.exportMemory !== false) exports.push([...name('memory'), 0x02, 0x00])
  for (const e of spec.exports ?? []) exports.push([...name(e.name), e.kind, ...u32(e.index)])
  if (exports.length) out.push(...section(7, vec(exports)))
  if (spec.start !== undefined) out.push(...section(8, u32(spec.start)))
  if (spec.elements?.length) out.push(...section(9, vec(spec.elements)))
  if (spec.datacount !== undefined) out.push(...section(12, u32(spec.datacount)))
  if (funcs.length) {
    out.push(
      ...section(
        10,
        vec(
          funcs.map((f) => {
            const locals = f.locals ?? []
            const body = [...vec(locals.map((t) => [1, t])), ...f.body, op.end]
            return [...u32(body.length), ...body]
          }),
        ),
      ),
    )
  }
  if (spec.data?.length) out.push(...section(11, vec(spec.data)))
  for (const c of spec.custom ?? []) out.push(...section(0, [...name(c.name), ...c.bytes]))
  return new Uint8Array(out)
}

/** Byte equality without vitest's element-by-element diffing (slow on large arrays). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function instantiate(bytes: Uint8Array, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), imports)
}

/** Every committed guest: test fixtures and samples. */
export function allGuests(): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = []
  for (const dir of ['test/fixtures/wasm', 'samples']) {
    for (const f of readdirSync(join(ROOT, dir))
      .filter((n) => n.endsWith('.wasm'))
      .sort())
      out.push({ name: `${dir}/${f}`, path: join(ROOT, dir, f) })
  }
  return out
}

export function readGuest(relative: string): Uint8Array {
  return new Uint8Array(readFileSync(join(ROOT, relative)))
}

export interface GuestRun {
  exitCode: number | undefined
  stdout: string
  stderr: string
  /** The exception a trap raised, if the guest trapped. */
  trap: unknown
  /** For metered runs: what the counter held at the end. */
  remaining: bigint | undefined
  fuelUsed: bigint | undefined
}

/** Runs a WASI command to completion in-process; `fuel` sets the metered module's budget. */
export function runGuest(bytes: Uint8Array, args: string[], fuel?: bigint): GuestRun {
  let stdout = ''
  let stderr = ''
  const decoder = new TextDecoder()
  const host = new WasiHost({
    args,
    stdout: (c) => {
      stdout += decoder.decode(c)
    },
    stderr: (c) => {
      stderr += decoder.decode(c)
    },
  })
  const instance = instantiate(bytes, host.imports as unknown as WebAssembly.Imports)
  if (fuel !== undefined) setFuel(instance, fuel)
  let exitCode: number | undefined
  let trap: unknown
  try {
    exitCode = host.start(instance)
  } catch (e) {
    if (e instanceof ProcExit) exitCode = e.code
    else trap = e
  }
  const remaining = fuel !== undefined ? remainingFuel(instance) : undefined
  return { exitCode, stdout, stderr, trap, remaining, fuelUsed: remaining !== undefined ? fuel! - remaining : undefined }
}
