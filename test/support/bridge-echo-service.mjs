// A bridge service for tests, loaded by the helper thread as a `file:` factory.
export function create(config) {
  let disposed = false
  const prefix = config?.prefix ?? ''
  return {
    echo: (args, bytes) => ({ value: { got: args, prefix }, bytes }),
    later: (args) => new Promise((resolve) => setTimeout(() => resolve({ value: args }), args?.ms ?? 5)),
    fail: () => {
      throw new Error('refused by the service')
    },
    disposedYet: () => ({ value: disposed }),
    dispose() {
      disposed = true
    },
  }
}
