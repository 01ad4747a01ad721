// The leg guard (security mode "enforce") against this kernel, on one node with two pods:
//  - bad `security` settings are refused with a CNI error naming the field, and nothing on the
//    node changes (links, tc, state, registry compared before and after);
//  - STATUS probes the guard's kernel features and leaves nothing behind;
//  - CHECK passes with the guard as configured and fails (104) when it was removed, replaced,
//    or the configuration asks for another one;
//  - IPv6 neighbour discovery: advertisements/solicitations for another pod's address are
//    dropped, also behind destination-options headers; the pod's own pass;
//  - DEL leaves no qdisc or filter.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, LabNode, LabPod, leakCheck } from '../lab/lab';
import { hostVethName } from '../../overlay/names';
import { ndFrame, sendFrames } from '../lab/frames';
import { SEEN_MS, sleep, waitUntil } from '../support/wait';

jest.setTimeout(180_000);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let lab: Lab;
let node: LabNode;
let victim: LabPod;
let attacker: LabPod;

const SECURITY = { mode: 'enforce', vrrp: [{ vrid: 7, vips: ['10.60.0.100', '2001:db8:60::100'] }], allowedMacs: ['02:00:5e:10:00:99'], allowedAddresses: ['10.61.0.0/24'] };

function entry(legs: Json[], security: Json | undefined = SECURITY): Json {
  return {
    cniVersion: '1.1.0', name: 'nf', type: 'podlegs',
    underlay: { interface: 'ul0' },
    registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(node.dir, 'state'),
    log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' },
    networks: { g: { vni: 600, ...(security ? { security } : {}) } },
    legs,
  };
}
const legOf = (n: number, extra: Json = {}): Json[] => [{ network: 'g', interface: 'net1', ips: [`10.60.0.${n}/24`, `2001:db8:60::${n}/64`], ...extra }];

