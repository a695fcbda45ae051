/**
 * Red team, wave 3: remembered verdicts. Three places remember what a check decided: the
 * service's run-request policy verdict (service/run-policy-check.ts, keyed by args, env and
 * limits), its prepared programs (keyed by module id and applied limits), and the module
 * pipeline (compiled modules keyed by digest and instrumentation; the digest remembered per
 * caller buffer; the import plan made against each policy). For 1,500 hostile inputs, three
 * rounds each, the remembered verdict must be the fresh one: inputs crafted to collide in a
 * naive key, the same buffer rewritten in place between loads (imports renamed, `_start` or
 * `memory` unexported), the same bytes under different policies, and policy objects changed
 * after the check. A caller who changes its options after `prepare()` changes nothing.
 */
import wabtInit from 'wabt'
import { beforeAll, describe, expect, it } from 'vitest'
import { PolicyError } from '../../runtime/errors.js'
import { keepCompiledModules, loadLinked, type LoadOptions } from '../../runtime/module.js'
import { resolvePolicy } from '../../runtime/policy.js'
import { prepareSync } from '../../runtime/sandbox.js'
import { applyLimits, BUILTIN_LIMITS, LIMIT_NAMES, policyLimits, type AppliedLimits } from '../../service/limits.js'
import { MAX_KEY_CHARS, RunPolicyCheck } from '../../service/run-policy-check.js'
import { resolverVerdict } from '../support/policy-verdict.js'
import { rng } from '../support/rng.js'

const N = 1500
const ROUNDS = 3

// ---- The service's remembered run-request verdict --------------------------------------------

const FRAGMENTS = [
  '',
  'a',
  'x',
  '\0',
  'a\0b',
  '=',
  'A=B',
  '__proto__',
  'constructor',
  'toJSON',
  'hasOwnProperty',
  '"]|{"A":"1"}',
  '|',
  ',',
  'u',
  'null',
  '\ud800',
  '\udc00x',
  '\u{1F600}',
  '\u202e',
  '\\',
  '\n',
]
const LIMIT_SPECS: unknown[] = [
  undefined,
  {},
  { memory: '1MiB' },
  { memory: 65536 },
  { fuel: 1000 },
  { fuel: 1 },
  { timeout: '0.5ms' },
  { timeout: 1 },
  { stdout: 0 },
  { stdout: -0 },
  { disk: -0 },
  { inodes: 0 },
  { fds: 3 },
  { fds: 64, disk: '1KiB' },
]

/** Applied limits: from the service's own parser, or raw hostile numbers straight in. */
function hostileLimits(r: ReturnType<typeof rng>): AppliedLimits {
  const base = applyLimits(r.pick(LIMIT_SPECS), BUILTIN_LIMITS)
  if (r.chance(0.5)) return base
  const out: Record<string, number | undefined> = { ...base }
  for (let i = 0, n = 1 + r.int(2); i < n; i++)
    out[r.pick(LIMIT_NAMES)] = r.pick([-0, 0, Number.NaN, Infinity, -Infinity, 1.5, -1, 2 ** 53, 100, 65535, 65536, undefined])
  return out as unknown as AppliedLimits
}

function hostileString(r: ReturnType<typeof rng>): string {
  let s = ''
  for (let i = 0, n = r.int(4); i < n; i++) s += r.pick(FRAGMENTS)
  // Now and then a string that puts the key right around the cache's cut-off.
  if (r.chance(0.02)) s += 'k'.repeat(MAX_KEY_CHARS - 200 + r.int(400))
  return s
}

function hostileEnv(r: ReturnType<typeof rng>): Record<string, string> | undefined {
  if (r.chance(0.2)) return undefined
  // As JSON.parse builds it: "__proto__" is an own key, not the prototype.
  const env: Record<string, string> = {}
  for (let i = 0, n = r.int(4); i < n; i++)
    Object.defineProperty(env, hostileString(r) || 'K', { value: hostileString(r), enumerable: true, writable: true, configurable: true })
  return env
}

const hostileArgs = (r: ReturnType<typeof rng>) => (r.chance(0.2) ? undefined : Array.from({ length: r.int(4) }, () => hostileString(r)))

