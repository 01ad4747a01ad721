// Reading a kubeconfig on the CNI hot path. @kubernetes/client-node costs about
// 1.5 s and 110 MB to load here (measured: `node -e "require('@kubernetes/client-node')"`),
// which a per-pod CNI process cannot pay; the common credentials (token, token
// file, client certificate, CA) are read directly. Kubeconfigs that need exec or
// auth-provider plugins go through client-node's KubeConfig instead.
import * as fs from 'fs';
import * as path from 'path';
import { createRequire } from 'module';
import type { ApiTarget } from './api-target';

export type { ApiTarget };


type Obj = Record<string, unknown>;
const named = (list: unknown, name: unknown, key: string): Obj | undefined =>
  Array.isArray(list) ? ((list as Obj[]).find((x) => x?.name === name)?.[key] as Obj | undefined) : undefined;
const b64 = (v: unknown): Buffer | undefined => (typeof v === 'string' ? Buffer.from(v, 'base64') : undefined);
const file = (v: unknown): Buffer | undefined => (typeof v === 'string' ? fs.readFileSync(v) : undefined);

function parseDoc(text: string): Obj {
  try {
    return JSON.parse(text) as Obj; // JSON is YAML: the installer writes kubeconfigs as JSON
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const yaml = require('js-yaml') as { load(s: string): unknown };
    return yaml.load(text) as Obj;
  }
}

/** The current context's cluster and credentials; throws with a message naming what is missing. */
export function readKubeconfig(path: string): ApiTarget {
  const doc = parseDoc(fs.readFileSync(path, 'utf8'));
  const ctxName = doc['current-context'] ?? (Array.isArray(doc.contexts) ? (doc.contexts as Obj[])[0]?.name : undefined);
  const ctx = named(doc.contexts, ctxName, 'context');
  if (!ctx) throw new Error(`kubeconfig ${path}: no context "${String(ctxName)}"`);
  const cluster = named(doc.clusters, ctx.cluster, 'cluster');
  if (!cluster || typeof cluster.server !== 'string') throw new Error(`kubeconfig ${path}: cluster "${String(ctx.cluster)}" has no server`);
  const user = named(doc.users, ctx.user, 'user') ?? {};
  if (user.exec || user['auth-provider']) throw new NeedsClientNode(path);
  const tokenFile = typeof user.tokenFile === 'string' ? fs.readFileSync(user.tokenFile, 'utf8').trim() : undefined;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ca: b64(cluster['certificate-authority-data']) ?? file(cluster['certificate-authority']),
    cert: b64(user['client-certificate-data']) ?? file(user['client-certificate']),
    key: b64(user['client-key-data']) ?? file(user['client-key']),
    token: typeof user.token === 'string' ? user.token : tokenFile,
    insecureSkipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
  };
}

export class NeedsClientNode extends Error {
  constructor(path: string) {
    super(`kubeconfig ${path} uses an exec/auth-provider credential plugin`);
  }
}

/** Exotic credentials: let @kubernetes/client-node resolve them (slow, but correct). */
async function readKubeconfigWithClientNode(kubeconfig: string): Promise<ApiTarget> {
  // Bundled: a separate file beside the executable; from source: the TS module.
  // A computed specifier keeps esbuild from inlining client-node into the plugin bundle.
  const bundled = path.join(__dirname, 'podlegs-kubeauth.js');
  const devSpec = './client-node-auth';
  const mod = (fs.existsSync(bundled) ? createRequire(__filename)(bundled) : require(devSpec)) as typeof import('./client-node-auth'); // eslint-disable-line @typescript-eslint/no-require-imports
  return mod.targetFromClientNode(kubeconfig);
}

export async function loadApiTarget(path: string): Promise<ApiTarget> {
  try {
    return readKubeconfig(path);
  } catch (e) {
    if (e instanceof NeedsClientNode) return readKubeconfigWithClientNode(path);
    throw e;
  }
}
