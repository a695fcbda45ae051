// The 10-line node:wasi runner caplet's start-up is compared with: stdio only, no preopens.
import { readFileSync } from 'node:fs'
import { WASI } from 'node:wasi'
const wasi = new WASI({ version: 'preview1', args: process.argv.slice(2), env: {}, preopens: {}, returnOnExit: true })
const mod = await WebAssembly.compile(readFileSync(process.argv[2]))
const instance = await WebAssembly.instantiate(mod, wasi.getImportObject())
process.exitCode = wasi.start(instance)
