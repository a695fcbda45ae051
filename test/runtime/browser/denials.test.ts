/**
 * @module Denials in the page (runtime/browser/denials.ts), in Node: each CLI grant becomes the
 * `caplet/browser` option that would give it, a grant a page has no option for is dropped, and
 * `explainDenials` never advises a CLI flag. (The same rewriting on a real run in Chromium is in
 * test/browser/page-api.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { browserDenials, explainDenials } from '../../../runtime/browser/denials.js'
import type { Denial } from '../../../runtime/denials.js'

const d = (kind: string, grant?: string, extra: Partial<Denial> = {}): Denial => ({
  call: 'path_open',
  kind,
  reason: 'r',
  ...(grant !== undefined ? { grant } : {}),
  ...extra,
})

describe('browser denials', () => {
  it('rewrites each CLI grant as the browser option that gives it', () => {
    const mounts = ['/tmp', '/data']
    const out = browserDenials(
      [
        d('read-only', '--dir HOST:/data:rw'),
        d('descriptor-limit', '--max-fds 12'),
        d('quota', '--disk SIZE'),
        d('quota', '--max-files N'),
        d('quota', '--tmp /tmp:SIZE'),
        d('limit', '--memory SIZE'),
        d('limit', '--timeout DURATION'),
        d('limit', '--fuel N'),
        d('limit', '--max-output SIZE'),
        d('denied-import', '--allow-syscalls sock_accept'),
        d('escape'),
      ],
      mounts,
    )
    expect(out.map((x) => x.grant)).toEqual([
      "mounts[1].mode: 'rw'",
      'limits.fds: 12',
      'limits.disk',
      'limits.inodes',
      'mounts[0].size',
      'limits.memory',
      'limits.timeout',
      'limits.fuel',
      'limits.stdout (limits.stderr)',
      "syscalls: [..., 'sock_accept']",
      undefined,
    ])
    expect(out[10]).not.toHaveProperty('grant')
  })

  it('drops a grant a page has no option for (a mount it does not have, an unknown flag)', () => {
    const out = browserDenials(
      [d('read-only', '--dir /h:/elsewhere:rw'), d('quota', '--tmp /elsewhere:SIZE'), d('x', '--listen ADDR')],
      ['/tmp'],
    )
    expect(out.every((x) => x.grant === undefined)).toBe(true)
  })

  it('explains denials without a CLI flag; none for a run without denials', () => {
    expect(explainDenials({})).toEqual([])
    const lines = explainDenials({
      denials: browserDenials(
        [
          d('read-only', '--dir HOST:/data:rw', { path: '/data/x', reason: 'mount /data is read-only' }),
          d('escape', undefined, { path: '/data/../../etc/passwd', reason: 'out' }),
        ],
        ['/data'],
      ),
      denialCount: 3,
    })
    expect(lines).toEqual([
      "caplet: the guest tried to write /data/x: mount /data is read-only (grant with mounts[0].mode: 'rw')",
      'caplet: the guest tried to open /data/../../etc/passwd: out (nothing outside a mount is reachable; mount what it needs with mounts: [{ guest, tree | opfs | volume }])',
      'caplet: ... and 1 more denials not recorded',
    ])
    for (const l of lines) expect(l).not.toMatch(/--\w/)
  })
})
