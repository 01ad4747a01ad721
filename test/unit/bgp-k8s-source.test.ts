// bgp-sync's Kubernetes pod source against the fake API: this node's pods, with
// their eth0 IPs, follow create/restart/delete through the watch.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor } from '../k8s/fake-apiserver';
import { kubernetesPodClient } from '../../plugin/k8s/pod-client';
import { KubernetesPodSource } from '../../plugin/bgp/pods';
import { SEEN_MS, waitUntil } from '../support/wait';

jest.setTimeout(2 * SEEN_MS);

/** Waits (generously) for cond; a timeout fails the test and names the condition. */
const until = async (cond: () => Promise<boolean>): Promise<void> => { await waitUntil(String(cond), cond, SEEN_MS, 20); };

it('lists the NF pods of its node and follows an IP change', async () => {
  const api = new FakeApiServer();
  const port = await api.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-k8s-'));
  try {
    const kc = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kc, kubeconfigFor(`http://127.0.0.1:${port}`, api.token));
    const pod = (name: string, node: string, ip: string) => ({
      metadata: { name, namespace: 'nf', labels: { app: 'lb' }, annotations: { 'podlegs.io/bgp-asn': '65100' } },
      spec: { nodeName: node }, status: { phase: 'Running', podIP: ip },
    });
    api.put('pods', pod('lb1', 'n1', '10.10.1.5'));
    api.put('pods', pod('lb2', 'n2', '10.10.2.5'));
    const src = new KubernetesPodSource(kubernetesPodClient(kc), 'n1');
    let changes = 0;
    const stop = src.watch(() => changes++);
    await until(async () => (await src.list()).length === 1);
    expect(await src.list()).toEqual([{ key: 'nf/lb1', namespace: 'nf', name: 'lb1', labels: { app: 'lb' }, annotations: { 'podlegs.io/bgp-asn': '65100' }, ips: ['10.10.1.5'] }]);
    api.put('pods', pod('lb1', 'n1', '10.10.1.9')); // restarted with a new eth0 IP
    await until(async () => (await src.list())[0]?.ips[0] === '10.10.1.9');
    api.remove('pods', 'nf', 'lb1');
    await until(async () => (await src.list()).length === 0);
    expect(changes).toBeGreaterThanOrEqual(3);
    stop();
    // the request asked the API for this node's pods only
    expect(api.calls.some((c) => c.path.includes('fieldSelector=spec.nodeName%3Dn1'))).toBe(true);
  } finally {
    await api.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
