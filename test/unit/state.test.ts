import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AttachmentState, listStates, readState, STATE_VERSION, writeState } from '../../plugin/cni/state';
import { runCni } from '../../plugin/dispatch/run';

const sample: AttachmentState = {
  containerId: 'c1', ifname: 'net1', netns: '/var/run/netns/p', network: 'n', cniVersion: '1.0.0', vtep: '192.0.2.1',
  registry: { type: 'file', path: '/tmp/r' }, legs: [], complete: true,
};

describe('attachment state', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (): string => path.join(dir, 'attachments', 'c1_net1.json');

  it('writes the version, mode 0600, and reads back what was written', () => {
    writeState(dir, sample);
    expect(JSON.parse(fs.readFileSync(file(), 'utf8')).version).toBe(STATE_VERSION);
    expect(fs.statSync(file()).mode & 0o777).toBe(0o600);
    expect(readState(dir, 'c1', 'net1')).toEqual(sample);
  });

  it('reads a file without version (written by earlier podlegs) as version 1', () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    const { registry: _r, ...legacy } = sample;
    fs.writeFileSync(file(), JSON.stringify({ ...legacy, registryPath: '/tmp/r' }));
    expect(readState(dir, 'c1', 'net1')).toEqual(sample);
  });

  it('refuses a newer version with a clear CNI error and keeps the file', () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    fs.writeFileSync(file(), JSON.stringify({ ...sample, version: 2 }));
    expect(() => readState(dir, 'c1', 'net1')).toThrow(expect.objectContaining({ code: 7, message: expect.stringMatching(/version 2.*version 1/) }));
    expect(listStates(dir)).toEqual({ states: [], broken: ['c1_net1.json'] });
    expect(fs.existsSync(file())).toBe(true);
  });

  it('DEL of an attachment whose ADD was killed writing its first state removes the temp file left (found by kill-add)', async () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    const tmp = path.join(dir, 'attachments', `.c1_net1.json.4242.0badcafe.tmp`); // writeFileAtomic's temp name, never renamed
    fs.writeFileSync(tmp, '{"containerId":"c1"');
    const other = path.join(dir, 'attachments', `.c2_net1.json.4242.0badcafe.tmp`); // another attachment's: not this DEL's
    fs.writeFileSync(other, '{');
    const out = await runCni({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_PATH: '/nonexistent' },
      JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'podlegs', stateDir: dir }));
    expect(out).toEqual({ exitCode: 0, stdout: '' });
    expect(fs.readdirSync(path.join(dir, 'attachments'))).toEqual([path.basename(other)]);
  });
});
