#!/usr/bin/env node
// npm run bench — ADD/DEL latency of podlegs against Debian's reference `bridge` plugin.
//
// podlegs is measured both ways a CNI call can run: through the agent (dist/podlegs's thin
// client hands the call to a `podlegs agent` running in the node netns, on its own
// agent.socket) and in-process (agent.socket names a path nobody listens on: the client's
// connect fails and the loader runs the bundle), on two node netns so that the agent's own
// work (it watches the registry the ADDs write) only touches the calls it serves.
//
// Prints figures, never a verdict. Everything runs in network namespaces created here
// (prefix plbn<4 hex>: a "node" netns with an underlay veth, one netns per pod scenario),
// addresses are TEST-NET-1 on the underlay and 10.x inside, and everything is removed at
// the end, on failure and on SIGINT/SIGTERM/SIGHUP. Needs root.
//
// Scenarios run round-robin inside each iteration (the starting scenario rotates), so drift
// (other load on the machine, page cache, thermal) hits all of them alike. One warm-up round
// is not counted. Every process is timed wall-clock from spawn() to its exit, and every one
// is started the same way a runtime on the node would: `nsenter --net=<node> <plugin>`.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, release, setPriority } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchLab, installCleanup, sh } from './bench/lab.mjs';
import { fmt, median, p90, table } from './bench/stats.mjs';
import { attribute, buildMapped, bundleOf, newestProfile } from './bench/profile.mjs';
import { callPhases, servedCalls, startAgent, stubAgent } from './bench/agent-node.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST_BIN = join(ROOT, 'dist/podlegs');

const HELP = `usage: npm run bench -- [options]     (as root)
  --iterations N   measured rounds (default 25; one extra warm-up round is not counted)
  --fresh-pods     a new pod netns (and ptp ADD/DEL) for every ADD instead of reusing one
                   per scenario that DEL leaves clean
  --no-extras      only the headline scenarios (skip the "where the time goes" rows)
  --no-profile     skip the one-off CPU profile / strace / RSS measurements
  --agent-prof     run the agent from a source-mapped build of the current sources under
                   node --cpu-prof and print where its CPU time went (slows the agent rows)
  --bin PATH       podlegs executable to measure (default dist/podlegs)
  --compare PATH   a second podlegs build (natives beside it) measured in the same loop:
                   VERSION, 1 leg, 3 legs at log level info and error, to judge a change
  --build          run npm run build first (otherwise only when dist/podlegs is missing)
  --cni-path DIR   where ptp, bridge and host-local live (default /usr/lib/cni)
  --nice N         run the benchmark (and so every measured process) at niceness N, e.g. -10
                   on a machine busy with other work
  --json FILE      also write every sample as JSON`;

function parseArgs(argv) {
  const o = { iterations: 25, fresh: false, extras: true, profile: true, bin: DIST_BIN, compare: undefined, build: false, cniPath: '/usr/lib/cni', json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--iterations' || a === '-n') o.iterations = Number(val());
    else if (a.startsWith('--iterations=')) o.iterations = Number(a.split('=')[1]);
    else if (a === '--fresh-pods') o.fresh = true;
    else if (a === '--no-extras') o.extras = false;
    else if (a === '--no-profile') o.profile = false;
    else if (a === '--agent-prof') o.agentProf = true;
    else if (a === '--bin') o.bin = resolve(val());
    else if (a === '--compare') o.compare = resolve(val());
    else if (a === '--build') o.build = true;
    else if (a === '--cni-path') o.cniPath = resolve(val());
    else if (a === '--json') o.json = resolve(val());
    else if (a === '--nice') o.nice = Number(val());
    else if (a === '--help' || a === '-h') { console.log(HELP); process.exit(0); }
    else throw new Error(`unknown option ${a}\n${HELP}`);
  }
  if (!Number.isInteger(o.iterations) || o.iterations < 1) throw new Error('--iterations must be a positive integer');
  if (o.nice !== undefined && (!Number.isInteger(o.nice) || o.nice < -20 || o.nice > 19)) throw new Error('--nice must be an integer from -20 to 19');
  return o;
}

function newestSource() {
  let newest = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|js|mjs|cjs|c|cc)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ['plugin', 'overlay', 'native']) if (existsSync(join(ROOT, d))) walk(join(ROOT, d));
  return newest;
}

function preflight(o) {
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates network namespaces: run it as root');
  for (const tool of ['ip', 'nsenter']) {
    if (sh(['sh', '-c', `command -v ${tool}`], { allowFail: true }).status !== 0) throw new Error(`${tool} is not installed (iproute2, util-linux)`);
  }
  for (const p of ['ptp', 'bridge', 'host-local']) {
    if (!existsSync(join(o.cniPath, p))) throw new Error(`${join(o.cniPath, p)} is missing: apt-get install containernetworking-plugins`);
  }
  if (o.bin === DIST_BIN && (o.build || !existsSync(DIST_BIN))) {
    process.stderr.write('bench: building dist/podlegs (npm run build)\n');
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('npm run build failed');
  }
  if (!existsSync(o.bin)) throw new Error(`${o.bin} does not exist`);
  if (o.compare && !existsSync(o.compare)) throw new Error(`${o.compare} does not exist`);
  if (o.nice !== undefined) setPriority(o.nice); // children inherit it
  if (o.bin === DIST_BIN && newestSource() > statSync(DIST_BIN).mtimeMs) {
    process.stderr.write('bench: note: sources are newer than dist/podlegs; measuring dist as it is (use --build to rebuild)\n');
  }
}

function check(r, what) {
  if (r.code !== 0) {
    throw new Error(`${what} failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ''}): ${(r.stdout || r.stderr).trim().slice(0, 800)}`);
  }
  return r;
}

/**
 * Measures a private copy of the executable and the files beside it, so that a rebuild of
 * dist/ meanwhile neither changes what is measured halfway nor (with a build that rewrites
 * the .node files in place, as build.mjs did before it renamed) crashes a running plugin.
 */
