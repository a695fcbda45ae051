// sieve: counts the primes below N (default 1000000; argv[1] sets it) with the
// sieve of Eratosthenes and prints the count and the largest of them.
// AssemblyScript, compiled with the WASI shim: process.argv and console.log
// are WASI calls served by caplet.
//
//   caplet run samples/sieve.as.ts 100
const args = process.argv
let n: i32 = 1000000
if (args.length > 1) {
  n = I32.parseInt(args[1])
  if (n < 2 || n > 100000000) {
    console.error('sieve: N must be between 2 and 100000000')
    process.exit(2)
  }
}
const composite = new Uint8Array(n)
let count = 0
let largest = 0
for (let i = 2; i < n; i++) {
  if (composite[i]) continue
  count++
  largest = i
  for (let j = <i64>i * i; j < n; j += i) composite[<i32>j] = 1
}
console.log('primes below ' + n.toString() + ': ' + count.toString())
console.log('largest: ' + largest.toString())
