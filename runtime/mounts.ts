/**
 * @module Opens the mounts a policy names, with their modes and quotas: a host directory
 * (read-only or read-write), an overlay (reads from the host directory, every change kept in a
 * private in-memory layer), or an in-memory scratch directory. After the run, overlays report
 * their changes and are exported or applied if the policy asks.
 */
import {
  createMemFs,
  createOverlayFs,
  createQuotaUsage,
  readOnly,
  MOUNT_QUOTA,
  withQuota,
  type Filesystem,
  type OverlayChange,
  type OverlayFs,
  type PreopenSpec,
  type QuotaUsage,
} from '../wasi-host/index.js'
import { applyOverlay, createHostDirFs, exportOverlay } from '../wasi-host/node/index.js'
import type { ResolvedPolicy } from './policy.js'

/** What an overlay mount left behind. */
export interface OverlayReport {
  guest: string
  changes: OverlayChange[]
  /** Where the changes were exported (`saveTo`), if asked. */
  savedTo?: string
  /** Whether the changes were written back to the host directory (`apply`). */
  applied?: boolean
  /** Why exporting or applying failed, if it did (the run's own result stands). */
  error?: string
}

export interface OpenedMounts {
  preopens: readonly PreopenSpec[]
  /** What the caller should know about how the mounts are confined. */
  warnings: readonly string[]
  /** Exports/applies overlays as asked and reports their changes. */
  finish(): OverlayReport[]
  close(): void
}

const NONE: readonly never[] = Object.freeze([])
/** A run without mounts (most short runs): nothing to open, report or close. */
const NO_MOUNTS: OpenedMounts = Object.freeze({ preopens: NONE, warnings: NONE, finish: () => [], close: () => {} })

/**
 * @param given backends passed as objects (in-process runs), by mount index.
 * @param now the clock of in-memory layers (virtual in deterministic runs).
 */
export function openMounts(policy: ResolvedPolicy, given: readonly (Filesystem | undefined)[], now?: () => bigint): OpenedMounts {
  if (policy.mounts.length === 0) return NO_MOUNTS
  const closers: (() => void)[] = []
  const overlays: { guest: string; fs: OverlayFs; saveTo?: string; apply?: boolean; host: string }[] = []
  const total: QuotaUsage = createQuotaUsage()
  const memOptions = now ? { now } : {}
  const warnings: string[] = []
  const l = policy.limits
  const preopens = policy.mounts.map((m, i): PreopenSpec => {
    // Per-mount quota inside, the run's total outside: a change must fit both. (The policy
    // gives in-memory layers a default size: they are host memory.)
    const bytes = m.bytes
    const perMount = createQuotaUsage()
    const charged = (fs: Filesystem): Filesystem => {
      let f = fs
      if (bytes !== undefined || m.inodes !== undefined)
        f = withQuota(f, { ...limitsOf(bytes, m.inodes), usage: perMount, scope: MOUNT_QUOTA })
      if (l.diskBytes !== undefined || l.inodes !== undefined) f = withQuota(f, { ...limitsOf(l.diskBytes, l.inodes), usage: total })
      return f
    }
    let fs: Filesystem
    if (m.host !== undefined) {
      const hostFs = createHostDirFs(m.host)
      closers.push(() => hostFs.close())
      if (hostFs.strategy === 'fallback' && m.mode !== 'ro') {
        warnings.push(
          `${m.guest}: /proc/self/fd is unavailable, so lookups are checked rather than anchored; another host process renaming directories inside ${m.host} during the run could race them`,
        )
      } else if (hostFs.strategy === 'fallback') {
        warnings.push(
          `${m.guest}: /proc/self/fd is unavailable; lookups are checked rather than anchored (see the README's security model)`,
        )
      }
      if (m.mode === 'overlay') {
        // SECURITY: the lower layer is read-only twice over: the overlay never writes it, and
        // the wrapper would refuse if it tried. Every byte the overlay stores (copy-ups and
        // scratch copies included) lands in a charged layer.
        const overlay = createOverlayFs(readOnly(hostFs), {
          upper: charged(createMemFs(memOptions)),
          scratch: charged(createMemFs(memOptions)),
          ...(now ? { now } : {}),
        })
        overlays.push({
          guest: m.guest,
          fs: overlay,
          host: m.host,
          ...(m.saveTo !== undefined ? { saveTo: m.saveTo } : {}),
          ...(m.apply ? { apply: true } : {}),
        })
        return { guestPath: m.guest, fs: overlay, mode: 'rw' }
      }
      fs = hostFs
    } else fs = given[i] ?? createMemFs(memOptions)
    return { guestPath: m.guest, fs: m.mode === 'ro' ? fs : charged(fs), mode: m.mode === 'ro' ? 'ro' : 'rw' }
  })
  return {
    preopens,
    warnings,
    finish: () =>
      overlays.map((o) => {
        const report: OverlayReport = { guest: o.guest, changes: o.fs.changes() }
        try {
          if (o.saveTo !== undefined) {
            exportOverlay(o.fs, o.saveTo)
            report.savedTo = o.saveTo
          }
          if (o.apply) {
            applyOverlay(o.fs, o.host)
            report.applied = true
          }
        } catch (e) {
          report.error = e instanceof Error ? e.message : String(e)
        }
        return report
      }),
    close: () => {
      for (const c of closers.reverse()) c()
    },
  }
}

function limitsOf(bytes: number | undefined, inodes: number | undefined): { bytes?: number; inodes?: number } {
  return { ...(bytes !== undefined ? { bytes } : {}), ...(inodes !== undefined ? { inodes } : {}) }
}