function snapshotBin(lab, bin, name = 'bin') {
  const dir = join(lab.dir, name);
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, basename(bin));
  copyFileSync(bin, copy);
  chmodSync(copy, 0o755);
  // Every file beside it: the natives, and whatever else a build puts there (code cache, ...).
  for (const e of readdirSync(dirname(bin), { withFileTypes: true })) {
    if (e.isFile() && e.name !== basename(bin)) copyFileSync(join(dirname(bin), e.name), join(dir, e.name));
  }
  return copy;
}

async function bench(lab, o) {
  const D = lab.dir;
  o.source = o.bin;
  o.sourceStat = statSync(bundleOf(o.bin)); // the bundle (podlegs.js beside the loader)
  o.bin = snapshotBin(lab, o.bin);
  if (o.compare) {
    o.compareStat = statSync(o.compare);
    o.compareBin = snapshotBin(lab, o.compare, 'bin-compare');
  }
  const nodeNetns = (suffix, address) => {
    const n = lab.addNetns(suffix);
    sh(['ip', '-n', n.name, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ulx']);
    sh(['ip', '-n', n.name, 'addr', 'add', address, 'dev', 'ul0']);
    sh(['ip', '-n', n.name, 'link', 'set', 'ul0', 'up']);
    sh(['ip', '-n', n.name, 'link', 'set', 'ulx', 'up']);
    return n;
  };
  const node = nodeNetns('node', '192.0.2.11/24'); // in-process calls, bridge, floors
  const anode = nodeNetns('anode', '192.0.2.12/24'); // calls through the agent
  const cnode = o.extras ? nodeNetns('cnode', '192.0.2.13/24') : undefined; // through an agent with grace 0

  const plugin = (name) => join(o.cniPath, name);
  const onNode = (argv, on = node) => ['nsenter', `--net=${on.path}`, ...argv];
  const baseEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  /** One CNI call the way a runtime on the node makes it; `wrap` prefixes the argv (time, strace...). */
  const cni = (bin, command, { netns, containerId = '', ifname = 'eth0', conf, wrap = [], argvOverride, on = node } = {}) =>
    lab.run([...wrap, ...onNode(argvOverride ?? [bin], on)], {
      input: JSON.stringify(conf ?? { cniVersion: '1.0.0' }),
      env: {
        ...baseEnv, CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns?.path ?? '',
        CNI_IFNAME: ifname, CNI_PATH: o.cniPath, CNI_ARGS: '',
      },
    });

  // ---- configurations ----
  const networks = {
    a: { vni: 100 }, b: { vni: 200 }, c: { vni: 300 },
    wa: { vni: 400 }, wb: { vni: 500 }, wc: { vni: 600 },
    hl: { vni: 700, ipam: { type: 'host-local', subnet: '10.70.0.0/24', dataDir: join(D, 'ipam-podlegs') } },
  };
  // Node-level files of each way: in-process (agent.socket: nobody listens there), through the
  // agent (the agent's config names the same stateDir, registry and socket), the stub.
  const sides = {
    inproc: { stateDir: join(D, 'state'), registry: join(D, 'registry'), socket: join(D, 'no-agent.sock'), log: join(D, 'podlegs.log') },
    agent: { stateDir: join(D, 'state-agent'), registry: join(D, 'registry-agent'), socket: join(D, 'agent.sock'), log: join(D, 'podlegs-agent-calls.log') },
    cold: { stateDir: join(D, 'state-cold'), registry: join(D, 'registry-cold'), socket: join(D, 'agent-cold.sock'), log: join(D, 'podlegs-cold-calls.log') },
    stub: { stateDir: join(D, 'state-stub'), registry: join(D, 'registry-stub'), socket: join(D, 'stub.sock'), log: join(D, 'podlegs-stub.log') },
  };
  const podlegsConf = (legs, level, prevResult, side = sides.inproc) => ({
    cniVersion: '1.0.0', name: 'bench', type: 'podlegs',
    underlay: { interface: 'ul0' }, stateDir: side.stateDir,
    registry: { type: 'file', path: side.registry },
    log: { file: side.log, level },
    agent: { socket: side.socket },
    networks, legs, ...(prevResult ? { prevResult } : {}),
  });
  const ptpConf = {
    cniVersion: '1.0.0', name: 'bench-ptp', type: 'ptp', ipMasq: false,
    ipam: { type: 'host-local', subnet: '10.244.0.0/24', routes: [{ dst: '0.0.0.0/0' }], dataDir: join(D, 'ipam-ptp') },
  };
  const bridgeConf = (bridge, subnet) => ({
    cniVersion: '1.0.0', name: `bench-${bridge}`, type: 'bridge', bridge,
    ipam: { type: 'host-local', subnet, dataDir: join(D, 'ipam-bridge') },
  });
  const legsOf = (specs) => specs.map(([network, iface, ip]) => ({ network, interface: iface, ...(ip ? { ips: [ip] } : {}) }));

  // ---- pods: one netns per scenario, reused (DEL leaves it clean) unless --fresh-pods ----
  class Pod {
    constructor(key, withPtp, on = node) { this.key = key; this.withPtp = withPtp; this.on = on; this.ns = undefined; }
    async open(iter) {
      if (this.ns) return;
      const suffix = o.fresh ? `${this.key}-${iter}` : this.key;
      this.ns = lab.addNetns(suffix);
      this.containerId = `bench-${suffix}`;
      this.prev = undefined;
      if (this.withPtp) {
        const r = check(await cni(plugin('ptp'), 'ADD', { netns: this.ns, containerId: this.containerId, conf: ptpConf, on: this.on }), 'ptp ADD');
        this.prev = JSON.parse(r.stdout);
      }
    }
    async close() {
      if (!this.ns) return;
      if (this.withPtp) check(await cni(plugin('ptp'), 'DEL', { netns: this.ns, containerId: this.containerId, conf: ptpConf, on: this.on }), 'ptp DEL');
      lab.delNetns(this.ns);
      this.ns = undefined;
    }
    async done() { if (o.fresh) await this.close(); }
  }

  const scenarios = [];
  const podlegs = (key, label, legSpecs, { level = 'info', ptp = true, extra = false, bin = o.bin, agent = false } = {}) => {
    // agent: true (the node agent, default grace period) or 'cold' (an agent with grace 0).
    const on = agent === 'cold' ? cnode : agent ? anode : node;
    const pod = new Pod(key, ptp, on);
    const legs = legsOf(legSpecs);
    const s = {
      key, label, extra, pod, samples: { add: [], del: [] },
      conf: () => podlegsConf(legs, level, pod.prev, agent === 'cold' ? sides.cold : agent ? sides.agent : sides.inproc),
      async once({ wrapAdd = [], wrapDel = [], argvAdd, verify = false, iter = 0 } = {}) {
        await pod.open(iter);
        const call = { netns: pod.ns, containerId: pod.containerId, conf: s.conf(), on };
        const add = check(await cni(bin, 'ADD', { ...call, wrap: wrapAdd, argvOverride: argvAdd }), `podlegs ADD (${label})`);
        if (verify) {
          const names = (JSON.parse(add.stdout).interfaces ?? []).map((i) => i.name);
          const missing = legs.map((l) => l.interface).filter((n) => !names.includes(n));
          if (missing.length || (ptp && !names.includes('eth0'))) throw new Error(`podlegs ADD (${label}) returned interfaces ${names.join(',')}`);
        }
        const del = check(await cni(bin, 'DEL', { ...call, wrap: wrapDel }), `podlegs DEL (${label})`);
        await pod.done();
        return { add, del };
      },
      async run(iter, verify) {
        const { add, del } = await s.once({ verify, iter });
        return { add: add.ms, del: del.ms };
      },
    };
    scenarios.push(s);
    return s;
  };
  const bridge = (key, label, specs, { extra = false } = {}) => {
    const pod = new Pod(key, false);
    const s = {
      key, label, extra, pod, samples: { add: [], del: [] },
      async once({ wrapAdd = [], iter = 0 } = {}) {
        await pod.open(iter);
        let add = 0;
        let del = 0;
        let first;
        for (const [br, ifname, subnet] of specs) {
          const r = check(await cni(plugin('bridge'), 'ADD', { netns: pod.ns, containerId: pod.containerId, ifname, conf: bridgeConf(br, subnet), wrap: wrapAdd }), `bridge ADD ${br}`);
          first ??= r;
          add += r.ms;
        }
        for (const [br, ifname, subnet] of [...specs].reverse()) {
          del += check(await cni(plugin('bridge'), 'DEL', { netns: pod.ns, containerId: pod.containerId, ifname, conf: bridgeConf(br, subnet) }), `bridge DEL ${br}`).ms;
        }
        await pod.done();
        return { add, del, first };
      },
      async run(iter) {
        const { add, del } = await s.once({ iter });
        return { add, del };
      },
    };
    scenarios.push(s);
    return s;
  };
  const single = (key, label, argv, { extra = false, command = 'VERSION', conf } = {}) => {
    const s = {
      key, label, extra, samples: { add: [], del: [] }, single: true,
      async run() {
        const r = check(await cni(undefined, command, { argvOverride: argv, conf: conf?.() }), label);
        return { add: r.ms };
      },
    };
    scenarios.push(s);
    return s;
  };

  const P = lab.prefix;
  const floor = single('floor', 'node -e 1 (runtime floor)', ['/usr/bin/env', 'node', '-e', '1']);
  const legs3 = (n) => [['a', 'net1', `10.1.0.${n}/24`], ['b', 'net2', `10.2.0.${n}/24`], ['c', 'net3', `10.3.0.${n}/24`]];
  const ag1 = podlegs('ag1', 'podlegs via agent, 1 leg (after ptp)', [['a', 'net1', '10.1.0.31/24']], { agent: true });
  const ag3 = podlegs('ag3', 'podlegs via agent, 3 legs (after ptp)', legs3(32), { agent: true });
  const pl1 = podlegs('pl1', 'podlegs in-process, 1 leg (after ptp)', [['a', 'net1', '10.1.0.11/24']]);
  const pl3 = podlegs('pl3', 'podlegs in-process, 3 legs (after ptp)', legs3(12));
  const br1 = bridge('br1', 'bridge x1 (host-local IPAM)', [[`${P}b0`, 'net1', '10.80.0.0/24']]);
  const br3 = bridge('br3', 'bridge x3 (sum of 3 calls)', [[`${P}b1`, 'net1', '10.81.0.0/24'], [`${P}b2`, 'net2', '10.82.0.0/24'], [`${P}b3`, 'net3', '10.83.0.0/24']]);
  let version, pl3err, pl3warm, pl1ipam, goFloor, stub, ag3cold;
  if (o.extras) {
    // Through an agent with gracePeriodSeconds 0: its DEL removes the segments, the next ADD creates them.
    ag3cold = podlegs('ag3c', 'podlegs via agent, 3 legs, agent grace 0', legs3(33), { agent: 'cold', extra: true });
    // The thin client's whole cost: the same stdin as ag3's ADD, answered at once by a stub.
    stub = single('stub', 'thin client, ADD answered at once by a stub socket', [o.bin],
      { extra: true, command: 'ADD', conf: () => podlegsConf(legsOf(legs3(32)), 'info', ag3.pod.prev, sides.stub) });
    version = single('version', 'podlegs VERSION (loads bundle, no netlink)', [o.bin], { extra: true });
    pl3err = podlegs('pl3e', 'podlegs, 3 legs, log level error', [['a', 'net1', '10.1.0.13/24'], ['b', 'net2', '10.2.0.13/24'], ['c', 'net3', '10.3.0.13/24']], { level: 'error', extra: true });
    pl3warm = podlegs('pl3w', 'podlegs, 3 legs, segments already exist', [['wa', 'net1', '10.4.0.12/24'], ['wb', 'net2', '10.5.0.12/24'], ['wc', 'net3', '10.6.0.12/24']], { extra: true });
    pl1ipam = podlegs('pl1i', 'podlegs, 1 leg, host-local IPAM', [['hl', 'net1']], { extra: true });
    goFloor = single('gofloor', 'bridge VERSION (Go runtime floor)', [plugin('bridge')], { extra: true });
  }
  const cmp = {};
  if (o.compare) {
    const bin = o.compareBin;
    cmp.version = single('cver', 'B: VERSION', [bin], { extra: true });
    cmp.pl1 = podlegs('c1', 'B: 1 leg (after ptp)', [['a', 'net1', '10.1.0.21/24']], { bin });
    cmp.pl3 = podlegs('c3', 'B: 3 legs (after ptp)', [['a', 'net1', '10.1.0.22/24'], ['b', 'net2', '10.2.0.22/24'], ['c', 'net3', '10.3.0.22/24']], { bin });
    cmp.pl3err = podlegs('c3e', 'B: 3 legs, log level error', [['a', 'net1', '10.1.0.23/24'], ['b', 'net2', '10.2.0.23/24'], ['c', 'net3', '10.3.0.23/24']], { level: 'error', bin });
  }

  // The agent of anode, configured like a node's agent: the same stateDir, registry and socket
  // as the CNI config of the calls it serves. Log level info: one "CNI call served" line per
  // call with the agent-side timings (read back for "where the time goes").
  const agentLog = join(D, 'agent.log');
  let agentBin = o.bin;
  const agentEnv = { ...baseEnv, NODE_NAME: `${lab.prefix}-anode` };
  let agentProf;
  if (o.agentProf) {
    const dir = join(D, 'agent-prof');
    mkdirSync(dir, { recursive: true });
    const built = buildMapped(ROOT, dir);
    if (built.error) throw new Error(built.error);
    agentProf = { ...built, profDir: join(dir, 'cpu') };
    agentBin = built.exe;
    agentProf.nodeArgs = ['--cpu-prof', '--cpu-prof-dir', agentProf.profDir, '--cpu-prof-interval', '250'];
  }
  const agent = await startAgent(lab, {
    bin: agentBin, nodeArgs: agentProf?.nodeArgs, netnsPath: anode.path, confFile: join(D, 'agent.json'),
    env: agentEnv,
    conf: {
      underlay: { interface: 'ul0' }, registry: { type: 'file', path: sides.agent.registry }, stateDir: sides.agent.stateDir,
      log: { file: agentLog, level: 'info' }, agent: { socket: sides.agent.socket },
    },
  });
  const coldAgent = cnode ? await startAgent(lab, {
    bin: o.bin, netnsPath: cnode.path, confFile: join(D, 'agent-cold.json'), env: { ...baseEnv, NODE_NAME: `${lab.prefix}-cnode` },
    conf: {
      underlay: { interface: 'ul0' }, registry: { type: 'file', path: sides.cold.registry }, stateDir: sides.cold.stateDir,
      log: { file: join(D, 'agent-cold.log'), level: 'info' }, agent: { socket: sides.cold.socket, gracePeriodSeconds: 0 },
    },
  }) : undefined;
  const stubServer = stub ? await stubAgent(lab, sides.stub.socket) : undefined;

  // The warm-segment scenario needs segments 400/500/600 to exist all along: an anchor pod holds them.
  let anchor;
  if (pl3warm) {
    anchor = { ns: lab.addNetns('anchor'), containerId: 'bench-anchor' };
    anchor.conf = podlegsConf(legsOf([['wa', 'net1', '10.4.0.11/24'], ['wb', 'net2', '10.5.0.11/24'], ['wc', 'net3', '10.6.0.11/24']]), 'info');
    check(await cni(o.bin, 'ADD', { netns: anchor.ns, containerId: anchor.containerId, conf: anchor.conf }), 'podlegs ADD (anchor pod)');
  }

  // ---- the interleaved loop ----
  const started = Date.now();
  const loadBefore = loadavg();
  const rounds = o.iterations + 1;
  const tty = process.stderr.isTTY;
  for (let i = 0; i < rounds; i++) {
    const shift = i % scenarios.length;
    const order = [...scenarios.slice(shift), ...scenarios.slice(0, shift)];
    for (const s of order) {
      const r = await s.run(i, i === 0);
      if (i === 0) continue; // warm-up
      s.samples.add.push(r.add);
      if (r.del !== undefined) s.samples.del.push(r.del);
    }
    const msg = `bench: ${i === 0 ? 'warm-up done' : `iteration ${i}/${o.iterations}`} (${((Date.now() - started) / 1000).toFixed(0)} s)`;
    process.stderr.write(tty ? `\r${msg}   ` : `${msg}\n`);
  }
  if (tty) process.stderr.write('\n');

  // ---- one-off measurements ----
  const oneOff = {};
  if (o.profile) {
    oneOff.rss = await measureRss(lab, { pl3, br1, cni, onNode, o });
    oneOff.strace = await measureNetlink(lab, pl3);
    oneOff.profile = await measureProfile(lab, pl3, o);
  }

  if (anchor) check(await cni(o.bin, 'DEL', { netns: anchor.ns, containerId: anchor.containerId, conf: anchor.conf }), 'podlegs DEL (anchor pod)');
  for (const s of scenarios) await s.pod?.close();
  // Measured rounds only: the first line per container is the warm-up round's.
  const served = Object.fromEntries([ag1, ag3].map((s) => {
    const c = servedCalls(agentLog, `bench-${s.key}`);
    return [s.key, { ADD: c.ADD.slice(1, 1 + o.iterations), DEL: c.DEL.slice(1, 1 + o.iterations) }];
  }));
  // Where each call's time went inside runCni: the phases ADD and DEL log ("legs attached", "legs detached").
  const phases = Object.fromEntries([[ag3, sides.agent], [ag1, sides.agent], [ag3cold, sides.cold], [pl3, sides.inproc], [pl1, sides.inproc]]
    .filter(([s]) => s).map(([s, side]) => {
      const c = callPhases(side.log, `bench-${s.key}`);
      return [s.key, { ADD: c.ADD.slice(1, 1 + o.iterations), DEL: c.DEL.slice(1, 1 + o.iterations) }];
    }));
  oneOff.agentRss = agent.rss();
  await agent.stop();
  await coldAgent?.stop();
  await stubServer?.close();
  if (agentProf) {
    const file = newestProfile(agentProf.profDir);
    oneOff.agentProfile = file ? attribute(file, agentProf.bundle, agentProf.map, ROOT) : { error: 'the agent wrote no profile' };
  }
  // The agent removes emptied segments after its grace period: by now it has stopped, so its node keeps them.
  const agentLeft = cnode ? sh(['ip', '-n', cnode.name, '-o', 'link', 'show'], { allowFail: true }).stdout : '';
  // podlegs' own objects (plbr<vni>, plvx<vni>, pl<12 hex> host veths); the bridge plugin's bridges stay by design.
  const leftovers = (sh(['ip', '-n', node.name, '-o', 'link', 'show'], { allowFail: true }).stdout + agentLeft).split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0]).filter((n) => n && /^pl(br|vx)\d+$|^pl[0-9a-f]{12}$/.test(n));

  report({ loadBefore, o, scenarios, floor, pl1, pl3, ag1, ag3, ag3cold, phases, stub, served, br1, br3, version, pl3err, pl3warm, pl1ipam, goFloor, cmp, oneOff, leftovers, seconds: (Date.now() - started) / 1000 });
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({
      iterations: o.iterations, node: process.version, kernel: release(),
      scenarios: Object.fromEntries(scenarios.map((s) => [s.key, { label: s.label, ...s.samples }])), served, oneOff,
    }, null, 1));
  }
}