const files = (dir: string): string[] => {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name).sort();
};
const linkNames = async (netns: string): Promise<string[]> =>
  (JSON.parse((await lab.sh('ip -j link', { netns })).stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
async function nodeState(): Promise<string> {
  const links = await linkNames(node.nsName);
  const tc = (await lab.sh('tc qdisc show', { netns: node.nsName })).stdout;
  return JSON.stringify({ links, tc, state: files(path.join(node.dir, 'state')), registry: files(lab.registryDir) });
}
const host = (p: LabPod): string => hostVethName(p.containerId, 'eth0', 'net1');
async function drops(p: LabPod): Promise<number> {
  const out = (await lab.sh(`tc -s qdisc show dev ${host(p)}`, { netns: node.nsName })).stdout;
  const m = /clsact[\s\S]*?dropped (\d+)/.exec(out);
  return m ? Number(m[1]) : -1;
}

beforeAll(async () => {
  lab = await Lab.create({ nodes: 1 });
  node = lab.nodes[0];
  victim = await lab.addPod(node, 'victim');
  attacker = await lab.addPod(node, 'attacker');
}, 60_000);
afterAll(async () => {
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 60_000);

describe('bad security settings: a CNI error naming the field, nothing changed', () => {
  const bad: { name: string; security: unknown; code: number; msg: RegExp; where?: 'leg' }[] = [
    { name: 'not an object', security: 'enforce', code: 7, msg: /networks\.g\.security must be an object/ },
    { name: 'unknown key', security: { mode: 'enforce', vips: [] }, code: 2, msg: /networks\.g\.security\.vips is not a known field/ },
    { name: 'mode missing', security: { vrrp: [] }, code: 7, msg: /networks\.g\.security\.mode must be a non-empty string/ },
    { name: 'unknown mode', security: { mode: 'strict' }, code: 7, msg: /networks\.g\.security\.mode must be "off" or "enforce"/ },
    { name: 'VRID 0', security: { mode: 'enforce', vrrp: [{ vrid: 0, vips: ['10.60.0.100'] }] }, code: 7, msg: /networks\.g\.security\.vrrp\[0\]\.vrid must be an integer from 1 to 255/ },
    { name: 'VRID 256', security: { mode: 'enforce', vrrp: [{ vrid: 256, vips: ['10.60.0.100'] }] }, code: 7, msg: /vrrp\[0\]\.vrid must be an integer from 1 to 255/ },
    { name: 'no VIPs', security: { mode: 'enforce', vrrp: [{ vrid: 5, vips: [] }] }, code: 7, msg: /vrrp\[0\]\.vips must list the virtual router's addresses/ },
    { name: 'VIP not an address', security: { mode: 'enforce', vrrp: [{ vrid: 5, vips: ['10.60.0'] }] }, code: 7, msg: /vrrp\[0\]\.vips\[0\] "10\.60\.0" is not an IP address/ },
    { name: 'VIP multicast', security: { mode: 'enforce', vrrp: [{ vrid: 5, vips: ['224.0.0.18'] }] }, code: 7, msg: /vips\[0\] "224\.0\.0\.18" is not a unicast address/ },
    { name: 'VRRP entry with an unknown key', security: { mode: 'enforce', vrrp: [{ vrid: 5, vips: ['10.60.0.100'], priority: 100 }] }, code: 2, msg: /vrrp\[0\]\.priority is not a known field/ },
    { name: 'allowedMacs not a list', security: { mode: 'enforce', allowedMacs: '02:00:00:00:00:01' }, code: 7, msg: /allowedMacs must be a list/ },
    { name: 'allowed MAC malformed', security: { mode: 'enforce', allowedMacs: ['02:00:00:00:01'] }, code: 7, msg: /allowedMacs\[0\] "02:00:00:00:01" is not a MAC address/ },
    { name: 'allowed MAC multicast', security: { mode: 'enforce', allowedMacs: ['01:00:5e:00:00:01'] }, code: 7, msg: /allowedMacs\[0\] 01:00:5e:00:00:01 is a multicast MAC/ },
    { name: 'allowed address malformed', security: { mode: 'enforce', allowedAddresses: ['10.61.0.0/33'] }, code: 7, msg: /allowedAddresses\[0\] "10\.61\.0\.0\/33" is not an address with prefix length/ },
    { name: 'allowed address not unicast', security: { mode: 'enforce', allowedAddresses: ['ff02::1'] }, code: 7, msg: /allowedAddresses\[0\] "ff02::1" is not a unicast address/ },
    { name: 'too many allowed MACs', security: { mode: 'enforce', allowedMacs: Array.from({ length: 33 }, (_, i) => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`) }, code: 7, msg: /allowedMacs has 33 entries; at most 32/ },
    { name: 'bad leg-level security', security: { mode: 'on' }, code: 7, msg: /legs\[0\]\.security\.mode must be "off" or "enforce"/, where: 'leg' },
  ];
  let before = '';
  beforeAll(async () => { before = await nodeState(); });
  for (const c of bad) {
    it(`${c.name}: code ${c.code}`, async () => {
      const conf = c.where === 'leg' ? entry(legOf(1, { security: c.security })) : entry(legOf(1), c.security as Json);
      const o = await lab.exec(node, 'podlegs', { command: 'ADD', pod: victim, conf });
      expect(o.code).toBe(1);
      expect(o.stdout.trim().split('\n')).toHaveLength(1);
      expect(o.json).toMatchObject({ code: c.code, msg: expect.stringMatching(c.msg) });
      expect(o.stderr).not.toMatch(/\n\s+at /);
      expect(await nodeState()).toBe(before);
      expect(await linkNames(victim.nsName)).toEqual(['lo']);
    });
  }
});

describe('STATUS, ADD, CHECK, spoofed neighbour discovery, DEL', () => {
  it('STATUS with an enforcing network probes the kernel and leaves nothing behind', async () => {
    const before = await nodeState();
    const o = await lab.exec(node, 'podlegs', { command: 'STATUS', conf: entry([]) });
    expect([o.code, o.stdout]).toEqual([0, '']);
    expect(await nodeState()).toBe(before);
  });

  it('ADD puts the guard on the host side; CHECK passes', async () => {
    for (const [p, n] of [[victim, 1], [attacker, 2]] as const) {
      const add = await lab.exec(node, 'podlegs', { command: 'ADD', pod: p, conf: entry(legOf(n)) });
      expect({ code: add.code, out: add.stdout }).toMatchObject({ code: 0 });
      const check = await lab.exec(node, 'podlegs', { command: 'CHECK', pod: p, conf: { ...entry(legOf(n)), prevResult: add.json as Json } });
      expect({ code: check.code, out: check.stdout }).toEqual({ code: 0, out: '' });
    }
    const tc = (await lab.sh(`tc filter show dev ${host(victim)} ingress`, { netns: node.nsName })).stdout;
    expect(tc).toMatch(/bpf chain 0 handle 0x1 direct-action/);
  });

  it('spoofed IPv6 neighbour discovery is dropped, also behind extension headers; the pod\'s own passes', async () => {
    const am = (JSON.parse((await lab.sh('ip -j link show dev net1', { netns: attacker.nsName })).stdout) as { address: string }[])[0].address;
    const cases: { name: string; frame: string; passes: boolean; seen: RegExp }[] = [
      { name: 'NA for its own address', frame: ndFrame({ ethSrc: am, src: '2001:db8:60::2', kind: 'na', target: '2001:db8:60::2', lladdr: am }), passes: true, seen: /advertisement, tgt is 2001:db8:60::2\b/ },
      { name: 'NA for a declared VIP', frame: ndFrame({ ethSrc: am, src: '2001:db8:60::2', kind: 'na', target: '2001:db8:60::100', lladdr: am }), passes: true, seen: /advertisement, tgt is 2001:db8:60::100\b/ },
      { name: "NA for the victim's address", frame: ndFrame({ ethSrc: am, src: '2001:db8:60::2', kind: 'na', target: '2001:db8:60::1', lladdr: am }), passes: false, seen: /$^/ },
      { name: "NA for the victim's address behind 2 destination-options headers", frame: ndFrame({ ethSrc: am, src: '2001:db8:60::2', kind: 'na', target: '2001:db8:60::1', lladdr: am, ext: 2 }), passes: false, seen: /$^/ },
      { name: 'NA for its own address behind 4 destination-options headers', frame: ndFrame({ ethSrc: am, src: '2001:db8:60::2', kind: 'na', target: '2001:db8:60::2', lladdr: am, ext: 4 }), passes: true, seen: /DSTOPT[\s\S]*tgt is 2001:db8:60::2\b/ },
      { name: 'NA behind 5 extension headers (more than the guard walks)', frame: ndFrame({ ethSrc: am, src: '2001:db8:60::2', kind: 'na', target: '2001:db8:60::2', lladdr: am, ext: 5 }), passes: false, seen: /$^/ },
      { name: "NA for the victim's link-local address", frame: ndFrame({ ethSrc: am, src: 'fe80::1', kind: 'na', target: 'fe80::1', lladdr: am }), passes: false, seen: /$^/ },
      { name: "NS from the victim's address", frame: ndFrame({ ethSrc: am, src: '2001:db8:60::1', kind: 'ns', target: '2001:db8:60::3', lladdr: am }), passes: false, seen: /$^/ },
      { name: 'NS from its own address', frame: ndFrame({ ethSrc: am, src: '2001:db8:60::2', kind: 'ns', target: '2001:db8:60::9', lladdr: am }), passes: true, seen: /solicitation, who has 2001:db8:60::9\b/ },
    ];
    const results: string[] = [];
    for (const c of cases) {
      const cap = lab.spawn(victim.netns, ['tcpdump', '-l', '-n', '-i', 'net1', 'ip6']);
      try {
        await cap.waitFor(/listening on/, SEEN_MS);
        const before = await drops(attacker);
        await sendFrames(lab, attacker, 'net1', [c.frame], 2);
        if (c.passes) await waitUntil(`${c.name} to reach the victim`, async () => c.seen.test(cap.stdout()), SEEN_MS);
        else await waitUntil(`${c.name} to be dropped`, async () => (await drops(attacker)) - before >= 2, SEEN_MS);
        await sleep(300);
        results.push(`${c.name}: ${c.passes ? 'passed' : 'dropped'}`);
      } finally {
        await cap.kill();
      }
      if (!c.passes) {
        // nothing of it reached the victim: no NA/NS line with the spoofed target or source
        const spoof = c.name.includes('link-local') ? 'fe80::1' : '2001:db8:60::1';
        expect({ case: c.name, lines: cap.stdout().split('\n').filter((l) => l.includes(`tgt is ${spoof}`) || l.includes(`${spoof} >`)) }).toEqual({ case: c.name, lines: [] });
      }
    }
    console.log(results.join('\n'));
  });

  it('CHECK fails (104) when the guard is gone, replaced, or the configuration asks for another', async () => {
    const add = JSON.parse(fs.readFileSync(path.join(node.dir, 'state', 'attachments', `${victim.containerId}_eth0.json`), 'utf8')) as Json;
    expect(add.legs[0].guard).toMatchObject({ vrrp: [{ vrid: 7 }] });
    const prevResult = { cniVersion: '1.1.0', interfaces: [{ name: 'net1', mac: add.legs[0].mac, sandbox: victim.netns }], ips: [] };
    const check = (conf: Json) => lab.exec(node, 'podlegs', { command: 'CHECK', pod: victim, conf: { ...conf, prevResult } });
    expect((await check(entry(legOf(1)))).code).toBe(0);
    // configuration now asks for another guard / none
    const other = await check(entry(legOf(1), { ...SECURITY, allowedMacs: [] }));
    expect(other.json).toMatchObject({ code: 104, msg: expect.stringMatching(/security is "enforce" .* the configuration now says "enforce"/) });
    const off = await check(entry(legOf(1), { mode: 'off' }));
    expect(off.json).toMatchObject({ code: 104, msg: expect.stringMatching(/the configuration now says "off"/) });
    // a leg-level override counts: the leg asks for "off" while the network enforces
    expect((await check(entry(legOf(1, { security: { mode: 'off' } })))).json).toMatchObject({ code: 104 });
    // the filter replaced by another program
    await lab.sh(`tc filter del dev ${host(victim)} ingress && tc filter add dev ${host(victim)} ingress pref 1 bpf da bytecode '1,6 0 0 0,'`, { netns: node.nsName });
    expect((await check(entry(legOf(1)))).json).toMatchObject({ code: 104, msg: expect.stringMatching(/is not the one for this leg/) });
    // the filter gone
    await lab.sh(`tc filter del dev ${host(victim)} ingress`, { netns: node.nsName });
    expect((await check(entry(legOf(1)))).json).toMatchObject({ code: 104, msg: expect.stringMatching(/leg guard on pl[0-9a-f]+ \(tc ingress\) is missing/) });
  });

  it('DEL leaves no qdisc, filter or link of the guard', async () => {
    for (const [p, n] of [[victim, 1], [attacker, 2]] as const) {
      const del = await lab.exec(node, 'podlegs', { command: 'DEL', pod: p, conf: entry(legOf(n)) });
      expect([del.code, del.stdout]).toEqual([0, '']);
    }
    expect(await linkNames(node.nsName)).toEqual(['lo', 'ul0']);
    expect((await lab.sh('tc qdisc show', { netns: node.nsName })).stdout).not.toMatch(/clsact/);
  });
});
