// What dist/podlegs runs first (scripts/build.mjs puts it, bundled, into scripts/loader.js):
// a CNI call goes to the node agent; only when no agent takes it, or for the CLI, does the
// loader run the bundle (runBundle), handing over the stdin already read.
import { serveThroughAgent } from './client';
import { answerAndExit, handOver, isCniCall, readStdin } from './protocol';

declare function runBundle(): void; // scripts/loader.js

async function thinClient(): Promise<void> {
  if (!isCniCall(process.env) || process.env.CNI_COMMAND === 'VERSION') return runBundle();
  const stdin = await readStdin();
  const out = await serveThroughAgent(process.env, stdin);
  if (!out) {
    handOver(stdin);
    return runBundle();
  }
  answerAndExit(out.stdout, out.exitCode);
}

thinClient().catch((e: unknown) => {
  process.stderr.write(`podlegs: ${(e as Error)?.message ?? String(e)}\n`);
  process.exitCode = 1;
});
