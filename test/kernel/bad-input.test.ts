/**
 * Bad input (issue 2, item 8): malformed configurations and environments given to the built
 * plugin (dist/podlegs), run the way a runtime runs it on a node
 * (`nsenter --net=<node netns> dist/podlegs`, config on stdin).
 *
 * Every case must produce exactly one CNI error object on stdout (right `code`, a non-empty
 * `msg`, a `cniVersion`), a non-zero exit, no stack trace on stdout or stderr, and NO change
 * on the node: links (node and pod), addresses and routes (node and pod), the node's FDB and
 * the files under the state, registry and IPAM directories are compared before and after.
 *
 * Each case differs from a working invocation (checked in beforeAll: ADD then DEL succeed with
 * the same base config and environment) by the one thing it breaks.
 *
 * Cases marked `bug` document a known product bug: the right expectation runs as `test.failing`
 * (green while the bug is there, red once it is fixed — then drop the mark). When the bug only
 * gets the code or message wrong (`bug.nowGives`), a second, ordinary test still holds the
 * product to everything else (one error object, no stack trace, nothing changed on the node).
 */
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const BIN = process.env.PODLEGS_BIN ?? path.join(REPO, 'dist', 'podlegs');
const CNI_PATH = '/usr/lib/cni';
const PREFIX = `plbi${randomBytes(2).toString('hex')}`;
const NODE_NS = `${PREFIX}-node`;
const POD_NS = `${PREFIX}-pod`;
const POD2_NS = `${PREFIX}-pod2`; // a second pod on the same node
const NETNS_DIR = '/var/run/netns';
const NODE_NETNS = `${NETNS_DIR}/${NODE_NS}`;
const POD_NETNS = `${NETNS_DIR}/${POD_NS}`;
const POD2_NETNS = `${NETNS_DIR}/${POD2_NS}`;
const CONTAINER_ID = `bi-${PREFIX}-0123456789abcdef`;
const CONTAINER2_ID = `bi-${PREFIX}-fedcba9876543210`;
const MIB = 1 << 20;

jest.setTimeout(120_000);

// ---------------------------------------------------------------------------------------------
// Shell helpers

function run(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean; cwd?: string; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { input: opts.input, cwd: opts.cwd, encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * MIB });
  if (!opts.allowFail && (r.error || r.status !== 0)) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`);
  }
  return r;
}
const ip = (...args: string[]): string => run('ip', args).stdout;
const ipJson = <T>(ns: string, ...args: string[]): T[] => {
  const out = run('ip', ['-n', ns, '-j', ...args]).stdout.trim();
  return out ? (JSON.parse(out) as T[]) : [];
};

// ---------------------------------------------------------------------------------------------
// Fixture: a node netns with an underlay, a pod netns, and per-file directories

let dir = '';
let stateDir = '';
let regDir = '';
let ipamDir = '';
let logFile = '';
let notNetns = '';
const createdNs: string[] = [];

function removeNamespaces(): void {
  for (const ns of createdNs.splice(0)) run('ip', ['netns', 'del', ns], { allowFail: true });
}

function setUpNode(): void {
  for (const ns of [NODE_NS, POD_NS, POD2_NS]) {
    ip('netns', 'add', ns);
    createdNs.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  // Underlay (this kernel has no dummy module: a veth pair, both ends up).
  ip('-n', NODE_NS, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ulx');
  ip('-n', NODE_NS, 'addr', 'add', '192.0.2.11/24', 'dev', 'ul0');
  ip('-n', NODE_NS, 'link', 'set', 'ul0', 'up');
  ip('-n', NODE_NS, 'link', 'set', 'ulx', 'up');
  // A second, administratively down underlay candidate (for "underlay is down").
  ip('-n', NODE_NS, 'link', 'add', 'uld0', 'type', 'veth', 'peer', 'name', 'uldx');
  ip('-n', NODE_NS, 'addr', 'add', '198.51.100.11/24', 'dev', 'uld0');
}

// ---------------------------------------------------------------------------------------------
// Snapshot of everything a CNI call could change on the node

interface IpLink { ifname: string; master?: string; mtu?: number; address?: string; flags?: string[]; linkinfo?: { info_kind?: string } }
interface IpAddr { ifname: string; addr_info?: { local?: string; prefixlen?: number }[] }
interface IpRoute { dst?: string; gateway?: string; dev?: string; table?: string; type?: string }
interface FdbEntry { mac?: string; ifname?: string; dst?: string; vni?: number; master?: string; state?: string; flags?: string[] }

function linkSet(ns: string): string[] {
  return ipJson<IpLink>(ns, '-d', 'link', 'show')
    .map((l) => [l.ifname, `master=${l.master ?? ''}`, `kind=${l.linkinfo?.info_kind ?? ''}`, `mtu=${l.mtu ?? ''}`,
      `mac=${l.address ?? ''}`, `up=${(l.flags ?? []).includes('UP')}`].join(' '))
    .sort();
}
function addrSet(ns: string): string[] {
  return ipJson<IpAddr>(ns, 'addr', 'show')
    .flatMap((l) => (l.addr_info ?? []).map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`))
    .filter((a) => !/ fe80:/.test(a)) // link-local v6 comes and goes with link state
    .sort();
}
function routeSet(ns: string): string[] {
  return ipJson<IpRoute>(ns, 'route', 'show', 'table', 'all')
    .map((r) => `${r.table ?? 'main'} ${r.type ?? ''} ${r.dst ?? ''} via=${r.gateway ?? ''} dev=${r.dev ?? ''}`)
    .filter((r) => !/ fe80::| ff00::/.test(r))
    .sort();
}
function fdbSet(ns: string): string[] {
  const out = run('bridge', ['-n', ns, '-j', 'fdb', 'show']).stdout.trim();
  const entries = out ? (JSON.parse(out) as FdbEntry[]) : [];
  return entries
    .map((e) => `${e.mac} dev=${e.ifname} dst=${e.dst ?? ''} vni=${e.vni ?? ''} master=${e.master ?? ''} ${e.state ?? ''} ${(e.flags ?? []).join(',')}`)
    .sort();
}
function fileSet(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      out.push(`${rel} (absent)`);
      return;
    }
    if (st.isDirectory()) {
      out.push(`${rel}/`);
      for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e), `${rel}/${e}`);
    } else if (st.isFile() && /^last_reserved_ip\./.test(path.basename(p))) {
      out.push(`${rel} (host-local's round-robin cursor: content ignored)`);
    } else if (st.isFile()) {
      out.push(`${rel} ${createHash('sha1').update(fs.readFileSync(p)).digest('hex')}`);
    } else {
      out.push(`${rel} (${st.mode.toString(8)})`);
    }
  };
  walk(root, path.basename(root));
  return out;
}

