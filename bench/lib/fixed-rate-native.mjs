// The open-loop loader of fixed-rate.mjs, as a C program (fixed-rate.c) built here with clang-19:
// the same schedule and the same measurement, for a few percent of a core instead of most of one.
// Returns what fixedRate returns, plus the loader's own CPU seconds.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

let built
const build = () => {
  if (built) return built
  const dir = mkdtempSync(join(tmpdir(), 'caplet-fixed-rate-'))
  built = { bin: join(dir, 'fixed-rate'), body: join(dir, 'body') }
  execFileSync('clang-19', ['-O2', '-w', '-o', built.bin, join(import.meta.dirname, 'fixed-rate.c')])
  return built
}

/**
 * @param {string} url
 * @param {string} body
 * @param {{ rate: number, duration: number }} o requests per second, seconds
 */
export async function fixedRateNative(url, body, { rate, duration }) {
  const { bin, body: bodyFile } = build()
  writeFileSync(bodyFile, body)
  const { hostname, port, pathname } = new URL(url)
  const p = spawn(bin, [hostname, port, pathname, String(rate), String(duration), bodyFile], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.on('data', (d) => {
    out += d
  })
  const code = await new Promise((r) => p.on('exit', r))
  if (code !== 0) throw new Error(`fixed-rate exited ${code}: ${out}`)
  return JSON.parse(out)
}
