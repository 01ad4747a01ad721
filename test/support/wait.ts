/**
 * Waiting in tests: up to a generous bound, never a speed assertion. The suite runs on loaded
 * 2-core machines that stall for seconds; how fast something happens is measured by the
 * benchmarks (npm run bench), a test only asserts that it happens. Pure (no jest, no lab): unit
 * tests, lab tests and the demo (bundled with esbuild) share it.
 */

/** Bound for agents, peers and the kernel to converge (flood lists, sessions, VIPs, repairs). */
export const CONVERGE_MS = 60_000;
/** Bound for something already under way to show up: a process's output, a packet, a local event. */
export const SEEN_MS = 30_000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls fn until it returns a truthy value and returns that value; throws after timeoutMs with
 * what was awaited and the last value (or error) seen, so a wait that times out fails its test
 * with a message that says why.
 */
export async function waitUntil<T>(what: string, fn: () => T | Promise<T>, timeoutMs = CONVERGE_MS, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)}${lastErr ? `, ${String(lastErr)}` : ''})`);
    }
    await sleep(everyMs);
  }
}
