// A JavaScript plugin (TypeScript) that exports its calls: pricing rules for one order.
// The module is evaluated once when scriptPlugin() loads it; each call runs one export with the
// call's input (a string here: the order JSON) and returns the output (an object: sent as JSON).
//   total    -> {"items":N,"subtotal":S,"discount":D,"total":T}   (throws on an invalid order)
//   validate -> {"ok":true} or {"ok":false,"problems":[...]}
//
//   const program = (await compileScript({ files: { 'js-order-rules.ts': src } })).program
//   const p = await scriptPlugin(program, { limits: { fuel: 1e8 } })   // p.exports(): ['total', 'validate']
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

// Set up once, at load: every call starts from here.
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

export function total(input: string) {
  const o = JSON.parse(input) as Order
  const bad = problems(o)
  if (bad.length > 0) throw new Error(`invalid order: ${bad.join('; ')}`)
  const items = o.lines.reduce((n, l) => n + l.quantity, 0)
  const subtotal = cents(o.lines.reduce((s, l) => s + l.quantity * l.price, 0))
  const discount = cents(subtotal * (o.coupon !== undefined ? COUPONS[o.coupon]! : 0))
  return { items, subtotal, discount, total: cents(subtotal - discount) }
}

export function validate(input: string) {
  const bad = problems(JSON.parse(input) as Order)
  return bad.length === 0 ? { ok: true } : { ok: false, problems: bad }
}
