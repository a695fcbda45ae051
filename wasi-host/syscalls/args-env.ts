/**
 * @module args_get, args_sizes_get, environ_get, environ_sizes_get.
 * Sizes come from the encoded UTF-8 bytes (plus a NUL each), never from UTF-16 lengths.
 */
import { Errno } from '../abi/constants.js'
import type { HostState } from '../host-state.js'

function sizes(h: HostState, list: readonly Uint8Array[], countPtr: number, sizePtr: number): number {
  let total = 0
  for (const s of list) total += s.byteLength + 1
  h.memory.check(countPtr, 4, 4)
  h.memory.check(sizePtr, 4, 4)
  h.memory.setU32(countPtr, list.length)
  h.memory.setU32(sizePtr, total)
  return Errno.SUCCESS
}

function get(h: HostState, list: readonly Uint8Array[], ptrsPtr: number, bufPtr: number): number {
  let total = 0
  for (const s of list) total += s.byteLength + 1
  const m = h.memory
  m.checkArray(ptrsPtr, list.length, 4, 4)
  m.check(bufPtr, total)
  let at = bufPtr
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!
    m.setU32(ptrsPtr + i * 4, at)
    m.write(at, s)
    m.setU8(at + s.byteLength, 0)
    at += s.byteLength + 1
  }
  return Errno.SUCCESS
}

export function args_sizes_get(h: HostState, argcPtr: number, bufSizePtr: number): number {
  return sizes(h, h.args, argcPtr, bufSizePtr)
}
export function args_get(h: HostState, argvPtr: number, bufPtr: number): number {
  return get(h, h.args, argvPtr, bufPtr)
}
export function environ_sizes_get(h: HostState, countPtr: number, bufSizePtr: number): number {
  return sizes(h, h.env, countPtr, bufSizePtr)
}
export function environ_get(h: HostState, environPtr: number, bufPtr: number): number {
  return get(h, h.env, environPtr, bufPtr)
}
