/**
 * @module WebAssembly text to binary with `wabt` (WABT compiled to wasm), run inside the compiler
 * worker (`compiler-worker-entry.ts`) so a pathological module is stopped at the time limit.
 * Gets the text as data, never reads the disk. Errors come back as wabt's message text.
 */

export interface WatJob {
  kind: 'wat'
  entry: string
  text: string
  debug: boolean
}

export type WatReply = { ok: true; module: Uint8Array } | { ok: false; message: string }

/** Every feature wabt knows that V8 ships, so modules written for today's engines parse. */
const FEATURES = {
  mutable_globals: true,
  sat_float_to_int: true,
  sign_extension: true,
  simd: true,
  threads: true,
  multi_value: true,
  tail_call: true,
  bulk_memory: true,
  reference_types: true,
  exceptions: false,
  extended_const: true,
  relaxed_simd: false,
  gc: false,
  memory64: false,
  multi_memory: true,
}

export async function runWat(job: WatJob): Promise<WatReply> {
  // wabt is CommonJS (`export =`): its function arrives as the namespace's default.
  const w = await ((await import('wabt')) as unknown as { default: typeof import('wabt') }).default()
  let mod: ReturnType<typeof w.parseWat> | undefined
  try {
    mod = w.parseWat(job.entry, job.text, FEATURES)
    mod.resolveNames()
    mod.validate()
    const { buffer } = mod.toBinary({ log: false, write_debug_names: job.debug })
    return { ok: true, module: buffer }
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) }
  } finally {
    mod?.destroy()
  }
}
