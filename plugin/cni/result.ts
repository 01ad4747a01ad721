// The ADD result: prevResult untouched, the legs' interfaces, IPs and routes appended.
import { Result, ResultIp, ResultRoute } from './versions';

export interface LegResult { ifname: string; mac?: string; mtu: number; ips: ResultIp[] }

export function appendLegs(prev: Result | undefined, legs: LegResult[], routes: ResultRoute[], netns: string): Result {
  const r: Result = structuredClone(prev ?? {});
  r.interfaces = r.interfaces ?? [];
  r.ips = r.ips ?? [];
  for (const leg of legs) {
    const index = r.interfaces.length;
    r.interfaces.push({ name: leg.ifname, ...(leg.mac ? { mac: leg.mac } : {}), mtu: leg.mtu, sandbox: netns });
    for (const { interface: _ignored, ...ip } of leg.ips) r.ips.push({ ...ip, interface: index });
  }
  if (routes.length) r.routes = [...(r.routes ?? []), ...routes];
  return r;
}
