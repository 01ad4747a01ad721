// podlegs: one binary. With CNI_COMMAND (or any CNI_* variable) set it is the CNI plugin; without, the CLI.
// A CNI call goes to the node agent's socket first (plugin/cni-client); only when no agent takes
// it does it run here, in-process. dist/podlegs's loader already tried the agent and hands over
// the stdin it read; the standalone build (no loader) tries it here.
// The CLI is required lazily so that CNI calls never load it.
import { serveThroughAgent } from '../cni-client/client';
import { answerAndExit, isCniCall, readStdin, takeHandoff } from '../cni-client/protocol';
import { runCni } from '../dispatch/run';

async function main(): Promise<void> {
  if (isCniCall(process.env)) {
    const handed = takeHandoff();
    const stdin = handed ?? await readStdin();
    const out = (handed === undefined ? await serveThroughAgent(process.env, stdin) : undefined) ?? await runCni(process.env, stdin);
    // Everything the call started has been awaited (the log is written synchronously): exit
    // now rather than through node's full teardown.
    answerAndExit(out.stdout, out.exitCode);
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runCli } = require('./cli') as typeof import('./cli');
  process.exitCode = await runCli(process.argv.slice(2));
}

main().catch((e: unknown) => {
  process.stderr.write(`podlegs: ${(e as Error)?.message ?? String(e)}\n`);
  process.exitCode = 1;
});
