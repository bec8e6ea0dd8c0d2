/** Heap in use after a full collection: vitest.config.ts runs the test forks with --expose-gc. */
export function liveHeap(): number {
  if (globalThis.gc === undefined) throw new Error('run with --expose-gc (vitest.config.ts sets it for the test forks)');
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}
