// The podlegs CLI (no CNI_COMMAND): agent, status, conf render|validate|install, version.
import { CniError } from '../cni/errors';
import { loadNodeConfig } from './node-config';
import { ATTACH_USAGE, DETACH_USAGE } from './attach-usage';

const USAGE = `usage: podlegs <command>
  agent --config FILE        run the node agent (keeps flood lists equal to the registry)
  bgp-sync --config FILE [--once [--dry-run]] [--render]
                             keep the node speaker's neighbors equal to this node's NF pods (docs/bgp.md)
  status [--json] [--config FILE]   this node's segments, legs and flood lists
  attach --config FILE --container ID --netns PATH --network NAME [--interface IF] [--ip CIDR]
                             one more leg on a running container (static mode)
  detach --config FILE --container ID (--interface IF | --network NAME)
                             one leg less on a running container (static mode)
  conf validate FILE         validate a conflist (or a single podlegs entry)
  conf render --cilium FILE [--podlegs ENTRY.json] [--name NAME]
                             print the conflist chaining podlegs after Cilium's plugins
  conf install --cilium-dir DIR [--watch] ...
                             keep DIR/00-podlegs.conflist in step with Cilium's (podlegs conf help)
  version                    print the version`;

const flag = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

/** One CLI subcommand: its usage line(s) and how to run it (args after the subcommand's name). */
interface Command { usage: string; run(args: string[]): Promise<number> }

const needConfig = (cmd: string, args: string[]): string => {
  const file = flag(args, '--config');
  if (!file) throw new Error(`${cmd} needs --config FILE\n${COMMANDS[cmd].usage}`);
  return file;
};

/** Every subcommand; `podlegs <cmd> --help` prints its usage (stdout, exit 0) without running it. */
export const COMMANDS: Record<string, Command> = {
  agent: {
    usage: 'usage: podlegs agent --config FILE\n  run the node agent (keeps flood lists equal to the registry) until SIGTERM;\n  SIGHUP re-reads FILE and applies its trunk networks\' VLAN lists to running trunk legs',
    run: async (args) => { const file = needConfig('agent', args); return (await import('./agent-cmd')).runAgent(loadNodeConfig(file), () => loadNodeConfig(file)); },
  },
  'bgp-sync': {
    usage: 'usage: podlegs bgp-sync --config FILE [--once [--dry-run]] [--render]\n'
      + '  keep the node speaker\'s neighbors equal to this node\'s NF pods (docs/bgp.md)\n'
      + '  --once     one pass, print what was done (--dry-run: what would be done)\n'
      + '  --render   print the Cilium resources for the current pods as YAML',
    run: async (args) => (await import('./bgp-sync-cmd')).runBgpSync(needConfig('bgp-sync', args), args),
  },
  status: {
    usage: 'usage: podlegs status [--json] [--config FILE]\n  this node\'s segments, legs and flood lists (with --config: drift against the registry)',
    run: async (args) => {
      const file = flag(args, '--config');
      return (await import('./status-cmd')).runStatus(file ? loadNodeConfig(file) : undefined, args.includes('--json'));
    },
  },
  attach: {
    usage: ATTACH_USAGE,
    run: async (args) => (await import('./attach-cmd')).runAttach(args),
  },
  detach: {
    usage: DETACH_USAGE,
    run: async (args) => (await import('./attach-cmd')).runDetach(args),
  },
  conf: {
    usage: 'usage: podlegs conf <render|validate|install> ... (podlegs conf --help)',
    run: async (args) => (await import('../conf/conf-cmd')).runConf(args),
  },
  version: {
    usage: 'usage: podlegs version\n  print the version',
    run: async () => {
      process.stdout.write('podlegs 0.1.0 (CNI 0.3.1, 0.4.0, 1.0.0, 1.1.0)\n');
      return 0;
    },
  },
};

const isHelpFlag = (a: string): boolean => a === '--help' || a === '-h';

export async function runCli(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  const c = cmd === undefined ? undefined : COMMANDS[cmd];
  if (!c) {
    const help = cmd === undefined || cmd === 'help' || isHelpFlag(cmd);
    (help ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return help ? 0 : 2;
  }
  try {
    // conf has subcommands of its own and answers --help itself (podlegs conf --help, conf render --help)
    if (cmd !== 'conf' && rest.some(isHelpFlag)) {
      process.stdout.write(`${c.usage}\n`);
      return 0;
    }
    return await c.run(rest);
  } catch (e) {
    const msg = e instanceof CniError ? `${e.message}${e.details ? ` (${e.details})` : ''}` : (e as Error).message;
    process.stderr.write(`podlegs ${cmd}: ${msg}\n`);
    return 1;
  }
}
