/**
 * @module Outbound HTTP for plugins, behind an allow-list: a request (and every redirect) goes
 * out only to a host the embedder listed (`host:port`, `host`, `*.example.com[:port]`), over
 * http or https, with a bounded response body and a time limit. SECURITY: the URL is checked
 * before any socket is opened, so a refused request never reaches the network; no proxy from
 * the environment is used; a redirect to an unlisted host fails the request; the plugin cannot set
 * `Host` or the framing headers.
 */
import { concatBytes } from '../../wasi-host/abi/bytes.js'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { parseDuration, parseSize } from '../units.js'
import type { HttpOptions } from './types.js'

export interface ResolvedHttp {
  allowedHosts: string[]
  maxResponseBytes: number
  timeoutMs: number
  maxRedirects: number
}

export interface HttpCall {
  url: string
  method: string
  headers: Record<string, string>
}

export interface HttpResult {
  status: number
  headers: Record<string, string>
  body: Uint8Array
}

/** Refused or failed: the message names why (never the response of a refused host). */
export class HttpDenied extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'HttpDenied'
  }
}

const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/i

/** Checks and normalises the options. @returns problems, or the resolved options */
export function resolveHttp(o: HttpOptions | undefined): { problems: string[]; http: ResolvedHttp | undefined } {
  if (o === undefined) return { problems: [], http: undefined }
  const problems: string[] = []
  if (!Array.isArray(o.allowedHosts)) problems.push('http.allowedHosts: must be an array of "host:port" or "*.domain" strings')
  const hosts = Array.isArray(o.allowedHosts) ? o.allowedHosts : []
  hosts.forEach((h, i) => {
    if (typeof h !== 'string' || !HOST_PATTERN.test(h))
      problems.push(`http.allowedHosts[${i}]: ${JSON.stringify(h)} is not "host", "host:port" or "*.domain[:port]"`)
  })
  let maxResponseBytes = 1 << 20
  let timeoutMs = 10_000
  try {
    if (o.maxResponseBytes !== undefined) maxResponseBytes = parseSize(o.maxResponseBytes)
  } catch (e) {
    problems.push(`http.maxResponseBytes: ${(e as Error).message}`)
  }
  try {
    if (o.timeout !== undefined) timeoutMs = parseDuration(o.timeout)
  } catch (e) {
    problems.push(`http.timeout: ${(e as Error).message}`)
  }
  const maxRedirects = o.maxRedirects ?? 5
  if (!Number.isInteger(maxRedirects) || maxRedirects < 0 || maxRedirects > 20)
    problems.push('http.maxRedirects: must be an integer from 0 to 20')
  return {
    problems,
    http: problems.length > 0 ? undefined : { allowedHosts: hosts.map((h) => h.toLowerCase()), maxResponseBytes, timeoutMs, maxRedirects },
  }
}

/** Whether `url` may be requested under the allow-list; the reason when not. */
export function allowedUrl(url: URL, allowed: readonly string[]): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `scheme ${url.protocol} is not allowed (http and https only)`
  if (url.username !== '' || url.password !== '') return 'URLs with credentials are not allowed'
  const host = url.hostname.toLowerCase()
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80'
  for (const entry of allowed) {
    const colon = entry.lastIndexOf(':')
    const hasPort = colon > 0 && !entry.endsWith(']') && /^\d+$/.test(entry.slice(colon + 1))
    const pHost = hasPort ? entry.slice(0, colon) : entry
    const pPort = hasPort ? entry.slice(colon + 1) : url.protocol === 'https:' ? '443' : '80'
    if (pPort !== port) continue
    if (pHost.startsWith('*.')) {
      if (host.endsWith(pHost.slice(1)) && host.length > pHost.length - 1) return undefined
    } else if (pHost === host) return undefined
  }
  return `${host}:${port} is not in http.allowedHosts`
}

/**
 * Headers a plugin may not set: `Host` would route the request to another virtual host behind an
 * allowed address (another tenant of a shared front end), and the framing and hop-by-hop ones
 * would let it re-frame the request (smuggling) or open a tunnel. The host sets them itself.
 */
const FORBIDDEN_HEADER = /^(host|content-length|transfer-encoding|connection|keep-alive|upgrade|te|trailer|expect|proxy-.*)$/i

/** Sends one request, following allowed redirects. @throws HttpDenied */
export async function fetchAllowed(http: ResolvedHttp, call: HttpCall, body: Uint8Array | undefined): Promise<HttpResult> {
  const forbidden = Object.keys(call.headers).find((k) => FORBIDDEN_HEADER.test(k))
  if (forbidden !== undefined)
    throw new HttpDenied(`request refused: the header ${JSON.stringify(forbidden.slice(0, 64))} is set by the host`)
  let url: URL
  try {
    url = new URL(call.url)
  } catch {
    throw new HttpDenied(`not a valid URL: ${JSON.stringify(call.url.slice(0, 200))}`)
  }
  const deadline = Date.now() + http.timeoutMs
  let method = call.method
  let payload = body
  for (let hop = 0; ; hop++) {
    const why = allowedUrl(url, http.allowedHosts)
    if (why !== undefined) throw new HttpDenied(hop === 0 ? `request refused: ${why}` : `redirect refused: ${why}`)
    const res = await once(url, method, call.headers, payload, http, deadline)
    if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
      if (hop >= http.maxRedirects) throw new HttpDenied(`too many redirects (more than ${http.maxRedirects})`)
      try {
        url = new URL(res.location, url)
      } catch {
        throw new HttpDenied('redirect to an invalid URL')
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET'
        payload = undefined
      }
      continue
    }
    return { status: res.status, headers: res.headers, body: res.body }
  }
}

function once(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  http: ResolvedHttp,
  deadline: number,
): Promise<HttpResult & { location?: string }> {
  return new Promise((resolve, reject) => {
    const left = deadline - Date.now()
    if (left <= 0) {
      reject(new HttpDenied(`timed out after ${http.timeoutMs} ms`))
      return
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    let done = false
    const finish = (e: Error | undefined, r?: HttpResult & { location?: string }) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (e) {
        req.destroy()
        reject(e)
      } else resolve(r!)
    }
    const req = send(
      url,
      { method, headers: { ...headers, ...(body ? { 'content-length': String(body.byteLength) } : {}) }, agent: false },
      (res: IncomingMessage) => {
        const chunks: Uint8Array[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.byteLength
          if (size > http.maxResponseBytes) {
            res.destroy()
            finish(new HttpDenied(`response larger than http.maxResponseBytes (${http.maxResponseBytes})`))
            return
          }
          chunks.push(c)
        })
        res.on('error', (e) => finish(new HttpDenied(`response failed: ${e.message}`)))
        res.on('end', () => {
          const out = concatBytes(chunks, size)
          const h: Record<string, string> = {}
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : v
          const r: HttpResult & { location?: string } = { status: res.statusCode ?? 0, headers: h, body: out }
          if (typeof res.headers.location === 'string') r.location = res.headers.location
          finish(undefined, r)
        })
      },
    )
    const timer = setTimeout(() => finish(new HttpDenied(`timed out after ${http.timeoutMs} ms`)), left)
    req.on('error', (e) => finish(new HttpDenied(`request failed: ${e.message}`)))
    req.end(body)
  })
}
