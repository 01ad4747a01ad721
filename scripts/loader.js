#!/usr/bin/env node
// dist/podlegs: this loader and the thin client, a few KB. The bundle is podlegs.js beside it
// (not inside this file: node reads and scans all of its main script before running a line,
// ~2-3 ms for 0.6 MB even as a comment, which every call the agent serves would pay). The
// loader runs the bundle with the V8 code cache made for it at build time (podlegs.jsc,
// beside), so that a CNI call neither compiles the 0.6 MB bundle nor, for the functions the
// build's training runs executed, compiles them lazily on first call. Without the cache
// everything still works, only slower.
// scripts/build.mjs fills in the names below. Plain CommonJS on purpose (no bundling, no
// TypeScript): it is the only code node compiles itself.
//
// The bundle runs as a CommonJS module of its own path: require resolves from it and
// __filename/__dirname are its, so the natives beside it (netlink.node, podlegs_netns.node)
// and podlegs-kubeauth.js load as before. The cache is used only when its header names this
// exact bundle (the build id in the bundle's first line) and this node; V8 may still reject it
// (other V8 flags, e.g. NODE_OPTIONS): then the bundle is compiled without it, just slower.
//
//   PODLEGS_CODE_CACHE_WRITE=FILE   read the cache from FILE (when there) instead, and at exit
//                                   write one with every function compiled so far (the build's
//                                   training runs; runs may be chained, the cache accumulates)
//   PODLEGS_CODE_CACHE_DEBUG=1      say on stderr whether the cache was used
//
// Before all that, a CNI call goes to the node agent's socket: build.mjs replaces the last
// line with the thin client (plugin/cni-client, node built-ins only), which calls runBundle()
// only when no agent takes the call. Nothing above runs for a call the agent serves.
function runBundle() {
  const fs = require('fs');
  const path = require('path');
  const vm = require('vm');
  const Module = require('module');

  const BUNDLE = 'podlegs.js';
  const CACHE = 'podlegs.jsc';
  const MAGIC = 'podlegs-code-cache 1';

  const file = path.join(__dirname, BUNDLE);
  let body;
  try {
    // ASCII (esbuild escapes the rest; build.mjs checks): latin1 is the cheapest decode.
    body = fs.readFileSync(file, 'latin1');
  } catch (e) {
    const msg = `podlegs: cannot read the bundle ${file} (${e.code ?? e.message}): copy it beside ${__filename} (npm run build makes both)`;
    if (process.env.CNI_COMMAND) process.stdout.write(`${JSON.stringify({ cniVersion: '1.0.0', code: 5, msg })}\n`);
    else process.stderr.write(`${msg}\n`);
    process.exit(1);
  }

  // First line of the bundle: "//podlegs-bundle <id>". A cache header: MAGIC, id, node version
  // and arch, then a newline and V8's data.
  const id = body.startsWith('//podlegs-bundle ') ? body.slice(17, body.indexOf('\n')) : '';
  const key = `${MAGIC} ${id} ${process.version} ${process.arch}\n`;
  const writeTo = process.env.PODLEGS_CODE_CACHE_WRITE;
  const debug = process.env.PODLEGS_CODE_CACHE_DEBUG === '1';
  const cacheFile = writeTo || path.join(__dirname, CACHE);
  let cachedData;
  let status = 'none';
  if (id) {
    try {
      const buf = fs.readFileSync(cacheFile);
      if (buf.length > key.length && buf.toString('latin1', 0, key.length) === key) cachedData = buf.subarray(key.length);
      else status = 'stale (other bundle or node)';
    } catch {
      status = 'missing';
    }
  }

  // Same wrapper as Node's CommonJS loader; on the bundle's first line, which is a comment, so
  // line and column numbers in stack traces and profiles are the bundle's own. The script is
  // named BUNDLE, not its path: V8 (node 20) keeps the name the script had when the cache was
  // made (the build's staging directory), so stack traces would name a path that never
  // existed here; this way they say podlegs.js:LINE:COLUMN, with or without the cache.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${body}\n})`, {
    filename: BUNDLE,
    cachedData,
  });
  if (cachedData) status = script.cachedDataRejected ? 'rejected by V8' : 'used';
  if (debug) process.stderr.write(`podlegs: code cache ${cacheFile}: ${status}\n`);

  if (writeTo) {
    process.on('exit', () => {
      const tmp = `${writeTo}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(key, 'latin1'), script.createCachedData()]));
      fs.renameSync(tmp, writeTo);
    });
  }

  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(__dirname);
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, __dirname);
}

runBundle(); // PODLEGS-CNI-CLIENT
