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

const IPAM_TIMEOUT_MS = 30_000;

interface Ran { status: number | null; stdout: string; stderr: string; error?: Error }

/**
 * Runs bin to completion without blocking the event loop: the agent serves every call of its
 * node in one process, and a slow IPAM plugin (an API round trip, a lock) must not stall its
 * reconciler, its other calls or /healthz meanwhile. Killed after IPAM_TIMEOUT_MS.
 */
function run(bin: string, stdin: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  // Required here, not at the top: node's child_process (with dgram, net sockets lists) is
  // ~2 ms to load, and only legs with an IPAM plugin need it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawn } = require('child_process') as typeof import('child_process');
  return new Promise((resolve) => {
    const child = spawn(bin, [], { env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    let error: Error | undefined;
    const timer = setTimeout(() => { error = new Error(`timed out after ${IPAM_TIMEOUT_MS / 1000} s`); child.kill('SIGKILL'); }, IPAM_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.stdin.on('error', () => undefined); // a plugin may exit without reading stdin
    let settled = false;
    const done = (status: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, stdout, stderr, error });
    };
    child.on('error', (e) => {
      error ??= e;
      if (child.pid === undefined) done(null); // never started: no 'close' to wait for
    });
    child.on('close', done);
    child.stdin.end(stdin);
  });
}

/** Runs one IPAM command; ADD returns the allocation in the 1.x shape. */
export async function execIpam(command: 'ADD' | 'DEL' | 'CHECK', ipam: IpamConf, ctx: IpamContext, c: IpamCall): Promise<Result | undefined> {
  const bin = findPlugin(ipam.type, c.cniPath);
  // Debian's plugins stop at 1.0.0; 1.1.0 results have the same shape, so ask in 1.0.0.
  const cniVersion = c.cniVersion === '1.1.0' ? '1.0.0' : c.cniVersion;
  const stdin = JSON.stringify({
    cniVersion, name: ctx.name, type: 'podlegs', ipam,
    ...(ctx.runtimeConfig ? { runtimeConfig: ctx.runtimeConfig } : {}), ...(ctx.args ? { args: ctx.args } : {}),
  });
  const r = await run(bin, stdin, {
    ...c.environ,
    CNI_COMMAND: command,
    CNI_CONTAINERID: c.containerId,
    CNI_NETNS: c.netns,
    CNI_IFNAME: c.ifname,
    CNI_PATH: c.cniPath.join(':'),
    CNI_ARGS: ctx.cniArgs,
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
export async function releaseIpam(ipam: IpamConf, ctx: IpamContext | undefined, fallbackName: string,
  s: { cniVersion: string; containerId: string; netns: string }, ifname: string,
  caller: { path: string[]; environ: NodeJS.ProcessEnv }): Promise<void> {
  await execIpam('DEL', ipam, ctx ?? { name: fallbackName, cniArgs: '' }, {
    cniVersion: s.cniVersion as CniVersion, containerId: s.containerId, netns: s.netns, ifname,
    cniPath: caller.path, environ: caller.environ,
  });
}
