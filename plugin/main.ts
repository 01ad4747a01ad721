// podlegs: one binary. With CNI_COMMAND set it is the CNI plugin; without, the CLI.
// The CLI is required lazily so that CNI calls never load it.
import { runCni } from './cni/run';

const MAX_STDIN = (1 << 20) + 1;

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (c: Buffer) => {
      size += c.length;
      // Keep one byte past the limit so loadConf reports "too large" rather than bad JSON.
      if (size <= MAX_STDIN) chunks.push(c);
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).subarray(0, MAX_STDIN).toString()));
    process.stdin.on('error', reject);
  });
}

async function main(): Promise<void> {
  if (process.env.CNI_COMMAND) {
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
