/**
 * @module Entry of the bridge helper thread (`dist/bridge-helper.js`): builds the services it was
 * given, reports readiness on the channel, serves until the embedder says `close`, then disposes
 * them and exits.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { BridgeServer, reportHelperStart, type ServedService } from './bridge.js'
import type { HelperData } from './bridge-helper.js'
import { BRIDGE_SERVICES, type BridgeServiceFactory } from './bridge-services.js'

async function load(factory: string): Promise<BridgeServiceFactory> {
  if (factory.startsWith('file:')) return (await import(factory)) as BridgeServiceFactory
  const entry = Object.hasOwn(BRIDGE_SERVICES, factory) ? BRIDGE_SERVICES[factory] : undefined
  if (!entry) throw new Error(`unknown bridge service factory: ${factory}`)
  return entry()
}

async function main(): Promise<void> {
  const { channel, services } = workerData as HelperData
  const built: Record<string, ServedService> = {}
  try {
    for (const spec of services) built[spec.name] = await (await load(spec.factory)).create(spec.config)
  } catch (e) {
    for (const s of Object.values(built)) await Promise.resolve(s.dispose?.()).catch(() => {})
    reportHelperStart(channel, e instanceof Error ? e.message : String(e))
    return
  }
  const server = new BridgeServer(channel, built)
  parentPort!.on('message', (m) => {
    if (m === 'close')
      void server
        .close()
        .catch(() => {})
        .finally(() => process.exit(0))
  })
  reportHelperStart(channel)
  await server.serve()
}

void main()
