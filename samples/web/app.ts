/**
 * @module The demo page: pick a sample or drop a `.wasm`, set arguments, stdin, mounts and
 * limits, run it with `caplet/browser`, watch the output stream in, read how it ended in words,
 * download the files it wrote, see the calls the policy denied (with the option that would
 * grant each) and, if asked, a trace of every host call. Everything it needs (the worker script, the sample modules)
 * is fetched once at load, so runs work offline afterwards. It grants the guest only the mounts
 * shown on the page.
 */
import { explainDenials, prepare, type BrowserMountSpec, type BrowserRunResult, type FileEntry } from '../../runtime/browser/index.js'

interface Sample {
  name: string
  file: string
  args: string
  stdin: string
  about: string
  files?: Record<string, string>
  data?: Record<string, string>
}

const SAMPLES: Sample[] = [
  { name: 'hello', file: 'hello.wasm', args: '', stdin: '', about: 'Prints a greeting.' },
  {
    name: 'tee',
    file: 'tee.wasm',
    args: '/tmp/out.txt',
    stdin: 'written by the guest\n',
    about: 'Copies stdin to stdout and to each file named: the file appears under "Files after the run".',
  },
  {
    name: 'cat',
    file: 'cat.wasm',
    args: '/tmp/hello.txt',
    stdin: '',
    about: 'Prints the files named (or stdin). Drop a file into /tmp and name it.',
    files: { 'hello.txt': 'a file put in /tmp by the page\n' },
  },
  { name: 'ls', file: 'ls.wasm', args: '/tmp', stdin: '', about: 'Lists a directory.', files: { 'a.txt': 'a\n', 'b.txt': 'b\n' } },
  {
    name: 'spin forever',
    file: 'fuel_spin.wasm',
    args: 'forever',
    stdin: '',
    about: 'An infinite loop: the timeout (or Stop) ends it; the page stays responsive.',
  },
  {
    name: 'memory bomb',
    file: 'rt_grow.wasm',
    args: '100 1024 16384 65536',
    stdin: '',
    about: 'Grows memory to each page count (64 KiB pages): growth past the memory limit fails.',
  },
  {
    name: 'denied calls',
    file: 'deny_probe.wasm',
    args: 'ro-write escape ro-write',
    stdin: '',
    about:
      'Writes under /data (a read-only mount) and opens /data/../../etc/passwd: both are refused and listed under "Denied calls", the first with the option that would grant it.',
    data: { 'in.txt': 'read-only input\n' },
  },
  {
    name: 'escape attempts',
    file: 'escape.wasm',
    args: 'dotdot',
    stdin: '',
    about: 'Tries to leave its directories with "..": every attempt is refused (PERM).',
  },
]

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const sampleSel = $<HTMLSelectElement>('sample')
const wasmFile = $<HTMLInputElement>('wasm-file')
const argsIn = $<HTMLInputElement>('args')
const stdinIn = $<HTMLTextAreaElement>('stdin')
const drop = $<HTMLDivElement>('drop')
const tmpFiles = $<HTMLInputElement>('tmp-files')
const dropList = $<HTMLUListElement>('drop-list')
const opfsBox = $<HTMLInputElement>('opfs')
const runBtn = $<HTMLButtonElement>('run')
const stopBtn = $<HTMLButtonElement>('stop')
const statusEl = $<HTMLParagraphElement>('status')
const outEl = $<HTMLPreElement>('output-text')
const writtenEl = $<HTMLUListElement>('written')
const denialsEl = $<HTMLUListElement>('denials')
const traceBox = $<HTMLInputElement>('trace')
const traceEl = $<HTMLPreElement>('trace-text')
const traceCount = $<HTMLSpanElement>('trace-count')
/** Lines shown in the trace panel; the rest are counted. */
const TRACE_SHOWN = 2000

const modules = new Map<string, ArrayBuffer>()
let workerUrl: string | undefined
let dropped: File[] = []
let ownModule: { name: string; bytes: ArrayBuffer } | undefined
let running: AbortController | undefined

/** argv from a line: words split on spaces, "double quoted" words kept whole. */
function splitArgs(line: string): string[] {
  const out: string[] = []
  for (const m of line.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2]!)
  return out
}

function pickSample(): void {
  const s = SAMPLES[Number(sampleSel.value)]!
  argsIn.value = s.args
  stdinIn.value = s.stdin
  $<HTMLParagraphElement>('sample-about').textContent = s.about
  ownModule = undefined
  wasmFile.value = ''
  dropped = Object.entries(s.files ?? {}).map(([n, t]) => new File([t], n, { type: 'text/plain' }))
  showDropped()
}

