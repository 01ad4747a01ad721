// IPAM delegation the standard way: exec the plugin named by ipam.type from
// CNI_PATH with the caller's environment (CNI_ARGS included) and, on stdin, the
// network config the plugin would see from a reference plugin: name,
// cniVersion, ipam, and the leg's runtimeConfig/args.
import * as fs from 'fs';
import * as path from 'path';
import { CniError, Code } from './errors';
import type { IpamConf, LegConf, NetworkConf } from './config';
import type { Obj } from './validate';
import { CniVersion, Result, toInternal } from './versions';

/** What a leg's IPAM plugin sees besides `ipam`; recorded at ADD so DEL and GC hand it back. */
export interface IpamContext {
  name: string;         // network name for IPAM (libcni's rule: no "/"): host-local's directory, whereabouts' range key
  cniArgs: string;      // the runtime's CNI_ARGS (whereabouts keys allocations by K8S_POD_NAMESPACE/K8S_POD_NAME)
  runtimeConfig?: Obj;
  args?: Obj;
}

export interface IpamCall {
  cniVersion: CniVersion;
  containerId: string;
  netns: string;
  ifname: string;       // the leg's interface: host-local keys allocations on container + ifname
  cniPath: string[];
  environ: NodeJS.ProcessEnv; // the caller's (CniEnv.environ), not this process's: the agent serves many callers
}

/** CNI_ARGS as the runtime passed them (KEY=VALUE;...). */
export const formatCniArgs = (args: Map<string, string>): string => [...args].map(([k, v]) => `${k}=${v}`).join(';');

export function ipamContext(net: NetworkConf, leg: LegConf, cniArgs: Map<string, string>): IpamContext {
  return {
    name: net.ipamName ?? net.name, cniArgs: formatCniArgs(cniArgs),
    ...(leg.runtimeConfig ? { runtimeConfig: leg.runtimeConfig } : {}), ...(leg.args ? { args: leg.args } : {}),
  };
}

function findPlugin(type: string, dirs: string[]): string {
  for (const d of dirs) {
    const p = path.join(d, type);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next dir */ }
  }
  throw new CniError(Code.IpamFailure, `IPAM plugin "${type}" not found in CNI_PATH (${dirs.join(':')})`);
}

/** Runs one IPAM command; ADD returns the allocation in the 1.x shape. */
export function execIpam(command: 'ADD' | 'DEL' | 'CHECK', ipam: IpamConf, ctx: IpamContext, c: IpamCall): Result | undefined {
  const bin = findPlugin(ipam.type, c.cniPath);
  // Debian's plugins stop at 1.0.0; 1.1.0 results have the same shape, so ask in 1.0.0.
  const cniVersion = c.cniVersion === '1.1.0' ? '1.0.0' : c.cniVersion;
  const stdin = JSON.stringify({
    cniVersion, name: ctx.name, type: 'podlegs', ipam,
    ...(ctx.runtimeConfig ? { runtimeConfig: ctx.runtimeConfig } : {}), ...(ctx.args ? { args: ctx.args } : {}),
  });
  // Required here, not at the top: node's child_process (with dgram, net sockets lists) is
  // ~2 ms to load, and only legs with an IPAM plugin need it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const r = spawnSync(bin, [], {
    input: stdin,
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      ...c.environ,
      CNI_COMMAND: command,
      CNI_CONTAINERID: c.containerId,
      CNI_NETNS: c.netns,
      CNI_IFNAME: c.ifname,
      CNI_PATH: c.cniPath.join(':'),
      CNI_ARGS: ctx.cniArgs,
    },
  });
  if (r.error) throw new CniError(Code.IpamFailure, `IPAM plugin ${ipam.type} could not run: ${r.error.message}`);
  if (r.status !== 0) {
    let msg = (r.stdout || r.stderr || '').trim().slice(0, 500);
    try {
      const e = JSON.parse(r.stdout) as { msg?: string; details?: string };
      msg = [e.msg, e.details].filter(Boolean).join(': ');
    } catch { /* not JSON: keep the raw text */ }
    throw new CniError(Code.IpamFailure, `IPAM plugin ${ipam.type} ${command} failed for network ${ctx.name}: ${msg}`);
  }
  if (command !== 'ADD') return undefined;
  try {
    return toInternal(JSON.parse(r.stdout), `IPAM ${ipam.type} result`);
  } catch (e) {
    if (e instanceof CniError) throw new CniError(Code.IpamFailure, e.message);
    throw new CniError(Code.IpamFailure, `IPAM plugin ${ipam.type} printed no JSON result`);
  }
}

/** Releases a leg's addresses with the context its ADD used (state written before this change: name only). */
export function releaseIpam(ipam: IpamConf, ctx: IpamContext | undefined, fallbackName: string,
  s: { cniVersion: string; containerId: string; netns: string }, ifname: string,
  caller: { path: string[]; environ: NodeJS.ProcessEnv }): void {
  execIpam('DEL', ipam, ctx ?? { name: fallbackName, cniArgs: '' }, {
    cniVersion: s.cniVersion as CniVersion, containerId: s.containerId, netns: s.netns, ifname,
    cniPath: caller.path, environ: caller.environ,
  });
}
