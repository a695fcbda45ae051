/**
 * @module The services a plugin engine gets when what it calls lives on another thread: host
 * functions, HTTP and logs as blocking calls over the synchronous bridge. Loaded by the plugin's
 * worker, so it stays small (no embedder-side code). A failed remote call fails the plugin call.
 */
import { BridgeCallError, BridgeClient, type BridgeChannel } from '../worker/bridge.js'
import type { EngineServices } from './engine.js'
import { PluginAbort, type HttpRequestSpec } from './extism-kernel.js'

/** An HTTP request through a bridge (`http.request`); a refusal fails the call with its reason. */
export function httpOverBridge(
  client: BridgeClient | undefined,
  request: HttpRequestSpec,
  body: Uint8Array | undefined,
): { status: number; body: Uint8Array } {
  if (client === undefined) throw new PluginAbort('plugin', 'http_request: HTTP is not granted (set http.allowedHosts)')
  try {
    const r = client.call('http', 'request', request, body)
    const status = (r.value as { status?: unknown } | null)?.status
    return { status: typeof status === 'number' ? status : 0, body: r.bytes ?? new Uint8Array(0) }
  } catch (e) {
    throw new PluginAbort('plugin', `http_request: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** The worker-side services: everything crosses to the embedder through the bridge. */
export function bridgedServices(channel: BridgeChannel, hasLog: boolean): EngineServices {
  const client = new BridgeClient(channel)
  return {
    host: (name, inputs) => {
      let total = 0
      for (const i of inputs) total += i.length
      const all = new Uint8Array(total)
      let at = 0
      for (const i of inputs) {
        all.set(i.bytes, at)
        at += i.length
      }
      try {
        return client.call('host', 'call', { name, lengths: inputs.map((i) => i.length) }, all).bytes ?? new Uint8Array(0)
      } catch (e) {
        const message =
          e instanceof BridgeCallError ? e.message : `host function ${name} failed: ${e instanceof Error ? e.message : String(e)}`
        throw new PluginAbort('host', message, name)
      }
    },
    http: (request, body) => httpOverBridge(client, request, body),
    log: (level, message) => {
      if (!hasLog) return
      try {
        client.call('log', 'write', { level, message: message.slice(0, 64 * 1024) })
      } catch {
        /* dropped */
      }
    },
  }
}
