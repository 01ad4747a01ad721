// Synthetic membership for the agent's scale benchmark: `remoteNodes` nodes
// (VTEPs 10.200.x.y, never reached: only FDB entries point at them), each with
// legs in `perNode` distinct networks out of `vnis`, plus one local leg per VNI.
// Deterministic for a given seed, so every method measured gets the same entries.
import { writeFileSync } from 'node:fs';

/** mulberry32: a tiny seeded PRNG. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const remoteVtep = (i) => `10.200.${(i + 1) >> 8}.${(i + 1) & 255}`;
const mac = (n) => `02:00:${[(n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

export function synthMembers({ remoteNodes, vnis, perNode, localVtep, seed = 1 }) {
  if (perNode > vnis.length) throw new Error('perNode > networks');
  const r = rng(seed);
  const members = [];
  let n = 1;
  for (let i = 0; i < remoteNodes; i++) {
    const picked = new Set();
    while (picked.size < perNode) picked.add(vnis[Math.floor(r() * vnis.length)]);
    for (const vni of picked) members.push({ vni, vtep: remoteVtep(i), mac: mac(n++), owner: `synth${i}/eth0/net${vni}` });
  }
  for (const vni of vnis) members.push({ vni, vtep: localVtep, mac: mac(0x7f000000 + vni), owner: `local/eth0/net${vni}` });
  return members;
}

/**
 * `fraction` of the remote members leave and as many join elsewhere (a node joining a
 * network it had no leg in): returns the new list and what changed.
 */
export function churn(members, { fraction, vnis, remoteNodes, localVtep, seed = 2 }) {
  const r = rng(seed);
  const remote = members.filter((m) => m.vtep !== localVtep);
  const count = Math.max(1, Math.round(remote.length * fraction));
  const leaving = new Set();
  while (leaving.size < count) leaving.add(remote[Math.floor(r() * remote.length)]);
  const kept = members.filter((m) => !leaving.has(m));
  const taken = new Set(kept.map((m) => `${m.vtep} ${m.vni}`));
  const joining = [];
  let n = 0x40000000;
  while (joining.length < count) {
    const i = Math.floor(r() * remoteNodes);
    const vni = vnis[Math.floor(r() * vnis.length)];
    const key = `${remoteVtep(i)} ${vni}`;
    if (taken.has(key)) continue;
    taken.add(key);
    joining.push({ vni, vtep: remoteVtep(i), mac: mac(n++), owner: `churn${i}/eth0/net${vni}` });
  }
  return { members: [...kept, ...joining], left: [...leaving], joined: joining };
}

/**
 * The `bridge -batch` file programming the same FDB entries as `want` (desiredState's
 * segments): one flood append per destination, one replace per MAC. Returns the entry counts.
 */
export function writeBridgeBatch(want, file) {
  const lines = [];
  for (const [vni, s] of want) {
    for (const dst of s.flood) lines.push(`fdb append 00:00:00:00:00:00 dev plvx${vni} dst ${dst} self permanent`);
    for (const [mac, dst] of s.macs) lines.push(`fdb replace ${mac} dev plvx${vni} dst ${dst} self permanent`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  return lines.length;
}
