/**
 * @module The helper thread of an in-process run: the caller's thread runs the guest and blocks
 * in bridge calls, so the asynchronous services (sockets, …) run on a thread of their own. The
 * helper builds them from serialisable specs (a name in `BRIDGE_SERVICES`, or a `file:` module URL
 * exporting `create(config)`) and serves the channel until `close()`. It must never outlive the
 * run: `close()` disposes the services and ends the thread.
 */
import { Worker } from 'node:worker_threads'
import { createBridge, helperFailure, helperState, HELPER_FAILED, HELPER_STARTING, waitAsync, type BridgeChannel } from './bridge.js'
import { builtScript } from './built-script.js'

/** One service for the helper to build: `factory` is a `BRIDGE_SERVICES` name or a `file:` URL. */
export interface HelperServiceSpec {
  name: string
  factory: string
  config?: unknown
}

export interface BridgeHelper {
  readonly channel: BridgeChannel
  /** Disposes the services and ends the thread; resolves once it has exited. */
  close(): Promise<void>
}

/** What the helper thread receives. */
export interface HelperData {
  channel: BridgeChannel
  services: HelperServiceSpec[]
}

const START_TIMEOUT_MS = 30_000
const CLOSE_TIMEOUT_MS = 5_000

function spawn(
  services: HelperServiceSpec[],
  capacity: number | undefined,
): { channel: BridgeChannel; worker: Worker; helper: BridgeHelper } {
  const channel = createBridge(capacity === undefined ? {} : { capacity })
  const data: HelperData = { channel, services }
  const worker = new Worker(builtScript('bridge-helper.js'), { workerData: data, stdout: false, stderr: false })
  let exited = false
  const exit = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      exited = true
      resolve()
    }),
  )
  // An error event after close is the thread's own business; it must not crash the embedder.
  worker.on('error', () => {})
  let closing: Promise<void> | undefined
  const helper: BridgeHelper = {
    channel,
    close: () =>
      (closing ??= (async () => {
        if (exited) return
        worker.postMessage('close')
        const timer = setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT_MS)
        await exit
        clearTimeout(timer)
      })()),
  }
  return { channel, worker, helper }
}

function failed(worker: Worker, why: string): Error {
  void worker.terminate()
  return new Error(`[caplet] the bridge helper thread did not start: ${why}`)
}

/** Starts a helper thread and waits (without blocking this thread) until its services are built. */
export async function startBridgeHelper(
  services: HelperServiceSpec[],
  options: { capacity?: number; unref?: boolean } = {},
): Promise<BridgeHelper> {
  const { channel, worker, helper } = spawn(services, options.capacity)
  // A helper that lives as long as an embedder's object (a plugin) must not hold the process open by itself.
  if (options.unref) worker.unref()
  const state = helperState(channel)
  const wait = waitAsync(state, 0, HELPER_STARTING, START_TIMEOUT_MS)
  if (wait.async && (await wait.value) === 'timed-out') throw failed(worker, 'timed out')
  if (Atomics.load(state, 0) === HELPER_FAILED) throw failed(worker, helperFailure(channel))
  return helper
}

/** `startBridgeHelper` for a synchronous caller (`runSync`): blocks this thread until the helper is ready. */
export function startBridgeHelperSync(services: HelperServiceSpec[], options: { capacity?: number; unref?: boolean } = {}): BridgeHelper {
  const { channel, worker, helper } = spawn(services, options.capacity)
  // A helper that lives as long as an embedder's object (a plugin) must not hold the process open by itself.
  if (options.unref) worker.unref()
  const state = helperState(channel)
  if (Atomics.wait(state, 0, HELPER_STARTING, START_TIMEOUT_MS) === 'timed-out') throw failed(worker, 'timed out')
  if (Atomics.load(state, 0) === HELPER_FAILED) throw failed(worker, helperFailure(channel))
  return helper
}
