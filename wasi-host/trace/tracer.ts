/**
 * @module The syscall tracer: wraps a host's `wasi_snapshot_preview1` functions so that every
 * call yields one event with its arguments decoded (paths read from guest memory, flags named),
 * its result, what it wrote back, and the denial it caused, if any. `strace` for a guest.
 *
 * Zero cost when off: nothing here is on the dispatcher's path; a run that does not trace never
 * builds these wrappers. The tracer only reads guest memory (never writes), and a pointer that
 * would fault is shown as a number, never decoded, so tracing cannot change what a call does.
 * Guest strings are escaped when formatted (`escape.ts`); host paths never appear (the host
 * gives the tracer only guest-visible values).
 */
import { Advice, Clockid, errnoName, Fdflags, Filetype, Fstflags, Lookupflags, Oflags, Rights, Whence } from '../abi/constants.js'
import type { WasiHost } from '../host.js'
import { escapeControlCharacters, quoteGuestString } from './escape.js'
import { PAIRED, TRACE_SIGNATURES, type ArgKind } from './signatures.js'

export type TraceValue = number | string | bigint | { iovs: number; bytes: number } | { len: number }

export interface TraceEvent {
  call: string
  /** Decoded arguments by name (a path as its guest string, an iovec array as counts). */
  args: Record<string, TraceValue>
  /** `SUCCESS`, an errno name (`NOENT`), `exit` (proc_exit) or `trap`. */
  result: string
  /** What the call wrote back on success (`opened`, `n`, `time`…). */
  out?: Record<string, TraceValue>
  /** The policy refusal this call caused: `escape`, `read-only`…, with its mount and detail. */
  denial?: { kind: string; mount?: string; detail: string }
  /** Wall time of the call in microseconds. */
  us: number
}

export type TraceEmit = (event: TraceEvent) => void

const utf8 = new TextDecoder()
/** Longest guest string a trace shows (the rest is elided with its length). */
const MAX_STRING = 256

interface Reader {
  string(ptr: number, len: number): string | undefined
  u8(ptr: number): number | undefined
  u16(ptr: number): number | undefined
  u32(ptr: number): number | undefined
  u64(ptr: number): bigint | undefined
  iovs(ptr: number, n: number): { iovs: number; bytes: number } | undefined
}

/** Reads guest memory without ever faulting: out-of-range reads give undefined. */
function reader(host: WasiHost): Reader {
  const mem = () => (host.memory.bound ? host.memory : undefined)
  const inRange = (ptr: number, len: number) => {
    const m = mem()
    return m !== undefined && ptr >= 0 && len >= 0 && ptr + len <= m.size
  }
  return {
    string: (ptr, len) => {
      if (!inRange(ptr, Math.min(len, MAX_STRING))) return undefined
      const s = utf8.decode(host.memory.bytes.slice(ptr, ptr + Math.min(len, MAX_STRING)))
      return len > MAX_STRING ? `${s}…(${len} bytes)` : s
    },
    u8: (ptr) => (inRange(ptr, 1) ? host.memory.dataView.getUint8(ptr) : undefined),
    u16: (ptr) => (inRange(ptr, 2) ? host.memory.dataView.getUint16(ptr, true) : undefined),
    u32: (ptr) => (inRange(ptr, 4) ? host.memory.dataView.getUint32(ptr, true) : undefined),
    u64: (ptr) => (inRange(ptr, 8) ? host.memory.dataView.getBigUint64(ptr, true) : undefined),
    iovs: (ptr, n) => {
      if (!inRange(ptr, n * 8) || n > 1024) return undefined
      let bytes = 0
      for (let i = 0; i < n; i++) bytes += host.memory.dataView.getUint32(ptr + i * 8 + 4, true)
      return { iovs: n, bytes }
    },
  }
}

type Table = readonly (readonly [string, number])[]
const table = (t: Readonly<Record<string, number>>): Table => Object.freeze(Object.entries(t))
const OFLAGS = table(Oflags),
  FDFLAGS = table(Fdflags),
  LOOKUPFLAGS = table(Lookupflags),
  FSTFLAGS = table(Fstflags)
const WHENCE = table(Whence),
  CLOCKID = table(Clockid),
  ADVICE = table(Advice),
  FILETYPE = table(Filetype)

