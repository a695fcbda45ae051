/**
 * @module The host's own stdio, read and written synchronously (the WASI host is synchronous):
 * EAGAIN on non-blocking pipes is waited out, EPIPE becomes the guest's EPIPE.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { Errno } from '../wasi-host/abi/constants.js'
import { WasiError } from '../wasi-host/errors.js'

const pause = new Int32Array(new SharedArrayBuffer(4))

/** Writes all of `chunk` to a host fd. */
export function writeAllSync(fd: number, chunk: Uint8Array): void {
  let at = 0
  while (at < chunk.byteLength) {
    try {
      at += writeSync(fd, chunk, at, chunk.byteLength - at)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1)
        continue
      }
      // The reader went away (`| head`): the guest sees EPIPE, as a process would.
      if (code === 'EPIPE') throw new WasiError(Errno.PIPE, 'host output closed')
      throw e
    }
  }
}

/**
 * A synchronous reader of this process's stdin, or of a host file (read as the guest reads, so
 * a large input is never held in memory whole).
 */
export function openHostStdin(file?: string): { read: (dst: Uint8Array) => number; close: () => void } {
  let fd = 0
  let owned = false
  if (file !== undefined) {
    try {
      fd = openSync(file, 'r')
    } catch (e) {
      throw new WasiError(Errno.IO, `stdin file: ${(e as NodeJS.ErrnoException).code ?? e}`)
    }
    owned = true
  } else {
    try {
      // A fresh descriptor avoids the non-blocking mode Node may have set on fd 0.
      fd = openSync('/dev/stdin', 'r')
      owned = true
    } catch {
      fd = 0
    }
  }
  let ended = false
  return {
    read: (dst) => {
      if (ended) return 0
      for (;;) {
        try {
          const n = readSync(fd, dst, 0, dst.byteLength, null)
          if (n === 0) ended = true
          return n
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code
          if (code === 'EAGAIN') {
            Atomics.wait(pause, 0, 0, 5)
            continue
          }
          if (code === 'EOF') {
            ended = true
            return 0
          }
          throw new WasiError(Errno.IO, `host stdin: ${code}`)
        }
      }
    },
    close: () => {
      if (owned) {
        owned = false
        closeSync(fd)
      }
    },
  }
}
