// The thin client's protocol handling over both of its transports (node's pipe handle and
// net.Socket), against a unix socket served in this process.
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { callAgent, Dial, dialNet, rawDial } from '../../plugin/cni-client/client';

type Serve = (c: net.Socket, request: string) => void;

const raw = rawDial();
const dialers: [string, Dial][] = [['net.Socket', dialNet], ...(raw ? [['pipe handle', raw] as [string, Dial]] : [])];

test('the pipe handle transport is there on node 20', () => {
  if (/^v20\./.test(process.version)) expect(raw).toBeDefined();
});

describe.each(dialers)('callAgent through %s', (_name, dial) => {
  let dir: string;
  let server: net.Server | undefined;
  let sock: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-client-'));
    sock = path.join(dir, 'agent.sock');
  });
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const serve = (fn: Serve): Promise<void> => new Promise((resolve) => {
    server = net.createServer((c) => {
      let buf = '';
      c.setEncoding('utf8');
      c.on('error', () => undefined);
      c.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) fn(c, buf.slice(0, nl));
      });
    });
    server.listen(sock, () => resolve());
  });
  const call = (env: NodeJS.ProcessEnv = {}): ReturnType<typeof callAgent> => callAgent(sock, { CNI_COMMAND: 'ADD', ...env }, '{"cniVersion":"1.0.0","ü":"ß"}', '1.0.0', dial);
  const code = (o: Awaited<ReturnType<typeof callAgent>>): unknown => JSON.parse(o?.stdout ?? '{}').code;

  test('an answer comes back as it was sent, the request carries env and stdin', async () => {
    let seen: Record<string, unknown> = {};
    const stdout = `${JSON.stringify({ cniVersion: '1.0.0', interfaces: [{ name: 'net1 ✓' }], pad: 'x'.repeat(300_000) })}\n`;
    await serve((c, r) => {
      seen = JSON.parse(r) as Record<string, unknown>;
      // In pieces, split inside a multi-byte character.
      const line = Buffer.from(`${JSON.stringify({ podlegs: 1, exitCode: 0, stdout })}\n`);
      const cut = line.indexOf(Buffer.from('✓')) + 1;
      c.write(line.subarray(0, cut));
      setImmediate(() => c.end(line.subarray(cut)));
    });
    expect(await call({ FOO: 'bar' })).toEqual({ exitCode: 0, stdout });
    expect(seen).toEqual({ podlegs: 1, env: { CNI_COMMAND: 'ADD', FOO: 'bar' }, stdin: '{"cniVersion":"1.0.0","ü":"ß"}' });
  });

  test('a refusal, no socket file, a stale socket file: undefined (run in-process)', async () => {
    expect(await call()).toBeUndefined(); // nothing there
    await serve((c) => c.end('{"podlegs":1,"refused":"protocol 2"}\n'));
    expect(await call()).toBeUndefined();
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    fs.writeFileSync(sock, ''); // not a socket: connect fails
    expect(await call()).toBeUndefined();
  });

  test('closed before answering, garbage, an answer too large: CNI error 11', async () => {
    await serve((c) => c.destroy());
    expect(code(await call())).toBe(11);
    await new Promise<void>((r) => server!.close(() => r()));
    await serve((c) => c.end('hello\n'));
    expect(code(await call())).toBe(11);
    await new Promise<void>((r) => server!.close(() => r()));
    await serve((c) => { c.write('x'.repeat((4 << 20) + 10)); });
    const big = await call();
    expect(code(big)).toBe(11);
    expect(JSON.parse(big!.stdout).msg).toMatch(/larger than/);
  });

  test('no answer before PODLEGS_AGENT_TIMEOUT_MS: CNI error 11', async () => {
    await serve(() => undefined);
    const o = await call({ PODLEGS_AGENT_TIMEOUT_MS: '200' });
    expect(code(o)).toBe(11);
    expect(JSON.parse(o!.stdout).msg).toMatch(/did not answer/);
  });
});
