// Kernel object names: every object podlegs creates starts with "pl" and fits
// IFNAMSIZ (15 characters). VNIs go up to 16777215 (8 digits): "plbr16777215" is 12.

export const bridgeName = (vni: number): string => `plbr${vni}`;
export const vxlanName = (vni: number): string => `plvx${vni}`;

/**
 * 48 bits of two FNV-1a hashes of s. Not cryptographic, and need not be: the names only have
 * to differ between the legs of one node (and loading node:crypto cost every CNI call ~5 ms).
 */
function hash48(s: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + ((b >>> 0) & 0xffff).toString(16).padStart(4, '0');
}

/** Host side of a leg: stable for (container, attachment, leg) so DEL finds it without state. */
export function hostVethName(containerId: string, attachIfname: string, legIfname: string): string {
  return `pl${hash48(`${containerId}:${attachIfname}:${legIfname}`)}`;
}

/**
 * Host side of one VLAN of a trunk leg: an 802.1Q sub-interface of the trunk's host veth
 * `pl<12 hex>`, named `pl<first 8 of those hex>v<vid>` ("pl0123abcdv4094" is 15 characters;
 * `<veth>.<vid>` would not fit).
 */
export const trunkVlanName = (trunkHostIf: string, vid: number): string => `pl${trunkHostIf.slice(2, 10)}v${vid}`;

/** A name for capability probes (never left behind: a probe creates nothing, or removes it at once). */
export const probeName = (): string => `plpr${hash48(`${process.pid}:${Date.now()}:${Math.random()}`).slice(0, 8)}`;

export const isProbeName = (name: string): boolean => /^plpr[0-9a-f]{8}p?$/.test(name);

export const isPodlegsName = (name: string): boolean =>
  /^pl(br|vx)\d+$|^pl[0-9a-f]{12}$|^pl[0-9a-f]{8}v\d{1,4}$|^plpr[0-9a-f]{8}p?$/.test(name);
export const vniOfSegmentName = (name: string): number | undefined => {
  const m = /^pl(?:br|vx)(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
};
