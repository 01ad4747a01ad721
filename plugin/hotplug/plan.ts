// Hot-plug, pure part: which elements of a pod's networks annotation are already attached
// (matched to recorded legs by network and, when the element names one, interface), which are
// new (an element without `interface` gets the next free netN), and which recorded legs no
// element selects any more. Unplug identifies a leg by what was recorded when it was attached.
import type { Selection } from '../k8s/selection';
import type { LegState } from '../cni/state';

export interface Kept { sel: Selection; leg: LegState }
export interface HotPlan { keep: Kept[]; add: Selection[]; remove: LegState[] }

export const selectionKey = (sel: Selection, podNamespace: string): string => `${sel.namespace ?? podNamespace}/${sel.name}`;

/** `taken`: names already in use in the pod (its links); the recorded legs' names are added. */
export function planHotPlug(selections: Selection[], legs: LegState[], podNamespace: string, taken: Iterable<string>): HotPlan {
  const free = new Set(selections.keys());
  const keep: Kept[] = [];
  const remove: LegState[] = [];
  const match = (leg: LegState, explicit: boolean): boolean => {
    for (const i of free) {
      const sel = selections[i];
      if (selectionKey(sel, podNamespace) !== leg.network) continue;
      if (explicit ? sel.interface !== leg.ifname : sel.interface !== undefined) continue;
      free.delete(i);
      keep.push({ sel, leg });
      return true;
    }
    return false;
  };
  // An element naming the leg's interface first, so that "nf-b" and "nf-b@net2" side by side
  // keep net2 for the one that names it.
  const unmatched = legs.filter((l) => !match(l, true));
  for (const l of unmatched) if (!match(l, false)) remove.push(l);
  const used = new Set<string>([...taken, ...legs.map((l) => l.ifname), ...selections.flatMap((s) => (s.interface ? [s.interface] : []))]);
  const add = [...free].map((i) => {
    const sel = selections[i];
    if (sel.interface) return sel;
    const name = nextFreeIfname(used);
    used.add(name);
    return { ...sel, interface: name };
  });
  return { keep, add, remove };
}

/** The first netN (N ≥ 1) not in `used`: a new leg's name when the caller gives none. */
export function nextFreeIfname(used: Set<string>): string {
  let n = 1;
  while (used.has(`net${n}`)) n++;
  return `net${n}`;
}

/** A selection back in the annotation's JSON element form (what parseSelections reads). */
export function toElement(s: Selection): Record<string, unknown> {
  return {
    name: s.name, ...(s.namespace ? { namespace: s.namespace } : {}), ...(s.interface ? { interface: s.interface } : {}),
    ...(s.ips ? { ips: s.ips } : {}), ...(s.mac ? { mac: s.mac } : {}), ...(s.cniArgs ? { 'cni-args': s.cniArgs } : {}),
  };
}
