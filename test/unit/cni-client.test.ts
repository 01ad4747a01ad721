// The thin client's protocol handling over both of its transports (podlegs' addon, blocking,
// and net.Socket), against a unix socket served by another process: the addon's calls block
// this one's event loop, as they do in the real client.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { callAgent, Dial, dialNet, nativeDial } from '../../plugin/cni-client/client';

// The agent stand-in: listens on argv[1], and for each request line behaves as argv[2] says;
// it writes the request it saw to argv[1] + '.seen' and answers with argv[1] + '.answer'.
const SERVER = `
const net = require('net'); const fs = require('fs');
const [sock, how] = process.argv.slice(1);
const s = net.createServer((c) => {
  let buf = '';
  c.setEncoding('utf8');
  c.on('error', () => undefined);
  c.on('data', (d) => {
    buf += d;
    const nl = buf.indexOf('\\n');
    if (nl < 0) return;
    fs.writeFileSync(sock + '.seen', buf.slice(0, nl));
    if (how === 'answer') {
      // In pieces, split inside a multi-byte character.
      const stdout = fs.readFileSync(sock + '.answer', 'utf8');
      const line = Buffer.from(JSON.stringify({ podlegs: 1, exitCode: 0, stdout }) + '\\n');
      const cut = line.indexOf(Buffer.from('✓')) + 1;
      c.write(line.subarray(0, cut));
      setTimeout(() => c.end(line.subarray(cut)), 20);
    } else if (how === 'refuse') c.end('{"podlegs":1,"refused":"protocol 2"}\\n');
    else if (how === 'destroy') c.destroy();
    else if (how === 'garbage') c.end('hello\\n');
    else if (how === 'big') c.write('x'.repeat((4 << 20) + 10));
  });
});
s.listen(sock, () => process.stdout.write('ready\\n'));
`;

const limit = 60_000;
const native = nativeDial(limit);
const dialers: [string, Dial][] = [['net.Socket', dialNet], ...(native ? [['the addon', native] as [string, Dial]] : [])];

test('the addon transport is there (built by npm install)', () => {
  expect(native).toBeDefined();
});

describe.each(dialers)('callAgent through %s', (name, transport) => {
  let dir: string;
  let server: ChildProcess | undefined;
  let sock: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-client-'));
    sock = path.join(dir, 'agent.sock');
  });
  afterEach(async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s || s.exitCode !== null) return;
    await new Promise<void>((r) => { s.once('exit', () => r()); s.kill('SIGKILL'); });
    fs.rmSync(sock, { force: true });
  };
  const serve = (how: string, stdout = ''): Promise<void> => new Promise((resolve, reject) => {
    fs.writeFileSync(`${sock}.answer`, stdout);
    const s = spawn(process.execPath, ['-e', SERVER, sock, how], { stdio: ['ignore', 'pipe', 'inherit'] });
    server = s;
    s.on('error', reject);
    s.stdout!.once('data', () => resolve());
  });
  // The addon's transport takes its time limit when made; a test of the limit makes its own.
  const call = (env: NodeJS.ProcessEnv = {}, dial = transport): ReturnType<typeof callAgent> =>
    callAgent(sock, { CNI_COMMAND: 'ADD', ...env }, '{"cniVersion":"1.0.0","ü":"ß"}', '1.0.0', dial);
  const code = (o: Awaited<ReturnType<typeof callAgent>>): unknown => JSON.parse(o?.stdout ?? '{}').code;

  test('an answer comes back as it was sent, the request carries env and stdin', async () => {
    const stdout = `${JSON.stringify({ cniVersion: '1.0.0', interfaces: [{ name: 'net1 ✓' }], pad: 'x'.repeat(300_000) })}\n`;
    await serve('answer', stdout);
    expect(await call({ FOO: 'bar' })).toEqual({ exitCode: 0, stdout });
    expect(JSON.parse(fs.readFileSync(`${sock}.seen`, 'utf8'))).toEqual({ podlegs: 1, env: { CNI_COMMAND: 'ADD', FOO: 'bar' }, stdin: '{"cniVersion":"1.0.0","ü":"ß"}' });
  });

  test('a refusal, no socket file, a stale socket file: undefined (run in-process)', async () => {
    expect(await call()).toBeUndefined(); // nothing there
    await serve('refuse');
    expect(await call()).toBeUndefined();
    await stop();
    fs.writeFileSync(sock, ''); // not a socket: connect fails
    expect(await call()).toBeUndefined();
  });

  test('closed before answering, garbage, an answer too large: CNI error 11', async () => {
    await serve('destroy');
    expect(code(await call())).toBe(11);
    await stop();
    await serve('garbage');
    expect(code(await call())).toBe(11);
    await stop();
    await serve('big');
    const big = await call();
    expect(code(big)).toBe(11);
    expect(JSON.parse(big!.stdout).msg).toMatch(/larger than/);
  });

  test('no answer before PODLEGS_AGENT_TIMEOUT_MS: CNI error 11', async () => {
    await serve('silent');
    const dial = name === 'the addon' ? nativeDial(200)! : transport;
    const o = await call({ PODLEGS_AGENT_TIMEOUT_MS: '200' }, dial);
    expect(code(o)).toBe(11);
    expect(JSON.parse(o!.stdout).msg).toMatch(/did not answer/);
  });
});
