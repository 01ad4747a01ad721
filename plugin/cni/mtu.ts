// The one MTU check for networks, trunks and legs against what the underlay carries.
import type { MtuLimit } from '../../overlay/underlay';
import { invalidConfig } from './errors';

/** An explicit MTU above the limit is refused (code 7); without one, a leg gets the limit. */
export function legMtu(what: string, mtu: number | undefined, limit: MtuLimit): number {
  if (mtu !== undefined && mtu > limit.max) {
    throw invalidConfig(`${what} asks for MTU ${mtu}, but the underlay allows at most ${limit.max} (${limit.why})`);
  }
  return mtu ?? limit.max;
}