describe('the service remembers run-request verdicts: always the fresh one', () => {
  it(`${N} hostile inputs x ${ROUNDS} rounds, mutated between checks, through a small and a large cache`, () => {
    const r = rng(0xca11e7)
    const inputs = Array.from({ length: N }, () => ({ args: hostileArgs(r), env: hostileEnv(r), limits: hostileLimits(r) }))
    const small = new RunPolicyCheck(64) // evicts all the time
    const large = new RunPolicyCheck(4096)
    let refused = 0
    let mutated = 0
    for (let round = 0; round < ROUNDS; round++) {
      for (const input of inputs) {
        const want = resolverVerdict(input.args, input.env, input.limits)
        if (want.length > 0) refused++
        for (const check of [small, large]) {
          const got = check.problems(input.args, input.env, input.limits)
          expect(got).toEqual(want)
          expect(Object.isFrozen(got)).toBe(true)
        }
        // The caller changes its objects after the check: the next check answers for what they are now.
        if (r.chance(0.3)) {
          mutated++
          const what = r.int(4)
          if (what === 0 && input.args) input.args.push(hostileString(r))
          else if (what === 1 && input.args && input.args.length > 0) input.args[r.int(input.args.length)] = hostileString(r)
          else if (what === 2 && input.env) input.env[hostileString(r) || 'K'] = hostileString(r)
          else input.limits = { ...input.limits, [r.pick(LIMIT_NAMES)]: r.pick([-0, 0, Number.NaN, 1, 64 * 2 ** 20]) }
          const now = resolverVerdict(input.args, input.env, input.limits)
          expect(large.problems(input.args, input.env, input.limits)).toEqual(now)
          expect(small.problems(input.args, input.env, input.limits)).toEqual(now)
        }
      }
    }
    // The corpus is hostile enough to matter: many refusals, many changes, the caches bounded.
    expect(refused).toBeGreaterThan(N / 5)
    expect(mutated).toBeGreaterThan(N / 2)
    expect(small.size).toBeLessThanOrEqual(64)
    expect(large.size).toBeLessThanOrEqual(4096)
    // And still answering ordinary requests right.
    expect(large.problems(['g', 'echo'], { A: '1' }, applyLimits({}, BUILTIN_LIMITS))).toEqual([])
    expect(large.problems(['g'], { 'A=B': '1' }, applyLimits({}, BUILTIN_LIMITS)).length).toBeGreaterThan(0)
  })

  it('prepared programs are kept per applied limits: two limits that apply differently never share a key', () => {
    // ProgramCache keys on JSON.stringify(job.limits): JSON writes -0 as 0 and NaN/Infinity as
    // null. Applied limits come only from applyLimits; check it never yields two that JSON
    // cannot tell apart but the policy would apply differently.
    const r = rng(7)
    const byKey = new Map<string, ReturnType<typeof resolvePolicy>['limits']>()
    const specs: unknown[] = [...LIMIT_SPECS]
    for (let i = 0; i < N; i++) {
      const spec: Record<string, unknown> = {}
      for (let k = 0, n = 1 + r.int(3); k < n; k++)
        spec[r.pick(LIMIT_NAMES)] = r.pick<unknown>([
          -0,
          0,
          1,
          3,
          0.5,
          1e309,
          -1e309,
          2 ** 53,
          '1e3',
          '0x10',
          '64KiB',
          '1MiB',
          '-0',
          '0ms',
          '1s',
          '1.5s',
          ' 1s',
          null,
          JSON.parse('-0'),
        ])
      specs.push(spec)
    }
    let applied = 0
    for (const spec of specs) {
      let limits: AppliedLimits
      try {
        limits = applyLimits(spec, BUILTIN_LIMITS)
      } catch (e) {
        expect(e).toBeInstanceOf(PolicyError)
        continue
      }
      applied++
      for (const v of Object.values(limits)) expect(Number.isFinite(v)).toBe(true)
      const key = JSON.stringify(limits)
      // -0 and 0 bound alike (no limit compares them apart): compare what applies.
      const policy = JSON.parse(
        JSON.stringify(resolvePolicy({ limits: policyLimits(limits) }).limits, (_, v) => (Object.is(v, -0) ? 0 : v)),
      )
      const seen = byKey.get(key)
      if (seen === undefined) byKey.set(key, policy)
      else expect(policy).toEqual(seen)
    }
    expect(applied).toBeGreaterThan(100)
    expect(byKey.size).toBeGreaterThan(20)
  })
})

// ---- The module pipeline: compiled modules, remembered digests, import plans ----------------

/** Same-length spellings of each name: rewriting a buffer in place swaps one for another. */
const SWAPS: Record<string, readonly string[]> = {
  fd_read: ['fd_read', 'fd_seek', 'fd_sync', 'fd_tell', 'fd_reax'],
  path_open: ['path_open', 'path_link', 'path_opex'],
  proc_exit: ['proc_exit', 'proc_exiu'],
  hostf: ['hostf', 'hostg'],
  _start: ['_start', '_stara'],
  memory: ['memory', 'memorx'],
}

