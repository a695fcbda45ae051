// A bridge service factory that fails to build, for the helper's start-up error path.
export function create() {
  throw new Error('cannot open the listener')
}
