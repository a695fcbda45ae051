/**
 * @module Entry of a plugin's worker (`dist/plugin-worker.js`): builds the engine from the
 * configuration it receives (a compiled module and plain data), then serves calls one at a time
 * on the call channel (blocking between calls). Host functions, HTTP and logs cross to the
 * embedder through the bridge. Never lets a call's failure end the thread.
 */
import { parentPort } from 'node:worker_threads'
import { PluginEngine } from './engine.js'
import { bridgedServices } from './bridged-services.js'
import { serveCalls } from './call-channel.js'
import type { FromPluginWorker, ToPluginWorker } from './plugin-worker.js'

const post = (m: FromPluginWorker) => parentPort!.postMessage(m)

parentPort!.once('message', (m: ToPluginWorker) => {
  if (m?.type !== 'init') return
  let engine: PluginEngine
  try {
    engine = new PluginEngine(m.cfg, bridgedServices(m.channel, m.log))
  } catch (e) {
    post({ type: 'failed', message: e instanceof Error ? e.message : String(e) })
    return
  }
  post({ type: 'ready' })
  // The outcome goes out first and the reset follows, off the caller's path: the next call
  // is read only after it, so it still starts from the restored state.
  setImmediate(() =>
    serveCalls(
      m.calls,
      m.port,
      (req) => engine.call(req, true),
      () => engine.reset(),
    ),
  )
})
