/**
 * @module The HTTP API (Hono): routes, authentication, body caps, validation, admission and
 * delivery of results. Every refusal is a JSON `ApiError`; an unexpected failure is logged and
 * answered as a one-line 500, never with a stack. Guest output is never logged.
 */
import { Hono, type Context } from 'hono'
import { concatBytes } from '../wasi-host/abi/bytes.js'
import type { Logger } from 'pino'
import type { TokenPolicy } from './config.js'
import { Admission } from './admission.js'
import type { ServiceConfig } from './config.js'
import { cacheCompiles } from './compile-source.js'
import { ApiError } from './errors.js'
import type { ServiceMetrics } from './metrics.js'
import type { CompileSource } from './modules.js'
import { openApiDocument } from './openapi.js'
import { batchRequestSchema, resolveRunRequest, type ModuleRef, type ResolvedRun, type RunJob } from './request.js'
import type { RunBackend, RunTiming, RunView } from './runs.js'

export interface AppDeps {
  config: ServiceConfig
  backend: RunBackend
  metrics: ServiceMetrics
  log: Logger
  /** The toolchain's `compile()`, when this server can compile `source`. */
  compile?: CompileSource
}

type Env = { Variables: { token: TokenPolicy; body: Uint8Array } }

const utf8 = new TextDecoder()
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new ApiError(400, 'bad-json', `the body is not valid JSON: ${(e as Error).message.slice(0, 200)}`)
  }
}

const ms = (a: number, b: number) => `${Math.max(0, b - a).toFixed(2)}`

/**
 * Where a waited-for run's time went on this server (a `Server-Timing` header): reading and
 * checking the request, admission (modules looked up), waiting for a free slot, the run in the
 * pool (`dispatch` and `return`: its hand-offs to and from the worker thread; `guest`: its own wall
 * time there), metrics and the log line, serialising the result.
 */
function serverTiming(t0: number, t1: number, t2: number, t3: number, t4: number, t: RunTiming, view: RunView): string {
  const parts = [`parse;dur=${ms(t0, t1)}`, `admit;dur=${ms(t1, t2)}`]
  if (t.started !== undefined && t.ended !== undefined) {
    parts.push(`wait;dur=${ms(t2, t.started)}`, `run;dur=${ms(t.started, t.ended)}`)
    if (t.handoff) parts.push(`dispatch;dur=${t.handoff.toWorkerMs.toFixed(2)}`, `return;dur=${t.handoff.fromWorkerMs.toFixed(2)}`)
    parts.push(`finish;dur=${ms(t.ended, t3)}`)
  } else parts.push(`backend;dur=${ms(t2, t3)}`)
  if (view.result) parts.push(`guest;dur=${view.result.stats.wallMs.toFixed(2)}`)
  parts.push(`json;dur=${ms(t3, t4)}`, `total;dur=${ms(t0, t4)}`)
  return parts.join(', ')
}

