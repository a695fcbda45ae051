// Test servers for plugin HTTP, on their own thread: an in-process plugin blocks the test's
// thread while its request is out, so a server there could never answer. Two servers on
// 127.0.0.1 (port 0), one allowed and one that must never be reached; each counts connections.
import { createServer } from 'node:http'
import { parentPort } from 'node:worker_threads'

const stats = { allowed: { connections: 0, requests: [] }, forbidden: { connections: 0, requests: [] } }
const ports = {}
function serve(name, handler) {
  const server = createServer((req, res) => {
    stats[name].requests.push(`${req.method} ${req.url} ${req.headers['x-test'] ?? ''}`)
    handler(req.url ?? '', res)
  })
  server.on('connection', () => {
    stats[name].connections++
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      ports[name] = server.address().port
      resolve(server)
    }),
  )
}
const forbidden = await serve('forbidden', (_u, res) => res.end('secret'))
const allowed = await serve('allowed', (url, res) => {
  if (url === '/hello') res.end('hi there')
  else if (url === '/big') res.end('x'.repeat(300_000))
  else if (url === '/hang') {
    /* never answers */
  } else if (url === '/redirect-in') {
    res.statusCode = 302
    res.setHeader('location', '/hello')
    res.end()
  } else if (url === '/redirect-out') {
    res.statusCode = 302
    res.setHeader('location', `http://127.0.0.1:${ports.forbidden}/`)
    res.end()
  } else {
    res.statusCode = 404
    res.end('nope')
  }
})
parentPort.on('message', (m) => {
  if (m === 'stats') parentPort.postMessage({ type: 'stats', stats })
  if (m === 'close') {
    for (const s of [allowed, forbidden]) {
      s.closeAllConnections()
      s.close()
    }
    parentPort.close()
  }
})
parentPort.postMessage({ type: 'ready', ports })
