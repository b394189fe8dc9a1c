// jco glue only reaches for node:fs when it loads core modules by URL, which this worker never does.
export const readFile = () => {
  throw new Error("no filesystem on Workers")
}
