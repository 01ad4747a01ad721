// Node config files (agent, bgp-sync, status): the plugin entry's fields without the CNI
// envelope, plus the agent's own section. A leaf of plugin/cli: the subcommands import it,
// the CLI table imports the subcommands.
import * as fs from 'fs';
import { loadConf, PluginConf } from '../cni/config';
import { AgentConf, parseAgentConf } from '../../overlay/agent/config';

/** The agent's config: the plugin entry's fields plus the validated "agent" section. */
export interface NodeConf extends PluginConf { agent: AgentConf }

/** A node config file (agent, bgp-sync): one JSON object. */
export function readConfigObject(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`config ${file}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`config ${file} must hold a JSON object`);
  return raw as Record<string, unknown>;
}

/** Agent/CLI config files carry the plugin entry's fields without the CNI envelope. */
export function loadNodeConfig(file: string): NodeConf {
  const { agent, legs: _legs, ...rest } = readConfigObject(file);
  const conf = loadConf(JSON.stringify({ cniVersion: '1.1.0', name: 'podlegs', type: 'podlegs', ...rest }));
  return { ...conf, agent: parseAgentConf(agent) };
}

