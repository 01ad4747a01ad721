// A monotonic clock in milliseconds. Not `performance.now()`: node's global `performance`
// loads perf_hooks on first use, ~1.5 ms of every CNI call that times its phases.
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
