// The benchmark's agent side: a `podlegs agent` in a node netns with its own agent.socket
// (what the thin client calls), a stub socket that answers every call at once (the thin
// client's own cost: node start, client, connect, one round trip), and the agent's per-call
// timings read back from its log ("CNI call served", overlay/agent/cni-server.ts).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Starts `nsenter --net=<netns> [node <nodeArgs>] <bin> agent --config <confFile>` (nsenter execs, so the
 * child's PID is the agent's) and resolves once it says it is running. The child is
 * registered with the lab, whose cleanup SIGKILLs it if stop() never ran.
 */
export function startAgent(lab, { bin, nodeArgs, netnsPath, conf, confFile, env, timeoutMs = 30_000 }) {
  writeFileSync(confFile, JSON.stringify(conf));
  const exe = nodeArgs ? [process.execPath, ...nodeArgs, bin] : [bin];
  const child = spawn('nsenter', [`--net=${netnsPath}`, ...exe, 'agent', '--config', confFile], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  lab.children.add(child);
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { lab.children.delete(child); resolve({ code, signal }); }));
  return new Promise((resolve, reject) => {
    const fail = (why) => { try { child.kill('SIGKILL'); } catch { /* gone */ } reject(new Error(`podlegs agent ${why}: ${stderr.trim().slice(-800)}`)); };
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs / 1000} s`), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    void exited.then(({ code, signal }) => { clearTimeout(timer); fail(`exited (${code ?? signal}) before it was running`); });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      if (!/podlegs agent: running/.test(stderr)) return;
      clearTimeout(timer);
      resolve({
        pid: child.pid,
        /** VmRSS and VmHWM (peak) of the agent, MB. */
        rss() {
          const s = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1]) / 1024;
          return { rss: kb('VmRSS'), peak: kb('VmHWM') };
        },
        /** SIGTERM (the agent lets calls in flight finish), SIGKILL after graceMs. */
        async stop(graceMs = 15_000) {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(t);
        },
      });
    });
  });
}

// A process of its own, like the agent: the bench's own event loop is busy with the child it times.
const STUB = `const net = require('net');
const s = net.createServer((c) => {
  let b = '';
  c.setEncoding('utf8');
  c.on('error', () => undefined);
  c.on('data', (d) => { b += d; if (b.includes('\\n')) c.end('{"podlegs":1,"exitCode":0,"stdout":""}\\n'); });
});
s.listen({ path: process.argv[1] }, () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => s.close(() => process.exit(0)));`;

/** A process serving a socket that answers every call with success and an empty stdout, running nothing. */
export function stubAgent(lab, path) {
  const child = spawn(process.execPath, ['-e', STUB, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  lab.children.add(child);
  const exited = new Promise((resolve) => child.on('exit', () => { lab.children.delete(child); resolve(); }));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    void exited.then(() => reject(new Error('the stub agent exited before it was ready')));
    child.stdout.setEncoding('utf8').once('data', () => resolve({ close: async () => { child.kill('SIGTERM'); await exited; } }));
  });
}

/**
 * The agent's "CNI call served" lines for one container (or `<id>-<n>`, --fresh-pods), by command: arrays of
 * { readMs, waitMs, runMs, replyMs } (see cni-server.ts for what each covers).
 */
export function servedCalls(logFile, containerId) {
  const out = { ADD: [], DEL: [] };
  let text = '';
  try { text = readFileSync(logFile, 'utf8'); } catch { return out; }
  for (const line of text.split('\n')) {
    if (!line.includes('CNI call served')) continue;
    let j;
    try { j = JSON.parse(line); } catch { continue; }
    if ((j.containerId !== containerId && !String(j.containerId).startsWith(`${containerId}-`)) || !out[j.command]) continue;
    out[j.command].push(j);
  }
  return out;
}

/**
 * The phase timings runCni's ADD and DEL log with their outcome ("legs attached" / "legs detached",
 * plugin/cni/add.ts and del.ts) for one container (or `<id>-<n>`), by command.
 */
export function callPhases(logFile, containerId) {
  const out = { ADD: [], DEL: [] };
  let text = '';
  try { text = readFileSync(logFile, 'utf8'); } catch { return out; }
  for (const line of text.split('\n')) {
    const cmd = line.includes('"legs attached"') ? 'ADD' : line.includes('"legs detached"') ? 'DEL' : undefined;
    if (!cmd) continue;
    let j;
    try { j = JSON.parse(line); } catch { continue; }
    if (j.containerId === containerId || String(j.containerId).startsWith(`${containerId}-`)) out[cmd].push(j);
  }
  return out;
}