interface Snapshot {
  nodeLinks: string[]; podLinks: string[]; pod2Links: string[];
  nodeAddrs: string[]; podAddrs: string[]; pod2Addrs: string[];
  nodeRoutes: string[]; podRoutes: string[]; pod2Routes: string[];
  fdb: string[];
  state: string[]; registry: string[]; ipam: string[];
}
function snapshot(): Snapshot {
  return {
    nodeLinks: linkSet(NODE_NS), podLinks: linkSet(POD_NS), pod2Links: linkSet(POD2_NS),
    nodeAddrs: addrSet(NODE_NS), podAddrs: addrSet(POD_NS), pod2Addrs: addrSet(POD2_NS),
    nodeRoutes: routeSet(NODE_NS), podRoutes: routeSet(POD_NS), pod2Routes: routeSet(POD2_NS),
    fdb: fdbSet(NODE_NS),
    state: fileSet(stateDir), registry: fileSet(regDir), ipam: fileSet(ipamDir),
  };
}

// ---------------------------------------------------------------------------------------------
// The working invocation every case starts from

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Conf = { [k: string]: Json };

function baseConf(): Conf {
  return {
    cniVersion: '1.0.0',
    name: 'lab',
    type: 'podlegs',
    underlay: { interface: 'ul0' },
    stateDir,
    registry: { type: 'file', path: regDir },
    log: { file: logFile, level: 'debug' },
    networks: {
      'vrrp-a': { vni: 100 },
      'nf-b': { vni: 200, ipam: { type: 'host-local', subnet: '10.30.0.0/24', dataDir: ipamDir } },
    },
    legs: [
      { network: 'vrrp-a', interface: 'net1', ips: ['10.100.0.11/24'] },
      { network: 'nf-b', interface: 'net2' },
    ],
  };
}

/** A ptp-like result of the first plugin of the chain (what Cilium/ptp hands over). */
function ptpPrevResult(): Conf {
  return {
    cniVersion: '1.0.0',
    interfaces: [
      { name: 'veth1a2b3c4d', mac: '6a:1f:c4:90:2e:b7' },
      { name: 'eth0', mac: 'd2:5a:8e:3b:71:04', sandbox: POD_NETNS },
    ],
    ips: [{ interface: 1, address: '10.0.1.23/32', gateway: '10.0.1.250' }],
    routes: [{ dst: '10.0.1.250/32' }, { dst: '0.0.0.0/0', gw: '10.0.1.250' }],
    dns: {},
  };
}

function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: CONTAINER_ID,
    CNI_NETNS: POD_NETNS,
    CNI_IFNAME: 'eth0',
    CNI_PATH,
  };
}

