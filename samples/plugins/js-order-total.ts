// A JavaScript plugin (TypeScript): pricing rules for one order, called through scriptPlugin(),
// in the top-level convention (js-order-rules.ts exports functions instead: faster, evaluated once).
// Each call runs with the order JSON as stdin and the export's name as args[0]:
//   total    -> {"items":N,"subtotal":S,"discount":D,"total":T}
//   validate -> {"ok":true} or {"ok":false,"problems":[...]}
//
//   const program = (await compileScript({ files: { 'js-order-total.ts': src } })).program
//   const p = await scriptPlugin(program, { exports: ['total', 'validate'], limits: { fuel: 1e8 } })
//   await p.call('total', JSON.stringify(order))
interface Line {
  item: string
  quantity: number
  price: number
}
interface Order {
  customer: string
  lines: Line[]
  coupon?: string
}

const COUPONS: Record<string, number> = { TENOFF: 0.1, HALF: 0.5 }
const cents = (x: number) => Math.round(x * 100) / 100

function problems(o: Order): string[] {
  const out: string[] = []
  if (typeof o.customer !== 'string' || o.customer === '') out.push('customer: missing')
  if (!Array.isArray(o.lines) || o.lines.length === 0) out.push('lines: at least one')
  else
    o.lines.forEach((l, i) => {
      if (!Number.isInteger(l.quantity) || l.quantity <= 0) out.push(`lines[${i}].quantity: a positive integer`)
      if (!Number.isFinite(l.price) || l.price < 0) out.push(`lines[${i}].price: a non-negative number`)
    })
  if (o.coupon !== undefined && !(o.coupon in COUPONS)) out.push(`coupon: unknown ${JSON.stringify(o.coupon)}`)
  return out
}

function total(o: Order) {
  const bad = problems(o)
  if (bad.length > 0) throw new Error(`invalid order: ${bad.join('; ')}`)
  const items = o.lines.reduce((n, l) => n + l.quantity, 0)
  const subtotal = cents(o.lines.reduce((s, l) => s + l.quantity * l.price, 0))
  const discount = cents(subtotal * (o.coupon !== undefined ? COUPONS[o.coupon]! : 0))
  return { items, subtotal, discount, total: cents(subtotal - discount) }
}

const order = JSON.parse(stdin) as Order
const call = args[0]
if (call === 'total') console.log(JSON.stringify(total(order)))
else if (call === 'validate') {
  const bad = problems(order)
  console.log(JSON.stringify(bad.length === 0 ? { ok: true } : { ok: false, problems: bad }))
} else {
  console.error(`no export ${call}`)
  exit(2)
}
