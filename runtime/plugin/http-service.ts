/**
 * @module The `http` bridge service: a plugin's HTTP request, sent from the embedder's thread (worker
 * plugins) or a helper thread (in-process plugins) through the allow-list in `http.ts`. Its config
 * is the resolved HTTP options (plain data). Never sends a request the allow-list refuses.
 */
import type { ServedService } from '../worker/bridge.js'
import { fetchAllowed, type ResolvedHttp } from './http.js'

export function create(config: unknown): ServedService {
  const http = config as ResolvedHttp
  const controllers = new Set<AbortController>()
  return {
    request: async (args: { url?: unknown; method?: unknown; headers?: unknown }, bytes) => {
      // The arguments come from the guest's thread: checked again here.
      if (typeof args !== 'object' || args === null || typeof args.url !== 'string' || typeof args.method !== 'string')
        throw new Error('malformed request')
      const headers: Record<string, string> = {}
      if (typeof args.headers === 'object' && args.headers !== null) {
        for (const [k, v] of Object.entries(args.headers)) if (typeof v === 'string') headers[k] = v
      }
      const res = await fetchAllowed(http, { url: args.url, method: args.method, headers }, bytes)
      return { value: { status: res.status }, bytes: res.body }
    },
    dispose: () => {
      for (const c of controllers) c.abort()
    },
  }
}