const TEMPLATES = [
  ['fd_read'],
  ['fd_read', 'path_open'],
  ['path_open', 'proc_exit'],
  ['fd_read', 'hostf'],
  ['fd_read', 'path_open', 'proc_exit', 'hostf'],
  [],
  ['proc_exit'],
  ['hostf'],
]

function templateWat(imports: readonly string[], nonce: number): string {
  const imp = imports
    .map((n) =>
      n === 'hostf'
        ? '(import "env" "hostf" (func))'
        : n === 'proc_exit'
          ? '(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))'
          : `(import "wasi_snapshot_preview1" "${n}" (func))`,
    )
    .join('\n')
  return `(module ${imp}
    (memory 1 100)
    (func $s)
    (export "memory" (memory 0))
    (export "_start" (func $s))
    (export "n${String(nonce).padStart(6, '0')}" (func $s)))`
}

function indexOf(bytes: Uint8Array, s: string): number {
  const needle = Buffer.from(s)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(needle)
}

/** Writes `template` into `into` (same length) with the chosen spellings and nonce. */
function patched(template: Uint8Array, into: Uint8Array, choice: Record<string, string>, nonce: number): void {
  into.set(template)
  for (const [name, to] of Object.entries(choice)) {
    const at = indexOf(template, name)
    if (at >= 0) into.set(Buffer.from(to), at)
  }
  into.set(Buffer.from(`n${String(nonce).padStart(6, '0')}`), indexOf(template, 'n000000'))
}

type Verdict = { ok: true; functions: string[]; stubs: string[]; imports: string; exports: string } | { ok: false; error: string }

function verdictOf(source: Uint8Array | ArrayBuffer, options: LoadOptions): Verdict {
  try {
    const { module, plan } = loadLinked(source, options)
    return {
      ok: true,
      functions: [...plan.functions],
      stubs: plan.stubs.map((s) => `${s.module}.${s.name}:${s.action}:${s.results.join(',')}`),
      imports: JSON.stringify(WebAssembly.Module.imports(module)),
      exports: JSON.stringify(WebAssembly.Module.exports(module)),
    }
  } catch (e) {
    return { ok: false, error: `${(e as Error).constructor.name}: ${(e as Error).message}` }
  }
}

const WASI_NAMES = ['fd_read', 'fd_seek', 'fd_sync', 'fd_tell', 'path_open', 'path_link', 'proc_exit', 'fd_write']

function hostilePolicy(r: ReturnType<typeof rng>): LoadOptions {
  const subset = () => WASI_NAMES.filter(() => r.chance(0.5))
  return {
    command: true,
    ...(r.chance(0.5) ? { syscalls: subset() } : {}),
    ...(r.chance(0.5) ? { denySyscalls: subset() } : {}),
    ...(r.chance(0.5) ? { deniedSyscalls: r.pick(['refuse', 'enosys'] as const) } : {}),
    ...(r.chance(0.6) ? { unknownImports: r.pick(['reject', 'trap', 'default'] as const) } : {}),
    ...(r.chance(0.6) ? { memoryPages: r.pick([1, 2, 17, 100]) } : {}),
  }
}

interface Step {
  template: number
  buffer: number
  choice: Record<string, string>
  nonce: number
  policy: LoadOptions
  asArrayBuffer: boolean
}

