import { describe, expect, it } from 'vitest'
import { canonicalName, compileScript, formatDiagnostics, isScriptProgram, SCRIPT_LIMITS } from '../../toolchain/js/index.js'
import { mapStack, SourceMap } from '../../toolchain/js/source-map.js'

describe('compileScript', () => {
  it('bundles ES modules across the submitted files, strips types, and maps positions back', async () => {
    const r = await compileScript({
      files: {
        'main.ts':
          'import { twice } from "./lib/math.js"\nimport data from "./data.json"\nconst n: number = twice(data.n)\nconsole.log(n)\n',
        'lib/math.ts': 'export function twice(k: number): number {\n  return k * 2\n}\n',
        'data.json': '{ "n": 21 }',
        'unused.ts': 'this is not even valid',
      },
      entry: 'main.ts',
    })
    expect(r.diagnostics).toEqual([])
    expect(isScriptProgram(r.program)).toBe(true)
    const p = r.program!
    expect(p.code).not.toContain(': number')
    expect(p.code).toContain('k * 2')
    const map = new SourceMap(p.sourceMap)
    const lines = p.code.split('\n')
    const at = lines.findIndex((l) => l.includes('k * 2'))
    expect(map.original(at + 1, lines[at]!.indexOf('k * 2') + 1)).toEqual({ file: 'lib/math.ts', line: 2, column: 10 })
    expect(JSON.parse(p.sourceMap).sources).toEqual(expect.arrayContaining(['lib/math.ts', 'main.ts']))
  })

  it("records the entry's named exports (not an imported file's); none, none recorded; a malformed list is not a program", async () => {
    const r = await compileScript({
      files: {
        'main.ts':
          'export { twice } from "./lib.js"\nexport function total(s: string) { return s }\nexport const n = 1\nexport default 2\n',
        'lib.ts': 'export function twice(k: number) { return k * 2 }\nexport function hidden() {}\n',
      },
      entry: 'main.ts',
    })
    expect([...r.program!.exports!].sort()).toEqual(['default', 'n', 'total', 'twice'])
    const none = await compileScript({ files: { 'm.ts': 'console.log(1)' }, entry: 'm.ts' })
    expect(none.program!.exports).toBeUndefined()
    expect(isScriptProgram({ ...r.program, exports: [1] })).toBe(false)
    expect(isScriptProgram({ ...r.program, exports: 'total' })).toBe(false)
  })

  it('refuses anything but the submitted files, naming the import', async () => {
    const cases: [string, RegExp][] = [
      ['import fs from "fs"; fs.x()', /"fs".*only the submitted files/],
      ['import { x } from "node:path"; x()', /"node:path"/],
      ['import { x } from "/etc/passwd"; x()', /"\/etc\/passwd"/],
      ['import { x } from "../escape.ts"; x()', /"\.\.\/escape\.ts" from main\.ts leaves the submitted files/],
      ['import { x } from "./sub/../../up.ts"; x()', /leaves the submitted files/],
      ['import { x } from "./missing.ts"; x()', /no submitted file "missing\.ts"/],
      ['import { x } from "https://example.com/m.js"; x()', /https:\/\/example\.com/],
      ['const m = require("fs"); m.x()', /"fs"/],
    ]
    for (const [src, re] of cases) {
      const r = await compileScript({ files: { 'main.ts': src }, entry: 'main.ts' })
      expect(r.program, src).toBeUndefined()
      expect(formatDiagnostics(r.diagnostics), src).toMatch(re)
    }
  })

  it('without an entry, runs the one script among the files; several, none or a file reader is a diagnostic, never a throw', async () => {
    const one = await compileScript({
      files: { 'rules.ts': 'export const k: number = 1\n', 'types.d.ts': 'declare const x: 1\n', 'd.json': '{}' },
    })
    expect(one.diagnostics).toEqual([])
    expect(one.program).toMatchObject({ entry: 'rules.ts', exports: ['k'] })
    const two = await compileScript({ files: { 'a.ts': '1', 'b.js': '2' } })
    expect(two.program).toBeUndefined()
    expect(two.diagnostics).toEqual([
      { severity: 'error', message: 'no entry: 2 script files ("a.ts", "b.js"); name the one to run with `entry`' },
    ])
    const none = await compileScript({ files: { 'notes.txt': 'x', 'd.json': '{}' } })
    expect(none.diagnostics[0]!.message).toBe('no entry: none of the files is a script (.ts, .mts, .cts, .js, .mjs, .cjs)')
    const reader = await compileScript({ files: () => 'console.log(1)' })
    expect(reader.program).toBeUndefined()
    expect(reader.diagnostics[0]!.message).toMatch(/^no entry: name the file to run with `entry`/)
  })

  it('reports syntax errors with the file, line and column', async () => {
    const r = await compileScript({ files: { 'main.ts': 'import "./b.ts"\n', 'b.ts': 'const ok = 1\nlet = ;\n' }, entry: 'main.ts' })
    expect(r.program).toBeUndefined()
    expect(r.diagnostics[0]).toMatchObject({ severity: 'error', file: 'b.ts', line: 2, column: 7 })
  })

  it('refuses file names that are not plain relative names, and oversized input', async () => {
    for (const name of ['../x.ts', '/abs.ts', 'a/../b.ts', 'a//b.ts', './a.ts', 'a\\b.ts', 'a\0.ts', '']) {
      expect(canonicalName(name), JSON.stringify(name)).toBeUndefined()
      const r = await compileScript({ files: { [name]: 'x', 'main.ts': '1' }, entry: 'main.ts' })
      expect(r.program, JSON.stringify(name)).toBeUndefined()
    }
    expect((await compileScript({ files: { 'main.ts': '1' }, entry: '../main.ts' })).program).toBeUndefined()
    expect(formatDiagnostics((await compileScript({ files: { 'main.ts': '1' }, entry: 'other.ts' })).diagnostics)).toMatch(
      /entry file "other\.ts"/,
    )
    const big = 'x'.repeat(SCRIPT_LIMITS.fileBytes + 1)
    expect(
      formatDiagnostics((await compileScript({ files: { 'main.ts': 'import "./big.ts"', 'big.ts': big }, entry: 'main.ts' })).diagnostics),
    ).toMatch(/larger than/)
  })
})

