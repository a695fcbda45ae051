/**
 * @module Who may run what: bearer tokens (looked up by their sha256, so the comparison never
 * depends on how much of a secret matched), each with a concurrency cap (runs queued or running)
 * and a token-bucket rate. Refusals are 401 (no or unknown token) and 429 with Retry-After.
 * It must never log a token, and never let a refused request hold a slot.
 */
import { sha256Hex, type ServiceConfig, type TokenPolicy } from './config.js'
import { ApiError } from './errors.js'

export const ANONYMOUS: TokenPolicy = {
  name: 'anonymous',
  sha256: '',
  concurrency: Number.MAX_SAFE_INTEGER,
  ratePerSecond: Number.MAX_SAFE_INTEGER,
  burst: Number.MAX_SAFE_INTEGER,
}

interface Bucket {
  tokens: number
  at: number
  inFlight: number
}

export class Admission {
  readonly #byHash = new Map<string, TokenPolicy>()
  readonly #buckets = new Map<string, Bucket>()

  constructor(readonly config: ServiceConfig) {
    for (const t of config.tokens) this.#byHash.set(t.sha256, t)
  }

  get open(): boolean {
    return this.config.tokens.length === 0
  }

  /** The caller's token policy. @throws ApiError 401 */
  authenticate(header: string | undefined): TokenPolicy {
    if (this.open) return ANONYMOUS
    const m = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/.exec(header)
    const policy = m ? this.#byHash.get(sha256Hex(m[1]!)) : undefined
    if (!policy)
      throw new ApiError(
        401,
        'unauthorized',
        header === undefined ? 'an Authorization: Bearer token is required' : 'the bearer token is not valid',
      )
    return policy
  }

  /**
   * Who may read `/metrics`: the metrics token when one is configured, else any API token;
   * anyone when neither is (a loopback-only server). @throws ApiError 401
   */
  authenticateMetrics(header: string | undefined): void {
    const want = this.config.metricsTokenSha256
    if (want === undefined) {
      this.authenticate(header)
      return
    }
    const m = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/.exec(header)
    if (!m || sha256Hex(m[1]!) !== want) {
      throw new ApiError(
        401,
        'unauthorized',
        header === undefined
          ? '/metrics needs an Authorization: Bearer token (the metrics token)'
          : 'the bearer token is not the metrics token',
      )
    }
  }

  /**
   * Takes `n` runs from the token's rate and concurrency; `release` gives each run's slot back
   * when it ends. @throws ApiError 429
   */
  acquire(token: TokenPolicy, n: number): () => void {
    if (token === ANONYMOUS) return () => {}
    const now = Date.now()
    let b = this.#buckets.get(token.name)
    if (!b) this.#buckets.set(token.name, (b = { tokens: token.burst, at: now, inFlight: 0 }))
    b.tokens = Math.min(token.burst, b.tokens + ((now - b.at) / 1000) * token.ratePerSecond)
    b.at = now
    if (b.inFlight + n > token.concurrency) {
      throw new ApiError(
        429,
        'too-many-runs',
        `this token may have ${token.concurrency} runs in flight; it has ${b.inFlight}`,
        undefined,
        1,
      )
    }
    if (b.tokens < n) {
      const wait = n > token.burst ? Infinity : Math.ceil((n - b.tokens) / token.ratePerSecond)
      if (wait === Infinity)
        throw new ApiError(429, 'rate-limited', `a batch of ${n} runs exceeds this token's burst of ${token.burst}`, undefined, 60)
      throw new ApiError(429, 'rate-limited', `this token may start ${token.ratePerSecond} runs per second`, undefined, Math.max(1, wait))
    }
    b.tokens -= n
    b.inFlight += n
    let left = n
    const bucket = b
    return () => {
      if (left > 0) {
        left--
        bucket.inFlight--
      }
    }
  }
}
