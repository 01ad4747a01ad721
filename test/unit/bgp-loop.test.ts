// bgp-sync's static pod source (plugin state files) and its loop (coalescing, errors, resync).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseBgpSyncConf } from '../../plugin/bgp/config';
import type { DesiredBgp } from '../../plugin/bgp/desired';
import { PodInfo, PodSource, StaticPodSource } from '../../plugin/bgp/pods';
import type { Speaker, SyncReport } from '../../plugin/bgp/speaker';
import { BgpSync } from '../../plugin/bgp/sync';
import { AttachmentState, writeState } from '../../plugin/cni/state';
import type { Log } from '../../plugin/log';
import { SEEN_MS, sleep, waitUntil } from '../support/wait';

jest.setTimeout(2 * SEEN_MS);

const quiet: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
/** Waits (generously) for cond; a timeout fails the test and names the condition. */
const until = async (cond: () => boolean): Promise<void> => { await waitUntil(String(cond), cond, SEEN_MS, 10); };

function state(id: string, over: Partial<AttachmentState> = {}): AttachmentState {
  return { containerId: id, ifname: 'eth0', netns: '/proc/self/ns/net', network: 'nf', cniVersion: '1.1.0', vtep: '192.0.2.11',
    registry: { type: 'file', path: '/nonexistent' }, legs: [], complete: true, pod: { eth0: { ips: ['10.10.1.5'], gateway: '10.10.1.1' }, labels: { app: 'lb' } }, ...over };
}

describe('StaticPodSource', () => {
  let dir = '';
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-bgp-state-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('complete attachments with eth0 and a live netns; labels, network label, ASN label as annotation', async () => {
    writeState(dir, state('a'));
    writeState(dir, state('b', { complete: false }));
    writeState(dir, state('c', { netns: '/var/run/netns/does-not-exist-podlegs' }));
    writeState(dir, state('d', { pod: { labels: { app: 'fw', 'podlegs.io/bgp-asn': '65201' } } }));
    writeState(dir, state('e', { pod: { eth0: { ips: ['10.10.1.9'] }, labels: { app: 'fw', 'podlegs.io/bgp-asn': '65201' }, namespace: 'nf', name: 'fw-0' } }));
    writeState(dir, state('e', { ifname: 'net5', pod: undefined }));
    fs.writeFileSync(path.join(dir, 'attachments', 'broken.json'), '{');
    const broken: string[][] = [];
    const pods = await new StaticPodSource(dir, (f) => broken.push(f)).list();
    expect(pods).toEqual([
      { key: 'a', labels: { app: 'lb', 'podlegs.io/network': 'nf' }, annotations: {}, ips: ['10.10.1.5'] },
      { key: 'e', namespace: 'nf', name: 'fw-0', labels: { app: 'fw', 'podlegs.io/bgp-asn': '65201', 'podlegs.io/network': 'nf' },
        annotations: { 'podlegs.io/bgp-asn': '65201' }, ips: ['10.10.1.9'] },
    ]);
    expect(broken).toEqual([['broken.json']]);
  });

  test('watch fires on state changes', async () => {
    const src = new StaticPodSource(dir);
    let n = 0;
    const stop = src.watch(() => { n++; });
    try {
      writeState(dir, state('x'));
      await until(() => n > 0);
    } finally {
      stop();
    }
  });
});

class FakeSource implements PodSource {
  readonly kind = 'static';
  pods: PodInfo[] = [];
  onChange: () => void = () => undefined;
  async list(): Promise<PodInfo[]> { return this.pods; }
  watch(cb: () => void): () => void { this.onChange = cb; return () => undefined; }
}
class FakeSpeaker implements Speaker {
  readonly kind = 'gobgp';
  calls: DesiredBgp[] = [];
  fail = false;
  delayMs = 0;
  /** Called once, inside the next sync: a change that arrives while a run is in progress. */
  during?: () => void;
  async sync(d: DesiredBgp): Promise<SyncReport> {
    const during = this.during;
    this.during = undefined;
    during?.();
    if (this.delayMs) await sleep(this.delayMs);
    if (this.fail) throw new Error('gobgp neighbor: connection refused');
    this.calls.push(d);
    return { ops: [], applied: true, neighbors: d.neighbors.length };
  }
}

describe('BgpSync loop', () => {
  const conf = parseBgpSyncConf({ localAsn: 65012, peerAsn: 65100, podCidrs: ['10.0.0.0/8'], serviceCidrs: ['172.20.0.0/16'], resyncMs: 100_000 }, { nodeName: 'n1' });

  test('a burst of changes becomes one run; a change during a run triggers one more; errors are logged, not thrown', async () => {
    const src = new FakeSource();
    const sp = new FakeSpeaker();
    const errors: string[] = [];
    const sync = new BgpSync(conf, src, sp, { ...quiet, error: (m, meta) => errors.push(`${m} ${String(meta?.error)}`) }, 10);
    sync.start();
    await until(() => sp.calls.length >= 1);
    await sleep(30);
    expect(sp.calls).toHaveLength(1);
    src.pods = [{ key: 'a', labels: {}, annotations: {}, ips: ['10.10.1.5'] }];
    for (let i = 0; i < 10; i++) src.onChange();
    await until(() => sp.calls.length >= 2);
    await sleep(30);
    expect(sp.calls).toHaveLength(2);
    expect(sp.calls[1].neighbors.map((n) => n.address)).toEqual(['10.10.1.5']);
    sp.delayMs = 60;
    sp.during = () => src.onChange(); // a change while this run (60 ms) is in progress
    src.onChange();
    await until(() => sp.calls.length >= 4);
    await sleep(100);
    expect(sp.calls).toHaveLength(4);
    sp.fail = true;
    src.onChange();
    await until(() => errors.length > 0);
    expect(errors).toEqual([expect.stringMatching(/sync failed.*connection refused/)]);
    await sync.stop();
  });
});
