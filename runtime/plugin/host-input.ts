/**
 * @module What a host function receives from a plugin, and how its result is turned back into
 * bytes. RLBox's rule: every value read back from the plugin is tainted until checked. A
 * `HostInput` holds a private copy of the bytes (the plugin cannot change them afterwards); its
 * decoders validate (fatal UTF-8, bounded JSON). Never hands a host function a view of guest memory.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()

/** Bytes from the plugin, copied and bounded; decode with the validating helpers. */
export class HostInput {
  readonly #bytes: Uint8Array

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes
  }

  /** A copy of the raw bytes. */
  get bytes(): Uint8Array {
    return this.#bytes.slice()
  }

  get length(): number {
    return this.#bytes.byteLength
  }

  /** The bytes as UTF-8 text. @throws TypeError when they are not valid UTF-8 */
  text(): string {
    try {
      return utf8.decode(this.#bytes)
    } catch {
      throw new TypeError(`plugin passed ${this.#bytes.byteLength} bytes that are not valid UTF-8`)
    }
  }

  /** The bytes as JSON. @throws TypeError (not UTF-8) or SyntaxError (not JSON) */
  json(): unknown {
    return JSON.parse(this.text())
  }
}

/**
 * A host function's result as bytes. @throws TypeError for what cannot be sent back (a
 * function, a symbol, a bigint, a cyclic object, a Promise in a synchronous context).
 */
export function hostOutputBytes(value: unknown): Uint8Array {
  if (value === undefined || value === null) return new Uint8Array(0)
  if (value instanceof Uint8Array) return value.slice()
  if (typeof value === 'string') return encoder.encode(value)
  if (typeof value === 'number' || typeof value === 'boolean' || (typeof value === 'object' && !isThenable(value))) {
    let json: string | undefined
    try {
      json = JSON.stringify(value)
    } catch (e) {
      throw new TypeError(`host function returned a value that cannot be serialised: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (json === undefined) throw new TypeError('host function returned a value JSON cannot represent')
    return encoder.encode(json)
  }
  if (isThenable(value))
    throw new TypeError(
      'host function returned a Promise where only a synchronous result is possible (in-process plugins take synchronous host functions; use isolation "worker")',
    )
  throw new TypeError(`host function returned a ${typeof value}; return bytes, a string, a JSON-able value or nothing`)
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
}
