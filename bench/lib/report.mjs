// Turns the samples of one bench run into results.md (tables, targets), results.json (every
// sample) and chart.svg (ratios, log scale), hand-written SVG with no dependency.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const geomean = (a) => (a.length === 0 ? NaN : Math.exp(a.reduce((s, x) => s + Math.log(x), 0) / a.length))
const higherIsBetter = (unit) => unit === 'MB/s'

function fmt(x) {
  if (!Number.isFinite(x)) return '–'
  const a = Math.abs(x)
  return a >= 1000 ? x.toFixed(0) : a >= 100 ? x.toFixed(1) : a >= 10 ? x.toFixed(2) : a >= 0.1 ? x.toFixed(3) : x.toPrecision(2)
}

/** Per workload and host: { med, min, max, n, crashes, ratio (cost relative to the reference) }. */
export function summarise({ list, samples }) {
  const out = {}
  for (const w of list) {
    out[w.id] = {}
    for (const h of w.hosts) {
      const ok = samples[w.id][h].filter((s) => s.value !== undefined)
      const vals = ok.map((s) => s.value)
      const also = ok.filter((s) => s.also !== undefined).map((s) => s.also)
      out[w.id][h] = {
        med: median(vals),
        min: Math.min(...vals),
        max: Math.max(...vals),
        n: vals.length,
        crashes: samples[w.id][h].filter((s) => s.crashed).length,
        alsoMed: also.length ? median(also) : undefined,
      }
    }
    const ref = out[w.id][w.ref]?.med
    for (const h of w.hosts) {
      const m = out[w.id][h].med
      out[w.id][h].ratio = higherIsBetter(w.unit) ? ref / m : m / ref
      if (out[w.id][h].alsoMed !== undefined && out[w.id][w.ref]?.alsoMed !== undefined) {
        out[w.id][h].alsoRatio = out[w.id][w.ref].alsoMed / out[w.id][h].alsoMed
      }
    }
  }
  return out
}

function targets(list, sum) {
  const rows = []
  const get = (id, h) => sum[id]?.[h]
  const cpuIds = list.filter((w) => w.group === 'cpu').map((w) => w.id)
  if (cpuIds.length) {
    const g = geomean(cpuIds.map((id) => get(id, 'caplet')?.ratio).filter(Number.isFinite))
    rows.push(['CPU kernels, caplet vs native (geometric mean)', '≤ 1.30×', `${fmt(g)}×`, g <= 1.3])
    const gb = geomean(cpuIds.map((id) => get(id, 'caplet-baseline')?.ratio).filter(Number.isFinite))
    if (Number.isFinite(gb)) rows.push(['  the same with tier=baseline (V8 default)', '(reference)', `${fmt(gb)}×`, undefined])
    const fuel = geomean(cpuIds.map((id) => get(id, 'caplet-fuel')?.med / get(id, 'caplet')?.med).filter(Number.isFinite))
    if (Number.isFinite(fuel))
      rows.push(['fuel metering vs unmetered (CPU kernels, geometric mean)', '≤ 1.15×', `${fmt(fuel)}×`, fuel <= 1.15])
  }
  const vsNodeWasi = [
    ['sys:write16', 'fd_write 16 B (stdout)'],
    ['sys:filewrite16', 'fd_write 16 B (file)'],
    ['sys:clock', 'clock_time_get'],
    ['sys:stat', 'path_filestat_get'],
    ['sys:openclose', 'path_open + fd_close'],
  ]
  for (const [id, name] of vsNodeWasi) {
    const c = get(id, 'caplet'),
      nw = get(id, 'node-wasi')
    if (!c || !nw) continue
    rows.push([
      `${name}: caplet vs node:wasi, per call`,
      '≤ 1.00×',
      `${fmt(c.med / nw.med)}× (${fmt(c.med)} vs ${fmt(nw.med)} µs)`,
      c.med <= nw.med,
    ])
  }
  const rd = get('sys:readdir', 'caplet')
  if (rd) rows.push(['fd_readdir per entry, caplet', '≤ 1 µs', `${fmt(rd.med)} µs`, rd.med <= 1])
  const fio = get('sys:filewrite64k', 'caplet')
  if (fio) {
    rows.push(['64 KiB file writes, caplet vs native throughput', '≥ 0.80×', `${fmt(1 / fio.ratio)}×`, 1 / fio.ratio >= 0.8])
    if (fio.alsoRatio !== undefined)
      rows.push(['64 KiB file reads, caplet vs native throughput', '≥ 0.80×', `${fmt(1 / fio.alsoRatio)}×`, 1 / fio.alsoRatio >= 0.8])
  }
  const rnd = get('sys:random', 'caplet')
  if (rnd) rows.push(['random_get 64 KiB, caplet vs native', '≤ 1.00× (cost)', `${fmt(rnd.ratio)}×`, rnd.ratio <= 1])
  // The target is for a prepared program (prepareSync once, program.runSync() per run); runSync(bytes, options)
  // per run also validates the policy and finds the module again, and is shown for reference.
  const warmPrepared = get('startup:warm', 'caplet-prepared')
  const warm = get('startup:warm', 'caplet')
  if (warmPrepared)
    rows.push([
      'warm in-process hello, caplet prepared (program.runSync per run)',
      '≤ 0.07 ms',
      `${fmt(warmPrepared.med)} ms`,
      warmPrepared.med <= 0.07,
    ])
  if (warm)
    rows.push([
      warmPrepared ? '  the same with runSync(bytes, options) per run' : 'warm in-process hello, caplet',
      warmPrepared ? '(reference)' : '≤ 0.07 ms',
      `${fmt(warm.med)} ms`,
      warmPrepared ? undefined : warm.med <= 0.07,
    ])
  const rb = get('ruby:start', 'caplet')
  if (rb) rows.push(['CRuby start-up, caplet (tier=auto) vs node:wasi', '≤ 1.10×', `${fmt(rb.ratio)}×`, rb.ratio <= 1.1])
  return rows
}

