// `podlegs status`: segments, legs and flood lists of this node, read from the kernel.
import { Kernel, ZERO_MAC } from '../../overlay/kernel/kernel';
import { vniOfSegmentName } from '../../overlay/names';
import { listStates } from '../state';
import type { PluginConf } from '../cni/config';

interface SegmentStatus { vni: number; bridge: string; legs: string[]; flood: string[]; macs: { mac: string; dst: string }[] }

export async function runStatus(conf: PluginConf | undefined, json: boolean): Promise<number> {
  const k = Kernel.open();
  try {
    const links = await k.links();
    const fdb = await k.fdbAll();
    const segs: SegmentStatus[] = [];
    for (const br of links.filter((l) => l.kind === 'bridge' && vniOfSegmentName(l.name) !== undefined)) {
      const vni = vniOfSegmentName(br.name)!;
      const vx = links.find((l) => l.name === `plvx${vni}`);
      const entries = fdb.filter((e) => e.ifindex === vx?.index);
      segs.push({
        vni, bridge: br.name,
        legs: links.filter((l) => l.master === br.index && l.index !== vx?.index).map((l) => l.name),
        flood: entries.filter((e) => e.mac === ZERO_MAC).map((e) => e.dst).sort(),
        macs: entries.filter((e) => e.mac !== ZERO_MAC).map(({ mac, dst }) => ({ mac, dst })),
      });
    }
    const attachments = listStates(conf?.stateDir ?? '/var/lib/podlegs').states.map((s) => ({
      containerId: s.containerId, ifname: s.ifname, legs: s.legs.map((l) => ({ ifname: l.ifname, network: l.network, vni: l.vni, mac: l.mac, ips: l.ips })),
    }));
    if (json) {
      process.stdout.write(`${JSON.stringify({ segments: segs, attachments }, null, 2)}\n`);
    } else {
      process.stdout.write('VNI       BRIDGE        LOCAL LEGS  FLOOD TO\n');
      for (const s of segs) process.stdout.write(`${String(s.vni).padEnd(10)}${s.bridge.padEnd(14)}${String(s.legs.length).padEnd(12)}${s.flood.join(', ') || '-'}\n`);
      for (const a of attachments) for (const l of a.legs) process.stdout.write(`  ${a.containerId.slice(0, 12)} ${l.ifname} ${l.network} vni ${l.vni} ${l.mac ?? ''} ${l.ips.join(' ')}\n`);
    }
    return 0;
  } finally {
    k.close();
  }
}