// ---- peak RSS ----

async function measureRss(lab, { pl3, br1, cni, onNode, o }) {
  const D = lab.dir;
  const gnuTime = existsSync('/usr/bin/time') && sh(['/usr/bin/time', '-f', '%M', 'true'], { allowFail: true }).status === 0;
  const python = !gnuTime && sh(['sh', '-c', 'command -v python3'], { allowFail: true }).status === 0;
  if (!gnuTime && !python) return { method: 'none' };
  let n = 0;
  const wrapper = () => {
    const file = join(D, `rss-${n++}`);
    const wrap = gnuTime
      ? ['/usr/bin/time', '-f', '%M', '-o', file]
      : ['python3', '-c', 'import resource,subprocess,sys;r=subprocess.run(sys.argv[2:]).returncode;open(sys.argv[1],"w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss));sys.exit(r)', file];
    return { wrap, read: () => Number(readFileSync(file, 'utf8').trim().split('\n').pop()) / 1024 };
  };
  const out = { method: gnuTime ? '/usr/bin/time -f %M' : 'python3 getrusage(RUSAGE_CHILDREN)' };
  let w = wrapper();
  check(await lab.run([...w.wrap, ...onNode(['/usr/bin/env', 'node', '-e', '1'])], { env: { PATH: process.env.PATH } }), 'rss node -e 1');
  out.floor = w.read();
  w = wrapper();
  check(await cni(undefined, 'VERSION', { argvOverride: [o.bin], wrap: w.wrap }), 'rss VERSION');
  out.version = w.read();
  w = wrapper();
  await pl3.once({ wrapAdd: w.wrap });
  out.add3 = w.read();
  w = wrapper();
  await br1.once({ wrapAdd: w.wrap });
  out.bridge = w.read();
  return out;
}