interface PluginRun { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; error?: Error }
function plugin(env: Record<string, string>, stdin: string): PluginRun {
  const r = spawnSync('nsenter', [`--net=${NODE_NETNS}`, BIN], {
    input: stdin, env, encoding: 'utf8', timeout: 30_000, maxBuffer: 16 * MIB,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** The first pod, attached with the working config: what a later bad ADD must leave alone. */
// A live holder of the node's flock(2) lock (util-linux flock(1)).
let lockHolder: ChildProcess | undefined;
function holdNodeLock(): void {
  const file = path.join(stateDir, 'node.lock');
  fs.mkdirSync(stateDir, { recursive: true });
  // One process: the shell takes the lock on fd 9 and becomes the sleep, so killing its PID releases it.
  lockHolder = spawn('sh', ['-c', 'exec 9>"$1"; flock -x 9; exec sleep 120', 'sh', file], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (spawnSync('flock', ['-n', file, 'true']).status === 1) return; // held
    spawnSync('sleep', ['0.05']);
  }
  throw new Error('flock(1) did not take the node lock');
}
function releaseNodeLock(): void {
  if (lockHolder?.pid) {
    try { process.kill(lockHolder.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  lockHolder = undefined;
}

function attachFirstPod(): void {
  const r = plugin(baseEnv(), JSON.stringify(baseConf()));
  if (r.status !== 0) throw new Error(`setup ADD of the first pod failed: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
}
function detachFirstPod(): void {
  const r = plugin({ ...baseEnv(), CNI_COMMAND: 'DEL' }, JSON.stringify(baseConf()));
  if (r.status !== 0) throw new Error(`cleanup DEL of the first pod failed: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
}
const secondPod = { CNI_CONTAINERID: CONTAINER2_ID, CNI_NETNS: POD2_NETNS };

// ---------------------------------------------------------------------------------------------
// The table

const Code = {
  IncompatibleVersion: 1, UnsupportedField: 2, UnknownContainer: 3, InvalidEnv: 4,
  DecodeFailure: 6, InvalidConfig: 7, NotAvailable: 50, InterfaceExists: 101, IpamFailure: 102,
} as const;

interface Case {
  name: string;
  code: number;
  /** Changes the base config (a fresh copy); ignored when `stdin` is given. */
  conf?: (c: Conf) => void;
  /** Raw stdin instead of the (changed) base config. */
  stdin?: () => string;
  /** Environment changes; `null` removes the variable. */
  env?: Record<string, string | null>;
  setup?: () => void;
  cleanup?: () => void;
  /** The error message must match this. */
  msg?: RegExp;
  /** A known product bug this case exposes; `nowGives` is the code the product gives today. */
  bug?: { why: string; nowGives?: number; nowMsg?: RegExp };
}

const net = (c: Conf, name: string): Conf => (c.networks as Conf)[name] as Conf;
const legs = (c: Conf): Conf[] => c.legs as Conf[];
const leg = (c: Conf, i: number): Conf => legs(c)[i];
const underlay = (c: Conf): Conf => c.underlay as Conf;

const configCases: Case[] = [
  // --- not a configuration at all
  { name: 'empty stdin', code: Code.DecodeFailure, stdin: () => '' },
  { name: 'truncated JSON', code: Code.DecodeFailure, stdin: () => JSON.stringify(baseConf()).slice(0, 60) },
  { name: 'JSON with a trailing comma', code: Code.DecodeFailure, stdin: () => '{"cniVersion":"1.0.0","name":"lab","type":"podlegs",}' },
  { name: 'not JSON (YAML)', code: Code.DecodeFailure, stdin: () => 'cniVersion: 1.0.0\nname: lab\ntype: podlegs\n' },
  {
    name: 'oversized multi-byte input (> 1 MiB in bytes, < 1 Mi characters)', code: Code.DecodeFailure, msg: /larger than/,
    stdin: () => JSON.stringify({ ...baseConf(), padding: '\u00e9'.repeat(600 * 1024) }),
  },
  { name: 'JSON with a byte-order mark', code: Code.DecodeFailure, stdin: () => `\ufeff${JSON.stringify(baseConf())}` },
  { name: 'config is a JSON array', code: Code.InvalidConfig, stdin: () => JSON.stringify([baseConf()]) },
  { name: 'config is a JSON string', code: Code.InvalidConfig, stdin: () => '"podlegs"' },
  { name: 'config is JSON null', code: Code.InvalidConfig, stdin: () => 'null' },
  {
    name: 'oversized input (1 MiB + padding)', code: Code.DecodeFailure, msg: /larger than/,
    stdin: () => JSON.stringify({ ...baseConf(), padding: 'x'.repeat(MIB + 1024) }),
  },
  {
    name: 'oversized input (valid config + 2 MiB of trailing spaces)', code: Code.DecodeFailure, msg: /larger than/,
    stdin: () => `${JSON.stringify(baseConf())}${' '.repeat(2 * MIB)}`,
  },
  // --- the CNI envelope
  { name: 'missing cniVersion', code: Code.InvalidConfig, conf: (c) => { delete c.cniVersion; } },
  { name: 'cniVersion is a number', code: Code.InvalidConfig, conf: (c) => { c.cniVersion = 1; } },
  { name: 'unsupported cniVersion 0.2.0', code: Code.IncompatibleVersion, conf: (c) => { c.cniVersion = '0.2.0'; } },
  { name: 'unsupported cniVersion 2.0.0', code: Code.IncompatibleVersion, conf: (c) => { c.cniVersion = '2.0.0'; } },
  { name: 'missing name', code: Code.InvalidConfig, conf: (c) => { delete c.name; } },
  { name: 'name is a number', code: Code.InvalidConfig, conf: (c) => { c.name = 42; } },
  { name: 'name is empty', code: Code.InvalidConfig, conf: (c) => { c.name = ''; } },
  { name: 'missing type', code: Code.InvalidConfig, conf: (c) => { delete c.type; } },
  { name: 'wrong type "bridge"', code: Code.InvalidConfig, conf: (c) => { c.type = 'bridge'; } },
  // --- underlay
  { name: 'underlay is a string', code: Code.InvalidConfig, conf: (c) => { c.underlay = 'ul0'; } },
  { name: 'underlay.interface is a number', code: Code.InvalidConfig, conf: (c) => { underlay(c).interface = 0; } },
  { name: 'underlay.interface has a "/"', code: Code.InvalidConfig, conf: (c) => { underlay(c).interface = 'ul/0'; } },
  { name: 'unknown field underlay.prot', code: Code.UnsupportedField, conf: (c) => { underlay(c).prot = 4789; } },
  { name: 'underlay.port is a string', code: Code.InvalidConfig, conf: (c) => { underlay(c).port = '4789'; } },
  { name: 'underlay.port 0', code: Code.InvalidConfig, conf: (c) => { underlay(c).port = 0; } },
  { name: 'underlay.port 70000', code: Code.InvalidConfig, conf: (c) => { underlay(c).port = 70000; } },
  { name: "underlay.port 8472 (Cilium's)", code: Code.InvalidConfig, conf: (c) => { underlay(c).port = 8472; } },
  { name: 'underlay.mtu is a word', code: Code.InvalidConfig, conf: (c) => { underlay(c).mtu = 'big'; } },
  { name: 'underlay.vtep is not an IP', code: Code.InvalidConfig, conf: (c) => { underlay(c).vtep = 'node-1'; } },
  { name: 'underlay.vtep is a number', code: Code.InvalidConfig, conf: (c) => { underlay(c).vtep = 3221225995; } },
  { name: 'underlay.vtep is multicast', code: Code.InvalidConfig, conf: (c) => { underlay(c).vtep = '239.1.1.1'; } },
  // --- networks
  { name: 'networks is a list', code: Code.InvalidConfig, conf: (c) => { c.networks = [{ vni: 100 }]; } },
  { name: 'a network is a number', code: Code.InvalidConfig, conf: (c) => { (c.networks as Conf)['vrrp-a'] = 100; } },
  { name: 'VNI 0', code: Code.InvalidConfig, conf: (c) => { net(c, 'vrrp-a').vni = 0; } },
  { name: 'VNI 16777216', code: Code.InvalidConfig, conf: (c) => { net(c, 'vrrp-a').vni = 16777216; } },
  { name: 'VNI 1e400 (infinite)', code: Code.InvalidConfig, stdin: () => JSON.stringify(baseConf()).replace('"vni":100', '"vni":1e400') },
  { name: 'VNI -1', code: Code.InvalidConfig, conf: (c) => { net(c, 'vrrp-a').vni = -1; } },
  { name: 'non-integer VNI 100.5', code: Code.InvalidConfig, conf: (c) => { net(c, 'vrrp-a').vni = 100.5; } },
  { name: 'VNI as a string', code: Code.InvalidConfig, conf: (c) => { net(c, 'vrrp-a').vni = '100'; } },
  { name: 'missing VNI', code: Code.InvalidConfig, conf: (c) => { delete net(c, 'vrrp-a').vni; } },
  { name: 'duplicate VNI across networks', code: Code.InvalidConfig, conf: (c) => { net(c, 'nf-b').vni = 100; } },
  {
    name: 'network name with a space', code: Code.InvalidConfig,
    conf: (c) => { (c.networks as Conf)['Bad Net'] = { vni: 300 }; },
  },
  // The CNI spec's rule: a letter or digit first, then letters, digits, "_", "." or "-".
  { name: 'network name starting with "-"', code: Code.InvalidConfig, conf: (c) => { (c.networks as Conf)['-net'] = { vni: 300 }; } },
  { name: 'network name with "/"', code: Code.InvalidConfig, conf: (c) => { (c.networks as Conf)['nf/b'] = { vni: 300 }; } },
  { name: 'config name with a space (libcni refuses it too)', code: Code.InvalidConfig, conf: (c) => { c.name = 'my lab'; } },
  { name: 'unknown field in a network', code: Code.UnsupportedField, conf: (c) => { net(c, 'vrrp-a').vlan = 10; } },
  { name: 'network mtu is a string', code: Code.InvalidConfig, conf: (c) => { net(c, 'vrrp-a').mtu = '1400'; } },
  { name: 'network mtu 1451 above underlay 1500 - 50', code: Code.InvalidConfig, conf: (c) => { net(c, 'vrrp-a').mtu = 1451; } },
  {
    name: 'network mtu 1400 with underlay.mtu 1400', code: Code.InvalidConfig,
    conf: (c) => { underlay(c).mtu = 1400; net(c, 'vrrp-a').mtu = 1400; },
  },
  { name: 'ipam is a string', code: Code.InvalidConfig, conf: (c) => { net(c, 'nf-b').ipam = 'host-local'; } },
  { name: 'ipam without type', code: Code.InvalidConfig, conf: (c) => { delete (net(c, 'nf-b').ipam as Conf).type; } },
  { name: 'ipam type with a path', code: Code.InvalidConfig, conf: (c) => { (net(c, 'nf-b').ipam as Conf).type = '../../bin/sh'; } },
  // --- legs
  { name: 'legs is an object', code: Code.InvalidConfig, conf: (c) => { c.legs = { net1: 'vrrp-a' }; } },
  { name: 'a leg is a string', code: Code.InvalidConfig, conf: (c) => { (c.legs as Json[])[0] = 'vrrp-a'; } },
  { name: 'leg without network', code: Code.InvalidConfig, conf: (c) => { delete leg(c, 0).network; } },
  { name: 'leg network is a number', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).network = 100; } },
  { name: 'leg on an unknown network', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).network = 'nope'; } },
  { name: 'duplicate leg interface names', code: Code.InvalidConfig, conf: (c) => { leg(c, 1).interface = 'net1'; } },
  { name: 'network attached twice', code: Code.InvalidConfig, conf: (c) => { leg(c, 1).network = 'vrrp-a'; delete leg(c, 1).ips; } },
  { name: 'leg interface 16 characters', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).interface = 'net1234567890abc'; } },
  { name: 'leg interface starting with eth', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).interface = 'eth1'; } },
  { name: 'leg interface with "/"', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).interface = 'net/1'; } },
  { name: 'leg interface with a space', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).interface = 'net 1'; } },
  { name: 'leg interface empty', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).interface = ''; } },
  { name: 'leg interface ".."', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).interface = '..'; } },
  { name: 'leg interface is a number', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).interface = 1; } },
  { name: 'leg without interface', code: Code.InvalidConfig, conf: (c) => { delete leg(c, 0).interface; } },
  { name: 'leg ips without prefix length', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = ['10.100.0.11']; } },
  { name: 'leg ips not an address', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = ['banana/24']; } },
  { name: 'leg ips prefix length 33', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = ['10.100.0.11/33']; } },
  // ipaddr.js reads these as 10.0.0.100 and 10.100.0.11; Go's net.ParseCIDR (libcni) refuses both.
  { name: 'leg ips short form "10.100/24"', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = ['10.100/24']; } },
  { name: 'leg ips with leading zeros', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = ['010.100.000.011/24']; } },
  { name: 'leg ips is a string', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = '10.100.0.11/24'; } },
  { name: 'leg ips is empty', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = []; } },
  { name: 'leg mac is a number', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).mac = 2; } },
  { name: 'leg mac is multicast', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).mac = '01:00:5e:00:00:01'; } },
  { name: 'leg mac is malformed', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).mac = '02:zz:00:00:00:01'; } },
  { name: 'leg mac too short', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).mac = '02:00:00:00:01'; } },
  { name: 'leg mac all zeros', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).mac = '00:00:00:00:00:00'; } },
  { name: 'unknown field in a leg', code: Code.UnsupportedField, conf: (c) => { leg(c, 0).vlan = 10; } },
  {
    name: '33 legs (more than 32)', code: Code.InvalidConfig,
    conf: (c) => {
      const nets: Conf = {};
      const ls: Conf[] = [];
      for (let i = 1; i <= 33; i++) {
        nets[`n${i}`] = { vni: 1000 + i };
        ls.push({ network: `n${i}`, interface: `net${i}`, ips: [`10.40.${i}.1/24`] });
      }
      c.networks = nets;
      c.legs = ls;
    },
  },
  // --- registry, state, log
  { name: 'registry is a string', code: Code.InvalidConfig, conf: (c) => { c.registry = 'file'; } },
  { name: 'registry.type is a number', code: Code.InvalidConfig, conf: (c) => { (c.registry as Conf).type = 1; } },
  { name: 'registry.type bogus', code: Code.InvalidConfig, conf: (c) => { (c.registry as Conf).type = 'etcd'; } },
  { name: 'registry.path relative', code: Code.InvalidConfig, conf: (c) => { (c.registry as Conf).path = 'reg'; } },
  { name: 'unknown field in registry', code: Code.UnsupportedField, conf: (c) => { (c.registry as Conf).dir = regDir; } },
  { name: 'stateDir relative', code: Code.InvalidConfig, conf: (c) => { c.stateDir = 'var/lib/podlegs'; } },
  { name: 'stateDir is a number', code: Code.InvalidConfig, conf: (c) => { c.stateDir = 7; } },
  { name: 'log.file relative', code: Code.InvalidConfig, conf: (c) => { (c.log as Conf).file = 'podlegs.log'; } },
  { name: 'log.file is a list', code: Code.InvalidConfig, conf: (c) => { (c.log as Conf).file = [logFile]; } },
  { name: 'log.level is a number', code: Code.InvalidConfig, conf: (c) => { (c.log as Conf).level = 3; } },
  { name: 'log.level bogus', code: Code.InvalidConfig, conf: (c) => { (c.log as Conf).level = 'verbose'; } },
  { name: 'log is a string', code: Code.InvalidConfig, conf: (c) => { c.log = '/tmp/podlegs.log'; } },
  // --- prevResult and runtime-provided fields
  { name: 'prevResult is a string', code: Code.DecodeFailure, conf: (c) => { c.prevResult = 'ptp'; } },
  { name: 'prevResult.interfaces is an object', code: Code.DecodeFailure, conf: (c) => { c.prevResult = { ...ptpPrevResult(), interfaces: { name: 'eth0' } }; } },
  {
    name: 'prevResult ip without address', code: Code.DecodeFailure,
    conf: (c) => { c.prevResult = { ...ptpPrevResult(), ips: [{ interface: 1, gateway: '10.0.1.250' }] }; },
  },
  { name: 'prevResult interface without name', code: Code.DecodeFailure, conf: (c) => { c.prevResult = { ...ptpPrevResult(), interfaces: [{ mac: 'd2:5a:8e:3b:71:04' }] }; } },
  // What libcni's result types cannot decode is refused (6), not handed on to the runtime.
  {
    name: 'prevResult ip address without prefix length', code: Code.DecodeFailure, msg: /prevResult\.ips\[0\]\.address/,
    conf: (c) => { c.prevResult = { ...ptpPrevResult(), ips: [{ interface: 1, address: '10.0.1.23', gateway: '10.0.1.250' }] }; },
  },
  {
    name: 'prevResult ip address in short form', code: Code.DecodeFailure, msg: /prevResult\.ips\[0\]\.address/,
    conf: (c) => { c.prevResult = { ...ptpPrevResult(), ips: [{ interface: 1, address: '10.1/32', gateway: '10.0.1.250' }] }; },
  },
  {
    name: 'prevResult ip gateway not an IP', code: Code.DecodeFailure, msg: /prevResult\.ips\[0\]\.gateway/,
    conf: (c) => { c.prevResult = { ...ptpPrevResult(), ips: [{ interface: 1, address: '10.0.1.23/32', gateway: 'router' }] }; },
  },
  {
    name: 'prevResult route dst not a CIDR', code: Code.DecodeFailure, msg: /prevResult\.routes\[1\]\.dst/,
    conf: (c) => { c.prevResult = { ...ptpPrevResult(), routes: [{ dst: '10.0.1.250/32' }, { dst: 'default', gw: '10.0.1.250' }] }; },
  },
  {
    name: 'prevResult ip interface is a string', code: Code.DecodeFailure, msg: /prevResult\.ips\[0\]\.interface/,
    conf: (c) => { c.prevResult = { ...ptpPrevResult(), ips: [{ interface: '1', address: '10.0.1.23/32', gateway: '10.0.1.250' }] }; },
  },
  {
    name: 'prevResult ip interface past the interfaces', code: Code.DecodeFailure, msg: /interface 2 is not an index/,
    conf: (c) => { c.prevResult = { ...ptpPrevResult(), ips: [{ interface: 2, address: '10.0.1.23/32', gateway: '10.0.1.250' }] }; },
  },
  { name: 'cni.dev/valid-attachments is an object', code: Code.InvalidConfig, conf: (c) => { c['cni.dev/valid-attachments'] = { containerID: 'x' }; } },
];

