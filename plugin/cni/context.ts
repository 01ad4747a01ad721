import type { PluginConf } from './config';
import type { CniEnv } from './env';
import type { Log } from '../log';
import type { NodeWriter } from '../../overlay/agent/node-writer';

/**
 * Everything a command needs, validated before the command starts. writer: who writes
 * node-wide state (FDB, segment removal) — the agent serving this call, or this process.
 */
export interface CmdContext { conf: PluginConf; env: CniEnv; log: Log; writer: NodeWriter }
