/**
 * A real CNI runtime in the lab: Debian's podman (4.3, CNI network backend) running rootful
 * containers whose network namespaces hang off a lab NODE's namespace.
 *
 * Everything podman keeps lives under one private directory (<node.dir>/podman):
 *   containers.conf   runc (through a wrapper that moves runc's state dir off /run/runc),
 *                     cgroupfs, file events, file locks, CNI backend, plugin dirs, ulimits
 *   root/ runroot/ tmp/ runc/   storage (vfs: no overlay mounts), run state, locks, runc state
 *   net.d/            conflists podman reads (`--network-config-dir`)
 *   plugins/          a copy of the built podlegs (+ its two .node files); bridge/host-local
 *                     come from the lab's CNI_PATH (/usr/lib/cni)
 *   rootfs/           the container's root: busybox-static and applet symlinks (`--rootfs`,
 *                     no image, no registry)
 *
 * podman runs as `nsenter --net=<node netns> podman …`: only the network namespace changes, so
 * the container's netns (created by podman under /run/netns/netns-<uuid>) is a child of the
 * node's world and the bridge plugin builds its bridge in the node, never in the root
 * namespace. `ip netns exec` is not usable: it remounts /sys, hiding the cgroup mounts runc
 * needs. conmon inherits the node netns and CONTAINERS_CONF, so the cleanup it runs when a
 * container exits (`podman container cleanup`, which runs CNI DEL) sees the same config.
 *
 * Outside that directory podman 4.3 still touches: /run/netns/netns-<uuid> (one per running
 * container, removed on stop) and libcni's result cache /var/lib/cni/results (one file per
 * attachment, removed on DEL; the directory itself stays: the test removes it again when it was
 * not there before). The test checks both, and the root namespace's links, addresses and routes.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { CniConflist, CniPluginConf, Lab, LabNode, ShResult } from '../lab';
import { SEEN_MS } from '../../support/wait';

export const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];
const APPLETS = ['sh', 'ip', 'cat', 'sleep', 'ping', 'ls', 'grep', 'sed', 'echo', 'true', 'arping'];
export const LIBCNI_CACHE = '/var/lib/cni/results';

export interface PodmanOptions {
  /** Conflist podman gets as its network (written to net.d/<name>.conflist). */
  conflist: CniConflist;
}

/** A static busybox (from Debian's busybox-static): the rootfs has no libc. */
export function findStaticBusybox(): string {
  for (const p of BUSYBOX_CANDIDATES) {
    if (!existsSync(p)) continue;
    const head = readFileSync(p).subarray(0, 4096);
    // A dynamically linked ELF carries its interpreter path; a static one does not.
    if (!head.includes(Buffer.from('/lib64/ld-linux')) && !head.includes(Buffer.from('ld-linux'))) return p;
  }
  throw new Error(`no static busybox in ${BUSYBOX_CANDIDATES.join(', ')}: install Debian's busybox-static (test/setup.sh does)`);
}

function sh(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ShResult> {
  return new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr: err && code === -1 ? `${stderr}\n[podman] ${err.message}` : stderr });
      });
  });
}

export class Podman {
  readonly dir: string;
  readonly rootfs: string;
  readonly netDir: string;
  readonly pluginDir: string;
  readonly confFile: string;
  readonly network: string;
  /** Every podman invocation: argv and duration (ms), for the report. */
  readonly calls: { argv: string[]; ms: number; code: number }[] = [];

  private constructor(readonly lab: Lab, readonly node: LabNode, conflist: CniConflist) {
    this.dir = path.join(node.dir, 'podman');
    this.rootfs = path.join(this.dir, 'rootfs');
    this.netDir = path.join(this.dir, 'net.d');
    this.pluginDir = path.join(this.dir, 'plugins');
    this.confFile = path.join(this.dir, 'containers.conf');
    this.network = conflist.name;
  }

