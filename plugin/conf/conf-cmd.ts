// `podlegs conf render|validate|install`.
import * as fs from 'fs';
import { loadConf } from '../cni/config';
import { DEFAULT_INTERVAL_MS, DEFAULT_OUT, installOnce, InstallOptions, InstallOutcome, watchInstall } from './install';
import { syncKubeconfig } from './kubeconfig';
import { ConfError, formatConflist, JsonObject, parseEntry, parseJsonObject, renderChained } from './render';

export const CONF_USAGE = `usage: podlegs conf <render|validate|install>
  conf render --cilium FILE [--podlegs ENTRY.json] [--name NAME]
      print [<plugins of FILE>, <podlegs entry>] as one conflist
  conf validate FILE
      validate a conflist (its podlegs entries) or a single podlegs entry
  conf install --cilium-dir DIR [--cilium-file NAME] [--out ${DEFAULT_OUT}]
               [--podlegs ENTRY.json] [--name NAME] [--kubeconfig FILE]
               [--watch [--interval SECONDS]]
      write DIR/${DEFAULT_OUT} (atomically, only when it changes); with --watch,
      keep it in step with Cilium's conflist until SIGTERM. Without --watch the
      exit code is 0 when installed, 3 when Cilium's conflist is not there yet`;

const VALUE_FLAGS = ['--cilium', '--podlegs', '--name', '--cilium-dir', '--cilium-file', '--out', '--kubeconfig', '--interval'];
const BOOL_FLAGS = ['--watch'];

interface Parsed { values: Map<string, string>; bools: Set<string>; positional: string[] }

function parseArgs(args: string[]): Parsed {
  const p: Parsed = { values: new Map(), bools: new Set(), positional: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (VALUE_FLAGS.includes(a)) {
      const v = args[++i];
      if (v === undefined) throw new ConfError(`${a} needs a value`, 'input');
      p.values.set(a, v);
    } else if (BOOL_FLAGS.includes(a)) {
      p.bools.add(a);
    } else if (a.startsWith('--')) {
      throw new ConfError(`unknown option ${a}\n${CONF_USAGE}`, 'input');
    } else {
      p.positional.push(a);
    }
  }
  return p;
}

const readText = (file: string): string => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'input');
  }
};

function render(p: Parsed): number {
  const cilium = p.values.get('--cilium');
  if (!cilium) throw new ConfError(`render needs --cilium FILE\n${CONF_USAGE}`, 'input');
  const entryFile = p.values.get('--podlegs');
  const entry: JsonObject | undefined = entryFile ? parseEntry(readText(entryFile), entryFile) : undefined;
  const c = renderChained(readText(cilium), cilium, { entry, name: p.values.get('--name') });
  process.stdout.write(formatConflist(c));
  return 0;
}

function validate(p: Parsed): number {
  const file = p.positional[0];
  if (!file) throw new ConfError(`validate needs FILE\n${CONF_USAGE}`, 'input');
  const doc = parseJsonObject(readText(file), file);
  let entries: JsonObject[];
  if (Array.isArray(doc.plugins)) {
    entries = doc.plugins
      .filter((x): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x) && x.type === 'podlegs')
      .map((x) => ({ cniVersion: doc.cniVersion ?? null, name: doc.name ?? null, ...x }));
    if (entries.length === 0) throw new ConfError(`${file} has no podlegs entry`, 'input');
  } else {
    entries = [doc];
  }
  for (const e of entries) loadConf(JSON.stringify(e));
  process.stdout.write(`${file}: valid\n`);
  return 0;
}

const describe = (r: InstallOutcome): string => {
  const what: Record<InstallOutcome['action'], string> = {
    written: `wrote ${r.out} (chained after ${r.cilium})`,
    unchanged: `${r.out} is up to date`,
    removed: `removed ${r.out}: ${r.reason}`,
    absent: `nothing installed: ${r.reason}`,
    kept: `kept ${r.out} as it was: ${r.reason}`,
  };
  const shadow = r.shadowedBy.length ? `; warning: ${r.shadowedBy.join(', ')} sort(s) before ${r.out.split('/').pop()}, so a runtime taking the first file will not use podlegs` : '';
  return `${what[r.action]}${shadow}`;
};

async function install(p: Parsed): Promise<number> {
  const dir = p.values.get('--cilium-dir');
  if (!dir) throw new ConfError(`install needs --cilium-dir DIR\n${CONF_USAGE}`, 'input');
  const o: InstallOptions = {
    dir,
    ciliumFile: p.values.get('--cilium-file'),
    outName: p.values.get('--out'),
    entryFile: p.values.get('--podlegs'),
    name: p.values.get('--name'),
  };
  const kubeconfig = p.values.get('--kubeconfig');
  const log = (msg: string): void => {
    process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
  };
  if (!p.bools.has('--watch')) {
    if (kubeconfig && syncKubeconfig(kubeconfig)) log(`wrote ${kubeconfig}`);
    const r = installOnce(o);
    process.stdout.write(`${describe(r)}\n`);
    // 0: installed; 3: Cilium's conflist is not there (nothing installed); 1: anything else.
    if (r.action === 'written' || r.action === 'unchanged') return 0;
    return r.action === 'removed' || r.action === 'absent' ? 3 : 1;
  }
  const intervalS = Number(p.values.get('--interval') ?? DEFAULT_INTERVAL_MS / 1000);
  if (!Number.isFinite(intervalS) || intervalS < 0.05 || intervalS > 3600) throw new ConfError('--interval must be 0.05 to 3600 seconds', 'input');
  let last = '';
  const syncKc = (): void => {
    if (!kubeconfig) return;
    try {
      if (syncKubeconfig(kubeconfig)) log(`wrote ${kubeconfig}`);
    } catch (e) {
      log(`kubeconfig: ${(e as Error).message}`);
    }
  };
  syncKc();
  const w = watchInstall({
    ...o,
    intervalMs: intervalS * 1000,
    onPass: (r) => {
      const line = describe(r);
      // Log writes/removals and any change of state; quiet while nothing happens.
      if (r.action === 'written' || r.action === 'removed' || line !== last) log(line);
      last = line;
    },
    onError: (e) => log(`error: ${e.message}`),
  });
  const kcTimer = kubeconfig ? setInterval(syncKc, intervalS * 1000) : undefined;
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  if (kcTimer) clearInterval(kcTimer);
  w.close();
  log('stopped (conflist left in place)');
  return 0;
}

export async function runConf(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${CONF_USAGE}\n`);
    return 0;
  }
  const p = parseArgs(rest);
  switch (sub) {
    case 'render': return render(p);
    case 'validate': return validate(p);
    case 'install': return install(p);
    default:
      process.stderr.write(`${CONF_USAGE}\n`);
      return 2;
  }
}
