// words: an AssemblyScript plugin on the stdio convention. `count_words` reads text from stdin
// and writes {"words":N,"distinct":D,"top":"W","topCount":C} to stdout, skipping stop words.
// The stop-word set is built by the module's top-level code, which AssemblyScript runs in
// `_start`: load it with `initialize: '_start'`, so every fresh call starts with the set built.
//
//   const p = await plugin(compiled, { initialize: '_start' })
//   await p.call('count_words', 'the cat and the hat')
const STOP = new Set<string>()
const STOP_LIST = ['a', 'an', 'and', 'the', 'of', 'to', 'in', 'is', 'it', 'on']
for (let i = 0; i < STOP_LIST.length; i++) STOP.add(STOP_LIST[i])

function readInput(): string {
  const chunks = new Array<ArrayBuffer>()
  let total = 0
  for (;;) {
    const chunk = new ArrayBuffer(4096)
    const n = process.stdin.read(chunk)
    if (n <= 0) break
    chunks.push(chunk.slice(0, n))
    total += n
  }
  const all = new Uint8Array(total)
  let at = 0
  for (let i = 0; i < chunks.length; i++) {
    all.set(Uint8Array.wrap(chunks[i]), at)
    at += chunks[i].byteLength
  }
  return String.UTF8.decode(all.buffer)
}

function isSpace(c: i32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13 || c == 44 || c == 46 || c == 33 || c == 63 || c == 59 || c == 58
}

function quote(s: string): string {
  let out = '"'
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c == 34 || c == 92) out += '\\' + String.fromCharCode(c)
    else if (c < 32) out += ' '
    else out += String.fromCharCode(c)
  }
  return out + '"'
}

export function count_words(): void {
  const text = readInput().toLowerCase()
  const counts = new Map<string, i32>()
  let words = 0
  let start = -1
  for (let i = 0; i <= text.length; i++) {
    const end = i == text.length || isSpace(text.charCodeAt(i))
    if (!end && start < 0) start = i
    if (end && start >= 0) {
      const w = text.substring(start, i)
      start = -1
      if (STOP.has(w)) continue
      words++
      counts.set(w, counts.has(w) ? counts.get(w) + 1 : 1)
    }
  }
  let top = ''
  let topCount = 0
  const keys = counts.keys()
  for (let i = 0; i < keys.length; i++) {
    const c = counts.get(keys[i])
    if (c > topCount || (c == topCount && keys[i] < top)) {
      top = keys[i]
      topCount = c
    }
  }
  process.stdout.write(
    '{"words":' +
      words.toString() +
      ',"distinct":' +
      counts.size.toString() +
      ',"top":' +
      quote(top) +
      ',"topCount":' +
      topCount.toString() +
      '}',
  )
}
