/**
 * Multi-node lab harness for podlegs' end-to-end tests (needs root).
 *
 * Topology, all of it inside network namespaces this harness creates (nothing is ever added to
 * the root namespace; addresses are TEST-NET-1, or 2001:db8::/32 with `underlay: 'ipv6'`, on
 * the underlay and 10.x inside pods):
 *
 *   <prefix>-ul   underlay "switch": bridge `ulbr`, one veth port `n<i>` per node
 *   <prefix>-n<i> node i: `ul0` = 192.0.2.<10+i>/24 (ipv6: 2001:db8::<10+i>/64 only), the node's VTEP; lo up
 *   <prefix>-p<x> pod x: empty netns (lo up), filled by CNI plugins run "on" its node
 *
 * <prefix> is `pl` + 4 random hex digits, reserved atomically by creating `<prefix>-ul`, so
 * parallel runs never collide. CNI plugins run the way a runtime on the node would run them:
 * `nsenter --net=<node netns>` (only the network namespace changes, so a plugin that reads
 * /sys/class/net there sees the ROOT namespace's interfaces: plugins must use netlink).
 * Long-lived helpers (`spawn`) and `sh` use `ip netns exec`, which also remounts /sys.
 */
import { spawn as spawnChild, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import * as path from 'node:path';

const NETNS_DIR = '/var/run/netns';
const LAB_NS = /^pl[0-9a-f]{4}-/;
const TMP_PREFIX = '/tmp/podlegs-lab-';
const REPO_ROOT = path.resolve(__dirname, '..', '..');

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
/** One plugin entry of a conflist (or a full single-plugin config). */
export type CniPluginConf = { type: string } & Record<string, unknown>;
export interface CniConflist { cniVersion: string; name: string; plugins: CniPluginConf[] }

export interface LabNode {
  name: string; // "n1"
  index: number; // 1-based
  nsName: string; // "<prefix>-n1"
  netns: string; // /var/run/netns/<nsName>
  vtep: string; // 192.0.2.<10+index> (ipv6 underlay: 2001:db8::<10+index>), on `ul0`
  dir: string; // per-node temp dir (state, ipam data, logs); shared by all nodes with sharedDir
  /** This node's agent.socket: nodes share the root filesystem, so every agent and the plugin
   *  calls of its node need a path of their own (the default /run/podlegs/agent.sock is the host's). */
  agentSocket: string;
}
export interface LabPod { name: string; nsName: string; netns: string; node: LabNode; containerId: string }
export interface CniCall {
  command: CniCommand;
  conf: object; // sent as JSON on stdin, as is
  pod?: LabPod; // sets CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME
  ifname?: string; // default eth0
  args?: string; // CNI_ARGS
  env?: Record<string, string>; // extra/overriding environment
  stdin?: string; // raw stdin instead of JSON.stringify(conf)
  timeoutMs?: number; // default 30 s; on timeout the plugin is SIGKILLed and code is -1
}
/** code is the exit status, or -1 if the process was killed / timed out / could not start. */
export interface CniOutcome { code: number; stdout: string; stderr: string; json?: unknown }
export interface ShResult { code: number; stdout: string; stderr: string }
export interface LabOptions {
  nodes: number;
  /** All nodes get the same `dir` (<lab>/node) instead of one each (<lab>/n<i>). */
  sharedDir?: boolean;
  /** Binary for plugin type "podlegs"; default $PODLEGS_BIN or <repo>/dist/podlegs. */
  podlegsBin?: string;
  /** Plugin search path; default $CNI_PATH or /usr/lib/cni. */
  cniPath?: string;
  /** Address family of the node VTEPs on `ul0`; default 'ipv4'. 'ipv6': 2001:db8::/64, no IPv4. */
  underlay?: 'ipv4' | 'ipv6';
}
export interface PtpOptions { subnet?: string; mtu?: number }
export interface SpawnOptions { env?: Record<string, string>; stdin?: string; maxOutput?: number }
export interface ProcessExit { code: number | null; signal: NodeJS.Signals | null }
export interface LabProcess {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly netns: string | undefined;
  readonly exited: Promise<ProcessExit>;
  running(): boolean;
  stdout(): string;
  stderr(): string;
  /** Resolves with the output so far once `pattern` shows up in stdout or stderr. */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after graceMs (default 3 s); resolves when it has exited. */
  kill(graceMs?: number): Promise<void>;
}

/** PIDs started by any Lab of this process (still running) → owning lab prefix. */
const started = new Map<number, string>();
/** Labs not destroyed yet, for the best-effort cleanup at process exit. */
const liveLabs = new Set<Lab>();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); // "pid (comm) S ..."
    return !'ZX'.includes(stat.charAt(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

function listNetns(): string[] {
  try { return readdirSync(NETNS_DIR); } catch { return []; }
}

/** argv prefix that runs a command inside `netns` (a name, or a path). */
function inNetns(netns: string): string[] {
  const dir = path.dirname(netns);
  if (!netns.includes('/')) return ['ip', 'netns', 'exec', netns];
  if (dir === NETNS_DIR || dir === '/run/netns') return ['ip', 'netns', 'exec', path.basename(netns)];
  return ['nsenter', `--net=${netns}`, '--'];
}

interface RunOptions { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; track?: (pid: number, done: boolean) => void }

/** Runs argv to completion. Never throws. */
function run(argv: string[], o: RunOptions = {}): Promise<ShResult> {
  return new Promise((resolve) => {
    const child = spawnChild(argv[0], argv.slice(1), { env: o.env ?? process.env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const pid = child.pid;
    if (pid !== undefined) o.track?.(pid, false);
    const timer = setTimeout(() => { stderr += `\n[lab] timed out after ${o.timeoutMs} ms, killed`; child.kill('SIGKILL'); },
      o.timeoutMs ?? 60_000);
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (pid !== undefined) o.track?.(pid, true);
      resolve({ code, stdout, stderr });
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', (e) => { stderr += `[lab] ${String(e)}`; finish(-1); });
    child.on('close', (code) => finish(code ?? -1));
    child.stdin.on('error', () => undefined); // plugin may exit without reading stdin
    child.stdin.end(o.input ?? '');
  });
}

async function must(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function cmpVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function asConflist(o: object): CniConflist {
  const c = o as Partial<CniConflist>;
  if (typeof c.cniVersion !== 'string' || typeof c.name !== 'string' || !Array.isArray(c.plugins) ||
      !c.plugins.every((p) => isObject(p) && typeof p.type === 'string')) {
    throw new Error('conflist needs cniVersion, name and plugins[] with a type each');
  }
  return c as CniConflist;
}

class LabProc implements LabProcess {
  private out = '';
  private err = '';
  private exit: ProcessExit | undefined;
  readonly exited: Promise<ProcessExit>;

  constructor(readonly pid: number, readonly argv: readonly string[], readonly netns: string | undefined,
    child: ReturnType<typeof spawnChild>, max: number) {
    const keep = (s: string): string => (s.length > max ? s.slice(s.length - max) : s);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { this.out = keep(this.out + d); });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.err = keep(this.err + d); });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      started.delete(pid);
      resolve(this.exit);
    }));
  }
  running(): boolean { return this.exit === undefined; }
  stdout(): string { return this.out; }
  stderr(): string { return this.err; }

  async waitFor(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = this.out + this.err;
      if (typeof pattern === 'string' ? all.includes(pattern) : pattern.test(all)) return all;
      if (!this.running() || Date.now() > deadline) {
        throw new Error(`${this.argv.join(' ')}: ${String(pattern)} not seen (${this.running() ? 'timeout' : 'exited'}); output:\n${all}`);
      }
      await sleep(50);
    }
  }

  async kill(graceMs = 3000): Promise<void> {
    if (!this.running()) return;
    try { process.kill(this.pid, 'SIGTERM'); } catch { /* already gone */ }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((r) => { timer = setTimeout(r, graceMs); })]);
    clearTimeout(timer);
    if (this.running()) {
      try { process.kill(this.pid, 'SIGKILL'); } catch { /* already gone */ }
      await this.exited;
    }
  }
}

