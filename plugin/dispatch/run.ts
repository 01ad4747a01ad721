// The CNI entry: read stdin and env, validate, dispatch, and turn every
// outcome into exactly one JSON document on stdout.
import { monotonicMs } from '../../overlay/clock';
import { ForeignDevice } from '../../overlay/segment';
import { KernelError } from '../../overlay/kernel/errors';
import { LockTimeout, withNodeLock } from '../../overlay/node-lock';
import { createLog, Log } from '../log';
import { LogConf, loadConf, loadTeardownConf } from '../cni/config';
import { readEnv, CniEnv } from '../cni/env';
import { CniError, Code } from '../cni/errors';
import { atLeast, fromInternal, SUPPORTED_VERSIONS } from '../cni/versions';
import { cmdAdd } from '../cni/add';
import { cmdDel } from '../cni/del';
import { cmdCheck } from '../cni/check';
import { cmdGc } from '../cni/gc';
import { cmdStatus } from '../cni/status';
import { inProcessWriter, NodeWriter } from '../../overlay/agent/node-writer';

export interface CniOutput { exitCode: number; stdout: string }

const LATEST = '1.1.0';
const print = (doc: unknown): string => `${JSON.stringify(doc)}\n`;

/** Best-effort cniVersion for error objects when the config itself is unusable. */
function looseVersion(stdin: string): string {
  const m = /"cniVersion"\s*:\s*"([0-9.]+)"/.exec(stdin.slice(0, 4096));
  return m && (SUPPORTED_VERSIONS as readonly string[]).includes(m[1]) ? m[1] : LATEST;
}

function asCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof LockTimeout) return new CniError(Code.TryAgainLater, `another podlegs operation holds this node's lock: ${e.message}`);
  if (e instanceof ForeignDevice) return new CniError(Code.InterfaceExists, e.message);
  if (e instanceof KernelError) return new CniError(Code.KernelFailure, `the kernel refused: ${e.message}`);
  const err = e as NodeJS.ErrnoException;
  if (err?.code && err.syscall) return new CniError(Code.IoFailure, `${err.syscall} ${err.path ?? ''} failed: ${err.code}`);
  return new CniError(Code.KernelFailure, `internal error: ${err?.message ?? String(e)}`);
}

/**
 * writer: who writes node-wide state (FDB, segment removal). The agent passes its own for the
 * calls it serves; a plugin running the call itself has the in-process one.
 */
export async function runCni(processEnv: NodeJS.ProcessEnv, stdin: string, writer: NodeWriter = inProcessWriter): Promise<CniOutput> {
  let version = looseVersion(stdin);
  let log: Log | undefined;
  try {
    if (processEnv.CNI_COMMAND === 'VERSION') {
      return { exitCode: 0, stdout: print({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS }) };
    }
    const env: CniEnv = readEnv(processEnv);
    const openLog = (c: LogConf): Log => createLog(c, {
      command: env.command, containerId: env.containerId || undefined,
      pod: env.args.has('K8S_POD_NAME') ? `${env.args.get('K8S_POD_NAMESPACE') ?? ''}/${env.args.get('K8S_POD_NAME')}` : undefined,
    });
    if (env.command === 'DEL') {
      const conf = loadTeardownConf(stdin, processEnv);
      version = conf.cniVersion;
      log = openLog(conf.log);
      await cmdDel({ conf, env, log, writer });
      return { exitCode: 0, stdout: '' };
    }
    const conf = loadConf(stdin, env.ifname, processEnv);
    version = conf.cniVersion;
    log = openLog(conf.log);
    const ctx = { conf, env, log, writer };
    const requires = (min: string): void => {
      if (!atLeast(conf.cniVersion, min)) {
        throw new CniError(Code.IncompatibleVersion, `${env.command} needs cniVersion ${min} or later; the configuration says ${conf.cniVersion}`);
      }
    };
    switch (env.command) {
      case 'ADD': {
        // Kubernetes mode resolves the pod's legs through the API before taking the node lock.
        const k8s = conf.mode === 'kubernetes' ? await (await import('../k8s/k8s-mode')).prepareKubernetes(ctx) : undefined;
        const asked = monotonicMs();
        const result = await withNodeLock(conf.stateDir, () => cmdAdd(ctx, k8s?.publish, monotonicMs() - asked));
        return { exitCode: 0, stdout: print(fromInternal(result, conf.cniVersion)) };
      }
      case 'CHECK': requires('0.4.0'); await cmdCheck(ctx); break;
      case 'GC': requires('1.1.0'); await cmdGc(ctx); break;
      case 'STATUS': requires('1.1.0'); await cmdStatus(ctx); break;
    }
    return { exitCode: 0, stdout: '' };
  } catch (e) {
    const err = asCniError(e);
    log?.error(err.message, { code: err.code, ...(e instanceof Error && !(e instanceof CniError) ? { stack: e.stack } : {}) });
    return { exitCode: 1, stdout: print(err.toJSON(version)) };
  }
}
