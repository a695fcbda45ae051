/**
 * Red team, wave 2, the compiler input: TypeScript triple-slash references and imports aimed at
 * host files (absolute, through the virtual `/lib/` directory, as a `lib=` name), and WAT that
 * crashes the WABT instance (deep expression nesting): each is a CompileError that shows nothing
 * of the host, and the next compile still works.
 */
import { describe, expect, it } from 'vitest'
import { CompileError } from '../../runtime/errors.js'
import { compile } from '../../toolchain/index.js'

async function refused(language: string, files: Record<string, string>): Promise<string> {
  const e = await compile({ language, files, options: { cache: false } }).then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(e, JSON.stringify(files).slice(0, 200)).toBeInstanceOf(CompileError)
  const said = (e as Error).message
  expect(said).not.toMatch(/root:x:0|\/home\/|\/work\/|node_modules|\/tmp\//)
  return said
}

describe('TypeScript: references and imports of host files', () => {
  it('/// <reference path>, a /lib/ path that climbs, lib= with ../, and absolute imports all fail', async () => {
    const said = await Promise.all(
      [
        '/// <reference path="/etc/passwd" />\nconsole.log(1)\n',
        '/// <reference path="/lib/../../../../etc/hostname" />\nconsole.log(1)\n',
        '/// <reference lib="../../../etc/passwd" />\nconsole.log(1)\n',
        'import x from "/lib/lib.es5.d.ts"\nconsole.log(x)\n',
        'import x from "../../../../../../../../etc/os-release.json"\nconsole.log(x)\n',
      ].map((src) => refused('typescript', { 'main.ts': src })),
    )
    expect(said[0]).toMatch(/Could not resolve/)
    expect(said[1]).toMatch(/Could not resolve/)
    expect(said[2]).toMatch(/Cannot find lib/)
    expect(said[3]).toMatch(/only the submitted files/)
    expect(said[4]).toMatch(/leaves the submitted files/)
  }, 20_000)
})

describe('WAT that crashes the assembler', () => {
  it('100,000 nested expressions are a CompileError, and the next compile is unaffected', async () => {
    const deep = `(module (func (result i32) ${'(i32.add (i32.const 1) '.repeat(100_000)}(i32.const 0)${')'.repeat(100_000)}))`
    await refused('wat', { 'a.wat': deep })
    const ok = await compile({ language: 'wat', files: { 'a.wat': '(module (func (export "f") (result i32) (i32.const 42)))' } })
    const { f } = new WebAssembly.Instance(new WebAssembly.Module(ok.module as Uint8Array<ArrayBuffer>)).exports as { f: () => number }
    expect(f()).toBe(42)
  }, 20_000)
})
