/**
 * @module Long fuzz runs: the same properties as the test suite, with many more cases.
 *
 *   node scripts/fuzz.mjs --runs 100000            # backend differential, a fresh random seed
 *   node scripts/fuzz.mjs --runs 5000 --seed 42    # reproduce a run
 *   node scripts/fuzz.mjs --runs 20000 --quota     # also the quota properties
 *
 * It runs vitest on `test/fuzz/` (and `test/wasi-host/fs/quota.test.ts` with `--quota`), passing
 * `FUZZ_RUNS`/`FUZZ_SEED`/`QUOTA_RUNS` through the environment, so a failure found here is the
 * same property, and reproduces in the suite with `FUZZ_SEED=<seed>`. The seed is printed first.
 */
import { spawnSync } from 'node:child_process'
import { randomInt } from 'node:crypto'

function usage(message) {
  if (message) console.error(`fuzz: ${message}`)
  console.error('usage: node scripts/fuzz.mjs [--runs N] [--seed S] [--quota]')
  process.exit(2)
}

function parse(argv) {
  const options = { runs: 10_000, seed: randomInt(2 ** 31 - 1), quota: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = () => {
      const v = Number(argv[++i])
      if (!Number.isSafeInteger(v) || v < 0) usage(`${arg} needs a non-negative integer`)
      return v
    }
    if (arg === '--runs') options.runs = value()
    else if (arg === '--seed') options.seed = value()
    else if (arg === '--quota') options.quota = true
    else if (arg === '--help' || arg === '-h') usage()
    else usage(`unknown argument ${arg}`)
  }
  return options
}

const { runs, seed, quota } = parse(process.argv.slice(2))
console.log(`fuzz: ${runs} runs, seed ${seed} (reproduce with FUZZ_SEED=${seed})`)
const files = ['test/fuzz/', ...(quota ? ['test/wasi-host/fs/quota.test.ts'] : [])]
const args = ['vitest', 'run', ...files, ...(quota ? ['-t', 'backend differential|properties'] : [])]
const result = spawnSync('npx', args, {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_RUNS: String(runs), FUZZ_SEED: String(seed), QUOTA_RUNS: String(runs) },
})
process.exit(result.status ?? 1)
