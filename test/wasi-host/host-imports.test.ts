/**
 * The import object a host builds (`functions`: only what a module imports) and the per-call
 * counters it reports (`stats.syscalls`: every function; `stats.made()`: the ones called), and
 * `detach`: imports that outlive their run let go of the host.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { ProcExit, WASI_PREVIEW1_FUNCTIONS, WasiHost } from '../../wasi-host/index.js'

describe('WasiHost imports', () => {
  it('has every preview1 function by default', () => {
    expect(Object.keys(new WasiHost().imports.wasi_snapshot_preview1).sort()).toEqual([...WASI_PREVIEW1_FUNCTIONS].sort())
  })

  it('builds only the functions named in `functions`, which work as the full set does', () => {
    const chunks: string[] = []
    const host = new WasiHost({ functions: ['fd_write', 'proc_exit'], stdout: (c) => chunks.push(new TextDecoder().decode(c)) })
    const table = host.imports.wasi_snapshot_preview1
    expect(Object.keys(table).sort()).toEqual(['fd_write', 'proc_exit'])
    const mem = new WebAssembly.Memory({ initial: 1 })
    host.memory.bind(mem)
    const view = new DataView(mem.buffer)
    new Uint8Array(mem.buffer).set(new TextEncoder().encode('hi\n'), 64)
    view.setUint32(0, 64, true) // one iovec at 0: { buf 64, len 3 }
    view.setUint32(4, 3, true)
    expect(table.fd_write!(...([1, 0, 1, 16] as never[]))).toBe(0)
    expect(chunks.join('')).toBe('hi\n')
    expect(() => table.proc_exit!(...([5] as never[]))).toThrow(ProcExit)
  })

  it('refuses a name that is not a preview1 function', () => {
    expect(() => new WasiHost({ functions: ['fd_write', 'fd_steal'] })).toThrow(/not a wasi_snapshot_preview1 function: fd_steal/)
  })
})

describe('WasiHost stats', () => {
  it('counts per function: `syscalls` lists every function, `made()` only those called', () => {
    const host = new WasiHost()
    host.memory.bind(new WebAssembly.Memory({ initial: 1 }))
    const table = host.imports.wasi_snapshot_preview1
    table.sched_yield!()
    table.sched_yield!()
    table.fd_close!(...([99] as never[]))
    expect(host.stats.made()).toEqual({ sched_yield: 2, fd_close: 1 })
    expect(host.stats.syscalls.sched_yield).toBe(2)
    expect(host.stats.syscalls.fd_write).toBe(0)
    expect(Object.keys(host.stats.syscalls)).toHaveLength(WASI_PREVIEW1_FUNCTIONS.length)
  })

  it('detach: the imports let go of the host and its output, and a later call cannot reach either', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const seen: Uint8Array[] = []
    const make = (detach: boolean) => {
      const host = new WasiHost({ functions: ['fd_write', 'clock_time_get'], stdout: (c) => seen.push(c) })
      host.memory.bind(new WebAssembly.Memory({ initial: 1 }))
      if (detach) host.detach()
      return { table: host.imports.wasi_snapshot_preview1, ref: new WeakRef(host) }
    }
    const kept = make(false)
    const gone = make(true)
    // A hostile guest keeping its instance calls on after the run: it throws, and writes nothing.
    expect(() => gone.table.fd_write!(...([1, 0, 1, 16] as never[]))).toThrow(TypeError)
    expect(() => gone.table.clock_time_get!(...([0, 0n, 0] as never[]))).toThrow(TypeError)
    expect(seen).toEqual([])
    await new Promise((r) => setTimeout(r, 0)) // WeakRef targets are kept until the job ends
    gc()
    expect(gone.ref.deref()).toBeUndefined()
    expect(kept.ref.deref()).toBeInstanceOf(WasiHost)
    expect(kept.table.clock_time_get!(...([0, 0n, 0] as never[]))).toBe(0)
  })
})
