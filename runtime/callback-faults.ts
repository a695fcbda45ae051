/**
 * @module An embedder's callbacks (stdout, stderr, trace lines) that throw, on the thread that
 * delivers a worker's messages: each throw is caught and counted, never let out of the message
 * handler (where it would be an uncaught exception in the embedder's process or page), and the
 * result carries one warning per callback. The run goes on; captured output is kept.
 */
export class CallbackFaults {
  readonly #threw = new Map<string, { message: string; count: number }>()

  /** `afterwards`: what the warning says happened next (what the result still holds). */
  constructor(private readonly afterwards = 'the run went on') {}

  /** Calls `fn(v)` when given, catching what it throws. */
  deliver<T>(name: string, fn: ((v: T) => void) | undefined, v: T): void {
    if (fn === undefined) return
    try {
      fn(v)
    } catch (e) {
      const seen = this.#threw.get(name)
      if (seen !== undefined) seen.count++
      else this.#threw.set(name, { message: e instanceof Error ? e.message : String(e), count: 1 })
    }
  }

  /** One line per callback that threw. */
  warnings(): string[] {
    return [...this.#threw].map(
      ([name, { message, count }]) =>
        `${name} threw ${count === 1 ? 'once' : `${count} times`} (first: ${message.slice(0, 200)}); ${this.afterwards}`,
    )
  }
}