const envCases: Case[] = [
  {
    name: 'missing CNI_COMMAND (other CNI_* set)', code: Code.InvalidEnv, env: { CNI_COMMAND: null },
  },
  {
    name: 'empty CNI_COMMAND', code: Code.InvalidEnv, env: { CNI_COMMAND: '' },
  },
  { name: 'bogus CNI_COMMAND', code: Code.InvalidEnv, env: { CNI_COMMAND: 'ATTACH' } },
  { name: 'lower-case CNI_COMMAND', code: Code.InvalidEnv, env: { CNI_COMMAND: 'add' } },
  { name: 'missing CNI_NETNS for ADD', code: Code.InvalidEnv, env: { CNI_NETNS: null } },
  { name: 'relative CNI_NETNS', code: Code.InvalidEnv, env: { CNI_NETNS: `netns/${POD_NS}` } },
  { name: 'CNI_NETNS does not exist', code: Code.UnknownContainer, env: { CNI_NETNS: `${NETNS_DIR}/${PREFIX}-gone` } },
  { name: 'CNI_NETNS is a regular file', code: Code.UnknownContainer, env: { CNI_NETNS: '@notNetns' } },
  { name: 'CNI_NETNS is a directory', code: Code.UnknownContainer, env: { CNI_NETNS: '/tmp' } },
  { name: 'missing CNI_CONTAINERID', code: Code.InvalidEnv, env: { CNI_CONTAINERID: null } },
  { name: 'CNI_CONTAINERID with "/" and ".."', code: Code.InvalidEnv, env: { CNI_CONTAINERID: '../../etc/x' } },
  { name: 'CNI_CONTAINERID with a space', code: Code.InvalidEnv, env: { CNI_CONTAINERID: 'abc def' } },
  { name: 'CNI_CONTAINERID starting with "-"', code: Code.InvalidEnv, env: { CNI_CONTAINERID: '-abc' } },
  {
    name: 'CNI_CONTAINERID of 300 characters', code: Code.InvalidEnv, env: { CNI_CONTAINERID: 'c'.repeat(300) },
  },
  {
    // state file name fits, the registry entry name (<vtep>_<id>_eth0_net1.json) does not: fails after the first leg
    name: 'CNI_CONTAINERID of 232 characters (fails mid-ADD)', code: Code.InvalidEnv, env: { CNI_CONTAINERID: 'd'.repeat(232) },
    cleanup: () => {
      const d = path.join(regDir, 'vni-100');
      for (const f of fs.readdirSync(d)) if (f.endsWith('.tmp')) fs.rmSync(path.join(d, f));
    },
  },
  { name: 'CNI_NETNS is a mount namespace', code: Code.UnknownContainer, env: { CNI_NETNS: '/proc/self/ns/mnt' } },
  { name: 'missing CNI_IFNAME', code: Code.InvalidEnv, env: { CNI_IFNAME: null } },
  { name: 'CNI_IFNAME 16 characters', code: Code.InvalidEnv, env: { CNI_IFNAME: 'eth0123456789abc' } },
  { name: 'CNI_IFNAME with "/"', code: Code.InvalidEnv, env: { CNI_IFNAME: 'eth/0' } },
  { name: 'missing CNI_PATH', code: Code.InvalidEnv, env: { CNI_PATH: null } },
  { name: 'CNI_ARGS "foo"', code: Code.InvalidEnv, env: { CNI_ARGS: 'foo' } },
  { name: 'CNI_ARGS "=x"', code: Code.InvalidEnv, env: { CNI_ARGS: '=x' } },
  { name: 'CNI_ARGS "A=1;;B"', code: Code.InvalidEnv, env: { CNI_ARGS: 'A=1;;B' } },
  { name: 'CNI_ARGS key with a space', code: Code.InvalidEnv, env: { CNI_ARGS: 'K8S POD_NAME=x' } },
  { name: 'CNI_ARGS pair with two "=" (libcni refuses it)', code: Code.InvalidEnv, env: { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=a=b' } },
  { name: 'CNI_ARGS longer than 4096', code: Code.InvalidEnv, env: { CNI_ARGS: `K8S_POD_NAME=${'a'.repeat(5000)}` } },
  { name: 'CHECK without CNI_NETNS', code: Code.InvalidEnv, env: { CNI_COMMAND: 'CHECK', CNI_NETNS: null } },
  { name: 'DEL without CNI_CONTAINERID', code: Code.InvalidEnv, env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: null } },
  { name: 'DEL with CNI_IFNAME "../x"', code: Code.InvalidEnv, env: { CNI_COMMAND: 'DEL', CNI_IFNAME: '../x' } },
];

const nodeCases: Case[] = [
  { name: 'underlay interface does not exist', code: Code.NotAvailable, conf: (c) => { underlay(c).interface = 'nosuch0'; } },
  { name: 'underlay interface is down', code: Code.NotAvailable, conf: (c) => { underlay(c).interface = 'uld0'; } },
  { name: 'underlay.vtep not configured on the node', code: Code.NotAvailable, conf: (c) => { underlay(c).vtep = '192.0.2.99'; } },
  {
    name: 'STATUS with an underlay that does not exist', code: Code.NotAvailable,
    conf: (c) => { c.cniVersion = '1.1.0'; underlay(c).interface = 'nosuch0'; },
    env: { CNI_COMMAND: 'STATUS', CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null },
  },
  {
    name: 'leg interface already exists in the pod', code: Code.InterfaceExists,
    setup: () => ip('-n', POD_NS, 'link', 'add', 'net1', 'type', 'veth', 'peer', 'name', 'x'),
    cleanup: () => { run('ip', ['-n', POD_NS, 'link', 'del', 'net1'], { allowFail: true }); },
  },
  {
    name: 'second leg interface already exists in the pod (chained)', code: Code.InterfaceExists,
    conf: (c) => { c.prevResult = ptpPrevResult(); },
    setup: () => ip('-n', POD_NS, 'link', 'add', 'net2', 'type', 'veth', 'peer', 'name', 'y'),
    cleanup: () => { run('ip', ['-n', POD_NS, 'link', 'del', 'net2'], { allowFail: true }); },
  },
  { name: 'CHECK with cniVersion 0.3.1', code: Code.IncompatibleVersion, conf: (c) => { c.cniVersion = '0.3.1'; }, env: { CNI_COMMAND: 'CHECK' } },
  {
    name: 'GC with cniVersion 1.0.0', code: Code.IncompatibleVersion,
    conf: (c) => { c['cni.dev/valid-attachments'] = []; },
    env: { CNI_COMMAND: 'GC', CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null },
  },
  {
    name: 'STATUS with cniVersion 1.0.0', code: Code.IncompatibleVersion,
    env: { CNI_COMMAND: 'STATUS', CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null },
  },
  { name: 'IPAM type not found in CNI_PATH', code: Code.IpamFailure, conf: (c) => { (net(c, 'nf-b').ipam as Conf).type = 'nosuch-ipam'; } },
  {
    name: 'IPAM plugin refuses its config (chained)', code: Code.IpamFailure,
    conf: (c) => { c.prevResult = ptpPrevResult(); (net(c, 'nf-b').ipam as Conf).subnet = 'not-a-subnet'; },
  },
  { name: 'underlay auto with no default route on the node', code: Code.NotAvailable, conf: (c) => { c.underlay = {}; } },
  { name: 'stateDir is a regular file', code: 5, conf: (c) => { c.stateDir = notNetns; } },
  { name: 'registry.path is a regular file (fails after the first leg)', code: 5, conf: (c) => { (c.registry as Conf).path = notNetns; } },
  { name: 'same address twice on a leg', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = ['10.100.0.11/24', '10.100.0.11/24']; } },
  { name: 'same address twice on a leg, other prefix', code: Code.InvalidConfig, conf: (c) => { leg(c, 0).ips = ['10.100.0.11/24', '10.100.0.11/16']; } },
  {
    name: 'node lock held by a live process', code: 11, msg: /node lock .*node\.lock still held by another process/,
    setup: holdNodeLock, cleanup: releaseNodeLock,
  },
  // --- with a pod already attached on the node: a failing ADD must not touch it
  { name: 'ADD again for an attached container', code: Code.InterfaceExists, setup: attachFirstPod, cleanup: detachFirstPod },
  {
    name: 'second pod: IPAM type not found (segments shared with the first pod stay)', code: Code.IpamFailure,
    env: secondPod, conf: (c) => { (net(c, 'nf-b').ipam as Conf).type = 'nosuch-ipam'; },
    setup: attachFirstPod, cleanup: detachFirstPod,
  },
  {
    name: 'second pod: registry.path is a regular file (first pod untouched)', code: 5,
    env: secondPod, conf: (c) => { (c.registry as Conf).path = notNetns; },
    setup: attachFirstPod, cleanup: detachFirstPod,
  },
  {
    name: 'second pod: leg name already in its netns (first pod untouched)', code: Code.InterfaceExists,
    env: secondPod,
    setup: () => { attachFirstPod(); ip('-n', POD2_NS, 'link', 'add', 'net2', 'type', 'veth', 'peer', 'name', 'y'); },
    cleanup: () => { run('ip', ['-n', POD2_NS, 'link', 'del', 'net2'], { allowFail: true }); detachFirstPod(); },
  },
  // A device with a segment's name that is not podlegs' own: refused, never adopted or removed.
  {
    name: 'a foreign macvlan device named plbr100', code: Code.InterfaceExists, msg: /plbr100 exists on this node but is a macvlan/,
    setup: () => { ip('-n', NODE_NS, 'link', 'add', 'plbr100', 'link', 'ul0', 'type', 'macvlan'); },
    cleanup: () => { run('ip', ['-n', NODE_NS, 'link', 'del', 'plbr100'], { allowFail: true }); },
  },
  {
    name: 'a foreign VXLAN device plvx100 with VNI 999', code: Code.InterfaceExists, msg: /plvx100 exists on this node but is a VXLAN device with VNI 999/,
    setup: () => { ip('-n', NODE_NS, 'link', 'add', 'plvx100', 'type', 'vxlan', 'id', '999', 'dstport', '4789', 'local', '192.0.2.11', 'dev', 'ul0'); },
    cleanup: () => { run('ip', ['-n', NODE_NS, 'link', 'del', 'plvx100'], { allowFail: true }); },
  },
  { name: 'DEL with truncated JSON', code: Code.DecodeFailure, stdin: () => JSON.stringify(baseConf()).slice(0, 100), env: { CNI_COMMAND: 'DEL' } },
  // What DEL does need (it finds the state file through stateDir and logs): still checked.
  // Everything else DEL takes from the state file: see "DEL works from the recorded state".
  { name: 'DEL without cniVersion', code: Code.InvalidConfig, conf: (c) => { delete c.cniVersion; }, env: { CNI_COMMAND: 'DEL' } },
  { name: 'DEL with stateDir relative', code: Code.InvalidConfig, conf: (c) => { c.stateDir = 'state'; }, env: { CNI_COMMAND: 'DEL' } },
  { name: 'DEL with log.level bogus', code: Code.InvalidConfig, conf: (c) => { (c.log as Conf).level = 'verbose'; }, env: { CNI_COMMAND: 'DEL' } },
  {
    name: 'CHECK without prevResult', code: Code.InvalidConfig, msg: /prevResult/,
    env: { CNI_COMMAND: 'CHECK' }, setup: attachFirstPod, cleanup: detachFirstPod,
  },
  {
    name: 'STATUS in Kubernetes mode with no kubeconfig', code: Code.NotAvailable, msg: /kubeconfig/,
    conf: (c) => {
      c.cniVersion = '1.1.0'; delete c.networks; delete c.legs; delete c.registry;
      c.kubernetes = { kubeconfig: path.join(dir, 'no-such.kubeconfig') };
    },
    env: { CNI_COMMAND: 'STATUS', CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null },
  },
];