export function createApp(deps: AppDeps): Hono<Env> {
  const { config, backend, metrics, log } = deps
  const admission = new Admission(config)
  const compile = deps.compile ? cacheCompiles(deps.compile, undefined, config.maxConcurrent) : undefined
  const app = new Hono<Env>()

  const tooLarge = (max: number, code: 'body-too-large' | 'module-too-large') => () => {
    throw new ApiError(413, code, `the body is larger than this server's ${max} bytes`)
  }
  /**
   * Reads the body, at most `max` bytes, into `c.get('body')`. With a Content-Length (which
   * Node's parser holds the body to) the cap is a header check and the body is read on
   * @hono/node-server's fast path; a chunked body is counted as it arrives. (Hono's `bodyLimit`
   * read `req.raw.body`, which builds a whole Web Request for every request, and failed on
   * chunked bodies with a 500.)
   */
  const cap = (max: number, code: 'body-too-large' | 'module-too-large') => async (c: Context<Env>, next: () => Promise<void>) => {
    const length = c.req.header('content-length')
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > max) tooLarge(max, code)()
      c.set('body', new Uint8Array(await c.req.arrayBuffer()))
      return next()
    }
    const chunks: Uint8Array[] = []
    let size = 0
    const reader = c.req.raw.body?.getReader()
    for (;;) {
      const chunk = await reader?.read()
      if (!chunk || chunk.done) break
      size += chunk.value.byteLength
      if (size > max) {
        void reader!.cancel().catch(() => {})
        tooLarge(max, code)()
      }
      chunks.push(chunk.value)
    }
    c.set('body', concatBytes(chunks))
    return next()
  }

  const auth = async (c: Context<Env>, next: () => Promise<void>) => {
    c.set('token', admission.authenticate(c.req.header('authorization')))
    await next()
  }

  app.onError((e, c) => {
    if (e instanceof ApiError) {
      metrics.rejected.inc({ code: e.code })
      if (e.status === 401) c.header('WWW-Authenticate', 'Bearer')
      if (e.retryAfter !== undefined) c.header('Retry-After', String(e.retryAfter))
      // The rest of an oversized body is not read: the connection cannot carry another request.
      if (e.status === 413) c.header('Connection', 'close')
      return c.json(e.toJSON(), e.status)
    }
    log.error({ err: (e as Error)?.message, path: c.req.path }, 'request failed')
    return c.json({ error: 'internal', message: 'the server failed to handle this request' }, 500)
  })
  app.notFound((c) => c.json({ error: 'not-found', message: `no route ${c.req.method} ${c.req.path}` }, 404))

  app.get('/healthz', async (c) => {
    const h = await backend.health()
    return c.json({ ok: h.ok, mode: backend.mode, detail: h.detail, ...backend.depth() }, h.ok ? 200 : 503)
  })
  app.get('/metrics', async (c) => {
    admission.authenticateMetrics(c.req.header('authorization'))
    return c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType })
  })
  const doc = JSON.stringify(openApiDocument())
  app.get('/openapi.json', (c) => c.body(doc, 200, { 'Content-Type': 'application/json' }))

  app.put('/v1/modules', auth, cap(config.maxModuleBytes, 'module-too-large'), async (c) => {
    const bytes = c.get('body')
    if (bytes.byteLength === 0) throw new ApiError(400, 'invalid-request', "the body is empty: send the module's bytes")
    const r = await backend.modules.put(bytes)
    log.info({ module: r.id, size: r.size, created: r.created, token: c.get('token').name }, 'module stored')
    return c.json(r, r.created ? 201 : 200)
  })

  /** The module's id: an uploaded one (it must exist), inline bytes (stored now), or source (compiled). */
  const moduleIdOf = async (ref: ModuleRef): Promise<string> => {
    if ('id' in ref) {
      if (!(await backend.modules.get(ref.id)))
        throw new ApiError(404, 'unknown-module', `no module with id ${ref.id} (upload it with PUT /v1/modules)`)
      return ref.id
    }
    if ('bytes' in ref) return (await backend.modules.put(ref.bytes)).id
    if (!compile) throw new ApiError(501, 'source-unsupported', 'this server cannot compile source; send a module')
    return (await backend.modules.put(await compile(ref.source))).id
  }

  const deliver = (view: RunView, url: string) => {
    fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(view),
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    })
      .then((r) => {
        if (!r.ok) log.warn({ run: view.id, status: r.status }, 'callback refused')
        return r.body?.cancel()
      })
      .catch((e) => log.warn({ run: view.id, err: (e as Error)?.message }, 'callback failed'))
  }

  /** Admits, stores modules, and starts runs; each promise settles with the run's final view. */
  const startRuns = async (token: TokenPolicy, runs: ResolvedRun[], timing?: RunTiming): Promise<Promise<RunView>[]> => {
    backend.admit(runs.length)
    const release = admission.acquire(token, runs.length)
    const jobs: RunJob[] = []
    try {
      const ids = new Map<ModuleRef, string>()
      for (const r of runs) ids.set(r.module, await moduleIdOf(r.module))
      for (const r of runs) jobs.push({ ...r.job, moduleId: ids.get(r.module)! })
    } catch (e) {
      for (let i = 0; i < runs.length; i++) release()
      throw e
    }
    return jobs.map((job) => {
      const t0 = performance.now()
      return backend.start(job, timing).then((view) => {
        release()
        metrics.finished(view, t0)
        log.info(
          {
            run: job.id,
            token: token.name,
            module: job.moduleId,
            status: view.status,
            exitCode: view.result?.exitCode,
            limit: view.result?.limit,
            trap: view.result?.trap?.kind,
            error: view.error?.code,
            retried: view.retried,
            wallMs: view.result?.stats.wallMs,
          },
          'run finished',
        )
        if (job.callbackUrl) deliver(view, job.callbackUrl)
        return view
      })
    })
  }

  const bodyCap = cap(config.maxBodyBytes, 'body-too-large')

  app.post('/v1/runs', auth, bodyCap, async (c) => {
    const t0 = performance.now()
    const token = c.get('token')
    const run = resolveRunRequest(parseJson(utf8.decode(c.get('body'))), config, token.name)
    const t1 = performance.now()
    const timing: RunTiming = {}
    const [done] = await startRuns(token, [run], timing)
    const t2 = performance.now()
    if (!run.wait) {
      void done
      c.header('Location', `/v1/runs/${run.job.id}`)
      return c.json({ id: run.job.id, status: 'queued' }, 202)
    }
    const view = await done!
    const t3 = performance.now()
    const body = JSON.stringify(view)
    c.header('Server-Timing', serverTiming(t0, t1, t2, t3, performance.now(), timing, view))
    return c.body(body, view.status === 'failed' ? 503 : 200, { 'Content-Type': 'application/json' })
  })

  app.post('/v1/runs/batch', auth, bodyCap, async (c) => {
    const token = c.get('token')
    const parsed = batchRequestSchema.safeParse(parseJson(utf8.decode(c.get('body'))))
    if (!parsed.success)
      throw new ApiError(
        400,
        'invalid-request',
        'the batch is invalid',
        parsed.error.issues.map((i) => `${i.path.join('.') || '(batch)'}: ${i.message}`),
      )
    if (parsed.data.runs.length > config.maxBatch)
      throw new ApiError(400, 'invalid-request', `a batch holds at most ${config.maxBatch} runs`, [
        `runs: ${parsed.data.runs.length} runs, above ${config.maxBatch}`,
      ])
    // Every run is validated before any starts; the problems of all of them are reported.
    const runs: ResolvedRun[] = []
    let worst: ApiError | undefined
    const problems: string[] = []
    parsed.data.runs.forEach((r, i) => {
      try {
        runs.push(resolveRunRequest(r, config, token.name, `runs[${i}]`))
      } catch (e) {
        if (!(e instanceof ApiError)) throw e
        if (!worst || e.status > worst.status) worst = e
        problems.push(...(e.problems ?? [e.message]))
      }
    })
    if (worst)
      throw new ApiError(worst.status, worst.code, `${problems.length} problem${problems.length > 1 ? 's' : ''} in the batch`, problems)
    const done = await startRuns(token, runs)
    if (parsed.data.wait === false) return c.json({ runs: runs.map((r) => ({ id: r.job.id, status: 'queued' })) }, 202)
    return c.json({ runs: await Promise.all(done) }, 200)
  })

  app.get('/v1/runs/:id', auth, async (c) => {
    const id = c.req.param('id') ?? ''
    const view = RUN_ID.test(id) ? await backend.get(id, c.get('token').name) : undefined
    if (!view)
      throw new ApiError(
        404,
        'not-found',
        `no run ${JSON.stringify(id.slice(0, 80))} for this token (results are kept ${Math.round(config.resultTtlMs / 1000)} s)`,
      )
    return c.json(view, 200)
  })

  return app
}
