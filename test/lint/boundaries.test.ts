/**
 * @module The lint rules (eslint.config.js) fail on deliberate violations of the boundaries they
 * keep, and pass on code that respects them. Each case lints a snippet as if it were a file at
 * the given path, with the repository's own configuration.
 */
import { resolve } from 'node:path'
import { ESLint } from 'eslint'
import { beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
let eslint: ESLint

beforeAll(() => {
  eslint = new ESLint({ cwd: root })
})

/** The rule ids reported for `code` as if it lived at `file` (the message, for a problem without one). */
async function ruleIds(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(root, file) })
  return result!.messages.map((m) => m.ruleId ?? m.message)
}

const RESTRICTED = '@typescript-eslint/no-restricted-imports'

describe('lint boundaries', () => {
  it.each([
    ['wasi-host/fs/x.ts', "import { readFileSync } from 'node:fs'\nexport const f = readFileSync\n"],
    ['wasi-host/x.ts', "import type { Stats } from 'node:fs'\nexport type S = Stats\n"],
    ['wasi-host/syscalls/x.ts', "import * as path from 'path'\nexport const p = path\n"],
    ['wasi-host/x.ts', "export { isatty } from 'node:tty'\n"],
    ['wasi-host/abi/x.ts', "import { run } from '../../runtime/index.js'\nexport const r = run\n"],
    ['wasi-host/node/x.ts', "import { resolvePolicy } from '../../runtime/policy.js'\nexport const r = resolvePolicy\n"],
    ['runtime/x.ts', "import { discardWriter } from '../wasi-host/syscalls/fd.js'\nexport const d = discardWriter\n"],
    ['runtime/worker/x.ts', "import type { SyscallTable } from '../../wasi-host/syscalls/index.js'\nexport type T = SyscallTable\n"],
  ])('refuses the import in %s', async (file, code) => {
    expect(await ruleIds(file, code)).toEqual([RESTRICTED])
  })

  it('refuses a dynamic node: import or require in the platform-neutral host', async () => {
    expect(await ruleIds('wasi-host/x.ts', "export const m = () => import('node:fs')\n")).toEqual(['no-restricted-syntax'])
    expect(await ruleIds('wasi-host/x.ts', "export const m = () => require('fs')\n")).toEqual(['no-restricted-syntax'])
  })

  it('refuses `export *` in an entry point', async () => {
    expect(await ruleIds('runtime/index.ts', "export * from './sandbox.js'\n")).toEqual(['no-restricted-syntax'])
    expect(await ruleIds('wasi-host/index.ts', "export * from './host.js'\n")).toEqual(['no-restricted-syntax'])
    expect(await ruleIds('wasi-host/node/index.ts', "export * from './host-dir-fs.js'\n")).toEqual(['no-restricted-syntax'])
  })

  it('refuses `any`, and a disable comment that disables nothing', async () => {
    expect(await ruleIds('runtime/x.ts', 'export const f = (x: any) => x\n')).toEqual(['@typescript-eslint/no-explicit-any'])
    expect(
      await ruleIds('runtime/x.ts', '// eslint-disable-next-line @typescript-eslint/no-explicit-any\nexport const f = (x: unknown) => x\n'),
    ).toEqual([expect.stringMatching(/^Unused eslint-disable directive/)])
  })

  it('allows what the boundaries permit', async () => {
    expect(await ruleIds('wasi-host/node/x.ts', "import { readFileSync } from 'node:fs'\nexport const f = readFileSync\n")).toEqual([])
    expect(
      await ruleIds(
        'runtime/x.ts',
        "import { readFileSync } from 'node:fs'\nimport { WasiHost } from '../wasi-host/index.js'\nexport const f = [readFileSync, WasiHost]\n",
      ),
    ).toEqual([])
    expect(await ruleIds('wasi-host/fs/x.ts', "import { WasiError } from '../errors.js'\nexport const e = WasiError\n")).toEqual([])
    expect(
      await ruleIds('test/x.test.ts', "import { discardWriter } from '../wasi-host/syscalls/fd.js'\nexport const d = discardWriter\n"),
    ).toEqual([])
  })
})