const cases: Case[] = [...configCases, ...envCases, ...nodeCases];

// ---------------------------------------------------------------------------------------------
// Assertions

function envFor(c: Case): Record<string, string> {
  const env = baseEnv();
  for (const [k, v] of Object.entries(c.env ?? {})) {
    if (v === null) delete env[k];
    else env[k] = v === '@notNetns' ? notNetns : v;
  }
  return env;
}
function stdinFor(c: Case): string {
  if (c.stdin) return c.stdin();
  const conf = baseConf();
  c.conf?.(conf);
  return JSON.stringify(conf);
}

const STACK_LINE = /^\s+at .+/m;

function checkCase(c: Case, expectCode = c.code, expectMsg = c.msg): void {
  const env = envFor(c);
  const stdin = stdinFor(c);
  let undo = false;
  c.setup?.();
  try {
    const before = snapshot();
    const r = plugin(env, stdin);
    // A bad input that ADD accepted must not spoil the cases after it.
    undo = r.status === 0 && env.CNI_COMMAND === 'ADD';
    const after = snapshot();
    const shown = `exit=${r.status} signal=${r.signal} error=${r.error?.message}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;

    expect({ case: c.name, spawnError: r.error?.message, signal: r.signal }).toEqual({ case: c.name, spawnError: undefined, signal: null });
    if (r.status === 0) throw new Error(`exit code 0 for bad input\n${shown}`);
    expect(r.status).not.toBeNull();

    // stdout is exactly one JSON object
    let doc: unknown;
    try {
      doc = JSON.parse(r.stdout);
    } catch {
      throw new Error(`stdout is not one JSON document\n${shown}`);
    }
    expect(r.stdout.trim().startsWith('{')).toBe(true);
    expect(typeof doc === 'object' && doc !== null && !Array.isArray(doc)).toBe(true);
    const err = doc as { code?: unknown; msg?: unknown; cniVersion?: unknown; details?: unknown };
    if (process.env.BAD_INPUT_LOG) fs.appendFileSync(process.env.BAD_INPUT_LOG, `${c.name} -> ${String(err.code)}: ${String(err.msg)}${r.stderr ? ` [stderr: ${r.stderr.trim()}]` : ''}\n`);
    expect({ case: c.name, code: err.code }).toEqual({ case: c.name, code: expectCode });
    if (expectMsg) expect(err.msg).toMatch(expectMsg);
    expect(typeof err.msg).toBe('string');
    expect((err.msg as string).trim().length).toBeGreaterThan(0);
    expect(err.msg as string).not.toMatch(/^\s*(\w*Error|undefined|null|\[object)/);
    expect(typeof err.cniVersion).toBe('string');
    expect(err.cniVersion as string).toMatch(/^\d+\.\d+\.\d+$/);
    if (err.details !== undefined) expect(typeof err.details).toBe('string');

    // no stack trace anywhere, no "Error:" prefix on stdout
    expect(r.stdout).not.toMatch(STACK_LINE);
    expect(r.stdout).not.toMatch(/(^|")\s*\w*Error: /m);
    expect(r.stderr).not.toMatch(STACK_LINE);
    expect(r.stderr).not.toMatch(/\w*Error: /);

    // nothing changed on the node
    expect(after).toEqual(before);
  } finally {
    c.cleanup?.();
    if (undo) plugin({ ...env, CNI_COMMAND: 'DEL' }, stdin);
  }
}

// ---------------------------------------------------------------------------------------------

let baseline: Snapshot | undefined;

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('bad-input tests build network namespaces: run them as root');
  if (!fs.existsSync(BIN) && !process.env.PODLEGS_BIN) run('npm', ['run', '--silent', 'build'], { cwd: REPO, timeoutMs: 300_000 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-`));
  stateDir = path.join(dir, 'state');
  regDir = path.join(dir, 'reg');
  ipamDir = path.join(dir, 'ipam');
  logFile = path.join(dir, 'log', 'podlegs.log');
  notNetns = path.join(dir, 'not-a-netns');
  fs.writeFileSync(notNetns, 'just a file\n');
  try {
    setUpNode();
    // Control: the base config and environment work (chained after a ptp-like result),
    // and DEL takes everything away again. This also leaves the directories a used node has.
    const add = plugin(baseEnv(), JSON.stringify({ ...baseConf(), prevResult: ptpPrevResult() }));
    if (add.status !== 0) throw new Error(`control ADD failed: exit ${add.status}\n${add.stdout}\n${add.stderr}`);
    const res = JSON.parse(add.stdout) as { interfaces?: { name: string }[] };
    const names = (res.interfaces ?? []).map((i) => i.name);
    if (!names.includes('net1') || !names.includes('net2') || !names.includes('eth0')) throw new Error(`control ADD result lacks legs: ${add.stdout}`);
    const del = plugin({ ...baseEnv(), CNI_COMMAND: 'DEL' }, JSON.stringify(baseConf()));
    if (del.status !== 0) throw new Error(`control DEL failed: exit ${del.status}\n${del.stdout}\n${del.stderr}`);
    baseline = snapshot();
    if (baseline.podLinks.some((l) => /^net\d/.test(l)) || baseline.nodeLinks.some((l) => /^pl/.test(l))) {
      throw new Error(`control DEL left links behind: ${JSON.stringify(baseline)}`);
    }
  } catch (e) {
    removeNamespaces();
    throw e;
  }
});

