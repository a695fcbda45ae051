/**
 * `snapshotOptions` (runtime/policy.ts) reads a caller's options once. For an object that is not
 * plain (a class instance, a Proxy) it finds the fields by name, and the names come from the
 * schema: here they are pinned to the option types at every level (a field in one and not the
 * other fails), and a class instance with every field set comes through with every field.
 */
import { describe, expect, it } from 'vitest'
import { createMemFs } from '../../wasi-host/index.js'
import type { Limits, MountSpec, RunOptions, TraceOptions } from '../../runtime/policy.js'
import { optionFields, resolvePolicy, snapshotOptions } from '../../runtime/policy.js'
import type { SocketSpec } from '../../runtime/socket-grants.js'

const fs = createMemFs()
const sink = () => {}
const onListen = () => {}

// `Required<…>`: tsc fails this file if a type gains a field that is not set here.
const limits: Required<Limits> = {
  memory: '1MiB',
  timeout: '2s',
  fuel: 1000,
  stdout: '1KiB',
  stderr: '2KiB',
  fds: 64,
  disk: '4MiB',
  inodes: 10,
  connections: 4,
  bytesIn: '8KiB',
  bytesOut: '9KiB',
  idleTimeout: '3s',
}
const everyMountField: Required<MountSpec> = {
  guest: '/all',
  host: '/srv/all',
  tmp: true,
  fs,
  mode: 'overlay',
  size: '1MiB',
  inodes: 5,
  saveTo: '/srv/saved',
  apply: true,
}
const mounts: MountSpec[] = [
  { guest: '/host', host: '/srv/data', mode: 'ro' },
  { guest: '/tmp', tmp: true, size: '64KiB', inodes: 3 },
  { guest: '/mem', fs, mode: 'rw' },
  { guest: '/over', host: '/srv/over', mode: 'overlay', saveTo: '/srv/out', apply: false },
  everyMountField,
]
const listen: Required<Extract<SocketSpec, { listen: string }>> = {
  listen: '127.0.0.1:0',
  name: 'web',
}
const connect: Required<Extract<SocketSpec, { connect: string }>> = {
  connect: '127.0.0.1:6379',
  name: 'redis',
}
const trace: Required<TraceOptions> = { sink, file: '/tmp/trace.log', format: 'json', summary: true }
const clocks: Required<NonNullable<RunOptions['clocks']>> = { resolution: '1ms', cputime: 'process' }
const full: Required<RunOptions> = {
  args: ['prog', 'a'],
  env: { A: '1', B: '2' },
  stdin: { file: '/etc/hostname' },
  stdout: 'discard',
  stderr: 'inherit',
  signal: new AbortController().signal,
  mounts,
  limits,
  sockets: [listen, connect],
  listenEnv: true,
  onListen,
  isolation: 'in-process',
  deterministic: true,
  seed: 7,
  clocks,
  syscalls: ['fd_write', 'proc_exit'],
  denySyscalls: ['path_open'],
  deniedSyscalls: 'enosys',
  unknownImports: 'trap',
  trace,
  tier: 'baseline',
}

const sorted = (keys: readonly string[]) => [...keys].sort()

/**
 * `o` as instances of classes carry it: every field a getter on a prototype (not an own field,
 * not enumerable), nested objects and array elements too; each read counted by its path. `env`
 * stays a plain object: its names are the caller's, so none can be looked for on a prototype.
 */
function asInstance<T>(o: T, reads: Map<string, number>, path = 'options'): T {
  if (Array.isArray(o)) return o.map((e: unknown, i) => asInstance(e, reads, `${path}[${i}]`)) as T
  if (typeof o !== 'object' || o === null || o instanceof Uint8Array || o instanceof AbortSignal || path.endsWith('.env')) return o
  if ((o as object) === fs) return o
  class Fields {}
  for (const [key, value] of Object.entries(o)) {
    const inner = asInstance(value, reads, `${path}.${key}`)
    const at = `${path}.${key}`
    Object.defineProperty(Fields.prototype, key, {
      get: () => {
        reads.set(at, (reads.get(at) ?? 0) + 1)
        return inner
      },
      configurable: true,
    })
  }
  return new Fields() as T
}

describe("snapshotOptions' field names", () => {
  it("are the option types' fields at every level (top, limits, mounts of every kind, sockets of both kinds, clocks, trace, stdin, env)", () => {
    const { top, under } = optionFields()
    expect(sorted(top)).toEqual(sorted(Object.keys(full)))
    expect(sorted(under.get('limits')!)).toEqual(sorted(Object.keys(limits)))
    expect(sorted(under.get('mounts')!)).toEqual(sorted(Object.keys(everyMountField)))
    for (const m of mounts) for (const k of Object.keys(m)) expect(under.get('mounts')).toContain(k)
    expect(sorted(under.get('sockets')!)).toEqual(sorted([...new Set([...Object.keys(listen), ...Object.keys(connect)])]))
    expect(sorted(under.get('clocks')!)).toEqual(sorted(Object.keys(clocks)))
    expect(sorted(under.get('trace')!)).toEqual(sorted(Object.keys(trace)))
    expect(under.get('stdin')).toEqual(['file'])
    expect(under.get('env')).toEqual([])
    // Fields holding no object have none.
    for (const k of ['args', 'stdout', 'signal', 'isolation', 'seed', 'syscalls', 'tier']) expect(under.get(k), k).toEqual([])
  })
})

describe('a class-instance options object', () => {
  it('with every field set comes through with every field, each read once, as plain data', () => {
    const reads = new Map<string, number>()
    const snap = snapshotOptions(asInstance(full, reads))
    expect(snap).toEqual(full)
    // Every object in the copy is plain, its fields its own (the checks and the resolution read
    // this, never the caller's getters again).
    const plainAll = (v: unknown, path: string): void => {
      if (Array.isArray(v)) return v.forEach((e, i) => plainAll(e, `${path}[${i}]`))
      if (typeof v !== 'object' || v === null || v === fs || v instanceof AbortSignal) return
      expect(Object.getPrototypeOf(v), path).toBe(Object.prototype)
      for (const [k, e] of Object.entries(v)) plainAll(e, `${path}.${k}`)
    }
    plainAll(snap, 'options')
    expect(reads.size).toBeGreaterThan(60)
    for (const [path, n] of reads) expect(n, path).toBe(1)
  })

  it('resolves to the policy the same plain object resolves to (no limit, mount or socket field dropped)', () => {
    const plain: RunOptions = {
      args: ['prog'],
      env: { A: '1' },
      stdin: 'in',
      stdout: 'discard',
      stderr: 'discard',
      mounts: [{ guest: '/tmp', tmp: true, size: '64KiB', inodes: 3 }],
      limits,
      sockets: [listen, connect],
      listenEnv: true,
      clocks,
      syscalls: ['fd_write', 'proc_exit'],
      denySyscalls: ['path_open'],
      deniedSyscalls: 'enosys',
      unknownImports: 'trap',
      trace: { file: '/tmp/trace.log', format: 'json', summary: true },
      tier: 'baseline',
    }
    const want = resolvePolicy(plain)
    expect(want.limits).toMatchObject({ maxFds: 64, connections: 4, bytesIn: 8192, bytesOut: 9216, idleTimeoutMs: 3000 })
    expect(resolvePolicy(asInstance(plain, new Map()))).toEqual(want)
  })
})
