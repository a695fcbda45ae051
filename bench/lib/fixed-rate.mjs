// An open-loop load generator: POSTs `body` at a fixed rate, evenly spaced, whatever the server's
// latency, and measures each request from the moment it was due (so a stalled loader or server
// is charged to the latency, without autocannon's per-second bursts: its `overallRate` sends a
// connection's quota back to back at each second's tick, then idles). Keep-alive connections
// are opened as needed. Also collects the server's `Server-Timing` entries, per name.
import { Agent, request } from 'node:http'

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] : NaN)

/** Parses `a;dur=1.2, b;dur=3` into { a: 1.2, b: 3 }. */
function serverTiming(header) {
  const out = {}
  for (const part of String(header ?? '').split(',')) {
    const m = /^\s*([\w-]+)\s*;\s*dur=([\d.]+)/.exec(part)
    if (m) out[m[1]] = Number(m[2])
  }
  return out
}

/**
 * @param {string} url
 * @param {string} body
 * @param {{ rate: number, duration: number }} o requests per second, seconds
 */
export async function fixedRate(url, body, { rate, duration }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  const { hostname, port, pathname } = new URL(url)
  const n = Math.max(1, Math.round(rate * duration))
  const latencies = []
  const sent = [] // from the moment it was sent: without the loader's own lateness
  const late = [] // how late the loader itself sent each request (timer slack, a busy core)
  const timings = {}
  let bad = 0
  const t0 = performance.now() + 20
  const one = (due) =>
    new Promise((resolve) => {
      const at = performance.now()
      late.push(at - due)
      const req = request(
        {
          agent,
          hostname,
          port,
          path: pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume()
          res.on('end', () => {
            const now = performance.now()
            latencies.push(now - due)
            sent.push(now - at)
            if (res.statusCode !== 200) bad++
            for (const [k, v] of Object.entries(serverTiming(res.headers['server-timing']))) (timings[k] ??= []).push(v)
            resolve()
          })
        },
      )
      req.on('error', () => {
        bad++
        resolve()
      })
      req.end(body)
    })
  const pending = []
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate
    // A timer may fire a little early: wait again rather than send before the request is due.
    for (let wait = due - performance.now(); wait > 0; wait = due - performance.now()) await new Promise((r) => setTimeout(r, wait))
    pending.push(one(due))
  }
  await Promise.all(pending)
  const elapsed = (performance.now() - t0) / 1000
  agent.destroy()
  latencies.sort((a, b) => a - b)
  late.sort((a, b) => a - b)
  sent.sort((a, b) => a - b)
  const server = {}
  for (const [k, v] of Object.entries(timings)) {
    v.sort((a, b) => a - b)
    server[k] = { p50: pct(v, 50), p99: pct(v, 99) }
  }
  return {
    rps: n / elapsed,
    total: n,
    bad,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    max: latencies.at(-1),
    sentP50: pct(sent, 50),
    sentP99: pct(sent, 99),
    loaderLateP99: pct(late, 99),
    server,
  }
}
