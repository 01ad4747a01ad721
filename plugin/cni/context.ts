import type { PluginConf } from './config';
import type { CniEnv } from './env';
import type { Log } from '../log';

/** Everything a command needs, validated before the command starts. */
export interface CmdContext { conf: PluginConf; env: CniEnv; log: Log }
