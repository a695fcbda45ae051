/**
 * @module Runs with sockets. The `net` service that owns the host sockets runs where the async
 * work is done: on this (the embedder's) thread for a worker run, on a bridge helper thread for
 * an in-process run. Either way the grants are opened before the guest starts (a failure is a
 * `NetworkError`, not a guest result), the embedder is told their addresses (`onListen`), and
 * every host socket is released when the run ends, however it ends (the bridge's `dispose`).
 */
import { asBridgeService, NetService, type NetServiceConfig } from '../wasi-host/node/net-service.js'
import type { OpenedSocket } from '../wasi-host/net/remote-sockets.js'
import { NetworkError } from './errors.js'
import { openSockets, type OpenedSockets } from './execute.js'
import { runInWorker, type Command, type RunResult } from './launch.js'
import { runInProcess } from './in-process.js'
import type { PreparedPolicy, ResolvedPolicy } from './policy.js'
import type { ListeningSocket } from './socket-grants.js'
import { BridgeCallError } from './worker/bridge.js'
import { startBridgeHelper, startBridgeHelperSync, type BridgeHelper } from './worker/bridge-helper.js'

/** The service's configuration: plain data (it crosses to a helper thread). */
export function netConfig(policy: ResolvedPolicy): NetServiceConfig {
  const l = policy.limits
  return {
    grants: policy.sockets,
    ...(l.connections !== undefined ? { maxConnections: l.connections } : {}),
    ...(l.idleTimeoutMs !== undefined ? { idleTimeoutMs: l.idleTimeoutMs } : {}),
  }
}

/** The first socket's descriptor: after stdio and the mounts. */
function firstSocketFd(policy: ResolvedPolicy): number {
  return 3 + policy.mounts.length
}

function listening(opened: readonly OpenedSocket[], first: number): ListeningSocket[] {
  return opened.map((o, i) => ({ role: o.role, address: o.address, fd: first + i, ...(o.name !== undefined ? { name: o.name } : {}) }))
}

/** Runs in a worker, with the sockets served from this thread. @throws NetworkError */
export async function runInWorkerWithSockets(command: Command, run: PreparedPolicy): Promise<RunResult> {
  const service = new NetService(netConfig(run.policy))
  let opened: OpenedSocket[]
  try {
    opened = await service.start()
    run.signal?.throwIfAborted()
    run.onListen?.(listening(opened, firstSocketFd(run.policy)))
  } catch (e) {
    await service.dispose()
    if (run.signal?.aborted || !(e instanceof Error) || e.cause === undefined) throw e
    throw new NetworkError(`cannot open the granted socket: ${e.message}`, { cause: e })
  }
  const result = await runInWorker(command, run, { net: asBridgeService(service) })
  // Counted on this thread: right even when the worker was stopped (timeout, abort).
  result.stats.sockets = service.counters()
  return result
}

function openOver(helper: BridgeHelper, run: PreparedPolicy): OpenedSockets {
  let sockets: OpenedSockets
  try {
    sockets = openSockets(helper.channel, run.policy, firstSocketFd(run.policy))
  } catch (e) {
    if (e instanceof BridgeCallError) throw new NetworkError(`cannot open the granted socket: ${e.message}`, { cause: e })
    throw e
  }
  run.onListen?.(sockets.addresses)
  return sockets
}

const helperSpec = (run: PreparedPolicy) => [{ name: 'net', factory: 'net', config: netConfig(run.policy) }]

/** Runs on this thread, the sockets served by a helper thread. @throws NetworkError */
export async function runInProcessWithSockets(command: Command, run: PreparedPolicy): Promise<RunResult> {
  const helper = await startBridgeHelper(helperSpec(run))
  try {
    return runInProcess(command, run, openOver(helper, run))
  } finally {
    await helper.close()
  }
}

/** `runInProcessWithSockets`, synchronously; the helper thread releases the sockets as it exits. */
export function runSyncWithSockets(command: Command, run: PreparedPolicy): RunResult {
  const helper = startBridgeHelperSync(helperSpec(run))
  try {
    return runInProcess(command, run, openOver(helper, run))
  } finally {
    void helper.close()
  }
}