describe('compileScript with a named loader', () => {
  const TS_SRC = 'const n: number = 41\nconsole.log(n + 1)\n'

  it('loader ts reads the entry as TypeScript whatever its extension; js reads it as JavaScript', async () => {
    for (const entry of ['notes.txt', 'script', 'main.js']) {
      const r = await compileScript({ files: { [entry]: TS_SRC }, entry, loader: 'ts' })
      expect(r.diagnostics, entry).toEqual([])
      expect(r.program!.code, entry).not.toContain(': number')
    }
    const js = await compileScript({ files: { 'main.ts': TS_SRC }, entry: 'main.ts', loader: 'js' })
    expect(js.program).toBeUndefined()
    expect(js.diagnostics[0]).toMatchObject({ severity: 'error', file: 'main.ts', line: 1, column: 8 })
    // Without a loader, a name with no script extension is not an entry at all.
    expect(formatDiagnostics((await compileScript({ files: { 'notes.txt': TS_SRC }, entry: 'notes.txt' })).diagnostics)).toMatch(
      /entry file "notes\.txt" is not among/,
    )
  })

  it('only the entry: imports are read by their own extension, and a non-script name stays unimportable', async () => {
    const files = { 'main.txt': 'import { k } from "./lib.js"\nconsole.log(k)\n', 'lib.js': 'export const k: number = 1\n' }
    const r = await compileScript({ files, entry: 'main.txt', loader: 'ts' })
    expect(r.program).toBeUndefined()
    expect(r.diagnostics[0]).toMatchObject({ file: 'lib.js' })
    const other = await compileScript({ files: { 'main.ts': 'import "./data.txt"\n', 'data.txt': '1' }, entry: 'main.ts', loader: 'ts' })
    expect(formatDiagnostics(other.diagnostics)).toMatch(/no submitted file "data\.txt"/)
  })

  it('refuses any other loader (esbuild has ones that would read the entry as something else)', async () => {
    for (const loader of ['file', 'binary', 'tsx', '']) {
      const r = await compileScript({ files: { 'main.ts': TS_SRC }, entry: 'main.ts', loader: loader as 'ts' })
      expect(r.program, loader).toBeUndefined()
      expect(formatDiagnostics(r.diagnostics), loader).toMatch(/loader .* is not "ts" or "js"/)
    }
  })
})

describe('source maps', () => {
  it('maps QuickJS stack positions and leaves unmapped frames alone; a malformed map maps nothing', () => {
    const map = new SourceMap(JSON.stringify({ version: 3, sources: ['a.ts'], mappings: ';AAAA,IAAI;AACA' }))
    expect(map.original(2, 1)).toEqual({ file: 'a.ts', line: 1, column: 1 })
    expect(map.original(2, 7)).toEqual({ file: 'a.ts', line: 1, column: 5 })
    expect(map.original(3, 1)).toEqual({ file: 'a.ts', line: 2, column: 5 })
    expect(mapStack('    at f (script.js:2:7)\n    at g (native)', 'script.js', map)).toBe('    at f (a.ts:1:5)\n    at g (native)')
    for (const bad of ['', '{', '{"sources":5,"mappings":"!!!"}', JSON.stringify({ sources: ['a'], mappings: 'gggggggggggggggggg' })]) {
      expect(new SourceMap(bad).original(1, 1)).toBeUndefined()
    }
  })
})