function showDropped(): void {
  dropList.replaceChildren(
    ...dropped.map((f) => Object.assign(document.createElement('li'), { textContent: `/tmp/${f.name} (${f.size} bytes)` })),
  )
}

function addFiles(list: FileList | null): void {
  if (!list) return
  const byName = new Map(dropped.map((f) => [f.name, f]))
  for (const f of Array.from(list)) byName.set(f.name, f)
  dropped = [...byName.values()]
  showDropped()
}

function append(chunk: Uint8Array, err: boolean): void {
  const text = new TextDecoder().decode(chunk)
  if (err) outEl.append(Object.assign(document.createElement('span'), { className: 'err', textContent: text }))
  else outEl.append(text)
  outEl.scrollTop = outEl.scrollHeight
}

const TRAPS: Record<string, string> = {
  unreachable: 'it reached an "unreachable" instruction (a crash, such as abort())',
  'out-of-bounds': 'it accessed memory outside its own',
  'stack-overflow': 'its call stack overflowed',
  arithmetic: 'an arithmetic fault (division by zero, overflow)',
  'indirect-call': 'a bad function pointer call',
  'memory-fault': 'it passed a bad pointer to the host',
  'host-fault': 'the host failed',
  runtime: 'a runtime error',
}
const LIMITS: Record<string, string> = {
  timeout: 'the time limit ran out',
  fuel: 'it ran out of fuel',
  stdout: 'it wrote more output than allowed',
  stderr: 'it wrote more error output than allowed',
  memory: 'it needed more memory than allowed',
  aborted: 'you stopped it',
}

function describe(r: BrowserRunResult): { text: string; ok: boolean } {
  const s = r.stats
  const tail = ` (${s.wallMs.toFixed(0)} ms, ${(s.peakMemory / 1048576).toFixed(1)} MiB memory${s.fuelUsed !== undefined ? `, ${s.fuelUsed} fuel` : ''})`
  if (r.limit) return { text: `Stopped: ${LIMITS[r.limit] ?? r.limit}; exit status ${r.exitCode}.${tail}`, ok: false }
  if (r.trap)
    return { text: `Crashed: ${TRAPS[r.trap.kind] ?? r.trap.kind}: ${r.trap.message}; exit status ${r.exitCode}.${tail}`, ok: false }
  if (r.exitCode === 0) return { text: `Finished successfully (exit status 0).${tail}`, ok: true }
  return { text: `Finished with exit status ${r.exitCode} (a failure reported by the program).${tail}`, ok: false }
}

function showFiles(files: Record<string, FileEntry[]> | undefined): void {
  const items: HTMLLIElement[] = []
  for (const [guest, entries] of Object.entries(files ?? {})) {
    for (const e of entries) {
      const li = document.createElement('li')
      const path = `${guest}/${e.path}`
      if (e.kind === 'file') {
        const a = document.createElement('a')
        a.href = URL.createObjectURL(new Blob([e.data as Uint8Array<ArrayBuffer>]))
        a.download = e.path.split('/').pop()!
        a.textContent = path
        li.append(a, ` (${e.data?.byteLength ?? 0} bytes)`)
      } else li.textContent = e.kind === 'dir' ? `${path}/` : `${path} -> ${e.target}`
      items.push(li)
    }
  }
  if (items.length === 0) items.push(Object.assign(document.createElement('li'), { textContent: '(none)' }))
  writtenEl.replaceChildren(...items)
}

function showDenials(r: BrowserRunResult): void {
  const lines = explainDenials(r).map((l) => l.replace(/^caplet: /, ''))
  if (lines.length === 0) lines.push('(none)')
  denialsEl.replaceChildren(...lines.map((l) => Object.assign(document.createElement('li'), { textContent: l })))
}

/** Collects trace lines and shows them once per frame (a guest may make many calls). */
function traceView(): { add: (line: string) => void; finish: () => void } {
  let pending: string[] = []
  let seen = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    const room = Math.max(0, TRACE_SHOWN - (seen - pending.length))
    if (room > 0) traceEl.append(pending.slice(0, room).join('\n') + '\n')
    pending = []
    traceCount.textContent = `(${seen} host call${seen === 1 ? '' : 's'}${seen > TRACE_SHOWN ? `, the first ${TRACE_SHOWN} shown` : ''})`
  }
  return {
    add: (line) => {
      seen++
      pending.push(line)
      if (!scheduled) {
        scheduled = true
        requestAnimationFrame(flush)
      }
    },
    finish: flush,
  }
}

