// Kernel object names: every object podlegs creates starts with "pl" and fits
// IFNAMSIZ (15 characters). VNIs go up to 16777215 (8 digits): "plbr16777215" is 12.
import { createHash } from 'crypto';

export const bridgeName = (vni: number): string => `plbr${vni}`;
export const vxlanName = (vni: number): string => `plvx${vni}`;

/** Host side of a leg: stable for (container, attachment, leg) so DEL finds it without state. */
export function hostVethName(containerId: string, attachIfname: string, legIfname: string): string {
  const h = createHash('sha256').update(`${containerId}:${attachIfname}:${legIfname}`).digest('hex');
  return `pl${h.slice(0, 12)}`;
}

export const isPodlegsName = (name: string): boolean => /^pl(br|vx)\d+$|^pl[0-9a-f]{12}$/.test(name);
export const vniOfSegmentName = (name: string): number | undefined => {
  const m = /^pl(?:br|vx)(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
};
