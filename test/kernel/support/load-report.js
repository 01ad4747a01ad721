// Preloaded with NODE_OPTIONS=--require into a podlegs process by test/kernel/agent-socket.test.ts:
// at exit it writes what the process loaded to $PODLEGS_LOAD_REPORT — every script compiled
// through vm.Script (the loader compiles the bundle that way, as "podlegs.js"), every native
// addon (process.dlopen: netlink.node, podlegs_netns.node), every CommonJS module and the
// node built-ins loaded. Plain JS: it runs before anything of podlegs.
'use strict';
const fs = require('fs');
const vm = require('vm');

const report = { scripts: [], dlopen: [] };
const Script = vm.Script;
vm.Script = class extends Script {
  constructor(code, opts) {
    super(code, opts);
    report.scripts.push(typeof opts === 'string' ? opts : opts?.filename ?? '?');
  }
};
const dlopen = process.dlopen;
process.dlopen = function (mod, file, ...rest) {
  report.dlopen.push(file);
  return dlopen.call(this, mod, file, ...rest);
};
process.on('exit', () => {
  const out = process.env.PODLEGS_LOAD_REPORT;
  if (!out) return;
  report.modules = Object.keys(require.cache).filter((f) => f !== __filename);
  report.builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  fs.appendFileSync(out, `${JSON.stringify(report)}\n`);
});
