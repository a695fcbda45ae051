/**
 * @module Prometheus metrics (prom-client, a registry per server): runs by outcome, run
 * latency, queue depth and pool utilisation. Labels are bounded sets (never a token, module id
 * or run id).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { RunBackend, RunView } from './runs.js'

export class ServiceMetrics {
  readonly registry = new Registry()
  readonly runs = new Counter({
    name: 'caplet_runs_total',
    help: 'Runs finished, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  readonly rejected = new Counter({
    name: 'caplet_requests_rejected_total',
    help: 'Requests refused, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  })
  readonly latency = new Histogram({
    name: 'caplet_run_duration_seconds',
    help: 'Time from accepting a run to its result',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  })

  constructor(backend: RunBackend) {
    new Gauge({
      name: 'caplet_queue_depth',
      help: 'Runs accepted and waiting to start',
      registers: [this.registry],
      collect() {
        this.set(backend.depth().queued)
      },
    })
    new Gauge({
      name: 'caplet_runs_running',
      help: 'Runs executing on this server (local pool)',
      registers: [this.registry],
      collect() {
        this.set(backend.depth().running)
      },
    })
    new Gauge({
      name: 'caplet_pool_utilisation',
      help: 'Running runs over the pool size (local pool)',
      registers: [this.registry],
      collect() {
        const d = backend.depth()
        this.set(d.capacity > 0 ? d.running / d.capacity : 0)
      },
    })
    collectDefaultMetrics({ register: this.registry, prefix: 'caplet_process_' })
  }

  finished(view: RunView, startedAt: number): void {
    const outcome =
      view.status === 'failed'
        ? 'failed'
        : view.result?.trap
          ? 'trap'
          : view.result?.limit
            ? 'limit'
            : view.result?.exitCode === 0
              ? 'ok'
              : 'nonzero'
    this.runs.inc({ outcome })
    this.latency.observe((performance.now() - startedAt) / 1000)
  }
}
