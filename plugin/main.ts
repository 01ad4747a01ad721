// podlegs: one binary. With CNI_COMMAND (or any CNI_* variable) set it is the CNI plugin; without, the CLI.
// The CLI is required lazily so that CNI calls never load it.
import { runCni } from './cni/run';

const MAX_STDIN = (1 << 20) + 1;

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (c: Buffer) => {
      // Keep bytes up to one past the limit (the rest is dropped), so loadConf sees the
      // input is too large and says so, whatever the chunk boundaries were.
      if (size < MAX_STDIN) chunks.push(c);
      size += c.length;
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).subarray(0, MAX_STDIN).toString()));
    process.stdin.on('error', reject);
  });
}

/** A runtime sets CNI_COMMAND; one that set other CNI_* variables but not it gets a CNI error, not the CLI. */
const isCniCall = (env: NodeJS.ProcessEnv): boolean => Object.keys(env).some((k) => k.startsWith('CNI_'));

async function main(): Promise<void> {
  if (isCniCall(process.env)) {
    const out = await runCni(process.env, await readStdin());
    process.stdout.write(out.stdout);
    process.exitCode = out.exitCode;
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runCli } = require('./cli/cli') as typeof import('./cli/cli');
  process.exitCode = await runCli(process.argv.slice(2));
}

main().catch((e: unknown) => {
  process.stderr.write(`podlegs: ${(e as Error)?.message ?? String(e)}\n`);
  process.exitCode = 1;
});
