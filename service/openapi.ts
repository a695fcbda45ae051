/**
 * @module The OpenAPI 3.1 document served at `/openapi.json`. Request bodies come from the same
 * zod schemas the server validates with, so the document cannot drift from what is accepted.
 */
import { z } from 'zod'
import { batchRequestSchema, runRequestSchema } from './request.js'

const error = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    problems: { type: 'array', items: { type: 'string' } },
    retryAfter: { type: 'number' },
  },
}
const limits = {
  type: 'object',
  properties: Object.fromEntries(
    ['memory', 'timeout', 'fuel', 'stdout', 'stderr', 'fds', 'disk', 'inodes'].map((k) => [k, { type: 'number' }]),
  ),
}
const result = {
  type: 'object',
  properties: {
    exitCode: { type: 'integer' },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    stdoutBase64: { type: 'string' },
    stderrBase64: { type: 'string' },
    trap: { type: 'object', properties: { kind: { type: 'string' }, message: { type: 'string' }, syscall: { type: 'string' } } },
    limit: { type: 'string', enum: ['timeout', 'fuel', 'stdout', 'stderr', 'memory', 'aborted'] },
    files: { type: 'object', additionalProperties: {} },
    stats: { type: 'object' },
  },
}
const run = {
  type: 'object',
  required: ['id', 'status', 'module', 'limits'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
    module: { type: 'string' },
    limits,
    result,
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    retried: { type: 'integer' },
  },
}
const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [
      String(c),
      { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    ]),
  )
const json = (schema: unknown) => ({ 'application/json': { schema } })

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'caplet service',
      version: '0.1.0',
      description: "Run untrusted WebAssembly (WASI preview1) in caplet's sandbox over HTTP.",
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: error,
        Run: run,
        Limits: limits,
        RunRequest: z.toJSONSchema(runRequestSchema, { io: 'input' }),
        BatchRequest: {
          ...z.toJSONSchema(batchRequestSchema, { io: 'input' }),
          properties: { runs: { type: 'array', items: { $ref: '#/components/schemas/RunRequest' } }, wait: { type: 'boolean' } },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/modules': {
        put: {
          summary: 'Upload a module; answers its id (sha256 of the bytes). The same bytes twice are stored once.',
          requestBody: { content: { 'application/wasm': { schema: { type: 'string', format: 'binary' } } } },
          responses: {
            200: {
              description: 'already stored',
              content: json({
                type: 'object',
                properties: { id: { type: 'string' }, size: { type: 'integer' }, created: { type: 'boolean' } },
              }),
            },
            201: { description: 'stored' },
            ...errors(401, 413, 422, 429),
          },
        },
      },
      '/v1/runs': {
        post: {
          summary: 'Run a module. With wait (default) the answer is the finished run; with wait: false, 202 and the run id.',
          requestBody: { content: json({ $ref: '#/components/schemas/RunRequest' }) },
          responses: {
            200: {
              description: 'finished',
              headers: {
                'Server-Timing': {
                  description:
                    'Where the run spent its time in the server (ms): parse, admit, wait, run (within it dispatch and return, the hand-offs to and from the worker thread, and guest), finish, json, total; backend in place of wait and run on a queue',
                  schema: { type: 'string' },
                },
              },
              content: json({ $ref: '#/components/schemas/Run' }),
            },
            202: { description: 'accepted', content: json({ $ref: '#/components/schemas/Run' }) },
            503: { description: 'the service could not run it', content: json({ $ref: '#/components/schemas/Run' }) },
            ...errors(400, 401, 404, 413, 422, 429, 501),
          },
        },
      },
      '/v1/runs/batch': {
        post: {
          summary: 'Several runs at once; all are validated before any starts.',
          requestBody: { content: json({ $ref: '#/components/schemas/BatchRequest' }) },
          responses: {
            200: {
              description: 'finished',
              content: json({ type: 'object', properties: { runs: { type: 'array', items: { $ref: '#/components/schemas/Run' } } } }),
            },
            202: { description: 'accepted' },
            ...errors(400, 401, 404, 413, 422, 429),
          },
        },
      },
      '/v1/runs/{id}': {
        get: {
          summary: 'A run started by the same token, while its result is kept.',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: { description: 'the run', content: json({ $ref: '#/components/schemas/Run' }) }, ...errors(401, 404) },
        },
      },
      '/healthz': {
        get: {
          security: [],
          summary: "Liveness and the backend's state",
          responses: { 200: { description: 'healthy' }, 503: { description: 'not healthy' } },
        },
      },
      '/metrics': {
        get: {
          summary:
            'Prometheus metrics: the metrics token (--metrics-token) when one is set, else any API token; open when neither is configured',
          responses: { 200: { description: 'text exposition format' }, ...errors(401) },
        },
      },
      '/openapi.json': { get: { security: [], summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
    },
  }
}