// ---- netlink requests and kernel time per message type (strace) ----

const RTM = { 0x10: 'NEWLINK', 0x11: 'DELLINK', 0x12: 'GETLINK', 0x13: 'SETLINK', 0x14: 'NEWADDR', 0x15: 'DELADDR', 0x16: 'GETADDR', 0x18: 'NEWROUTE', 0x19: 'DELROUTE', 0x1a: 'GETROUTE', 0x1c: 'NEWNEIGH', 0x1d: 'DELNEIGH', 0x1e: 'GETNEIGH' };

function parseStrace(file) {
  const byType = {};
  let count = 0;
  let kernelMs = 0;
  let execs = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/execve\(/.test(line) && / = 0/.test(line)) execs++;
    if (!/NETLINK/.test(line) || !/^\d+\s+(sendmsg|sendto)\(/.test(line)) continue;
    const m = /nlmsg_type=(0x[0-9a-f]+|RTM_[A-Z]+)/.exec(line);
    let type = m ? m[1] : '?';
    if (type.startsWith('0x')) type = RTM[parseInt(type, 16)] ?? type;
    else type = type.replace(/^RTM_/, '');
    const t = /<([0-9.]+)>\s*$/.exec(line);
    const ms = t ? Number(t[1]) * 1000 : 0;
    count++;
    kernelMs += ms;
    byType[type] ??= { n: 0, ms: 0 };
    byType[type].n++;
    byType[type].ms += ms;
  }
  return { count, kernelMs, byType, execs };
}

