// The Cilium output: the desired pod peers rendered as Cilium BGP resources, written as JSON
// files (one per object) to bgp.cilium.outputDir for whatever applies them to the cluster
// (kubectl apply -f DIR, a GitOps tool, or Kubernetes mode's client).
//
//   cilium.io/v2       CiliumBGPClusterConfig podlegs-<node>   one BGP instance, one peer per pod
//                      CiliumBGPPeerConfig    podlegs-<selector> timers and families per selector
//   cilium.io/v2alpha1 CiliumBGPPeeringPolicy podlegs-<node>   the same peers for Cilium < 1.16
//
// What Cilium can enforce of the prefix guard is documented in docs/bgp.md: its BGP control plane
// has no import filter in these APIs and (since 1.16) rejects every route a peer announces, so the
// guard is recorded in the podlegs.io/prefix-guard annotation for audit only.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../../overlay/fs/atomic-write';
import type { CiliumApiVersion } from './config';
import type { DesiredBgp } from './desired';
import { toLabelSelector } from '../cni/labels';
import type { Speaker, SyncReport } from './speaker';
import type { SelectorConf, UpstreamPeer } from './config';

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'podlegs' };
export const GUARD_ANNOTATION = 'podlegs.io/prefix-guard';
export const PEER_TIMERS = { connectRetryTimeSeconds: 5, holdTimeSeconds: 30, keepAliveTimeSeconds: 10 };

export interface CiliumObject { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec: Record<string, unknown> }

export interface CiliumRenderInput {
  nodeName: string;
  apiVersions: CiliumApiVersion[];
  selectors: Pick<SelectorConf, 'name' | 'selector'>[];
  /** The node's other peers: Cilium lets only one ClusterConfig (one PeeringPolicy) select a node. */
  upstreamPeers?: UpstreamPeer[];
  exportPodCIDR?: boolean;
}

const peerName = (address: string): string => `pod-${address.replace(/[.:]/g, '-')}`;
const families = (v6: boolean, v4: boolean): { afi: string; safi: string }[] =>
  [...(v4 ? [{ afi: 'ipv4', safi: 'unicast' }] : []), ...(v6 ? [{ afi: 'ipv6', safi: 'unicast' }] : [])];

/** Pure: the Cilium objects for this node's desired peers, in a stable order. */
export function renderCilium(d: DesiredBgp, r: CiliumRenderInput): CiliumObject[] {
  const nodeSelector = { matchLabels: { 'kubernetes.io/hostname': r.nodeName } };
  const guard = JSON.stringify({
    denied: d.guard.denied.map((p) => p.text),
    allowed: Object.fromEntries(d.guard.selectors.map((s) => [s.name, s.allowed.map((p) => p.text)])),
    enforcedByCilium: false,
  });
  const meta = (name: string, annotate: boolean): CiliumObject['metadata'] => ({
    name, labels: { ...MANAGED_BY }, ...(annotate ? { annotations: { [GUARD_ANNOTATION]: guard } } : {}),
  });
  const out: CiliumObject[] = [];
  if (r.apiVersions.includes('v2')) {
    for (const s of d.guard.selectors) {
      const v6 = s.allowed.some((p) => p.v6) || s.members.some((a) => a.includes(':'));
      const v4 = s.allowed.some((p) => !p.v6) || s.members.some((a) => !a.includes(':')) || !v6;
      const sel = r.selectors.find((x) => x.name === s.name);
      out.push({
        apiVersion: 'cilium.io/v2', kind: 'CiliumBGPPeerConfig',
        metadata: { ...meta(`podlegs-${s.name}`, false), annotations: { 'podlegs.io/pod-selector': sel?.selector.text ?? '' } },
        spec: { timers: { ...PEER_TIMERS }, families: families(v6, v4) },
      });
    }
    out.push({
      apiVersion: 'cilium.io/v2', kind: 'CiliumBGPClusterConfig', metadata: meta(`podlegs-${r.nodeName}`, true),
      spec: {
        nodeSelector,
        bgpInstances: [{
          name: 'podlegs', localASN: d.localAsn,
          peers: [
            ...(r.upstreamPeers ?? []).map((u) => ({ name: u.name, peerAddress: u.peerAddress, peerASN: u.peerASN, ...(u.peerConfig ? { peerConfigRef: { name: u.peerConfig } } : {}) })),
            ...d.neighbors.map((n) => ({ name: peerName(n.address), peerAddress: n.address, peerASN: n.asn, peerConfigRef: { name: `podlegs-${n.selector}` } })),
          ],
        }],
      },
    });
  }
  // v2alpha1 requires at least one neighbor: with no peers at all the policy is left out (its file removed).
  const ups = r.upstreamPeers ?? [];
  if (r.apiVersions.includes('v2alpha1') && d.neighbors.length + ups.length > 0) {
    out.push({
      apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumBGPPeeringPolicy', metadata: meta(`podlegs-${r.nodeName}`, true),
      spec: {
        nodeSelector,
        virtualRouters: [{
          localASN: d.localAsn, exportPodCIDR: r.exportPodCIDR === true,
          neighbors: [...ups.map((u) => ({ peerAddress: `${u.peerAddress}/${u.peerAddress.includes(':') ? 128 : 32}`, peerASN: u.peerASN })), ...d.neighbors.map((n) => ({
            peerAddress: `${n.address}/${n.address.includes(':') ? 128 : 32}`, peerASN: n.asn, ...PEER_TIMERS,
            families: families(n.address.includes(':'), !n.address.includes(':')),
          }))],
        }],
      },
    });
  }
  return out;
}

/** Label selector of a bgp-sync selector, for manifests that want one (e.g. docs, tests). */
export const podSelectorOf = (s: Pick<SelectorConf, 'selector'>): ReturnType<typeof toLabelSelector> => toLabelSelector(s.selector);

export const fileNameOf = (o: CiliumObject): string => `${o.kind.toLowerCase()}-${o.metadata.name}.json`;
const OWN_FILE = /^ciliumbgp[a-z]+-podlegs-[a-z0-9.-]+\.json$/;

/** Writes the rendered objects to a directory: changed files atomically, stale podlegs files removed. */
export class CiliumFileSpeaker implements Speaker {
  readonly kind = 'cilium';
  constructor(private readonly dir: string, private readonly render: CiliumRenderInput) {}

  read(): Map<string, string> {
    const have = new Map<string, string>();
    let files: string[] = [];
    try {
      files = fs.readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const f of files.filter((x) => OWN_FILE.test(x))) have.set(f, fs.readFileSync(path.join(this.dir, f), 'utf8'));
    return have;
  }

  async sync(desired: DesiredBgp, opts: { dryRun?: boolean } = {}): Promise<SyncReport> {
    const want = new Map(renderCilium(desired, this.render).map((o) => [fileNameOf(o), `${JSON.stringify(o, null, 2)}\n`]));
    const have = this.read();
    const ops: string[] = [];
    for (const [f, text] of want) if (have.get(f) !== text) ops.push(`write ${f}`);
    for (const f of have.keys()) if (!want.has(f)) ops.push(`remove ${f}`);
    if (!opts.dryRun && ops.length) {
      fs.mkdirSync(this.dir, { recursive: true });
      for (const [f, text] of want) {
        if (have.get(f) === text) continue;
        writeFileAtomic(path.join(this.dir, f), text);
      }
      for (const f of have.keys()) if (!want.has(f)) fs.rmSync(path.join(this.dir, f), { force: true });
    }
    return { ops, applied: !opts.dryRun, neighbors: desired.neighbors.length };
  }
}
