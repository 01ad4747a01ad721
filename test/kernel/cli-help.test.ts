/**
 * Every CLI subcommand answers --help with its usage on stdout and exit 0, run as a user runs it
 * (dist/podlegs, no config, no CNI_COMMAND). The subcommands come from the CLI's own table, so a
 * new one is covered without touching this test.
 *   npx jest --selectProjects kernel test/kernel/cli-help.test.ts   (after npm run build)
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { COMMANDS } from '../../plugin/cli/cli';

const BIN = process.env.PODLEGS_BIN ?? path.resolve(__dirname, '..', '..', 'dist', 'podlegs');
const run = (args: string[]): { code: number | null; stdout: string; stderr: string } => {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CNI_') && k !== 'NODE_NAME') env[k] = v;
  const r = spawnSync(BIN, args, { encoding: 'utf8', env, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

jest.setTimeout(120_000);

const subs = Object.keys(COMMANDS);

it('the table lists the subcommands the top-level usage names', () => {
  expect(subs.sort()).toEqual(['agent', 'attach', 'bgp-sync', 'conf', 'detach', 'status', 'version']);
  const top = run(['--help']);
  expect(top.code).toBe(0);
  for (const s of subs) expect(top.stdout).toMatch(new RegExp(`^  ${s}\\b`, 'm'));
});

describe.each(subs)('podlegs %s', (sub) => {
  it.each([['--help'], ['-h']])('%s: usage on stdout, exit 0, nothing run', (flag) => {
    const r = run([sub, flag]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(new RegExp(`^usage: podlegs ${sub}\\b`));
  });
});

it.each([['render'], ['validate'], ['install']])('podlegs conf %s --help: the conf usage, exit 0', (sub) => {
  const r = run(['conf', sub, '--help']);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.stdout).toMatch(new RegExp(`^usage: podlegs conf[\\s\\S]*conf ${sub}`));
});

it('a subcommand missing its --config still fails (exit 1) and names what is missing', () => {
  const r = run(['bgp-sync']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/bgp-sync needs --config FILE/);
});
