/**
 * @module The bridge services a helper thread can build for in-process runs, by name. Each entry
 * loads a module whose `create(config)` builds the service from serialisable config inside the
 * helper thread (embedder closures cannot cross threads). Nothing here is reachable by a guest:
 * only the embedder's policy names which services a run gets.
 */
import type { ServedService } from './bridge.js'

export interface BridgeServiceFactory {
  create(config: unknown): ServedService | Promise<ServedService>
}

export const BRIDGE_SERVICES: Record<string, () => Promise<BridgeServiceFactory>> = {}
