// The podlegs CLI (no CNI_COMMAND): agent, status, conf render|validate|install, version.
import * as fs from 'fs';
import { loadConf, PluginConf } from '../cni/config';
import { CniError } from '../cni/errors';
import { AgentConf, parseAgentConf } from '../../overlay/agent/config';

/** The agent's config: the plugin entry's fields plus the validated "agent" section. */
export interface NodeConf extends PluginConf { agent: AgentConf }

const USAGE = `usage: podlegs <command>
  agent --config FILE        run the node agent (keeps flood lists equal to the registry)
  bgp-sync --config FILE [--once [--dry-run]] [--render]
                             keep the node speaker's neighbors equal to this node's NF pods (docs/bgp.md)
  status [--json] [--config FILE]   this node's segments, legs and flood lists
  conf validate FILE         validate a conflist (or a single podlegs entry)
  conf render --cilium FILE [--podlegs ENTRY.json] [--name NAME]
                             print the conflist chaining podlegs after Cilium's plugins
  conf install --cilium-dir DIR [--watch] ...
                             keep DIR/00-podlegs.conflist in step with Cilium's (podlegs conf help)
  version                    print the version`;

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

const flag = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

export async function runCli(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    switch (cmd) {
      case 'agent': {
        const file = flag(rest, '--config');
        if (!file) throw new Error('agent needs --config FILE');
        const { runAgent } = await import('./agent-cmd');
        return await runAgent(loadNodeConfig(file));
      }
      case 'bgp-sync': {
        const file = flag(rest, '--config');
        if (!file) throw new Error('bgp-sync needs --config FILE');
        const { runBgpSync } = await import('./bgp-sync-cmd');
        return await runBgpSync(file, rest);
      }
      case 'status': {
        const { runStatus } = await import('./status-cmd');
        const file = flag(rest, '--config');
        return await runStatus(file ? loadNodeConfig(file) : undefined, rest.includes('--json'));
      }
      case 'conf': {
        const { runConf } = await import('../conf/conf-cmd');
        return await runConf(rest);
      }
      case 'version':
        process.stdout.write('podlegs 0.1.0 (CNI 0.3.1, 0.4.0, 1.0.0, 1.1.0)\n');
        return 0;
      default:
        process.stderr.write(`${USAGE}\n`);
        return cmd === undefined || cmd === 'help' || cmd === '--help' ? 0 : 2;
    }
  } catch (e) {
    const msg = e instanceof CniError ? `${e.message}${e.details ? ` (${e.details})` : ''}` : (e as Error).message;
    process.stderr.write(`podlegs ${cmd}: ${msg}\n`);
    return 1;
  }
}
