// Finding and loading podlegs' own native addon (native/netns.c): beside the bundle (dist/, or
// the single executable's directory), or node-gyp's build dir when run from source. Shared by
// the kernel side and the thin client, which may load nothing but fs: no path, no module.
import * as fs from 'fs';

/** Where the addon may be, seen from a module in `dir` (its __dirname). */
export const addonCandidates = (dir: string): string[] => [`${dir}/podlegs_netns.node`, `${dir}/../../build/Release/podlegs_netns.node`];

/**
 * The addon's exports, or undefined when none of the candidates is there. process.dlopen, not
 * require: a file-based load also inside a single executable application (whose require loads
 * built-ins only). Loading it again (the thin client, then the bundle) gives the same functions.
 */
export function loadAddonFrom<T>(dir: string): T | undefined {
  for (const file of addonCandidates(dir)) {
    if (!fs.existsSync(file)) continue;
    const m = { exports: {} };
    process.dlopen(m, file);
    return m.exports as T;
  }
  return undefined;
}
