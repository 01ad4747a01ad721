// The thin client: hands a CNI call to the node agent over its unix socket and returns the
// agent's answer unchanged. Node built-ins only (net, fs): dist/podlegs runs this before it
// loads the bundle, so a call the agent serves never loads netlink, winston or the bundle.
//
//   no socket / connection refused (any connect error) → undefined: run in-process
//   the agent refused the request (other protocol)     → undefined: run in-process
//   the agent closed or hung before answering          → CNI error 11 (try again later);
//     the runtime's DEL then works from the recorded state (in-process when the agent is gone)
import * as fs from 'fs';
import type * as Net from 'net';
import { CniOutput, CniRequest, MAX_MESSAGE, PROTOCOL } from '../../overlay/agent/cni-protocol';
import { agentSocketFor, DEFAULT_TIMEOUT_MS } from './protocol';

const TRY_AGAIN_LATER = 11;

function timeoutMs(env: NodeJS.ProcessEnv): number {
  const v = Number(env.PODLEGS_AGENT_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_TIMEOUT_MS;
}

function tryAgain(cniVersion: string, msg: string): CniOutput {
  return { exitCode: 1, stdout: `${JSON.stringify({ cniVersion, code: TRY_AGAIN_LATER, msg })}\n` };
}

/** Sends the call to the agent at `socket`; undefined when it did not take it (run in-process). */
export function callAgent(socket: string, env: NodeJS.ProcessEnv, stdin: string, cniVersion: string): Promise<CniOutput | undefined> {
  return new Promise((resolve) => {
    const limit = timeoutMs(env);
    let connected = false;
    let settled = false;
    let answer = '';
    // Loaded here, not at the top: node's net (and the stream modules under it) is ~3 ms that
    // a node without an agent, whose calls all run in-process, need not pay.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const c = (require('net') as typeof Net).connect({ path: socket });
    const done = (v: CniOutput | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      c.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(tryAgain(cniVersion,
      `the podlegs agent at ${socket} did not answer within ${limit / 1000} s (hung or overloaded); try again later`)), limit);
    c.on('connect', () => {
      connected = true;
      const request: CniRequest = { podlegs: PROTOCOL, env: env as Record<string, string>, stdin };
      c.write(`${JSON.stringify(request)}\n`);
    });
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      answer += d;
      const nl = answer.indexOf('\n');
      if (nl < 0) {
        if (answer.length > MAX_MESSAGE) done(tryAgain(cniVersion, `the podlegs agent at ${socket} sent an answer larger than ${MAX_MESSAGE} bytes`));
        return;
      }
      let a: Record<string, unknown>;
      try {
        a = JSON.parse(answer.slice(0, nl)) as Record<string, unknown>;
      } catch {
        a = {};
      }
      if (a.podlegs === PROTOCOL && typeof a.refused === 'string') done(undefined);
      else if (a.podlegs === PROTOCOL && Number.isInteger(a.exitCode) && typeof a.stdout === 'string') done({ exitCode: a.exitCode as number, stdout: a.stdout });
      else done(tryAgain(cniVersion, `the podlegs agent at ${socket} sent something that is not an answer: ${answer.slice(0, 80)}`));
    });
    // Before the connection: nothing was sent, the call can run in-process.
    c.on('error', () => { if (!connected) done(undefined); });
    c.on('close', () => done(connected ? tryAgain(cniVersion,
      `the podlegs agent at ${socket} closed the connection before answering (it stopped or restarted); try again later`) : undefined));
  });
}

/** The whole client: the call served by the agent, or undefined when it must run in-process. */
export async function serveThroughAgent(env: NodeJS.ProcessEnv, stdin: string): Promise<CniOutput | undefined> {
  // VERSION needs no agent (and no node state): answered in-process, which always works.
  if (env.CNI_COMMAND === 'VERSION' || env.CNI_COMMAND === undefined) return undefined;
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return undefined; // loadConf reports it, in-process
  }
  const socket = agentSocketFor(conf, env);
  // No socket file: no agent (connecting would fail the same way, ENOENT, only later).
  if (socket === null || !fs.existsSync(socket)) return undefined;
  const v = (conf as { cniVersion?: unknown }).cniVersion;
  return callAgent(socket, env, stdin, typeof v === 'string' && /^[0-9.]{1,10}$/.test(v) ? v : '1.1.0');
}
