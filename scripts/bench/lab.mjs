// The benchmark's own little lab: network namespaces named <prefix>-<x> with a
// unique prefix `plbn<4 hex>`, a temp dir, timed child processes, and a cleanup
// that always runs (finally, exit, SIGINT/SIGTERM/SIGHUP). Nothing is created in
// the root network namespace: every plugin runs under `nsenter --net=<node>`.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';

const NETNS_DIR = '/var/run/netns';

/** Runs a short command synchronously; throws with its stderr when it fails. */
export function sh(argv, { input, allowFail = false } = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8' });
  if (!allowFail && (r.error || r.status !== 0)) {
    throw new Error(`${argv.join(' ')} failed: ${r.error?.message ?? (r.stderr || r.stdout).trim()}`);
  }
  return r;
}

export class BenchLab {
  constructor() {
    this.children = new Set();
    this.netns = [];
    this.cleaned = false;
    // Reserve the prefix atomically: `ip netns add` fails if the name exists.
    for (let attempt = 0; ; attempt++) {
      this.prefix = `plbn${randomBytes(2).toString('hex')}`;
      const r = sh(['ip', 'netns', 'add', `${this.prefix}-node`], { allowFail: true });
      if (r.status === 0) break;
      if (attempt > 20) throw new Error(`cannot create a network namespace: ${r.stderr.trim()}`);
    }
    this.netns.push(`${this.prefix}-node`);
    this.dir = mkdtempSync(`/tmp/podlegs-bench-${this.prefix}-`);
  }

  /** Creates <prefix>-<suffix> with lo up; returns { name, path }. */
  addNetns(suffix) {
    const name = `${this.prefix}-${suffix}`;
    if (name !== `${this.prefix}-node`) {
      sh(['ip', 'netns', 'add', name]);
      this.netns.push(name);
    }
    sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    return { name, path: `${NETNS_DIR}/${name}` };
  }

  delNetns(ns) {
    sh(['ip', 'netns', 'del', ns.name], { allowFail: true });
    this.netns = this.netns.filter((n) => n !== ns.name);
  }

  /**
   * Spawns argv, feeds input on stdin, and resolves with the wall-clock time from just
   * before spawn() to the child's exit, plus its exit status and output.
   */
  run(argv, { input = '', env = {}, timeoutMs = 60_000 } = {}) {
    return new Promise((resolve, reject) => {
      const out = [];
      const err = [];
      const t0 = process.hrtime.bigint();
      let t1;
      let exit;
      const child = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
      this.children.add(child);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (e) => { clearTimeout(timer); this.children.delete(child); reject(e); });
      child.on('exit', (code, signal) => { t1 = process.hrtime.bigint(); exit = { code, signal }; });
      child.stdout.on('data', (d) => out.push(d));
      child.stderr.on('data', (d) => err.push(d));
      child.on('close', () => {
        clearTimeout(timer);
        this.children.delete(child);
        resolve({
          ms: Number((t1 ?? process.hrtime.bigint()) - t0) / 1e6,
          code: exit?.code ?? -1,
          signal: exit?.signal ?? null,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        });
      });
      child.stdin.on('error', () => undefined); // a child that exits without reading stdin
      child.stdin.end(input);
    });
  }

  /** Kills our own children (by PID), deletes our namespaces and temp dir. Idempotent, synchronous. */
  cleanup() {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const c of this.children) {
      try { c.kill('SIGKILL'); } catch { /* already gone */ }
    }
    // Every namespace with our prefix, including ones created by a step that failed midway.
    const listed = sh(['ip', 'netns', 'list'], { allowFail: true }).stdout ?? '';
    const ours = new Set(this.netns);
    for (const line of listed.split('\n')) {
      const name = line.split(' ')[0];
      if (name.startsWith(`${this.prefix}-`)) ours.add(name);
    }
    const failed = [];
    for (const name of ours) {
      const r = sh(['ip', 'netns', 'del', name], { allowFail: true });
      if (r.status !== 0 && !/No such file/.test(r.stderr)) failed.push(`${name}: ${r.stderr.trim()}`);
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (failed.length) process.stderr.write(`bench: could not delete namespaces: ${failed.join('; ')}\n`);
  }
}

/** Cleans up on exit and on SIGINT/SIGTERM/SIGHUP (then exits 128+signo). */
export function installCleanup(lab) {
  const onSignal = (sig, no) => {
    process.stderr.write(`\nbench: ${sig}, cleaning up ${lab.prefix}-*\n`);
    lab.cleanup();
    process.exit(128 + no);
  };
  process.on('SIGINT', () => onSignal('SIGINT', 2));
  process.on('SIGTERM', () => onSignal('SIGTERM', 15));
  process.on('SIGHUP', () => onSignal('SIGHUP', 1));
  process.on('exit', () => lab.cleanup());
}
