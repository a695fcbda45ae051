/**
 * Escape test at the guest level (issue: host directories as real capabilities): a host thread
 * keeps swapping a directory inside the mount with a symlink to the outside while a guest loops
 * opening a file through it. With the race-free host backend the guest never reads the outside.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { runSync } from '../../runtime/index.js'
import { fixtureWasm, text } from '../support/guest.js'

const SWAPPER = `
const { workerData, parentPort } = require('node:worker_threads')
const fs = require('node:fs')
const { sub, parked, link, stop } = workerData
const flag = new Int32Array(stop)
let rounds = 0
parentPort.postMessage('started')
while (Atomics.load(flag, 0) === 0) {
  fs.renameSync(sub, parked)
  fs.renameSync(link, sub)
  fs.renameSync(sub, link)
  fs.renameSync(parked, sub)
  rounds++
}
parentPort.postMessage(rounds)
`

describe.runIf(process.platform === 'linux')('a guest racing a host that swaps directories for symlinks', () => {
  let tmp: string | undefined
  afterEach(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('never reads through the swapped-in symlink', async () => {
    tmp = fs.mkdtempSync(join(os.tmpdir(), 'caplet-race-'))
    const mount = join(tmp, 'mount')
    fs.mkdirSync(join(mount, 'sub'), { recursive: true })
    fs.writeFileSync(join(mount, 'sub', 'f.txt'), 'inside')
    fs.mkdirSync(join(tmp, 'outside'))
    fs.writeFileSync(join(tmp, 'outside', 'f.txt'), 'CANARY')
    // The swap partner lives outside the mount, so the guest can only meet it as `sub`.
    fs.symlinkSync(join(tmp, 'outside'), join(tmp, 'link'))
    const stop = new SharedArrayBuffer(4)
    const worker = new Worker(SWAPPER, {
      eval: true,
      workerData: { sub: join(mount, 'sub'), parked: join(tmp, 'parked'), link: join(tmp, 'link'), stop },
    })
    const rounds = new Promise<number>((resolve) =>
      worker.on('message', (m) => {
        if (typeof m === 'number') resolve(m)
      }),
    )
    await new Promise((resolve) => worker.once('message', resolve))
    let out: string
    try {
      const r = runSync(fixtureWasm('sec_race'), { args: ['sec_race', '4000'], mounts: [{ guest: '/sandbox', host: mount, mode: 'ro' }] })
      out = text(r.stdout)
    } finally {
      Atomics.store(new Int32Array(stop), 0, 1)
    }
    expect(await rounds).toBeGreaterThan(10)
    await worker.terminate()
    const m = /inside=(\d+) canary=(\d+) failed=(\d+)/.exec(out)
    expect(m, out).not.toBeNull()
    expect(Number(m![2]), out).toBe(0)
    expect(Number(m![3]), out).toBeGreaterThan(0) // the swap really happened under the guest
    expect(Number(m![1])).toBeGreaterThan(0)
  })
})
