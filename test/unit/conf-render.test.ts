// conf render/install: chaining podlegs after the conflist Cilium writes, as
// found on a node (test/fixtures/05-cilium.conflist, byte-exact: it starts with
// "\n" and has no trailing newline).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatConflist, renderChained, ConfError, JsonObject } from '../../plugin/conf/render';
import { installOnce, watchInstall, cniConfigFiles, InstallOutcome } from '../../plugin/conf/install';
import { renderInClusterKubeconfig, syncKubeconfig } from '../../plugin/conf/kubeconfig';
import { runConf } from '../../plugin/conf/conf-cmd';
import { SEEN_MS, waitUntil } from '../support/wait';

jest.setTimeout(2 * SEEN_MS);

const FIXTURE = path.join(__dirname, '..', 'fixtures', '05-cilium.conflist');
const ciliumText = fs.readFileSync(FIXTURE, 'utf8');
const k8sEntry: JsonObject = {
  type: 'podlegs',
  underlay: { interface: 'auto', vtep: 'auto', port: 4789, mtu: 'auto' },
  kubernetes: { kubeconfig: '/etc/cni/net.d/podlegs.d/podlegs.kubeconfig' },
  registry: { type: 'kubernetes' },
  stateDir: '/var/lib/podlegs',
  log: { file: '/var/log/podlegs/podlegs.log', level: 'info' },
};

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-conf-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('render', () => {
  it('uses the real Cilium conflist as found (leading newline, no trailing newline)', () => {
    expect(ciliumText.startsWith('\n')).toBe(true);
    expect(ciliumText.endsWith('\n')).toBe(false);
  });

  it('keeps cniVersion 0.3.1 and the name, puts Cilium first and podlegs last', () => {
    const cilium = JSON.parse(ciliumText) as { cniVersion: string; name: string; plugins: JsonObject[] };
    const c = renderChained(ciliumText, FIXTURE, { entry: k8sEntry });
    expect(c.cniVersion).toBe('0.3.1');
    expect(c.name).toBe('cilium');
    expect(Object.keys(c)).toEqual(['cniVersion', 'name', 'plugins']);
    expect(c.plugins).toHaveLength(cilium.plugins.length + 1);
    // Cilium's entries: equal in content, key order included.
    cilium.plugins.forEach((p, i) => {
      expect(c.plugins[i]).toEqual(p);
      expect(JSON.stringify(c.plugins[i])).toBe(JSON.stringify(p));
    });
    expect(c.plugins[c.plugins.length - 1]).toEqual(k8sEntry);
  });

  it('defaults to a bare podlegs entry and honours --name', () => {
    const c = renderChained(ciliumText, FIXTURE, { name: 'cilium-podlegs' });
    expect(c.name).toBe('cilium-podlegs');
    expect(c.plugins[1]).toEqual({ type: 'podlegs' });
  });

  it('formats as two-space JSON with one trailing newline, and parses back', () => {
    const text = formatConflist(renderChained(ciliumText, FIXTURE));
    expect(text.endsWith('}\n')).toBe(true);
    expect(JSON.parse(text).plugins[0].type).toBe('cilium-cni');
  });

  it('keeps other top-level fields and every plugin of a chained Cilium list', () => {
    const chained = JSON.stringify({
      cniVersion: '1.0.0', name: 'generic-veth', disableCheck: true,
      plugins: [{ type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.22.0.0/16' } }, { type: 'portmap', capabilities: { portMappings: true } }, { type: 'cilium-cni', 'chaining-mode': 'generic-veth' }],
    });
    const c = renderChained(chained, 'x');
    expect(c.disableCheck).toBe(true);
    expect(c.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'cilium-cni', 'podlegs']);
  });

  it('accepts a single-plugin .conf', () => {
    const c = renderChained(JSON.stringify({ cniVersion: '0.3.1', name: 'cilium', type: 'cilium-cni', 'enable-debug': false }), '05-cilium.conf');
    expect(c.plugins).toEqual([{ type: 'cilium-cni', 'enable-debug': false }, { type: 'podlegs' }]);
  });

  it('drops a podlegs entry already in the input instead of chaining it twice', () => {
    const once = formatConflist(renderChained(ciliumText, FIXTURE, { entry: k8sEntry }));
    const twice = formatConflist(renderChained(once, 'ours', { entry: k8sEntry }));
    expect(twice).toBe(once);
  });

  it.each<[string, string, RegExp]>([
    ['not JSON', '{', /not valid JSON/],
    ['no plugins and no type', '{"cniVersion":"0.3.1","name":"x"}', /neither a conflist/],
    ['empty plugin list', '{"cniVersion":"0.3.1","name":"x","plugins":[]}', /non-empty list/],
    ['no cniVersion', '{"name":"x","plugins":[{"type":"cilium-cni"}]}', /cniVersion/],
    ['plugin without type', '{"cniVersion":"0.3.1","name":"x","plugins":[{}]}', /no "type"/],
  ])('refuses a base network that is %s', (_what, text, msg) => {
    expect(() => renderChained(text, 'f')).toThrow(msg);
  });

  it.each<[string, JsonObject, RegExp]>([
    ['of another type', { type: 'bridge' }, /"type": "podlegs"/],
    ['with its own cniVersion', { type: 'podlegs', cniVersion: '1.0.0' }, /must not carry "cniVersion"/],
    ['with a typo', { type: 'podlegs', underlay: { prot: 4789 } }, /underlay.prot is not a known field/],
    ['on Cilium\'s VXLAN port', { type: 'podlegs', underlay: { port: 8472 } }, /Cilium's VXLAN port/],
  ])('refuses a podlegs entry %s', (_what, entry, msg) => {
    let err: unknown;
    try { renderChained(ciliumText, FIXTURE, { entry }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfError);
    expect((err as ConfError).origin).toBe('input');
    expect((err as Error).message).toMatch(msg);
  });
});

describe('install', () => {
  const cilium = (): string => path.join(tmp, '05-cilium.conflist');
  const ours = (): string => path.join(tmp, '00-podlegs.conflist');
  const putCilium = (text = ciliumText): void => {
    // Like Cilium: write elsewhere, rename into place.
    const t = path.join(tmp, '.cilium.tmp');
    fs.writeFileSync(t, text);
    fs.renameSync(t, cilium());
  };

  it('writes 00-podlegs.conflist sorted before Cilium\'s, and never touches Cilium\'s file', () => {
    putCilium();
    const before = fs.statSync(cilium());
    const r = installOnce({ dir: tmp, entry: k8sEntry });
    expect(r.action).toBe('written');
    expect(r.cilium).toBe(cilium());
    expect(r.shadowedBy).toEqual([]);
    expect(cniConfigFiles(tmp)).toEqual(['00-podlegs.conflist', '05-cilium.conflist']);
    expect(fs.readFileSync(cilium(), 'utf8')).toBe(ciliumText);
    expect(fs.statSync(cilium()).mtimeMs).toBe(before.mtimeMs);
    expect(fs.readFileSync(ours(), 'utf8')).toBe(formatConflist(renderChained(ciliumText, FIXTURE, { entry: k8sEntry })));
    expect(fs.statSync(ours()).mode & 0o777).toBe(0o644);
    // No temp file left behind.
    expect(fs.readdirSync(tmp).sort()).toEqual(['00-podlegs.conflist', '05-cilium.conflist']);
  });

  it('is idempotent: a second pass changes nothing (same inode, same mtime)', () => {
    putCilium();
    installOnce({ dir: tmp });
    const st = fs.statSync(ours());
    const r = installOnce({ dir: tmp });
    expect(r.action).toBe('unchanged');
    const st2 = fs.statSync(ours());
    expect(st2.ino).toBe(st.ino);
    expect(st2.mtimeMs).toBe(st.mtimeMs);
  });

  it('replaces the file atomically (a new inode via rename, never a partial write)', () => {
    putCilium();
    installOnce({ dir: tmp });
    const ino = fs.statSync(ours()).ino;
    // A reader holding the old file keeps reading the complete old content.
    const fd = fs.openSync(ours(), 'r');
    putCilium(ciliumText.replace('"enable-debug": false', '"enable-debug": true'));
    expect(installOnce({ dir: tmp }).action).toBe('written');
    expect(fs.statSync(ours()).ino).not.toBe(ino);
    expect(JSON.parse(fs.readFileSync(fd, 'utf8')).plugins[0]['enable-debug']).toBe(false);
    fs.closeSync(fd);
    expect(JSON.parse(fs.readFileSync(ours(), 'utf8')).plugins[0]['enable-debug']).toBe(true);
  });

  it('removes ours when Cilium\'s file goes away, and installs nothing before it exists', () => {
    expect(installOnce({ dir: tmp }).action).toBe('absent');
    expect(fs.existsSync(ours())).toBe(false);
    putCilium();
    expect(installOnce({ dir: tmp }).action).toBe('written');
    fs.rmSync(cilium());
    expect(installOnce({ dir: tmp }).action).toBe('removed');
    expect(fs.existsSync(ours())).toBe(false);
  });

  it('keeps the last good conflist while Cilium\'s file is unreadable', () => {
    putCilium();
    installOnce({ dir: tmp });
    const good = fs.readFileSync(ours(), 'utf8');
    fs.writeFileSync(cilium(), '{"cniVersion": "0.3.1", "name": "cil');
    const r = installOnce({ dir: tmp, ciliumFile: '05-cilium.conflist' });
    expect(r.action).toBe('kept');
    expect(r.reason).toMatch(/not valid JSON/);
    expect(fs.readFileSync(ours(), 'utf8')).toBe(good);
  });

  it('finds Cilium\'s file by its cilium-cni plugin and warns about files sorting before ours', () => {
    fs.writeFileSync(path.join(tmp, '10-other.conflist'), '{"cniVersion":"1.0.0","name":"o","plugins":[{"type":"bridge"}]}');
    fs.writeFileSync(path.join(tmp, '05-cilium.conflist.cilium_bak'), 'not a config');
    fs.writeFileSync(path.join(tmp, '00-multus.conf'), '{"cniVersion":"1.0.0","name":"multus","type":"multus"}');
    fs.writeFileSync(path.join(tmp, '20-cilium.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'cilium', type: 'cilium-cni' }));
    const r = installOnce({ dir: tmp, outName: '01-podlegs.conflist' });
    expect(r.action).toBe('written');
    expect(r.cilium).toBe(path.join(tmp, '20-cilium.conf'));
    expect(r.shadowedBy).toEqual(['00-multus.conf']);
  });

  it('re-reads the entry file on each pass and refuses a bad one without touching the conflist', () => {
    putCilium();
    const entryFile = path.join(tmp, 'entry.json');
    fs.writeFileSync(entryFile, JSON.stringify(k8sEntry));
    installOnce({ dir: tmp, entryFile });
    const good = fs.readFileSync(ours(), 'utf8');
    fs.writeFileSync(entryFile, JSON.stringify({ ...k8sEntry, log: { level: 'loud' } }));
    expect(() => installOnce({ dir: tmp, entryFile })).toThrow(/log.level/);
    expect(fs.readFileSync(ours(), 'utf8')).toBe(good);
  });
});

describe('install --watch', () => {
  // Generous, yet well below the 60 s interval below: a re-render in time is still the events' doing.
  const waitFor = async (cond: () => boolean): Promise<void> => { await waitUntil(String(cond), cond, SEEN_MS, 20); };

  it('re-renders when Cilium rewrites its file (inotify), and mirrors its removal', async () => {
    const cilium = path.join(tmp, '05-cilium.conflist');
    const ours = path.join(tmp, '00-podlegs.conflist');
    const passes: InstallOutcome[] = [];
    // Interval long enough that only directory events can explain a quick re-render.
    const w = watchInstall({ dir: tmp, intervalMs: 60_000, debounceMs: 20, onPass: (r) => passes.push(r) });
    try {
      expect(passes[0].action).toBe('absent');
      fs.writeFileSync(path.join(tmp, '.c.tmp'), ciliumText);
      fs.renameSync(path.join(tmp, '.c.tmp'), cilium);
      await waitFor(() => fs.existsSync(ours));
      expect(JSON.parse(fs.readFileSync(ours, 'utf8')).plugins[0]['enable-debug']).toBe(false);
      // Cilium rewrites its file (by rename, so the inode changes).
      fs.writeFileSync(path.join(tmp, '.c.tmp'), ciliumText.replace('"enable-debug": false', '"enable-debug": true'));
      fs.renameSync(path.join(tmp, '.c.tmp'), cilium);
      await waitFor(() => JSON.parse(fs.readFileSync(ours, 'utf8')).plugins[0]['enable-debug'] === true);
      expect(fs.readFileSync(cilium, 'utf8')).toContain('"enable-debug": true');
      fs.rmSync(cilium);
      await waitFor(() => !fs.existsSync(ours));
      expect(passes.some((p) => p.action === 'removed')).toBe(true);
    } finally {
      w.close();
    }
  });

  it('also catches changes by the periodic check alone', async () => {
    putCiliumAt(tmp);
    const w = watchInstall({ dir: tmp, intervalMs: 100, debounceMs: 10_000 });
    try {
      const ours = path.join(tmp, '00-podlegs.conflist');
      expect(fs.existsSync(ours)).toBe(true);
      fs.writeFileSync(path.join(tmp, '05-cilium.conflist'), ciliumText.replace('cilium-cni.log', 'other.log'));
      await waitFor(() => fs.readFileSync(ours, 'utf8').includes('other.log'));
    } finally {
      w.close();
    }
  });

  function putCiliumAt(dir: string): void {
    fs.writeFileSync(path.join(dir, '05-cilium.conflist'), ciliumText);
  }
});

describe('kubeconfig from the service account', () => {
  it('renders server, CA and token, and rewrites only on change (mode 0600)', () => {
    const sa = path.join(tmp, 'sa');
    fs.mkdirSync(sa);
    fs.writeFileSync(path.join(sa, 'token'), 'tok-1\n');
    fs.writeFileSync(path.join(sa, 'ca.crt'), 'CA');
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const doc = JSON.parse(renderInClusterKubeconfig({ saDir: sa, env }));
    expect(doc.clusters[0].cluster).toEqual({ server: 'https://10.96.0.1:443', 'certificate-authority-data': Buffer.from('CA').toString('base64') });
    expect(doc.users[0].user).toEqual({ token: 'tok-1' });
    const file = path.join(tmp, 'podlegs.d', 'podlegs.kubeconfig');
    expect(syncKubeconfig(file, { saDir: sa, env })).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(syncKubeconfig(file, { saDir: sa, env })).toBe(false);
    fs.writeFileSync(path.join(sa, 'token'), 'tok-2\n');
    expect(syncKubeconfig(file, { saDir: sa, env })).toBe(true);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).users[0].user.token).toBe('tok-2');
    expect(JSON.parse(renderInClusterKubeconfig({ saDir: sa, env: { KUBERNETES_SERVICE_HOST: 'fd00::1' } })).clusters[0].cluster.server).toBe('https://[fd00::1]:443');
  });
});

describe('podlegs conf (CLI)', () => {
  const capture = async (args: string[]): Promise<{ code: number; out: string }> => {
    let out = '';
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out += String(s);
      return true;
    });
    try {
      return { code: await runConf(args), out };
    } finally {
      spy.mockRestore();
    }
  };

  it('render prints the chained list; validate accepts it; install exits 3 without Cilium', async () => {
    const entry = path.join(tmp, 'podlegs.json');
    fs.writeFileSync(entry, JSON.stringify(k8sEntry));
    const r = await capture(['render', '--cilium', FIXTURE, '--podlegs', entry]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).plugins.map((p: JsonObject) => p.type)).toEqual(['cilium-cni', 'podlegs']);
    const file = path.join(tmp, 'out.conflist');
    fs.writeFileSync(file, r.out);
    expect((await capture(['validate', file])).code).toBe(0);
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    expect((await capture(['install', '--cilium-dir', empty])).code).toBe(3);
    fs.copyFileSync(FIXTURE, path.join(empty, '05-cilium.conflist'));
    const i = await capture(['install', '--cilium-dir', empty, '--podlegs', entry]);
    expect(i.code).toBe(0);
    expect(i.out).toMatch(/wrote .*00-podlegs.conflist/);
    expect(fs.readFileSync(path.join(empty, '00-podlegs.conflist'), 'utf8')).toBe(r.out);
  });
});