const GROUP_TITLES = {
  cpu: 'CPU kernels (ms, lower is better; ratio to native)',
  sys: 'Host calls (guest-timed after a warm-up; ratio to native)',
  startup: 'Start-up (ms per run)',
  sqlite: "SQLite (ms, file in a mounted directory or the host's in-memory fs; ratio to native)",
  ruby: 'CRuby start-up (ms: compile, init, require "json", one line out; ratio to node:wasi)',
}

export function writeReport(dir, run) {
  const { meta, list, hosts, notes } = run
  const sum = summarise(run)
  const lines = []
  lines.push('# caplet benchmarks', '')
  lines.push(
    `${meta.quick ? '**Quick run** (smaller sizes, fewer hosts and rounds: indicative only).' : 'Full run.'} ` +
      `${meta.date.slice(0, 16).replace('T', ' ')} UTC · ${meta.cpu}, ${meta.cores} cores, ${meta.memGiB} GiB · ${meta.platform} · ` +
      `Node ${meta.node}, V8 ${meta.v8} · load average at the end ${meta.load} · ${meta.rounds} rounds, hosts interleaved, ` +
      `each cell the median (min–max) · ${meta.elapsedS} s in all.`,
    '',
  )
  lines.push(
    'Each sample is a fresh process; every JS host runs the same `.wasm` (clang-19 -O2, wasi-libc) on the same V8; ' +
      '`native` is the same C built with `gcc -O2 -fno-math-errno`. Ratios are costs relative to the column named in each ' +
      'title (below 1 is faster). Host calls are timed by the guest itself around a loop of one call, after a warm-up of a tenth ' +
      'as many. Peers marked *mem fs* keep files in memory (they cannot mount a host directory); caplet runs on a host directory ' +
      `unless marked *mem fs*. SQLite is ${meta.sqlite}'s amalgamation; CRuby is ${meta.ruby}. See bench/README.md.`,
    '',
  )
  lines.push('## Targets (issue 5)', '', '| target | goal | measured | |', '| --- | --- | --- | --- |')
  for (const [name, goal, got, ok] of targets(list, sum))
    lines.push(`| ${name} | ${goal} | ${got} | ${ok === undefined ? '' : ok ? 'met' : '**not met**'} |`)
  lines.push('')
  for (const group of [...new Set(list.map((w) => w.group))]) {
    const ws = list.filter((w) => w.group === group)
    // Columns in the order the hosts are declared (caplet's variants together), whatever row names them first.
    const order = Object.keys(hosts)
    const hs = [...new Set(ws.flatMap((w) => w.hosts))].sort((a, b) => order.indexOf(a) - order.indexOf(b))
    lines.push(`## ${GROUP_TITLES[group] ?? group}`, '')
    lines.push(`| workload | ${hs.map((h) => hosts[h].label).join(' | ')} |`, `| --- |${hs.map(() => ' ---: |').join('')}`)
    for (const w of ws) {
      const cells = hs.map((h) => {
        if (!w.hosts.includes(h)) return ''
        const s = sum[w.id][h]
        const note = notes[`${w.id}|${h}`]
        if (s.n === 0) return `n/a${note ? ` (${note})` : ''}`
        const crash = s.crashes ? ` ⚠ ${s.crashes} crashed` : ''
        const ratio = h === w.ref ? '' : `**${fmt(s.ratio)}×** `
        let cell = `${ratio}${fmt(s.med)} (${fmt(s.min)}–${fmt(s.max)})${crash}`
        if (s.alsoMed !== undefined)
          cell += `; read ${fmt(s.alsoMed)}${s.alsoRatio !== undefined && h !== w.ref ? ` **${fmt(s.alsoRatio)}×**` : ''}`
        if (note && !/crash/.test(note)) cell += ` (${note})`
        return cell
      })
      lines.push(`| ${w.title} (${w.unit}${w.also ? ', write; read' : ''}) | ${cells.join(' | ')} |`)
    }
    lines.push('')
  }
  lines.push('![ratios](chart.svg)', '')
  writeFileSync(join(dir, 'results.md'), lines.join('\n'))
  const workloads = list.map(({ bin, ...w }) => w) // the build paths are this machine's
  writeFileSync(
    join(dir, 'results.json'),
    JSON.stringify({ meta, list: workloads, hosts, summary: sum, notes, samples: run.samples }, null, 1),
  )
  writeFileSync(join(dir, 'chart.svg'), chart(list, sum, hosts, meta))
  return ['results.md', 'results.json', 'chart.svg'].map((f) => join(dir, f))
}