function flagNames(v: number, t: Table): string {
  if (v === 0) return '0'
  let names = ''
  let known = 0
  for (const [n, b] of t) {
    known |= b
    if ((v & b) === b) names += names === '' ? n : `|${n}`
  }
  if ((v & ~known) !== 0) names += `${names === '' ? '' : '|'}0x${(v & ~known).toString(16)}`
  return names
}

function enumName(v: number, t: Table): string {
  for (const [n, x] of t) if (x === v) return n
  return String(v)
}

/** Rights as a reader wants them: READ/WRITE named, the rest counted. */
function rightsSummary(v: bigint): string {
  const bits = Number(BigInt.asUintN(32, v))
  const named: string[] = []
  if (bits & Rights.FD_READ) named.push('READ')
  if (bits & Rights.FD_WRITE) named.push('WRITE')
  let others = 0
  for (let b = bits & ~(Rights.FD_READ | Rights.FD_WRITE); b !== 0; b &= b - 1) others++
  if (others > 0) named.push(`+${others}`)
  return named.length === 0 ? '0' : named.join('|')
}

function decodeArg(kind: ArgKind, a: unknown, b: unknown, r: Reader): TraceValue {
  const n = typeof a === 'number' ? a >>> 0 : 0
  switch (kind) {
    case 'path': {
      const s = r.string(n, typeof b === 'number' ? b >>> 0 : 0)
      return s ?? `<bad pointer 0x${n.toString(16)}>`
    }
    case 'iovs':
      return r.iovs(n, typeof b === 'number' ? b >>> 0 : 0) ?? { iovs: typeof b === 'number' ? b >>> 0 : 0, bytes: -1 }
    case 'buf':
      return { len: typeof b === 'number' ? b >>> 0 : 0 }
    case 'u64':
      return typeof a === 'bigint' ? BigInt.asUintN(64, a) : BigInt(n)
    case 's64':
      return typeof a === 'bigint' ? a : BigInt(n)
    case 'oflags':
      return flagNames(n, OFLAGS)
    case 'fdflags':
      return flagNames(n, FDFLAGS)
    case 'lookupflags':
      return flagNames(n, LOOKUPFLAGS)
    case 'fstflags':
      return flagNames(n, FSTFLAGS)
    case 'rights':
      return rightsSummary(typeof a === 'bigint' ? a : BigInt(n))
    case 'whence':
      return enumName(n, WHENCE)
    case 'clockid':
      return enumName(n, CLOCKID)
    case 'advice':
      return enumName(n, ADVICE)
    case 'ptr':
      return `0x${n.toString(16)}`
    default:
      return kind === 'exitcode' || kind === 'signal' || kind === 'fd' || kind === 'u32'
        ? typeof a === 'number'
          ? a >>> 0
          : String(a)
        : String(a)
  }
}

/**
 * Wraps every function of `imports` (a host's import object) to emit one event per call.
 * `host` is read for its memory and its denial log only.
 */
export function traceImports(
  host: WasiHost,
  imports: Record<string, (...args: never[]) => number>,
  emit: TraceEmit,
): Record<string, (...args: never[]) => number> {
  const r = reader(host)
  const out: Record<string, (...args: never[]) => number> = {}
  for (const [name, fn] of Object.entries(imports)) {
    const sig = TRACE_SIGNATURES[name]
    if (sig === undefined) {
      out[name] = fn
      continue
    }
    const call = fn as (...a: unknown[]) => number
    // Where each argument starts in the raw parameters, worked out once per function.
    const plan: { name: string; kind: ArgKind; at: number; out: boolean }[] = []
    let at = 0
    for (const [argName, kind] of sig) {
      if (kind !== 'x64') plan.push({ name: argName, kind, at, out: kind.startsWith('out-') })
      at += PAIRED.has(kind) ? 2 : 1
    }
    const hasOuts = plan.some((p) => p.out)
    out[name] = ((...raw: unknown[]) => {
      const args: Record<string, TraceValue> = {}
      for (const p of plan) if (!p.out) args[p.name] = decodeArg(p.kind, raw[p.at], raw[p.at + 1], r)
      const denials = host.denials.count
      const kept = host.denials.events.length
      const t0 = performance.now()
      let result: string
      let value: number
      try {
        value = call(...raw)
        result = errnoName(value)
      } catch (e) {
        const ev: TraceEvent = { call: name, args, result: name === 'proc_exit' ? 'exit' : 'trap', us: micros(t0) }
        addDenial(host, denials, kept, ev)
        emit(ev)
        throw e
      }
      const ev: TraceEvent = { call: name, args, result, us: micros(t0) }
      if (value === 0 && hasOuts) {
        const o: Record<string, TraceValue> = {}
        for (const { name: argName, kind, at: i, out: isOut } of plan) {
          if (!isOut) continue
          const a = raw[i],
            b = raw[i + 1]
          const p = typeof a === 'number' ? a >>> 0 : 0
          if (kind === 'out-fdstat' || kind === 'out-filestat' || kind === 'out-prestat') {
            readStruct(kind, p, r, o)
            continue
          }
          const v = kind === 'out-u64' ? r.u64(p) : kind === 'out-name' ? r.string(p, typeof b === 'number' ? b >>> 0 : 0) : r.u32(p)
          if (v !== undefined) o[argName] = v
        }
        ev.out = o
      }
      addDenial(host, denials, kept, ev)
      emit(ev)
      return value
    }) as (...args: never[]) => number
  }
  return out
}