async function run(): Promise<void> {
  const sample = SAMPLES[Number(sampleSel.value)]!
  const name = ownModule?.name ?? sample.file
  const bytes = ownModule?.bytes ?? modules.get(sample.file)
  if (!bytes) {
    statusEl.textContent = `The module ${name} is not loaded.`
    return
  }
  outEl.replaceChildren()
  writtenEl.replaceChildren()
  denialsEl.replaceChildren()
  traceEl.replaceChildren()
  traceCount.textContent = traceBox.checked ? '' : '(tick "Trace every host call" to see them)'
  statusEl.className = ''
  statusEl.textContent = `Running ${name}…`
  const mounts: BrowserMountSpec[] = [{ guest: '/tmp', tree: dropped, keep: true }]
  if (!ownModule && sample.data) mounts.push({ guest: '/data', tree: sample.data, mode: 'ro' })
  if (opfsBox.checked) mounts.push({ guest: '/persist', opfs: 'caplet-demo', keep: true })
  const v = (id: string) => $<HTMLInputElement>(id).value.trim()
  const limits = {
    ...(v('memory') ? { memory: v('memory') } : {}),
    ...(v('timeout') ? { timeout: v('timeout') } : {}),
    ...(v('fuel') ? { fuel: Number(v('fuel')) } : {}),
    ...(v('output') ? { stdout: v('output'), stderr: v('output') } : {}),
  }
  running = new AbortController()
  runBtn.disabled = true
  stopBtn.disabled = false
  const trace = traceBox.checked ? traceView() : undefined
  try {
    const program = await prepare(new Uint8Array(bytes), {
      mounts,
      limits,
      ...(workerUrl ? { workerUrl } : {}),
      ...(trace ? { trace: trace.add } : {}),
      onStdout: (c) => append(c, false),
      onStderr: (c) => append(c, true),
    })
    const r = await program.run({
      args: [name.replace(/\.wasm$/, ''), ...splitArgs(argsIn.value)],
      stdin: stdinIn.value,
      signal: running.signal,
    })
    const d = describe(r)
    statusEl.textContent = d.text
    statusEl.className = d.ok ? 'ok' : 'bad'
    showFiles(r.files)
    showDenials(r)
    trace?.finish()
  } catch (e) {
    statusEl.textContent = `Not run: ${e instanceof Error ? e.message.replace(/^\[caplet\] /, '') : String(e)}`
    statusEl.className = 'bad'
  } finally {
    running = undefined
    runBtn.disabled = false
    stopBtn.disabled = true
  }
}

async function init(): Promise<void> {
  SAMPLES.forEach((s, i) => sampleSel.append(new Option(s.name, String(i))))
  sampleSel.addEventListener('change', pickSample)
  pickSample()
  wasmFile.addEventListener('change', async () => {
    const f = wasmFile.files?.[0]
    if (f) {
      ownModule = { name: f.name, bytes: await f.arrayBuffer() }
      $<HTMLParagraphElement>('sample-about').textContent = `Your module: ${f.name}`
    }
  })
  drop.addEventListener('click', () => tmpFiles.click())
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault()
      tmpFiles.click()
    }
  })
  drop.addEventListener('dragover', (e) => {
    e.preventDefault()
    drop.classList.add('over')
  })
  drop.addEventListener('dragleave', () => drop.classList.remove('over'))
  drop.addEventListener('drop', (e) => {
    e.preventDefault()
    drop.classList.remove('over')
    addFiles(e.dataTransfer?.files ?? null)
  })
  tmpFiles.addEventListener('change', () => addFiles(tmpFiles.files))
  $<HTMLFormElement>('form').addEventListener('submit', (e) => {
    e.preventDefault()
    void run()
  })
  stopBtn.addEventListener('click', () => running?.abort())
  // Fetched once: afterwards the page runs guests without the network.
  const worker = await fetch(new URL('./browser-worker.js', import.meta.url))
  workerUrl = URL.createObjectURL(new Blob([await worker.text()], { type: 'text/javascript' }))
  await Promise.all(
    SAMPLES.map(async (s) => {
      const r = await fetch(new URL(`./wasm/${s.file}`, import.meta.url))
      if (r.ok) modules.set(s.file, await r.arrayBuffer())
    }),
  )
  $<HTMLParagraphElement>('env').textContent =
    `Ready. This page is ${crossOriginIsolated ? '' : 'not '}cross-origin isolated; caplet does not need it. Each run gets its own Web Worker.`
  document.body.dataset.ready = 'true'
}

void init()
