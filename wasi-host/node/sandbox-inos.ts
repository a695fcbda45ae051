/**
 * @module The sandbox's own inode numbers for the host nodes one mount has seen: each distinct
 * host (dev, ino) pair gets the next number of a per-mount counter, stable for the mount's life
 * (docs/internals.md, "Sandbox inode numbers").
 *
 * SECURITY: host inode numbers (which reveal host layout and allocation) never reach the guest,
 * and a rounded number is never used as an identity.
 */

/** A host dev or ino as a key: the number where it is exact, else the bigint. */
type HostId = number | bigint

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

function hostId(v: bigint): HostId {
  return v <= MAX_SAFE ? Number(v) : v
}

export class SandboxInos {
  /** host dev -> host ino -> sandbox ino. */
  readonly #inos = new Map<HostId, Map<HostId, bigint>>()
  /** The last device looked up and its table: nearly every lookup of a mount is on one device. */
  #lastDev: HostId | undefined = undefined
  #lastInos: Map<HostId, bigint> | undefined = undefined
  #next = 1n

  /** The sandbox inode of the host node (dev, ino), from a `BigIntStats`. */
  of(dev: bigint, ino: bigint): bigint {
    return this.#lookup(hostId(dev), hostId(ino))
  }

  /**
   * The same from a number `Stats`, or undefined when a value is past 2^53 (the double may be
   * rounded: stat again with `bigint`).
   */
  ofNumbers(dev: number, ino: number): bigint | undefined {
    if (!(dev <= Number.MAX_SAFE_INTEGER && ino <= Number.MAX_SAFE_INTEGER)) return undefined
    return this.#lookup(dev, ino)
  }

  #lookup(dev: HostId, ino: HostId): bigint {
    let inos = this.#lastInos
    if (dev !== this.#lastDev || inos === undefined) {
      inos = this.#inos.get(dev)
      if (inos === undefined) this.#inos.set(dev, (inos = new Map()))
      this.#lastDev = dev
      this.#lastInos = inos
    }
    let own = inos.get(ino)
    if (own === undefined) {
      own = this.#next++
      inos.set(ino, own)
    }
    return own
  }
}