/** The telling fields of a struct the call wrote: fdstat (type, flags, rights), filestat (type, size), prestat (name length). */
function readStruct(kind: 'out-fdstat' | 'out-filestat' | 'out-prestat', p: number, r: Reader, o: Record<string, TraceValue>): void {
  if (kind === 'out-prestat') {
    const len = r.u32(p + 4)
    if (len !== undefined) o.name_len = len
    return
  }
  const type = r.u8(kind === 'out-fdstat' ? p : p + 16)
  if (type !== undefined) o.type = enumName(type, FILETYPE)
  if (kind === 'out-fdstat') {
    const flags = r.u16(p + 2),
      rights = r.u64(p + 8)
    if (flags !== undefined) o.flags = flagNames(flags, FDFLAGS)
    if (rights !== undefined) o.rights = rightsSummary(rights)
  } else {
    const size = r.u64(p + 32)
    if (size !== undefined) o.size = size
  }
}

/** Microseconds since `t0`, to 0.01. */
function micros(t0: number): number {
  return Math.round((performance.now() - t0) * 100_000) / 100
}

function addDenial(host: WasiHost, before: number, kept: number, ev: TraceEvent): void {
  if (host.denials.count === before) return
  const d = host.denials.events[host.denials.events.length - 1]
  if (d === undefined || host.denials.events.length === kept) {
    ev.denial = { kind: 'denied', detail: '' }
    return
  }
  ev.denial = { kind: d.kind, detail: d.detail, ...(d.mount !== undefined ? { mount: d.mount } : {}) }
}

function formatValue(kind: ArgKind | undefined, v: TraceValue): string {
  if (typeof v === 'string') return kind === 'path' || kind === 'out-name' ? quoteGuestString(v) : escapeControlCharacters(v)
  if (typeof v === 'object')
    return 'iovs' in v ? `${v.iovs} iov${v.iovs === 1 ? '' : 's'}${v.bytes >= 0 ? ` ${v.bytes} bytes` : ''}` : `${v.len} bytes`
  return String(v)
}

const DENIAL_WORDS: Readonly<Record<string, string>> = {
  escape: 'escapes',
  'read-only': 'read-only',
  'missing-right': 'missing right',
  'cross-domain': 'across mounts',
  'descriptor-limit': 'descriptor limit',
  quota: 'quota',
  limit: 'limit',
  'denied-import': 'denied',
}

/** One line for people: `path_open(3, "../x", oflags=CREAT, rights=READ) = PERM [escapes /data]`. */
const KINDS: Readonly<Record<string, ReadonlyMap<string, ArgKind>>> = Object.fromEntries(
  Object.entries(TRACE_SIGNATURES).map(([call, sig]) => [call, new Map(sig)]),
)
const NO_KINDS: ReadonlyMap<string, ArgKind> = new Map()

