// What an ADD did, recorded before the first kernel change so that DEL and GC
// can undo it without the netns, the config or any API.
import * as fs from 'fs';
import * as path from 'path';
import { AtomicWriteOptions, removeFileAndTemps, writeFileAtomic } from '../../overlay/fs/atomic-write';
import type { IpamConf, RegistryConf } from './config';
import { CniError, Code } from './errors';
import type { IpamContext } from './ipam';
import type { GuardConf } from '../../overlay/leg-guard';

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
  /** The leg guard's declarations (security mode "enforce"); absent: no guard. Not set on a trunk leg (its VLANs carry theirs). */
  guard?: GuardConf;
  /**
   * Set while a later attach (hot-plug, `podlegs attach`) is making this leg: recorded before its
   * first kernel change so DEL still finds it; cleared when the leg is committed. One left behind
   * (the attacher died) is torn down by the next attach or detach of the attachment, and by DEL.
   */
  pending?: boolean;
  /** Attached to the running attachment after its ADD: the runtime's prevResult does not list it (CHECK knows). */
  late?: boolean;
}

export interface TrunkVlanState {
  vid: number;
  network: string;
  vni: number;
  hostIf: string;     // the 802.1Q sub-interface of the trunk veth, port of plbr<vni>
  mtu: number;
  /** The guard on this VLAN's sub-interface (its network's security, or the leg's). */
  guard?: GuardConf;
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
  /** The VXLAN UDP port of the segments ADD used (absent in files written before it was recorded). */
  port?: number;
  /** Where ADD registered the legs: DEL and GC unregister there, whatever the config says by then. */
  registry: RegistryConf;
  legs: LegState[];
  complete: boolean;  // false while an ADD is in flight (or died mid-way)
  /** What a later attach needs from the runtime's ADD (absent in state written before hot-plug existed). */
  sandbox?: SandboxRecord;
  /** For `podlegs bgp-sync` (static mode): eth0 from prevResult, labels from args.cni.labels, K8S_POD_* from CNI_ARGS. */
  pod?: PodRecord;
}

export interface SandboxRecord {
  /** "<dev>:<ino>" of the netns file at ADD: a later attach refuses a path that now names another netns. */
  netnsId: string;
  /** The runtime's CNI_PATH and CNI_ARGS, handed to IPAM plugins of legs attached later. */
  cniPath: string[];
  cniArgs: string;
}

export interface PodRecord {
  eth0?: { ips: string[]; gateway?: string };
  labels?: Record<string, string>;
  namespace?: string;
  name?: string;
  uid?: string;       // K8S_POD_UID: hot-plug acts only on the attachment of the pod object it watches
}

/**
 * Format of the attachment file. A file without "version" was written before versioning and reads as 1.
 * A newer version is refused by every verb, DEL included: fields this podlegs does not know may name
 * kernel objects or IPAM leases, and undoing half of them would leak the rest with no record left.
 * The file stays, so the podlegs that wrote it can finish the DEL.
 */
export const STATE_VERSION = 1;

const dirOf = (stateDir: string): string => path.join(stateDir, 'attachments');
const fileOf = (stateDir: string, containerId: string, ifname: string): string =>
  path.join(dirOf(stateDir), `${containerId}_${ifname}.json`);

/**
 * Records an attachment: atomic and fsynced. opts.durableRename false only for a rewrite whose
 * previous version stays a correct record after a crash (see writeFileAtomic).
 */
export function writeState(stateDir: string, s: AttachmentState, opts?: AtomicWriteOptions): void {
  const file = fileOf(stateDir, s.containerId, s.ifname);
  writeFileAtomic(file, JSON.stringify({ version: STATE_VERSION, ...s }, null, 1), 0o600, opts);
}

/** State files written before `registry` recorded "registryPath", with "" for "no file registry". */
type LegacyState = Omit<AttachmentState, 'registry'> & { registry?: RegistryConf; registryPath?: string };
function fromFile(text: string, file: string): AttachmentState {
  const { version, registryPath, registry, ...s } = JSON.parse(text) as LegacyState & { version?: unknown };
  if (version !== undefined && version !== STATE_VERSION) {
    throw new CniError(Code.InvalidConfig, `state file ${file} has version ${JSON.stringify(version)}; this podlegs reads version ${STATE_VERSION} only: run the podlegs that wrote it (or a newer one)`);
  }
  return { ...s, registry: registry ?? (registryPath ? { type: 'file', path: registryPath } : { type: 'kubernetes' }) };
}

export function readState(stateDir: string, containerId: string, ifname: string): AttachmentState | undefined {
  try {
    const file = fileOf(stateDir, containerId, ifname);
    return fromFile(fs.readFileSync(file, 'utf8'), file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Removes the attachment's state, and a temp file of it an ADD killed while writing it left. */
export function removeState(stateDir: string, containerId: string, ifname: string): void {
  removeFileAndTemps(fileOf(stateDir, containerId, ifname));
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
      const file = path.join(dirOf(stateDir), f);
      states.push(fromFile(fs.readFileSync(file, 'utf8'), file));
    } catch {
      broken.push(f);
    }
  }
  return { states, broken };
}