afterAll(() => {
  try {
    if (baseline) expect(snapshot()).toEqual(baseline);
  } finally {
    removeNamespaces();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('bad input gives one CNI error object and changes nothing', () => {
  it('has at least 45 cases with unique names', () => {
    expect(cases.length).toBeGreaterThanOrEqual(45);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  // The checks must be able to fail: a valid ADD is not "bad input", and the snapshot must
  // see each kind of change (otherwise every case above would pass vacuously).
  it('self-check: a valid ADD fails the checks (exit 0, node changed)', () => {
    const valid: Case = {
      name: 'valid ADD', code: Code.InvalidConfig,
      cleanup: () => { plugin({ ...baseEnv(), CNI_COMMAND: 'DEL' }, JSON.stringify(baseConf())); },
    };
    expect(() => checkCase(valid)).toThrow(/exit code 0/);
    expect(snapshot()).toEqual(baseline);
  });

  it('self-check: the snapshot sees links, addresses, routes, FDB entries and files', () => {
    const before = snapshot();
    const changes: [keyof Snapshot, () => void, () => void][] = [
      ['podLinks', () => ip('-n', POD_NS, 'link', 'add', 'net9', 'type', 'veth', 'peer', 'name', 'z'), () => ip('-n', POD_NS, 'link', 'del', 'net9')],
      ['nodeLinks', () => ip('-n', NODE_NS, 'link', 'set', 'ulx', 'mtu', '1400'), () => ip('-n', NODE_NS, 'link', 'set', 'ulx', 'mtu', '1500')],
      ['podAddrs', () => ip('-n', POD_NS, 'addr', 'add', '10.100.0.99/24', 'dev', 'lo'), () => ip('-n', POD_NS, 'addr', 'del', '10.100.0.99/24', 'dev', 'lo')],
      ['nodeRoutes', () => ip('-n', NODE_NS, 'route', 'add', '203.0.113.0/24', 'dev', 'ul0'), () => ip('-n', NODE_NS, 'route', 'del', '203.0.113.0/24', 'dev', 'ul0')],
      ['fdb', () => run('bridge', ['-n', NODE_NS, 'fdb', 'add', '02:00:00:00:00:09', 'dev', 'ul0']), () => run('bridge', ['-n', NODE_NS, 'fdb', 'del', '02:00:00:00:00:09', 'dev', 'ul0'])],
      ['state', () => fs.writeFileSync(path.join(stateDir, 'x.json'), '{}'), () => fs.rmSync(path.join(stateDir, 'x.json'))],
      ['registry', () => fs.mkdirSync(path.join(regDir, 'vni-9')), () => fs.rmdirSync(path.join(regDir, 'vni-9'))],
    ];
    for (const [field, change, undo] of changes) {
      change();
      try {
        expect({ field, changed: JSON.stringify(snapshot()[field]) !== JSON.stringify(before[field]) }).toEqual({ field, changed: true });
      } finally {
        undo();
      }
    }
    expect(snapshot()).toEqual(before);
  });

  for (const c of cases) {
    if (!c.bug) {
      test(`${c.name} → code ${c.code}`, () => checkCase(c));
      continue;
    }
    const { why, nowGives, nowMsg } = c.bug;
    test.failing(`${c.name} → code ${c.code} [known bug: ${why}]`, () => checkCase(c));
    if (nowGives !== undefined) test(`${c.name} → code ${nowGives} for now, nothing changed`, () => checkCase(c, nowGives, nowMsg));
  }
});

// ---------------------------------------------------------------------------------------------
// DEL undoes what the attachment's state file records; a configuration that became invalid in
// ways that do not matter for that (or that a runtime kept from an older podlegs) must not make
// the runtime retry the DEL forever. Only cniVersion, stateDir, log and CNI_CONTAINERID/
// CNI_IFNAME are DEL's own (see the DEL cases of the table above).

interface DelCase { name: string; conf?: (c: Conf) => void; env?: Record<string, string> }
const irrelevantToDel: DelCase[] = [
  { name: 'a network name with a space', conf: (c) => { (c.networks as Conf)['Bad Net'] = { vni: 300 }; } },
  { name: 'VNI 0', conf: (c) => { net(c, 'vrrp-a').vni = 0; } },
  { name: 'the networks gone (legs name unknown networks)', conf: (c) => { delete c.networks; } },
  { name: 'a network MTU above the underlay', conf: (c) => { net(c, 'vrrp-a').mtu = 9000; } },
  { name: 'a leg named eth1', conf: (c) => { leg(c, 0).interface = 'eth1'; } },
  { name: 'legs is a string', conf: (c) => { c.legs = 'net1'; } },
  { name: 'an IPAM type with a path', conf: (c) => { (net(c, 'nf-b').ipam as Conf).type = '../../bin/sh'; } },
  { name: 'a bogus kubernetes section', conf: (c) => { c.kubernetes = { kubeconfig: 'relative', multus: 'yes' }; } },
  { name: 'registry.type bogus', conf: (c) => { c.registry = { type: 'etcd' }; } },
  { name: 'underlay is a string', conf: (c) => { c.underlay = 'ul0'; } },
  { name: 'no name and another type', conf: (c) => { delete c.name; c.type = 'bridge'; } },
  { name: 'a prevResult that does not decode', conf: (c) => { c.prevResult = { ips: [{ address: 'x' }] }; } },
  { name: 'CNI_ARGS with a pair "K8S_POD_NAME=a=b"', env: { CNI_ARGS: 'K8S_POD_NAME=a=b' } },
  { name: 'a relative CNI_NETNS', env: { CNI_NETNS: 'netns/gone' } },
];

describe('DEL works from the recorded state', () => {
  const delWith = (d: DelCase): PluginRun => {
    const conf = baseConf();
    d.conf?.(conf);
    return plugin({ ...baseEnv(), CNI_COMMAND: 'DEL', ...d.env }, JSON.stringify(conf));
  };

  for (const d of irrelevantToDel) {
    test(`ADD, then DEL with ${d.name} → exit 0, nothing left; DEL again → exit 0`, () => {
      attachFirstPod();
      try {
        expect(snapshot()).not.toEqual(baseline); // the ADD did something to undo
        const r = delWith(d);
        expect({ exit: r.status, stdout: r.stdout }).toEqual({ exit: 0, stdout: '' });
        expect(snapshot()).toEqual(baseline);
        expect(delWith(d).status).toBe(0);
      } finally {
        plugin({ ...baseEnv(), CNI_COMMAND: 'DEL' }, JSON.stringify(baseConf()));
      }
    });
  }

  test('network names the CNI spec allows: upper case "A" and a trunk network "T" ADD and DEL', () => {
    const conf = baseConf();
    const namesIpam = path.join(dir, 'ipam-names'); // host-local keeps a directory per network name
    conf.networks = {
      A: { vni: 100 },
      'nf_B.2': { vni: 200, ipam: { type: 'host-local', subnet: '10.30.0.0/24', dataDir: namesIpam } },
      T: { trunk: { vlans: [{ vid: 10, network: 'A' }] } },
    };
    conf.legs = [{ network: 'A', interface: 'net1', ips: ['10.100.0.11/24'] }, { network: 'nf_B.2', interface: 'net2' }];
    const add = plugin(baseEnv(), JSON.stringify(conf));
    try {
      expect({ exit: add.status, stdout: add.status === 0 ? '' : add.stdout }).toEqual({ exit: 0, stdout: '' });
      expect((JSON.parse(add.stdout) as { interfaces: { name: string }[] }).interfaces.map((i) => i.name)).toEqual(['net1', 'net2']);
      expect(linkSet(POD_NS).filter((l) => /^net[12] /.test(l))).toHaveLength(2);
      const del = plugin({ ...baseEnv(), CNI_COMMAND: 'DEL' }, JSON.stringify(conf));
      expect({ exit: del.status, stdout: del.stdout }).toEqual({ exit: 0, stdout: '' });
      expect(snapshot()).toEqual(baseline);
      expect(fs.readdirSync(path.join(namesIpam, 'nf_B.2')).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))).toEqual([]);
    } finally {
      plugin({ ...baseEnv(), CNI_COMMAND: 'DEL' }, JSON.stringify(baseConf()));
      fs.rmSync(namesIpam, { recursive: true, force: true });
    }
  });
});

// A segment device of podlegs' own kind left from another configuration (another VXLAN port,
// another VTEP address after a renumbering) must not be adopted as it is: traffic would go out
// with the old source address or port.
describe('a stale segment device is verified and replaced', () => {
  const vxlanOf = (name: string): { local?: string; port?: number; link?: string } => {
    const [l] = JSON.parse(ip('-n', NODE_NS, '-d', '-j', 'link', 'show', name)) as { linkinfo: { info_data: { local?: string; port?: number; link?: string } } }[];
    return l.linkinfo.info_data;
  };

  test('plvx100 with port 4790 and local 198.51.100.11 on uld0 → ADD replaces it with port and VTEP of the config; DEL leaves nothing', () => {
    ip('-n', NODE_NS, 'link', 'add', 'plvx100', 'type', 'vxlan', 'id', '100', 'dstport', '4790', 'local', '198.51.100.11', 'dev', 'uld0');
    try {
      attachFirstPod();
      const v = vxlanOf('plvx100');
      expect({ local: v.local, port: v.port }).toEqual({ local: '192.0.2.11', port: 4789 });
      const warned = fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { message: string; differed?: string })
        .filter((l) => l.message === 'replaced a VXLAN device that no longer matched this node');
      expect(warned.at(-1)?.differed).toMatch(/port 4790 → 4789, local 198\.51\.100\.11 → 192\.0\.2\.11/);
      detachFirstPod();
      expect(snapshot()).toEqual(baseline);
    } finally {
      run('ip', ['-n', NODE_NS, 'link', 'del', 'plvx100'], { allowFail: true });
      plugin({ ...baseEnv(), CNI_COMMAND: 'DEL' }, JSON.stringify(baseConf()));
    }
  });
});
