/**
 * Hand-made Ethernet frames for the leg-guard tests (spoofing), and a sender that writes them
 * raw out of a pod's interface (AF_PACKET, python3 from Debian).
 */
import type { Lab, LabPod } from './lab';

const mac = (m: string): string => m.split(':').join('');
const ip4 = (ip: string): string => ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
const BCAST = 'ffffffffffff';

/** An Ethernet frame of the local experimental ethertype 0x88b5 carrying `marker` (padded to 60 bytes). */
export function markerFrame(src: string, marker: string, dst = BCAST): string {
  const f = `${dst}${mac(src)}88b5${Buffer.from(marker).toString('hex')}`;
  return f.padEnd(120, '0');
}

/** ARP (Ethernet/IPv4): op 1 request, 2 reply; gratuitous when spa = tpa, broadcast. */
export function arpFrame(o: { ethSrc: string; sha: string; spa: string; tpa?: string; op?: 1 | 2 }): string {
  const op = (o.op ?? 2).toString(16).padStart(4, '0');
  const body = `0001080006 04${op}${mac(o.sha)}${ip4(o.spa)}${o.op === 1 ? '000000000000' : BCAST}${ip4(o.tpa ?? o.spa)}`.replace(/ /g, '');
  return `${BCAST}${mac(o.ethSrc)}0806${body}`.padEnd(120, '0');
}

const SEND = 'import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\nfor h in sys.argv[2:]:\n  s.send(bytes.fromhex(h))\n';

/** Writes the frames (hex) out of the pod's iface, `times` rounds. */
export async function sendFrames(lab: Lab, pod: LabPod, iface: string, frames: string[], times = 3): Promise<void> {
  const all = Array.from({ length: times }, () => frames).flat();
  await lab.sh(`python3 -c '${SEND}' ${iface} ${all.join(' ')}`, { netns: pod.nsName });
}

const ip6 = (ip: string): string => {
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('');
};

/**
 * An IPv6 neighbour advertisement (target, override flag, target link-layer option) or
 * solicitation (source link-layer option) to ff02::1, optionally behind `ext` destination-options
 * headers (8 bytes each, PadN). The ICMPv6 checksum is left 0: the guard does not read it.
 */
export function ndFrame(o: { ethSrc: string; src: string; kind: 'na' | 'ns'; target: string; lladdr: string; ext?: number }): string {
  const icmp = o.kind === 'na'
    ? `88000000${'20000000'}${ip6(o.target)}0201${mac(o.lladdr)}`
    : `87000000${'00000000'}${ip6(o.target)}0101${mac(o.lladdr)}`;
  const ext = o.ext ?? 0;
  let headers = '';
  for (let i = 0; i < ext; i++) headers += `${i === ext - 1 ? '3a' : '3c'}00010400000000`; // next: ICMPv6 (58) or another dst-opts (60)
  const payload = headers + icmp;
  const len = (payload.length / 2).toString(16).padStart(4, '0');
  const nh = ext ? '3c' : '3a';
  return `333300000001${mac(o.ethSrc)}86dd60000000${len}${nh}ff${ip6(o.src)}${ip6('ff02::1')}${payload}`;
}
