// IPAM delegation the standard way: exec the plugin named by ipam.type from
// CNI_PATH with the caller's environment and the network config on stdin.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { CniError, Code } from './errors';
import type { IpamConf } from './config';
import { CniVersion, Result, toInternal } from './versions';

export interface IpamCall {
  cniVersion: CniVersion;
  network: string;      // the podlegs network the leg belongs to (used as the IPAM "name")
  containerId: string;
  netns: string;
  ifname: string;       // the leg's interface: host-local keys allocations on container + ifname
  cniPath: string[];
  cniArgs?: string;
  environ: NodeJS.ProcessEnv; // the caller's (CniEnv.environ), not this process's: the agent serves many callers
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
export function execIpam(command: 'ADD' | 'DEL' | 'CHECK', ipam: IpamConf, c: IpamCall): Result | undefined {
  const bin = findPlugin(ipam.type, c.cniPath);
  // Debian's plugins stop at 1.0.0; 1.1.0 results have the same shape, so ask in 1.0.0.
  const cniVersion = c.cniVersion === '1.1.0' ? '1.0.0' : c.cniVersion;
  const stdin = JSON.stringify({ cniVersion, name: c.network, type: 'podlegs', ipam });
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
      CNI_ARGS: c.cniArgs ?? '',
    },
  });
  if (r.error) throw new CniError(Code.IpamFailure, `IPAM plugin ${ipam.type} could not run: ${r.error.message}`);
  if (r.status !== 0) {
    let msg = (r.stdout || r.stderr || '').trim().slice(0, 500);
    try {
      const e = JSON.parse(r.stdout) as { msg?: string; details?: string };
      msg = [e.msg, e.details].filter(Boolean).join(': ');
    } catch { /* not JSON: keep the raw text */ }
    throw new CniError(Code.IpamFailure, `IPAM plugin ${ipam.type} ${command} failed for network ${c.network}: ${msg}`);
  }
  if (command !== 'ADD') return undefined;
  try {
    return toInternal(JSON.parse(r.stdout), `IPAM ${ipam.type} result`);
  } catch (e) {
    if (e instanceof CniError) throw new CniError(Code.IpamFailure, e.message);
    throw new CniError(Code.IpamFailure, `IPAM plugin ${ipam.type} printed no JSON result`);
  }
}
