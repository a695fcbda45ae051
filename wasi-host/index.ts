/**
 * @module The platform-neutral WASI preview1 host: what the runtime and embedders import.
 * Nothing here imports `node:`; Node-only backends live in `wasi-host/node/`.
 */
export { WasiHost, WASI_PREVIEW1_FUNCTIONS } from './host.js'
export type { PreopenSpec, StdinSource, WasiHostOptions, WasiImports } from './host.js'
/** A stdout/stderr writer that drops the bytes (and lets `fd_write` skip reading them). */
export { discardWriter } from './fd-table.js'
export type { StreamReader, StreamWriter } from './fd-table.js'
export type { ClockSource, HeldOutput, HostLimits, HostStats } from './host-state.js'
export { createPortableClocks, platformRandomFill } from './clocks.js'
export { Errno, errnoName, Filetype, Rights } from './abi/constants.js'
export { GuestFault, HostInvariantError, LimitExceeded, ProcExit, WasiError } from './errors.js'
export type { DirEntry, DirHandle, FileHandle, Filesystem, NodeStat, OpenFileOptions, TimeSpec } from './fs/filesystem.js'
export { createMemFs, memFsFromTree } from './fs/mem-fs.js'
export { readOnly } from './fs/read-only.js'
export { createOverlayFs } from './fs/overlay.js'
export type { OverlayChange, OverlayFs } from './fs/overlay.js'
export { createQuotaUsage, MOUNT_QUOTA, withQuota } from './fs/quota.js'
export type { Quota, QuotaUsage } from './fs/quota.js'
export type { MountMode } from './rights.js'
export { escapeControlCharacters, quoteGuestString } from './trace/escape.js'
export { formatTraceJson, formatTraceSummary, formatTraceText, TRACE_SUMMARY_SLOTS, traceImports, TraceSummary } from './trace/tracer.js'
export type { TraceEmit, TraceEvent, TraceValue } from './trace/tracer.js'
export type { DenialEvent, DenialEventKind } from './denials.js'
export type {
  ConnectionSocket,
  ListenerSocket,
  RecvOptions,
  SocketBackend,
  SocketGrant,
  SocketHandle,
  SocketInterest,
  SocketReadiness,
} from './net/sockets.js'