async function measureNetlink(lab, pl3) {
  if (sh(['sh', '-c', 'command -v strace'], { allowFail: true }).status !== 0) return undefined;
  const fa = join(lab.dir, 'strace-add');
  const fd = join(lab.dir, 'strace-del');
  const wrap = (f) => ['strace', '-f', '-qq', '-yy', '-T', '-e', 'trace=sendto,sendmsg,execve', '-o', f];
  await pl3.once({ wrapAdd: wrap(fa), wrapDel: wrap(fd) });
  return { add: parseStrace(fa), del: parseStrace(fd) };
}

// ---- CPU profile of one ADD (3 legs) ----

async function measureProfile(lab, pl3, o) {
  const dir = join(lab.dir, 'profile');
  mkdirSync(dir, { recursive: true });
  const built = buildMapped(ROOT, dir);
  if (built.error) return { error: built.error };
  const profDir = join(dir, 'cpu');
  await pl3.once({ argvAdd: [process.execPath, '--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '250', built.exe] });
  const file = newestProfile(profDir);
  if (!file) return { error: 'node wrote no profile' };
  return { ...attribute(file, built.bundle, built.map, ROOT), identical: readFileSync(built.bundle).equals(readFileSync(bundleOf(o.bin))) };
}

// ---- report ----

function report(r) {
  const { o, floor, pl1, pl3, ag1, ag3, ag3cold, phases, stub, served, br1, br3, version, pl3err, pl3warm, pl1ipam, goFloor, cmp, oneOff } = r;
  const minimum = (v) => (v.length ? Math.min(...v) : NaN);
  const m = (s, k = 'add') => (s ? median(s.samples[k]) : NaN);
  const row = (s) => [s.label,
    fmt(median(s.samples.add)), fmt(p90(s.samples.add)), fmt(minimum(s.samples.add)),
    ...(s.single ? ['-', '-', '-'] : [fmt(median(s.samples.del)), fmt(p90(s.samples.del)), fmt(minimum(s.samples.del))])];
  const cols = ['ADD med', 'p90', 'min', 'DEL med', 'p90', 'min'];
  const cpu = cpus();
  const out = [];
  out.push('');
  out.push(`podlegs benchmark: ${o.iterations} interleaved iterations (+1 warm-up), ${o.fresh ? 'fresh pod netns per ADD' : 'one pod netns per scenario, left clean by DEL'}${o.nice !== undefined ? `, measured processes at nice ${o.nice}` : ''}`);
  out.push(`node ${process.version}, kernel ${release()}, ${cpu.length} CPU x ${cpu[0]?.model ?? '?'}, load average ${r.loadBefore.map((x) => x.toFixed(1)).join(' ')} before, ${loadavg().map((x) => x.toFixed(1)).join(' ')} after`);
  out.push(`${o.source} (${(o.sourceStat.size / 1024).toFixed(0)} KB, built ${o.sourceStat.mtime.toISOString()}), measured from a private copy`);
  out.push(`loop ${r.seconds.toFixed(0)} s; in-process, podlegs ADD creates its segments (bridge + VXLAN per VNI) and DEL removes them, unless noted;`);
  out.push('through the agent, DEL leaves the emptied segments to the agent, which removes them after its grace period (30 s, longer than a round):');
  out.push('the agent rows\' ADDs find their segments, as a pod re-created on a node does ("agent grace 0" row: created and removed every call)');
  if (Math.max(r.loadBefore[0], loadavg()[0]) > cpu.length) {
    out.push(`note: load average above ${cpu.length} CPUs: other work competes; medians and p90 include waiting for a CPU, "min" is the least disturbed run`);
  }
  out.push('');
  out.push(table(['scenario (ms, wall clock per process)', ...cols], [floor, ag1, ag3, pl1, pl3, br1, br3].map(row)));
  const extras = [stub, ag3cold, version, pl3err, pl3warm, pl1ipam, goFloor].filter(Boolean);
  if (extras.length) {
    out.push('');
    out.push(table(['extra rows (where the time goes)', ...cols], extras.map(row)));
  }

  const F = m(floor);
  if (o.compare) {
    out.push('');
    out.push(`B = ${o.compare} (${(o.compareStat.size / 1024).toFixed(0)} KB, built ${o.compareStat.mtime.toISOString()}), measured in the same loop`);
    out.push(table(['compared build B', ...cols, 'ADD med B-A'], [
      [cmp.version, version], [cmp.pl1, pl1], [cmp.pl3, pl3], [cmp.pl3err, pl3err],
    ].map(([b, a]) => [...row(b), a ? fmt(m(b) - m(a)) : 'n/a'])));
    out.push(`B: ratio (B ADD 3 legs - node floor) / (3 x bridge ADD) = ${fmt((m(cmp.pl3) - F) / (3 * m(br1)), 2)}`);
  }

  const ratioOf = (stat) => {
    const v = (x, k = 'add') => (x ? stat(x.samples[k]) : NaN);
    return {
      agent: (v(ag3) - v(floor)) / (3 * v(br1)),
      inproc: (v(pl3) - v(floor)) / (3 * v(br1)),
      agentSum3: (v(ag3) - v(floor)) / v(br3),
      inprocSum3: (v(pl3) - v(floor)) / v(br3),
      warm: pl3warm ? (v(pl3warm) - v(floor)) / (3 * v(br1)) : NaN,
      agentDel: v(ag3, 'del') / (3 * v(br1, 'del')),
      agentDel1: v(ag1, 'del') / v(br1, 'del'),
      agentAdd1: (v(ag1) - v(floor)) / v(br1),
      coldAdd: ag3cold ? (v(ag3cold) - v(floor)) / (3 * v(br1)) : NaN,
      coldDel: ag3cold ? v(ag3cold, 'del') / (3 * v(br1, 'del')) : NaN,
      agentDelFloor: (v(ag3, 'del') - v(floor)) / (3 * v(br1, 'del')),
      inprocDel: v(pl3, 'del') / (3 * v(br1, 'del')),
      inprocDelFloor: (v(pl3, 'del') - v(floor)) / (3 * v(br1, 'del')),
    };
  };
  const rm = ratioOf(median);
  const rn = ratioOf(minimum);
  out.push('');
  out.push('RATIOS (3 x bridge = 3 x the median of one bridge call; "min" columns use minimums throughout):');
  out.push(`  ${''.padEnd(80)} ${'median'.padStart(6)} ${'min'.padStart(6)}  target`);
  const rline = (label, a, b, target = '') => out.push(`  ${label.padEnd(80)} ${fmt(a, 2).padStart(6)} ${fmt(b, 2).padStart(6)}  ${target}`.trimEnd());
  rline(`(ADD 3 legs via agent - node floor) / (3 x bridge ADD) = (${fmt(m(ag3))} - ${fmt(F)}) / (3 x ${fmt(m(br1))})`, rm.agent, rn.agent, '<= 0.5');
  rline(`(ADD 3 legs in-process - node floor) / (3 x bridge ADD) = (${fmt(m(pl3))} - ${fmt(F)}) / (3 x ${fmt(m(br1))})`, rm.inproc, rn.inproc, '<= 1.0');
  rline(`DEL 3 legs via agent / (3 x bridge DEL) = ${fmt(m(ag3, 'del'))} / (3 x ${fmt(m(br1, 'del'))})`, rm.agentDel, rn.agentDel, '<= 1.0');
  rline('  (ADD 1 leg via agent - node floor) / bridge ADD', rm.agentAdd1, rn.agentAdd1);
  rline('  DEL 1 leg via agent / bridge DEL', rm.agentDel1, rn.agentDel1);
  if (ag3cold) {
    rline('  agent grace 0 (segments created and removed every call): (ADD 3 legs - floor) / (3 x bridge ADD)', rm.coldAdd, rn.coldAdd);
    rline('                                                           DEL 3 legs / (3 x bridge DEL)', rm.coldDel, rn.coldDel);
  }
  rline('  same numerators / the measured sum of 3 bridge ADDs: via agent', rm.agentSum3, rn.agentSum3);
  rline('                                                      in-process', rm.inprocSum3, rn.inprocSum3);
  if (pl3warm) rline('  in-process, segments already there (as bridge\'s bridge is after its first ADD)', rm.warm, rn.warm);
  rline('  (DEL 3 legs via agent - node floor) / (3 x bridge DEL)', rm.agentDelFloor, rn.agentDelFloor);
  rline('  DEL 3 legs in-process / (3 x bridge DEL)', rm.inprocDel, rn.inprocDel);
  rline('  (DEL 3 legs in-process - node floor) / (3 x bridge DEL)', rm.inprocDelFloor, rn.inprocDelFloor);

  out.push('');
  out.push('where the time goes (ms; differences of medians, and of minimums = least disturbed runs):');
  out.push(`  ${''.padEnd(58)} ${'median'.padStart(7)} ${'min'.padStart(7)}`);
  const line = (label, f, note = '') => {
    const a = f((s, k = 'add') => (s ? median(s.samples[k]) : NaN));
    const b = f((s, k = 'add') => (s ? minimum(s.samples[k]) : NaN));
    out.push(`  ${label.padEnd(58)} ${fmt(a).padStart(7)} ${fmt(b).padStart(7)}${note ? `   ${note}` : ''}`);
  };
  const agentSide = (key, cmd, field, stat) => stat((served?.[key]?.[cmd] ?? []).map((j) => j[field]));
  const side = (key, cmd) => ['readMs', 'waitMs', 'runMs'].map((f) => [median, minimum].map((st) => agentSide(key, cmd, f, st)));
  // The phases runCni's ADD and DEL log with their result (plugin/cni/add.ts, del.ts).
  const PHASES = {
    ADD: [['lockMs', 'node lock wait'], ['checksMs', 'checks: conf, netns, underlay, names, state plan (fsync)'], ['legsMs', 'legs: segments, veths, IPAM, pod side, registry'],
      ['fdbMs', 'FDB: the writer (agent run for new segments / in-process write)'], ['finishMs', 'result, peer file, state (fsync), log']],
    DEL: [['lockMs', 'node lock wait'], ['teardownMs', 'teardown: unregister, IPAM, links (+ segments by the rule)'], ['finishMs', 'peer file, state file']],
  };
  const phaseLines = (s, cmd, indent) => {
    const calls = phases?.[s?.key]?.[cmd] ?? [];
    if (!calls.length) return;
    for (const [k, what] of PHASES[cmd]) {
      const vals = calls.map((c) => c[k]).filter((x) => typeof x === 'number');
      out.push(`  ${`${indent}${cmd} ${what}`.padEnd(58)} ${fmt(median(vals)).padStart(7)} ${fmt(minimum(vals)).padStart(7)}`);
    }
  };
  const sideLine = (label, vals, note = '') => out.push(`  ${label.padEnd(58)} ${fmt(vals[0]).padStart(7)} ${fmt(vals[1]).padStart(7)}${note ? `   ${note}` : ''}`);
  out.push('  through the agent:');
  line('node runtime start (node -e 1)', (v) => v(floor));
  if (stub) line('thin client: load, connect, send, read, exit (stub - floor)', (v) => v(stub) - v(floor), 'ADD answered at once by a stub socket');
  for (const [s, cmd, what] of [[ag3, 'ADD', 'ADD 3 legs'], [ag1, 'ADD', 'ADD 1 leg'], [ag3, 'DEL', 'DEL 3 legs']]) {
    const [read, wait, run] = side(s.key, cmd);
    const n = served?.[s.key]?.[cmd]?.length ?? 0;
    out.push(`  ${what} (agent-side figures from its "CNI call served" log lines, ${n} calls):`);
    sideLine('  agent: reading the request (accept -> whole line)', read);
    sideLine('  agent: parse + wait for its event loop', wait);
    sideLine(`  agent: runCni ${cmd}`, run, 'config, lock, netns, netlink, state+registry, CNI log');
    phaseLines(s, cmd, '    ');
    const k = cmd === 'ADD' ? 'add' : 'del';
    if (stub) {
      const rest = (i, st) => st(s.samples[k]) - st(stub.samples.add) - read[i] - wait[i] - run[i];
      // Negative when the client's own start-up work overlaps the agent's runCni (with the stub it cannot).
      sideLine('  rest: answer back, client exit, scheduling', [rest(0, median), rest(1, minimum)], `${what} via agent - stub - agent-side; < 0: client work overlapped runCni`);
    }
    line(`  = ${what} via agent`, (v) => v(s, k));
  }
  if (ag3cold) {
    out.push('  ADD/DEL 3 legs through the agent with grace 0 (segments created by ADD, removed by DEL):');
    phaseLines(ag3cold, 'ADD', '  ');
    phaseLines(ag3cold, 'DEL', '  ');
  }
  out.push('  in-process:');
  line('node runtime start (node -e 1)', (v) => v(floor));
  out.push('  inside the in-process ADD/DEL 3 legs (their own log lines):');
  phaseLines(pl3, 'ADD', '  ');
  phaseLines(pl3, 'DEL', '  ');
  if (version) {
    line('loading the bundle (VERSION - floor)', (v) => v(version) - v(floor), `parse/compile + top level of ${(o.sourceStat.size / 1024).toFixed(0)} KB JS, natives`);
    if (pl3err) {
      line('ADD work: config, netns, netlink, state+registry files', (v) => v(pl3err) - v(version), 'ADD 3 legs at log level error - VERSION');
      line('logging: winston load + one line', (v) => v(pl3) - v(pl3err), 'ADD at level info - at level error');
    } else {
      line('ADD work incl. logging (ADD 3 legs - VERSION)', (v) => v(pl3) - v(version));
    }
    line('= podlegs ADD 3 legs', (v) => v(pl3));
  }
  if (pl3warm) line('  of which creating 3 segments (cold - segments exist)', (v) => v(pl3) - v(pl3warm));
  if (pl3warm) line('  DEL: of which removing 3 segments (cold - segments stay)', (v) => v(pl3, 'del') - v(pl3warm, 'del'));
  line('each leg beyond the first ((ADD 3 - ADD 1) / 2)', (v) => (v(pl3) - v(pl1)) / 2);
  if (pl1ipam) {
    line('IPAM exec, ADD: host-local leg - static leg (1 leg)', (v) => v(pl1ipam) - v(pl1));
    line('IPAM exec, DEL: host-local leg - static leg (1 leg)', (v) => v(pl1ipam, 'del') - v(pl1, 'del'));
  }
  if (goFloor) line('bridge ADD - Go floor (bridge VERSION), per call', (v) => v(br1) - v(goFloor), 'bridge\'s work incl. its host-local exec');
  if (version) line('podlegs DEL 3 legs - VERSION', (v) => v(pl3, 'del') - v(version), 'mostly kernel link deletion, see strace below');

  const st = oneOff.strace;
  if (st) {
    const types = (x) => Object.entries(x.byType).sort((a, b) => b[1].ms - a[1].ms).map(([t, v]) => `${t} ${v.n}x ${fmt(v.ms)}`).join(', ');
    out.push('');
    out.push('netlink requests in one run (strace -T; rtnetlink does its work synchronously inside sendmsg, so syscall time = kernel time):');
    out.push(`  ADD 3 legs: ${st.add.count} requests, ${fmt(st.add.kernelMs)} ms in the kernel: ${types(st.add)}`);
    out.push(`  DEL 3 legs: ${st.del.count} requests, ${fmt(st.del.kernelMs)} ms in the kernel: ${types(st.del)}`);
    if (version && pl3err) {
      out.push(`  ADD work / requests = ${fmt((m(pl3err) - m(version)) / st.add.count, 2)} ms per request (medians; JS, kernel and state files included)`);
    }
  }
  const rss = oneOff.rss;
  if (rss && rss.method !== 'none') {
    out.push('');
    out.push(`peak RSS (${rss.method}): podlegs ADD 3 legs ${fmt(rss.add3)} MB, VERSION ${fmt(rss.version)} MB, node -e 1 ${fmt(rss.floor)} MB, bridge ADD ${fmt(rss.bridge)} MB`);
  } else if (rss) out.push('\npeak RSS: neither /usr/bin/time nor python3 available');
  if (oneOff.agentRss) out.push(`agent (/proc/<pid>/status, after the loop): VmRSS ${fmt(oneOff.agentRss.rss)} MB, VmHWM ${fmt(oneOff.agentRss.peak)} MB`);
  const pr = oneOff.profile;
  if (pr) {
    out.push('');
    if (pr.error) out.push(`CPU profile: skipped (${pr.error})`);
    else {
      out.push(`CPU profile of one ADD, 3 legs (node --cpu-prof, 250 us sampling, ${fmt(pr.wall)} ms profiled incl. profiler overhead; ${pr.identical ? 'bundle byte-identical to the measured one' : 'a fresh build of the current sources, which differs from the measured bundle'}):`);
      for (const [label, ms] of pr.rows.filter(([, ms]) => ms >= 0.5)) out.push(`  ${fmt(ms).padStart(7)}  ${label}`);
      out.push('  hottest bundled functions (self time + Node/native calls they make; source:line of the function):');
      for (const [label, ms] of pr.top) out.push(`  ${fmt(ms).padStart(7)}  ${label}`);
    }
  }
  const ap = oneOff.agentProfile;
  if (ap) {
    out.push('');
    if (ap.error) out.push(`agent CPU profile: ${ap.error}`);
    else {
      out.push(`agent CPU profile over its whole life (node --cpu-prof, 250 us sampling, ${fmt(ap.wall)} ms wall, a source-mapped build of the current sources):`);
      for (const [label, ms] of ap.rows.filter(([, ms]) => ms >= 0.5)) out.push(`  ${fmt(ms).padStart(8)}  ${label}`);
      out.push('  hottest bundled functions (self time + Node/native calls they make):');
      for (const [label, ms] of ap.top) out.push(`  ${fmt(ms).padStart(8)}  ${label}`);
    }
  }
  if (r.leftovers.length) {
    out.push('');
    out.push(`note: podlegs objects left in the node netns after every pod was deleted: ${r.leftovers.join(', ')}`);
  }
  console.log(out.join('\n'));
}

// ---- main ----

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
  preflight(opts);
} catch (e) {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exit(2);
}
const lab = new BenchLab();
installCleanup(lab);
try {
  await bench(lab, opts);
} catch (e) {
  process.stderr.write(`\nbench: ${e.stack ?? e.message}\n`);
  process.exitCode = 1;
} finally {
  lab.cleanup();
}
