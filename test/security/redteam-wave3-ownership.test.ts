/**
 * Red team, wave 3, `caplet serve`: who may read a run. A run is visible only to the token that
 * started it, and the owner is compared exactly: a token named "a\ud800" (a lone surrogate) and
 * one named "a\ufffd" are two owners, although UTF-8 writes both as the same bytes (the result
 * store used to keep owners as UTF-8, so "a\ufffd" read the runs of "a\ud800", and "a\ud800"
 * could not read its own). The config refuses such names; the store is exact whatever the config
 * lets through. Over the real HTTP API, for every state a run can be read in (queued, running,
 * done, a batch's run) each token reads its own run and gets 404 for the other's, and there is
 * no route that lists or waits on runs by id. The server keeps serving both tokens after.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PolicyError } from '../../runtime/errors.js'
import { readConfigFile, resolveConfig, sha256Hex, type TokenPolicy } from '../../service/config.js'
import { ResultStore } from '../../service/result-store.js'
import { startServer, type RunningServer } from '../../service/server.js'
import { call, GUEST, silent, type Reply } from '../support/service.js'

const FAR = Number.MAX_SAFE_INTEGER
const SECRET_1 = 'wave3-owner-one-0123456789abcdef'
const SECRET_2 = 'wave3-owner-two-0123456789abcdef'
const bearer = (s: string) => ({ authorization: `Bearer ${s}` })

function configProblems(file: unknown): string[] {
  try {
    resolveConfig(file)
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError)
    expect((e as Error).message).not.toMatch(/\n\s+at /)
    return (e as PolicyError).problems
  }
  return []
}

describe('config: token names must be well-formed Unicode', () => {
  it.each([
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udc00b'],
    ['two high surrogates', '\ud800\ud800'],
    ['a reversed pair', '\udc00\ud800'],
  ])('refuses %s in a token name, naming the field', (_, name) => {
    const problems = configProblems({ tokens: [{ name, token: SECRET_1 }] })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^tokens\.0\.name: must be well-formed Unicode/)
    // With a sha256 instead of a token, and as the second of two tokens: the same refusal.
    const second = configProblems({
      tokens: [
        { name: 'ok', token: SECRET_2 },
        { name, sha256: sha256Hex(SECRET_1) },
      ],
    })
    expect(second).toEqual([expect.stringMatching(/^tokens\.1\.name: must be well-formed Unicode/)])
  })

  it('accepts a proper surrogate pair, U+FFFD itself, and names equal only after normalisation (two owners)', () => {
    const c = resolveConfig({
      tokens: [
        { name: '\u{1F600}', token: SECRET_1 },
        { name: 'a\ufffd', token: SECRET_2 },
        { name: '\u00e9', token: `${SECRET_1}-3` },
        { name: 'e\u0301', token: `${SECRET_1}-4` },
      ],
    })
    expect(c.tokens.map((t) => t.name)).toEqual(['\u{1F600}', 'a\ufffd', '\u00e9', 'e\u0301'])
  })

  it('a config file spelling a lone surrogate as a JSON escape is refused with one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'caplet-redteam-'))
    try {
      const path = join(dir, 'serve.json')
      writeFileSync(path, `{"tokens":[{"name":"judge\\ud800","token":"${SECRET_1}"}]}`)
      expect(() => readConfigFile(path)).toThrow(PolicyError)
      expect(() => readConfigFile(path)).toThrow(/tokens\.0\.name: must be well-formed Unicode/)
      // The same file with the name fixed is read (the refusal was the name, nothing else).
      writeFileSync(path, `{"tokens":[{"name":"judge","token":"${SECRET_1}"}]}`)
      expect(readConfigFile(path).tokens[0]!.name).toBe('judge')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('ResultStore: owners come back exactly', () => {
  it('an owner with a lone surrogate is not read back as U+FFFD, and other owners stay apart', () => {
    const s = new ResultStore(16, 2 ** 20)
    const owners = ['a\ud800', 'a\ufffd', '\udc00', '\u00e9', 'e\u0301', '', '\u{1F600}']
    owners.forEach((o, i) => s.put(`r${i}`, o, `{"i":${i}}`, FAR))
    owners.forEach((o, i) => {
      const e = s.get(`r${i}`)!
      expect(e.owner).toBe(o)
      expect(e.json).toBe(`{"i":${i}}`)
      for (const other of owners) if (other !== o) expect(e.owner === other).toBe(false)
    })
    // Still exact after entries are dropped and the slots reused.
    for (let i = 0; i < 40; i++) s.put(`n${i}`, owners[i % owners.length]!, '{}', FAR)
    for (let i = 24; i < 40; i++) expect(s.get(`n${i}`)!.owner).toBe(owners[i % owners.length])
    expect(s.get('r0')).toBeUndefined()
  })
})

/** A token the config would build, made by hand (so the store's exactness is tested on its own). */
const token = (name: string, secret: string): TokenPolicy => ({
  name,
  sha256: sha256Hex(secret),
  concurrency: 64,
  ratePerSecond: 10_000,
  burst: 10_000,
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.each([
  // The config refuses the first name; a server built around the config still keeps them apart.
  ['a lone surrogate and U+FFFD', 'a\ud800', 'a\ufffd', false],
  // Both well-formed: one string is the NFD of the other.
  ['NFC and NFD spellings of one name', '\u00e9', 'e\u0301', true],
])('HTTP API, two tokens named with %s', (_, name1, name2, viaConfig) => {
  let s: RunningServer
  const t1 = bearer(SECRET_1)
  const t2 = bearer(SECRET_2)
  const tokens = [
    { who: 'token 1', h: t1 },
    { who: 'token 2', h: t2 },
  ]
  /** Run ids by state, for each token (index 0: token 1). */
  const runs: Record<'queued' | 'running' | 'done' | 'batch', [string, string]> = {
    queued: ['', ''],
    running: ['', ''],
    done: ['', ''],
    batch: ['', ''],
  }
  let moduleId = ''

  beforeAll(async () => {
    const base = resolveConfig({ maxConcurrent: 2, requestTimeout: '5s' })
    const config = viaConfig
      ? resolveConfig({
          maxConcurrent: 2,
          requestTimeout: '5s',
          tokens: [
            { name: name1, token: SECRET_1, concurrency: 64, ratePerSecond: 10_000 },
            { name: name2, token: SECRET_2, concurrency: 64, ratePerSecond: 10_000 },
          ],
        })
      : { ...base, tokens: [token(name1, SECRET_1), token(name2, SECRET_2)] }
    s = await startServer({ config, port: 0, log: silent })
    moduleId = (await call(s.url, 'PUT', '/v1/modules', GUEST, t1)).body.id
    expect(moduleId).toMatch(/^[0-9a-f]{64}$/)
    for (const [i, h] of [t1, t2].entries()) {
      const done = await call(s.url, 'POST', '/v1/runs', { module: moduleId, args: ['g', 'echo', `owner-${i}`] }, h)
      expect(done.status).toBe(200)
      runs.done[i] = done.body.id
      const batch = await call(s.url, 'POST', '/v1/runs/batch', { runs: [{ module: moduleId, args: ['g', 'echo', `batch-${i}`] }] }, h)
      expect(batch.status).toBe(200)
      runs.batch[i] = batch.body.runs[0].id
    }
    // Two long runs fill both slots (running); two more wait behind them (queued).
    for (const state of ['running', 'queued'] as const)
      for (const [i, h] of [t1, t2].entries()) {
        const r = await call(s.url, 'POST', '/v1/runs', { module: moduleId, args: ['g', 'sleep', '1500'], wait: false }, h)
        expect(r.status).toBe(202)
        runs[state][i] = r.body.id
      }
    for (let i = 0; i < 100; i++) {
      const r = await call(s.url, 'GET', `/v1/runs/${runs.running[1]}`, undefined, t2)
      if (r.body.status === 'running') break
      await sleep(20)
    }
  })
  afterAll(async () => {
    await s?.close(10_000)
  })

  const expectNotFound = (r: Reply, id: string) => {
    expect(r.status).toBe(404)
    expect(r.body.error).toBe('not-found')
    // Nothing of the other run leaks: not its status, module, output or owner.
    const text = JSON.stringify(r.body)
    expect(text).not.toMatch(/owner-|batch-|slept|running|queued|"done"/)
    expect(text).not.toContain(moduleId)
    expect(text).not.toContain(JSON.stringify(name1).slice(1, -1))
    expect(text).not.toContain(JSON.stringify(name2).slice(1, -1))
  }

  for (const state of ['running', 'queued', 'done', 'batch'] as const) {
    for (const [me, other] of [
      [0, 1],
      [1, 0],
    ] as const) {
      it(`GET a ${state} run: ${tokens[me]!.who} reads its own`, async () => {
        const r = await call(s.url, 'GET', `/v1/runs/${runs[state][me]}`, undefined, tokens[me]!.h)
        expect(r.status).toBe(200)
        expect(r.body.id).toBe(runs[state][me])
        if (state === 'done') expect(r.body.result.stdout).toContain(`arg:owner-${me}`)
        if (state === 'batch') expect(r.body.result.stdout).toContain(`arg:batch-${me}`)
        if (state === 'running' || state === 'queued') expect(['queued', 'running', 'done']).toContain(r.body.status)
      })
      it(`GET a ${state} run: ${tokens[me]!.who} gets 404 for the other's`, async () => {
        expectNotFound(await call(s.url, 'GET', `/v1/runs/${runs[state][other]}`, undefined, tokens[me]!.h), runs[state][other])
        // Spelled in upper case or with a trailing slash it is not found either.
        const upper = await call(s.url, 'GET', `/v1/runs/${runs[state][other].toUpperCase()}`, undefined, tokens[me]!.h)
        expect(upper.status).toBe(404)
      })
    }
  }

  for (const [i, h] of [t1, t2].entries()) {
    it(`no route lists runs or waits on a run by id (token ${i + 1})`, async () => {
      for (const [method, path] of [
        ['GET', '/v1/runs'],
        ['GET', '/v1/runs/'],
        ['GET', '/v1/runs/batch'],
        ['GET', `/v1/runs/${runs.done[1 - i]}/wait`],
        ['POST', `/v1/runs/${runs.done[1 - i]}`],
      ] as const) {
        const r = await call(s.url, method, path, undefined, h)
        expect(r.status, `${method} ${path}`).toBe(404)
        // The 404 names at most what the caller sent, nothing of the run.
        expect(r.body.error).toBe('not-found')
        expect(JSON.stringify(r.body)).not.toMatch(/slept|owner-|batch-\d|"status"|"result"|arg:/)
      }
      // A run request naming another run's id is refused (no field for it), not waited on.
      const r = await call(s.url, 'POST', '/v1/runs', { module: moduleId, id: runs.running[1 - i] }, h)
      expect(r.status).toBe(400)
      expect(JSON.stringify(r.body)).not.toMatch(/slept|owner-/)
    })
  }

  it('after the long runs end, each token reads its own results and still not the other', async () => {
    for (const state of ['running', 'queued'] as const)
      for (const [me, other] of [
        [0, 1],
        [1, 0],
      ] as const) {
        let r: Reply | undefined
        for (let i = 0; i < 300; i++) {
          r = await call(s.url, 'GET', `/v1/runs/${runs[state][me]}`, undefined, tokens[me]!.h)
          if (r.body.status === 'done') break
          await sleep(25)
        }
        expect(r!.status).toBe(200)
        expect(r!.body.result.stdout).toContain('slept')
        expectNotFound(await call(s.url, 'GET', `/v1/runs/${runs[state][other]}`, undefined, tokens[me]!.h), runs[state][other])
      }
    // Still serving both tokens.
    for (const [i, h] of [t1, t2].entries()) {
      const r = await call(s.url, 'POST', '/v1/runs', { module: moduleId, args: ['g', 'echo', `alive-${i}`] }, h)
      expect(r.body.result.stdout).toContain(`arg:alive-${i}`)
    }
  })
})
