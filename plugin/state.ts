// What an ADD did, recorded before the first kernel change so that DEL and GC
// can undo it without the netns, the config or any API.
import * as fs from 'fs';
import * as path from 'path';
import type { IpamConf, RegistryConf } from './cni/config';
import type { IpamContext } from './cni/ipam';

export interface LegState {
  network: string;
  vni: number;
  ifname: string;     // inside the pod
  hostIf: string;     // on the node, enslaved to the segment's bridge
  mtu: number;
  mac?: string;
  ips: string[];
  ipam?: IpamConf;    // set when addresses came from an IPAM plugin (needs DEL)
  ipamContext?: IpamContext; // what that plugin saw at ADD (name, CNI_ARGS, runtimeConfig, args); DEL passes the same
  /**
   * Set for a trunk leg (absent: an access leg). `network` is then the trunk network, `hostIf`
   * the host side of the trunk veth, and `vni` the native network's VNI (0 without one).
   */
  trunk?: TrunkLegState;
}

export interface TrunkVlanState {
  vid: number;
  network: string;
  vni: number;
  hostIf: string;     // the 802.1Q sub-interface of the trunk veth, port of plbr<vni>
  mtu: number;
}

export interface TrunkLegState {
  vlans: TrunkVlanState[];
  native?: { network: string; vni: number };
}

export interface AttachmentState {
  containerId: string;
  ifname: string;     // CNI_IFNAME of the attachment
  netns: string;
  network: string;    // conf "name": GC only touches attachments of its own network
  cniVersion: string;
  vtep: string;
  /** Where ADD registered the legs: DEL and GC unregister there, whatever the config says by then. */
  registry: RegistryConf;
  legs: LegState[];
  complete: boolean;  // false while an ADD is in flight (or died mid-way)
  /** For `podlegs bgp-sync` (static mode): eth0 from prevResult, labels from args.cni.labels, K8S_POD_* from CNI_ARGS. */
  pod?: PodRecord;
}

export interface PodRecord {
  eth0?: { ips: string[]; gateway?: string };
  labels?: Record<string, string>;
  namespace?: string;
  name?: string;
}

const dirOf = (stateDir: string): string => path.join(stateDir, 'attachments');
const fileOf = (stateDir: string, containerId: string, ifname: string): string =>
  path.join(dirOf(stateDir), `${containerId}_${ifname}.json`);

export function writeState(stateDir: string, s: AttachmentState): void {
  const file = fileOf(stateDir, s.containerId, s.ifname);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 1));
  fs.renameSync(tmp, file);
}

/** State files written before `registry` recorded "registryPath", with "" for "no file registry". */
type LegacyState = Omit<AttachmentState, 'registry'> & { registry?: RegistryConf; registryPath?: string };
function fromFile(text: string): AttachmentState {
  const { registryPath, registry, ...s } = JSON.parse(text) as LegacyState;
  return { ...s, registry: registry ?? (registryPath ? { type: 'file', path: registryPath } : { type: 'kubernetes' }) };
}

export function readState(stateDir: string, containerId: string, ifname: string): AttachmentState | undefined {
  try {
    return fromFile(fs.readFileSync(fileOf(stateDir, containerId, ifname), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export function removeState(stateDir: string, containerId: string, ifname: string): void {
  fs.rmSync(fileOf(stateDir, containerId, ifname), { force: true });
}

/** Every recorded attachment; unreadable files are returned as names for the caller to report. */
export function listStates(stateDir: string): { states: AttachmentState[]; broken: string[] } {
  const states: AttachmentState[] = [];
  const broken: string[] = [];
  let files: string[] = [];
  try {
    files = fs.readdirSync(dirOf(stateDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const f of files.filter((x) => x.endsWith('.json'))) {
    try {
      states.push(fromFile(fs.readFileSync(path.join(dirOf(stateDir), f), 'utf8')));
    } catch {
      broken.push(f);
    }
  }
  return { states, broken };
}
