/**
 * @module The demo page (samples/web/) end to end in headless Chromium: it loads, a sample is
 * picked and run with a file dropped into /tmp, the output streams in, the status says how the
 * run ended in words, a file the guest wrote downloads with the right bytes, denied calls are
 * listed with the option that would grant them, the trace panel shows each host call, the timeout
 * stops an infinite loop, runs keep working offline once the page loaded, and every control has a label.
 * `CAPLET_SCREENSHOT=1` rewrites the committed screenshot (samples/web/screenshot.png).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoContext } from '../../scripts/demo.mjs'
import { hasChromium, launchChromium, repoRoot, startServer, type StaticServer } from './support.js'

let server: StaticServer
let browser: Browser
let context: BrowserContext
let page: Page

describe.skipIf(!hasChromium)('the demo page', () => {
  beforeAll(async () => {
    const ctx = await demoContext()
    await ctx.rebuild()
    await ctx.dispose()
    server = await startServer()
    browser = await launchChromium()
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 860 } })
    page = await context.newPage()
    await page.goto(`${server.origin}/samples/web/index.html`)
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it('labels every control', async () => {
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('input:not([hidden]), select, textarea'))
        .filter(
          (el) => !el.getAttribute('aria-label') && !(el.id && document.querySelector(`label[for="${el.id}"]`)) && !el.closest('label'),
        )
        .map((el) => el.id || el.outerHTML),
    )
    expect(unlabelled).toEqual([])
    await expect(page.textContent('#env')).resolves.toContain('not cross-origin isolated')
  })

  it('runs a sample with a dropped file, streams its output, says how it ended, and downloads what it wrote', async () => {
    await page.selectOption('#sample', { label: 'tee' })
    await page.fill('#args', '/tmp/out.txt')
    await page.fill('#stdin', 'from the demo test\n')
    await page.setInputFiles('#tmp-files', { name: 'dropped.txt', mimeType: 'text/plain', buffer: Buffer.from('dropped bytes\n') })
    await expect(page.textContent('#drop-list')).resolves.toContain('/tmp/dropped.txt')
    // Keyboard only: focus Run and press Enter.
    await page.focus('#run')
    await page.keyboard.press('Enter')
    await page.waitForSelector('#status.ok', { timeout: 20_000 })
    expect(await page.textContent('#status')).toMatch(/^Finished successfully \(exit status 0\)/)
    expect(await page.textContent('#output-text')).toBe('from the demo test\n')
    const written = await page.textContent('#written')
    expect(written).toContain('/tmp/out.txt')
    expect(written).toContain('/tmp/dropped.txt')
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#written a:text("/tmp/out.txt")')])
    expect(download.suggestedFilename()).toBe('out.txt')
    expect(readFileSync(await download.path())).toEqual(Buffer.from('from the demo test\n'))
  }, 60_000)

  it('lists the denied calls with the option that would grant them, and traces every host call', async () => {
    await page.selectOption('#sample', { label: 'denied calls' })
    await page.check('#trace')
    await page.click('#run')
    await page.waitForSelector('#status.ok', { timeout: 20_000 })
    const denials = await page.$$eval('#denials li', (lis) => lis.map((li) => li.textContent))
    expect(denials).toEqual([
      "the guest tried to write /data/out.txt: mount /data is read-only (grant with mounts[1].mode: 'rw') [2 times]",
      expect.stringMatching(/^the guest tried to open \/data\/\.\.\/\.\.\/etc\/passwd: .*mount what it needs with mounts: \[/),
    ])
    const trace = await page.textContent('#trace-text')
    expect(trace).toMatch(/path_open\(.*"out\.txt".*\) = (ROFS|EROFS)/)
    expect(trace).toMatch(/fd_write\(1, /)
    expect(await page.textContent('#trace-count')).toMatch(/^\(\d+ host calls\)$/)
    const shot = await page.screenshot({ fullPage: true })
    expect(shot.byteLength).toBeGreaterThan(10_000)
    if (process.env.CAPLET_SCREENSHOT === '1') writeFileSync(join(repoRoot, 'samples/web/screenshot.png'), shot)
    // Unticked: no trace, and a run without denials lists none.
    await page.uncheck('#trace')
    await page.selectOption('#sample', { label: 'hello' })
    await page.click('#run')
    await page.waitForSelector('#status.ok', { timeout: 20_000 })
    expect(await page.textContent('#trace-text')).toBe('')
    expect(await page.$$eval('#denials li', (lis) => lis.map((li) => li.textContent))).toEqual(['(none)'])
  }, 60_000)

  it('stops an infinite loop at the timeout and says so', async () => {
    await page.selectOption('#sample', { label: 'spin forever' })
    await page.fill('#timeout', '1s')
    await page.click('#run')
    await page.waitForSelector('#status.bad', { timeout: 20_000 })
    expect(await page.textContent('#status')).toMatch(/^Stopped: the time limit ran out; exit status 124/)
    await page.fill('#timeout', '5s')
  }, 60_000)

  it('keeps running guests offline once loaded', async () => {
    await context.setOffline(true)
    try {
      await page.selectOption('#sample', { label: 'hello' })
      await page.click('#run')
      await page.waitForSelector('#status.ok', { timeout: 20_000 })
      expect(await page.textContent('#output-text')).toBe('hello from caplet\n')
    } finally {
      await context.setOffline(false)
    }
  }, 60_000)
})