export class Lab {
  readonly nodes: LabNode[] = [];
  readonly registryDir: string;
  readonly cniPath: string[];
  readonly podlegsBin: string;
  private readonly namespaces: string[]; // creation order; deleted in reverse
  private readonly procs = new Set<LabProc>();
  private readonly execPids = new Set<number>();
  private readonly results = new Map<string, Record<string, unknown>>(); // libcni's result cache
  private readonly versions = new Map<string, string[]>(); // binary → supportedVersions
  private destroying: Promise<void> | undefined;

  private constructor(readonly prefix: string, readonly dir: string, opts: LabOptions) {
    this.registryDir = path.join(dir, 'registry');
    this.cniPath = (opts.cniPath ?? process.env.CNI_PATH ?? '/usr/lib/cni').split(':').filter(Boolean);
    this.podlegsBin = opts.podlegsBin ?? process.env.PODLEGS_BIN ?? path.join(REPO_ROOT, 'dist', 'podlegs');
    this.namespaces = [`${prefix}-ul`];
  }

  get underlay(): string { return `${this.prefix}-ul`; }

  static async create(opts: LabOptions): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new Error('Lab needs root');
    if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 200) throw new Error('nodes: 1..200');
    // Reserve a prefix: `ip netns add` fails if the name exists, so it doubles as a lock.
    let prefix = '';
    for (let i = 0; !prefix; i++) {
      const p = `pl${randomBytes(2).toString('hex')}`;
      if (!listNetns().some((n) => n.startsWith(`${p}-`)) && (await run(['ip', 'netns', 'add', `${p}-ul`])).code === 0) prefix = p;
      else if (i > 20) throw new Error('could not reserve a lab prefix');
    }
    const lab = new Lab(prefix, await mkdtemp(`${TMP_PREFIX}${prefix}-`).catch(async (e: unknown) => {
      await run(['ip', 'netns', 'del', `${prefix}-ul`]);
      throw e;
    }), opts);
    liveLabs.add(lab);
    try {
      await lab.build(opts);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private async build(opts: LabOptions): Promise<void> {
    const ul = this.underlay;
    await mkdir(this.registryDir, { recursive: true });
    await must(['ip', '-n', ul, 'link', 'set', 'lo', 'up']);
    // A dumb switch: no multicast snooping, so VRRP/multicast floods like on a hub.
    await must(['ip', '-n', ul, 'link', 'add', 'ulbr', 'type', 'bridge', 'mcast_snooping', '0']);
    await must(['ip', '-n', ul, 'link', 'set', 'ulbr', 'up']);
    for (let i = 1; i <= opts.nodes; i++) {
      const nsName = `${this.prefix}-n${i}`;
      await this.addNetns(nsName);
      const v6 = opts.underlay === 'ipv6';
      const node: LabNode = { name: `n${i}`, index: i, nsName, netns: path.join(NETNS_DIR, nsName),
        vtep: v6 ? `2001:db8::${10 + i}` : `192.0.2.${10 + i}`, dir: path.join(this.dir, opts.sharedDir ? 'node' : `n${i}`),
        agentSocket: path.join(this.dir, 'run', `n${i}-agent.sock`) };
      await mkdir(node.dir, { recursive: true });
      // The veth is created inside the underlay ns with its peer placed straight into the node ns:
      // it never exists in the root namespace, not even briefly.
      await must(['ip', '-n', ul, 'link', 'add', `n${i}`, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', nsName]);
      await must(['ip', '-n', ul, 'link', 'set', `n${i}`, 'master', 'ulbr', 'up']);
      // nodad: the VTEP is usable at once (no tentative phase); the lab assigns unique addresses.
      await must(['ip', '-n', nsName, 'addr', 'add', ...(v6 ? [`${node.vtep}/64`, 'dev', 'ul0', 'nodad'] : [`${node.vtep}/24`, 'dev', 'ul0'])]);
      await must(['ip', '-n', nsName, 'link', 'set', 'ul0', 'up']);
      this.nodes.push(node);
    }
  }

  private async addNetns(nsName: string): Promise<void> {
    await must(['ip', 'netns', 'add', nsName]);
    this.namespaces.push(nsName);
    await must(['ip', '-n', nsName, 'link', 'set', 'lo', 'up']);
  }

  async addPod(node: LabNode, name: string): Promise<LabPod> {
    if (!/^[a-z0-9][a-z0-9-]{0,15}$/.test(name)) throw new Error(`bad pod name ${name}`);
    const nsName = `${this.prefix}-p${name}`;
    await this.addNetns(nsName);
    return { name, nsName, netns: path.join(NETNS_DIR, nsName), node, containerId: randomBytes(32).toString('hex') };
  }

  /** Kills what runs in the pod, deletes its netns (kernel then removes its interfaces). No CNI DEL. */
  async removePod(pod: LabPod): Promise<void> {
    await this.killInNetns(pod.nsName);
    await run(['ip', 'netns', 'del', pod.nsName]);
    const i = this.namespaces.indexOf(pod.nsName);
    if (i >= 0) this.namespaces.splice(i, 1);
  }

  /** Path of a plugin binary: type "podlegs" → podlegsBin, else the first match on cniPath. */
  findPlugin(type: string): string {
    if (type === 'podlegs') return this.podlegsBin;
    const hit = this.cniPath.map((d) => path.join(d, type)).find((p) => existsSync(p));
    if (!hit) throw new Error(`failed to find plugin "${type}" in path [${this.cniPath.join(' ')}]`);
    return hit;
  }

  /** Runs one plugin binary (a path, or a plugin type) as a runtime on `node` would. Never throws for plugin failures. */
  async exec(node: LabNode, binary: string, call: CniCall): Promise<CniOutcome> {
    const bin = binary.includes('/') ? binary : this.findPlugin(binary);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CNI_')) env[k] = v;
    env.CNI_COMMAND = call.command;
    env.CNI_PATH = this.cniPath.join(':');
    if (call.pod) {
      env.CNI_CONTAINERID = call.pod.containerId;
      env.CNI_NETNS = call.pod.netns;
    }
    if (call.pod || call.ifname) env.CNI_IFNAME = call.ifname ?? 'eth0';
    if (call.args !== undefined) env.CNI_ARGS = call.args;
    Object.assign(env, call.env);
    const stdin = call.stdin ?? JSON.stringify(call.conf);
    const r = await run(['nsenter', `--net=${node.netns}`, '--', bin], {
      input: stdin, env, timeoutMs: call.timeoutMs ?? 30_000,
      track: (pid, done) => {
        if (done) { this.execPids.delete(pid); started.delete(pid); } else { this.execPids.add(pid); started.set(pid, this.prefix); }
      },
    });
    let json: unknown;
    try { json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined; } catch { json = undefined; }
    // One JSON line per call, handy when a test fails: <node.dir>/cni-calls.log
    await appendFile(path.join(node.dir, 'cni-calls.log'), `${JSON.stringify({ time: new Date().toISOString(), bin,
      command: call.command, pod: call.pod?.name, ifname: call.ifname, args: call.args, stdin, ...r })}\n`).catch(() => undefined);
    return json === undefined ? r : { ...r, json };
  }

  /**
   * Runs a conflist like libcni: ADD in order passing prevResult and caching the final result;
   * CHECK (>= 0.4.0 only) in order, every plugin gets the cached ADD result as prevResult;
   * DEL in reverse order with the cached result as prevResult (>= 0.4.0; none for 0.3.x), then
   * drops the cache. Stops at the first failing plugin and returns its outcome; otherwise the
   * last plugin's. Throws only on harness misuse (bad conflist, unknown plugin, CHECK without ADD).
   *
   * Version downgrade: Debian's reference plugins (ptp, host-local, ...) support CNI up to
   * 1.0.0. When the conflist says 1.1.0 and a plugin's VERSION does not list it but lists
   * 1.0.0, that plugin is invoked with cniVersion "1.0.0" (prevResult relabelled too) and its
   * result is relabelled "1.1.0": the 1.1.0 result format is identical to 1.0.0's. Plugins that
   * support 1.1.0 (podlegs) get the conflist's version unchanged.
   */
  async chain(pod: LabPod, command: 'ADD' | 'DEL' | 'CHECK', conflist: object,
    opts: { ifname?: string; args?: string } = {}): Promise<CniOutcome> {
    const list = asConflist(conflist);
    const ifname = opts.ifname ?? 'eth0';
    const key = `${list.name}/${pod.containerId}/${ifname}`;
    const cached = this.results.get(key);
    const withCache = cmpVersion(list.cniVersion, '0.4.0') >= 0; // cached result on DEL/CHECK since 0.4.0
    if (command === 'CHECK' && !withCache) throw new Error(`configuration version "${list.cniVersion}" does not support CHECK`);
    if (command === 'CHECK' && !cached) throw new Error(`no cached result for ${key}`);
    let prev = command === 'ADD' || !withCache ? undefined : cached;
    let last: CniOutcome = { code: 0, stdout: '', stderr: '' };
    for (const plugin of command === 'DEL' ? [...list.plugins].reverse() : list.plugins) {
      const bin = this.findPlugin(plugin.type);
      const version = await this.versionFor(pod.node, bin, list.cniVersion);
      const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: version };
      if (prev) conf.prevResult = { ...prev, cniVersion: version };
      last = await this.exec(pod.node, bin, { command, conf, pod, ifname, args: opts.args });
      if (last.code !== 0) return last;
      if (command === 'ADD') {
        if (!isObject(last.json)) return { ...last, code: -1, stderr: `${last.stderr}[lab] ${plugin.type}: ADD returned no result` };
        prev = { ...last.json, cniVersion: list.cniVersion };
        last = { ...last, json: prev };
      }
    }
    if (command === 'ADD' && prev) this.results.set(key, prev);
    if (command === 'DEL') this.results.delete(key);
    return last;
  }

  /** The result cached by the last successful chain ADD (like libcni's /var/lib/cni/results). */
  cachedResult(pod: LabPod, network: string, ifname = 'eth0'): Record<string, unknown> | undefined {
    return this.results.get(`${network}/${pod.containerId}/${ifname}`);
  }

  private async versionFor(node: LabNode, bin: string, want: string): Promise<string> {
    if (want !== '1.1.0') return want;
    let supported = this.versions.get(bin);
    if (!supported) {
      const r = await this.exec(node, bin, { command: 'VERSION', conf: { cniVersion: want } });
      const sv = isObject(r.json) ? r.json.supportedVersions : undefined;
      supported = Array.isArray(sv) ? sv.filter((v): v is string => typeof v === 'string') : [];
      this.versions.set(bin, supported);
    }
    return !supported.includes(want) && supported.includes('1.0.0') ? '1.0.0' : want;
  }

  /** ptp entry standing in for Cilium on `node`: host-local 10.10.<i>.0/24, default route, no masquerade. */
  ptpPlugin(node: LabNode, opts: PtpOptions = {}): CniPluginConf {
    return {
      type: 'ptp', ipMasq: false, ...(opts.mtu ? { mtu: opts.mtu } : {}),
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: opts.subnet ?? `10.10.${node.index}.0/24` }]],
        routes: [{ dst: '0.0.0.0/0' }],
        dataDir: path.join(node.dir, 'ipam', node.name), // per node even with sharedDir
      },
    };
  }

  /** `sh -c cmd`, inside `netns` (name or path) if given. Throws on non-zero exit unless allowFail. */
  async sh(cmd: string, opts: { netns?: string; allowFail?: boolean; timeoutMs?: number } = {}): Promise<ShResult> {
    const argv = [...(opts.netns ? inNetns(opts.netns) : []), 'sh', '-c', cmd];
    const r = await run(argv, { timeoutMs: opts.timeoutMs ?? 60_000 });
    if (r.code !== 0 && !opts.allowFail) {
      throw new Error(`${opts.netns ? `[${opts.netns}] ` : ''}${cmd} → exit ${r.code}\n${r.stdout}${r.stderr}`);
    }
    return r;
  }

  /** Starts a long-lived process (inside `netns` via `ip netns exec`, same PID); destroy() ends it. */
  spawn(netns: string | undefined, argv: string[], opts: SpawnOptions = {}): LabProcess {
    if (this.destroying) throw new Error('lab destroyed');
    const full = [...(netns ? inNetns(netns) : []), ...argv];
    const child = spawnChild(full[0], full.slice(1), {
      env: { ...process.env, ...opts.env }, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    child.on('error', () => undefined);
    if (child.pid === undefined) throw new Error(`cannot start ${full.join(' ')}`);
    started.set(child.pid, this.prefix);
    const proc = new LabProc(child.pid, argv, netns, child, opts.maxOutput ?? 4 << 20);
    this.procs.add(proc);
    void proc.exited.then(() => this.procs.delete(proc));
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
    return proc;
  }

  /** Ends every process that still runs in one of our namespaces (descendants of what we started). */
  private async killInNetns(nsName: string): Promise<void> {
    const pids = async (): Promise<number[]> => (await run(['ip', 'netns', 'pids', nsName])).stdout
      .split(/\s+/).filter(Boolean).map(Number).filter((p) => p !== process.pid);
    for (const p of this.procs) if (p.netns && path.basename(p.netns) === nsName) await p.kill();
    let left = await pids();
    for (let round = 0; left.length && round < 2; round++) {
      for (const pid of left) try { process.kill(pid, round ? 'SIGKILL' : 'SIGTERM'); } catch { /* gone */ }
      for (let t = 0; t < 30 && left.length; t++) { await sleep(100); left = left.filter(pidAlive); }
    }
  }

  /** Kills every spawned process, deletes every namespace, removes the temp dir. Idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      await Promise.all([...this.procs].map((p) => p.kill()));
      for (const pid of this.execPids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      const errors: string[] = [];
      for (const ns of [...this.namespaces].reverse()) {
        await this.killInNetns(ns);
        const r = await run(['ip', 'netns', 'del', ns]);
        if (r.code !== 0 && listNetns().includes(ns)) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
      }
      this.namespaces.length = 0;
      await rm(this.dir, { recursive: true, force: true });
      liveLabs.delete(this);
      if (errors.length) throw new Error(errors.join('\n'));
    })();
    return this.destroying;
  }

  /** Synchronous last resort at process exit (a test that never reached destroy()). */
  static cleanupAtExit(): void {
    for (const lab of liveLabs) {
      for (const p of lab.procs) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      for (const ns of [...lab.namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns]);
      spawnSync('rm', ['-rf', lab.dir]);
    }
  }
}
process.once('exit', () => Lab.cleanupAtExit());

/** Creates a lab, runs fn, always destroys the lab (also when fn throws). */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.create(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}

/**
 * Leftovers of labs: namespaces named like a lab's, processes a Lab of this process started that
 * are still alive, lab temp dirs. `prefix` ("pl1a2b") narrows to one lab; default: all labs
 * (beware of parallel runs). Tests assert the list is empty.
 */
export async function leakCheck(prefix = 'pl'): Promise<string[]> {
  const leaks: string[] = [];
  for (const n of listNetns()) if (LAB_NS.test(n) && n.startsWith(prefix)) leaks.push(`netns ${n}`);
  for (const [pid, owner] of started) {
    if (owner.startsWith(prefix) && pidAlive(pid)) {
      let cmd = '';
      try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { /* gone */ }
      leaks.push(`process ${pid} ${cmd}`);
    }
  }
  for (const d of readdirSync(path.dirname(TMP_PREFIX))) {
    if (d.startsWith(`${path.basename(TMP_PREFIX)}${prefix}`)) leaks.push(`dir /tmp/${d}`);
  }
  return leaks;
}
