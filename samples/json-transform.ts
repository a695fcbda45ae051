// A JSON transform in TypeScript, run inside caplet's JavaScript engine:
//   caplet run --dir ./samples:/in:ro samples/json-transform.ts /in/orders.json
// or with the JSON on stdin:
//   caplet run samples/json-transform.ts < samples/orders.json
// Reads a list of orders, totals them per customer, and prints a summary as JSON.

interface Order {
  customer: string
  item: string
  quantity: number
  price: number
}
interface Summary {
  customer: string
  orders: number
  items: number
  total: number
}

function summarise(orders: readonly Order[]): Summary[] {
  const by = new Map<string, Summary>()
  for (const o of orders) {
    if (typeof o.customer !== 'string' || !Number.isFinite(o.quantity) || !Number.isFinite(o.price)) {
      throw new TypeError(`bad order: ${JSON.stringify(o)}`)
    }
    const s = by.get(o.customer) ?? { customer: o.customer, orders: 0, items: 0, total: 0 }
    s.orders += 1
    s.items += o.quantity
    s.total = Math.round((s.total + o.quantity * o.price) * 100) / 100
    by.set(o.customer, s)
  }
  return [...by.values()].sort((a, b) => b.total - a.total || a.customer.localeCompare(b.customer))
}

const input = args.length > 0 ? readFile(args[0]!) : stdin
const orders = JSON.parse(input) as Order[]
const summary = summarise(orders)
console.log(
  JSON.stringify(
    { customers: summary.length, total: summary.reduce((t, s) => Math.round((t + s.total) * 100) / 100, 0), summary },
    null,
    2,
  ),
)