  /** Lays out the private podman world on `node` (no podman process is started here). */
  static setup(lab: Lab, node: LabNode, o: PodmanOptions): Podman {
    const p = new Podman(lab, node, o.conflist);
    for (const d of ['root', 'runroot', 'tmp', 'runc', 'bin', 'net.d', 'plugins', 'rootfs/bin']) {
      mkdirSync(path.join(p.dir, d), { recursive: true });
    }
    // podlegs as podman finds it: an executable named after its type in a plugin dir, with the
    // native pieces beside it (copied, so a concurrent `npm run build` cannot swap it mid-test).
    // The loader finds its bundle and code cache by the names it was built with.
    const distDir = path.dirname(lab.podlegsBin);
    const exe = path.basename(lab.podlegsBin);
    for (const f of [exe, `${exe}.js`, `${exe}.jsc`, 'netlink.node', 'podlegs_netns.node']) {
      const src = path.join(distDir, f);
      if (f === `${exe}.jsc` && !existsSync(src)) continue; // optional: only slower without
      if (!existsSync(src)) throw new Error(`${src} missing: run \`npm run build\` first`);
      copyFileSync(src, path.join(p.pluginDir, f === exe ? 'podlegs' : f));
    }
    chmodSync(path.join(p.pluginDir, 'podlegs'), 0o755);

    copyFileSync(findStaticBusybox(), path.join(p.rootfs, 'bin', 'busybox'));
    chmodSync(path.join(p.rootfs, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', path.join(p.rootfs, 'bin', a));

    // runc keeps container state in --root (default /run/runc); conmon and every podman
    // (including the exit command's `container cleanup`) resolve runtime "runc" through
    // containers.conf to this wrapper, so all of them agree on a private state dir.
    const runcWrapper = path.join(p.dir, 'bin', 'runc');
    writeFileSync(runcWrapper, `#!/bin/sh\nexec /usr/sbin/runc --root ${path.join(p.dir, 'runc')} "$@"\n`);
    chmodSync(runcWrapper, 0o755);

    const q = (s: string): string => JSON.stringify(s);
    writeFileSync(p.confFile, `# podlegs lab: private podman configuration (see test/lab/podman/podman.ts)
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[network]
network_backend = "cni"
cni_plugin_dirs = [${[p.pluginDir, ...lab.cniPath].map(q).join(', ')}]
network_config_dir = ${q(p.netDir)}
default_network = ${q(p.network)}

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = ${q(path.join(p.dir, 'events.log'))}
tmp_dir = ${q(path.join(p.dir, 'tmp'))}
static_dir = ${q(path.join(p.dir, 'root', 'libpod'))}
volume_path = ${q(path.join(p.dir, 'root', 'volumes'))}
lock_type = "file"

[engine.runtimes]
runc = [${q(runcWrapper)}]
`);
    writeFileSync(path.join(p.netDir, `${p.network}.conflist`), JSON.stringify(o.conflist, null, 1));
    return p;
  }

  /** `podman <args>` in the node's netns with the private config and storage. Never throws. */
  async run(args: string[], timeoutMs = 60_000): Promise<ShResult> {
    const argv = ['nsenter', `--net=${this.node.netns}`, '--', 'podman',
      '--root', path.join(this.dir, 'root'), '--runroot', path.join(this.dir, 'runroot'),
      '--storage-driver', 'vfs', '--network-config-dir', this.netDir, ...args];
    const env: NodeJS.ProcessEnv = { ...process.env, CONTAINERS_CONF: this.confFile };
    for (const k of Object.keys(env)) if (k.startsWith('CNI_')) delete env[k];
    const t0 = performance.now();
    const r = await sh(argv, env, timeoutMs);
    this.calls.push({ argv: args, ms: Math.round(performance.now() - t0), code: r.code });
    return r;
  }

  /** Like run, but throws with podman's output on a non-zero exit; returns stdout. */
  async must(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} → exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /**
   * Processes (conmon, podman, runc, CNI plugins, and the containers below conmon) tied to this
   * podman world, except `exclude` (e.g. agents the test runs from the plugin copy) and zombies.
   */
  processes(exclude: readonly number[] = []): { pid: number; cmd: string }[] {
    const all = new Map<number, { ppid: number; cmd: string; mine: boolean }>();
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e) || Number(e) === process.pid || exclude.includes(Number(e))) continue;
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid ...
        if (rest[0] === 'Z' || rest[0] === 'X') continue;
        const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim();
        const env = readFileSync(`/proc/${e}/environ`, 'utf8');
        all.set(Number(e), { ppid: Number(rest[1]), cmd, mine: cmd.includes(this.dir) || env.includes(`CONTAINERS_CONF=${this.confFile}\0`) });
      } catch { /* gone */ }
    }
    const mine = (pid: number, depth = 0): boolean => {
      const p = all.get(pid);
      return !!p && (p.mine || (depth < 64 && mine(p.ppid, depth + 1)));
    };
    return [...all.entries()].filter(([pid]) => mine(pid)).map(([pid, p]) => ({ pid, cmd: p.cmd }));
  }

  /** processes(exclude), polled until empty or timeoutMs (conmon exits just after `podman rm` returns). */
  async settle(exclude: readonly number[] = [], timeoutMs = SEEN_MS): Promise<{ pid: number; cmd: string }[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = this.processes(exclude);
      if (left.length === 0 || Date.now() > deadline) return left;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Mount points under this podman world (shm of running containers, storage). */
  mounts(): string[] {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .map((l) => l.split(' ')[4]).filter((m): m is string => !!m && (m === this.dir || m.startsWith(`${this.dir}/`)));
  }

  /**
   * Removes every container (stop → CNI DEL by podman), then whatever podman could not remove:
   * mounts under its dir, and processes of this world (by PID). Returns what it had to force.
   */
  async cleanup(exclude: readonly number[] = []): Promise<string[]> {
    const forced: string[] = [];
    const rm = await this.run(['rm', '--all', '--force', '--time', '0'], 60_000);
    if (rm.code !== 0) forced.push(`podman rm -af: exit ${rm.code}: ${rm.stderr.trim()}`);
    for (const p of await this.settle(exclude)) {
      forced.push(`process ${p.pid} ${p.cmd}`);
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const m of this.mounts().sort((a, b) => b.length - a.length)) {
      forced.push(`mount ${m}`);
      await sh(['umount', '-l', m], process.env, 10_000);
    }
    return forced;
  }
}

/** The `[bridge, podlegs]` conflist podman's containers get on `node`. */
export function bridgePodlegsConflist(lab: Lab, node: LabNode, podlegs: CniPluginConf,
  o: { name?: string; subnet?: string; bridge?: string } = {}): CniConflist {
  return {
    cniVersion: '1.0.0', // podman 4.3's libcni (CNI 1.1.x library) tops out at spec 1.0.0
    name: o.name ?? 'podlegs-lab',
    plugins: [
      {
        type: 'bridge', bridge: o.bridge ?? 'cni-pl0', isGateway: true, ipMasq: false,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: o.subnet ?? `10.88.${node.index}.0/24` }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: path.join(node.dir, 'ipam-podman'),
        },
      },
      podlegs,
    ],
  };
}