describe('the module pipeline remembers compiled modules and digests: the plan is always the fresh one', () => {
  let templates: Uint8Array[] = []
  beforeAll(async () => {
    const wabt = await wabtInit()
    templates = TEMPLATES.map((t) => {
      const m = wabt.parseWat('t.wat', templateWat(t, 0))
      try {
        return new Uint8Array(m.toBinary({}).buffer)
      } finally {
        m.destroy()
      }
    })
  })

  it(`${N} loads x ${ROUNDS} rounds: buffers rewritten in place, the same bytes under other policies, policies changed after`, () => {
    const r = rng(0x5eed)
    const steps: Step[] = Array.from({ length: N }, () => {
      const template = r.int(TEMPLATES.length)
      const choice: Record<string, string> = {}
      for (const [name, spellings] of Object.entries(SWAPS)) if (r.chance(0.35)) choice[name] = r.pick(spellings)
      return {
        template,
        buffer: r.int(4),
        choice,
        // Few nonces: the same bytes come back often, under whatever policy this step has.
        nonce: r.int(6),
        policy: hostilePolicy(r),
        asArrayBuffer: r.chance(0.15),
      }
    })
    // Fresh verdicts first: nothing kept, every load from a new copy of the bytes.
    keepCompiledModules(false)
    const want = steps.map((s) => {
      const copy = new Uint8Array(templates[s.template]!.length)
      patched(templates[s.template]!, copy, s.choice, s.nonce)
      return verdictOf(copy, { ...s.policy })
    })
    keepCompiledModules(true)
    try {
      // The same few buffer objects per template, rewritten in place before each load.
      const pools = templates.map((t) => Array.from({ length: 4 }, () => new Uint8Array(t.length)))
      const kinds = new Set<string>()
      for (let round = 0; round < ROUNDS; round++) {
        steps.forEach((s, i) => {
          const buf = pools[s.template]![s.buffer]!
          patched(templates[s.template]!, buf, s.choice, s.nonce)
          const policy: LoadOptions = { ...s.policy, ...(s.policy.syscalls ? { syscalls: [...s.policy.syscalls] } : {}) }
          const got = verdictOf(s.asArrayBuffer ? buf.buffer : buf, policy)
          expect(got, `round ${round}, step ${i}`).toEqual(want[i])
          kinds.add(got.ok ? 'ok' : got.error.split(':')[0]!)
          // Changing the policy object afterwards does not change what was decided, nor what
          // the next load of the same bytes under the original policy decides.
          if (policy.syscalls) (policy.syscalls as string[]).push('path_open', 'fd_reax')
          policy.memoryPages = 1
          policy.unknownImports = 'trap'
          if (r.chance(0.1)) expect(verdictOf(buf, { ...s.policy })).toEqual(want[i])
        })
      }
      // Both outcomes, several kinds of refusal.
      expect(want.filter((v) => v.ok).length).toBeGreaterThan(N / 10)
      expect(want.filter((v) => !v.ok).length).toBeGreaterThan(N / 10)
      // Denied, unknown, not a command, memory not exported.
      const refusals = new Set(want.flatMap((v) => (v.ok ? [] : [v.error.replace(/\d+/g, 'N').slice(0, 60)])))
      expect(refusals.size).toBeGreaterThanOrEqual(4)
      expect(kinds.has('ok')).toBe(true)
    } finally {
      keepCompiledModules(true)
    }
  })
})

// ---- The public API: options changed after prepare() ---------------------------------------

/** Writes "hi" with fd_write; exits with fd_write's errno, plus 100 when memory.grow(100 pages) failed. */
const GUEST_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 16) "hi")
  (func (export "_start") (local $e i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 2))
    (local.set $e (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) (then (local.set $e (i32.add (local.get $e) (i32.const 100)))))
    (call $exit (local.get $e))))`

describe('prepare(): what was checked is what runs, whatever the caller changes after', () => {
  let guest: Uint8Array
  beforeAll(async () => {
    const wabt = await wabtInit()
    const m = wabt.parseWat('g.wat', GUEST_WAT)
    guest = new Uint8Array(m.toBinary({}).buffer)
    m.destroy()
  })
  const ENOSYS = 52

  it(`the same bytes under alternating memory caps and syscall denials, ${ROUNDS} rounds, options mutated after each prepare`, () => {
    const cases = [
      { memory: '1MiB', deny: true, exit: ENOSYS + 100, out: '' },
      { memory: '64MiB', deny: false, exit: 0, out: 'hi' },
      { memory: '64MiB', deny: true, exit: ENOSYS, out: '' },
      { memory: '1MiB', deny: false, exit: 100, out: 'hi' },
    ]
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) {
        const options = {
          isolation: 'in-process' as const,
          limits: { memory: c.memory },
          denySyscalls: c.deny ? ['fd_write'] : [],
          deniedSyscalls: 'enosys' as const,
        }
        const program = prepareSync(guest, options)
        // The caller flips everything it handed in.
        options.limits.memory = c.memory === '1MiB' ? '64MiB' : '1MiB'
        options.denySyscalls.length = 0
        if (!c.deny) options.denySyscalls.push('fd_write')
        ;(options as { deniedSyscalls: string }).deniedSyscalls = 'refuse'
        for (let k = 0; k < 2; k++) {
          const res = program.runSync()
          expect(res.exitCode, `${JSON.stringify(c)} round ${round}`).toBe(c.exit)
          expect(Buffer.from(res.stdout).toString()).toBe(c.out)
        }
      }
    }
    // The host still runs an ordinary policy right after.
    const ok = prepareSync(guest, { isolation: 'in-process' }).runSync()
    expect(ok.exitCode).toBe(0)
    expect(Buffer.from(ok.stdout).toString()).toBe('hi')
  })
})