export function formatTraceText(e: TraceEvent): string {
  const kinds = KINDS[e.call] ?? NO_KINDS
  // NOTE: for…in and string building, not Object.entries/join: this runs once per traced call.
  let line = `${e.call}(`
  let first = true
  for (const k in e.args) {
    const kind = kinds.get(k)
    const shown = formatValue(kind, e.args[k]!)
    if (!first) line += ', '
    first = false
    line += (kind === 'fd' && k === 'fd') || (kind === 'path' && k === 'path') || kind === 'iovs' ? shown : `${k}=${shown}`
  }
  line += `) = ${e.result === 'SUCCESS' ? '0' : e.result}`
  if (e.out !== undefined) {
    let outs = ''
    for (const k in e.out) outs += `${outs === '' ? '' : ', '}${k}=${formatValue(kinds.get(k), e.out[k]!)}`
    if (outs !== '') line += ` (${outs})`
  }
  if (e.denial !== undefined) {
    const word = DENIAL_WORDS[e.denial.kind] ?? escapeControlCharacters(e.denial.kind)
    line += ` [${word}${e.denial.mount !== undefined ? ` ${escapeControlCharacters(e.denial.mount)}` : ''}]`
  }
  return line
}

/** Bidi and zero-width characters JSON.stringify leaves raw: escaped so a JSON line is safe on a terminal too. */
const JSON_UNSAFE = /[\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g

/** One JSON line: bigints as decimal strings, every unsafe character as a `\u` escape. */
export function formatTraceJson(e: TraceEvent): string {
  const text = JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
  return text.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** The functions a summary counts, in the order of its store. */
const SUMMARY_CALLS = Object.keys(TRACE_SIGNATURES)
const SUMMARY_INDEX = new Map(SUMMARY_CALLS.map((c, i) => [c, i]))
/** Float64 slots a summary's store needs: calls, errors and microseconds per function. */
export const TRACE_SUMMARY_SLOTS = SUMMARY_CALLS.length * 3

/**
 * `strace -c`: calls, errors and time per function. Its counts live in `store` (a
 * `TRACE_SUMMARY_SLOTS`-long view), which may be shared memory: the thread that terminated a
 * worker reads the summary of its run from there.
 */
export class TraceSummary {
  readonly #store: Float64Array

  constructor(store: Float64Array = new Float64Array(TRACE_SUMMARY_SLOTS)) {
    if (store.length < TRACE_SUMMARY_SLOTS) throw new RangeError('trace summary store too small')
    this.#store = store
  }

  add(e: TraceEvent): void {
    const i = SUMMARY_INDEX.get(e.call)
    if (i === undefined) return
    const s = this.#store
    s[i * 3]! += 1
    if (e.result !== 'SUCCESS' && e.result !== 'exit') s[i * 3 + 1]! += 1
    s[i * 3 + 2]! += e.us
  }

  rows(): { call: string; calls: number; errors: number; us: number }[] {
    const s = this.#store
    const rows: { call: string; calls: number; errors: number; us: number }[] = []
    SUMMARY_CALLS.forEach((call, i) => {
      if (s[i * 3]! > 0) rows.push({ call, calls: s[i * 3]!, errors: s[i * 3 + 1]!, us: s[i * 3 + 2]! })
    })
    return rows.sort((a, b) => b.us - a.us || b.calls - a.calls)
  }

  format(): string {
    return formatTraceSummary(this.rows())
  }
}

/** The summary table, as `strace -c` prints it. */
export function formatTraceSummary(rows: readonly { call: string; calls: number; errors: number; us: number }[]): string {
  {
    const total = rows.reduce((t, r) => t + r.us, 0)
    const lines = [
      '% time     total us   us/call    calls   errors syscall',
      '------ ------------ --------- -------- -------- ----------------',
    ]
    const fmt = (r: { call: string; calls: number; errors: number; us: number }) =>
      `${(total > 0 ? (100 * r.us) / total : 0).toFixed(2).padStart(6)} ${r.us.toFixed(0).padStart(12)} ${(r.us / r.calls).toFixed(2).padStart(9)} ${String(r.calls).padStart(8)} ${(r.errors > 0 ? String(r.errors) : '').padStart(8)} ${r.call}`
    for (const r of rows) lines.push(fmt(r))
    lines.push('------ ------------ --------- -------- -------- ----------------')
    lines.push(
      fmt({ call: 'total', calls: rows.reduce((t, r) => t + r.calls, 0), errors: rows.reduce((t, r) => t + r.errors, 0), us: total }),
    )
    return lines.join('\n') + '\n'
  }
}