// ---- chart: one row per workload, one bar per host, cost ratio on a log2 axis ----------------------
const CHART_HOSTS = [
  ['caplet', '#1f77b4'],
  ['node-wasi', '#ff7f0e'],
  ['bjorn3', '#2ca02c'],
  ['wasmer', '#9467bd'],
  ['caplet-baseline', '#aec7e8'],
]

function chart(list, sum, hosts, meta) {
  const rows = list.filter((w) => w.group !== 'startup')
  const shown = CHART_HOSTS.filter(([h]) => rows.some((w) => w.hosts.includes(h)))
  const barH = 7,
    gap = 10,
    left = 250,
    width = 900,
    plotW = width - left - 40
  const rowH = shown.length * barH + gap
  const top = 60
  const height = top + rows.length * rowH + 60
  const lo = -4,
    hi = 7 // 2^-4 … 2^7
  const x = (r) => left + ((Math.log2(Math.min(Math.max(r, 2 ** lo), 2 ** hi)) - lo) / (hi - lo)) * plotW
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="100%" height="100%" fill="white"/>`)
  out.push(
    `<text x="10" y="18" font-size="14" font-weight="bold">Cost relative to the reference (native; node:wasi for CRuby): lower is better, log scale</text>`,
  )
  out.push(
    `<text x="10" y="34" fill="#555">${esc(`${meta.date.slice(0, 10)} · ${meta.cpu} · ${meta.cores} cores · Node ${meta.node} · V8 ${meta.v8}${meta.quick ? ' · QUICK RUN' : ''}`)}</text>`,
  )
  let lx = 10
  for (const [h, color] of shown) {
    const label = hosts[h].label.replace(/ \(mem fs\)/, '')
    out.push(`<rect x="${lx}" y="42" width="10" height="10" fill="${color}"/><text x="${lx + 14}" y="51">${esc(label)}</text>`)
    lx += 14 + label.length * 6.2 + 18
  }
  for (let e = lo; e <= hi; e++) {
    const xx = x(2 ** e)
    out.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${height - 40}" stroke="${e === 0 ? '#000' : '#ddd'}"/>`)
    out.push(`<text x="${xx}" y="${height - 26}" text-anchor="middle">${2 ** e >= 1 ? 2 ** e : `1/${2 ** -e}`}×</text>`)
  }
  rows.forEach((w, i) => {
    const y0 = top + i * rowH
    out.push(`<text x="${left - 6}" y="${y0 + rowH / 2}" text-anchor="end">${esc(`${w.title}`)}</text>`)
    shown.forEach(([h, color], j) => {
      const s = sum[w.id]?.[h]
      if (!w.hosts.includes(h) || !s || !Number.isFinite(s.ratio)) return
      const y = y0 + j * barH
      const x0 = x(1),
        x1 = x(s.ratio)
      out.push(
        `<rect x="${Math.min(x0, x1)}" y="${y}" width="${Math.max(1, Math.abs(x1 - x0))}" height="${barH - 1}" fill="${color}"><title>${esc(`${hosts[h].label}: ${fmt(s.ratio)}×`)}</title></rect>`,
      )
    })
  })
  out.push(
    `<text x="10" y="${height - 8}" fill="#555">Bars left of 1× are faster than the reference. Missing bar: the host could not run it (see results.md).</text>`,
  )
  out.push('</svg>')
  return out.join('\n')
}
