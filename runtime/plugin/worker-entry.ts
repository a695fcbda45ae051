/**
 * @module Entry of a plugin's worker (`dist/plugin-worker.js`): builds the engine from the
 * configuration it receives (a compiled module and plain data), then runs calls one at a time and
 * posts each outcome. Host functions, HTTP and logs cross to the embedder through the bridge.
 * Never posts anything but typed messages; never lets a call's failure end the thread.
 */
import { parentPort } from 'node:worker_threads'
import { PluginEngine } from './engine.js'
import { bridgedServices } from './bridged-services.js'
import type { FromPluginWorker, ToPluginWorker } from './plugin-worker.js'

let engine: PluginEngine | undefined
const post = (m: FromPluginWorker, transfer?: ArrayBuffer[]) => parentPort!.postMessage(m, transfer)

parentPort!.on('message', (m: ToPluginWorker) => {
  if (m?.type === 'init') {
    try {
      engine = new PluginEngine(m.cfg, bridgedServices(m.channel, m.log))
      post({ type: 'ready' })
    } catch (e) {
      post({ type: 'failed', message: e instanceof Error ? e.message : String(e) })
    }
  } else if (m?.type === 'call' && engine !== undefined) {
    // The outcome goes out first and the reset follows, off the caller's path: messages are
    // handled one at a time, so the next call still starts from the restored state.
    const outcome = engine.call(m.req, true)
    // The cause (an Error object of this thread) does not travel; its message does.
    if (!outcome.ok) delete outcome.cause
    post({ type: 'result', id: m.id, outcome }, outcome.ok ? [outcome.output.buffer as ArrayBuffer] : undefined)
    engine.reset()
  }
})
