// Credentials through @kubernetes/client-node, for kubeconfigs with exec or
// auth-provider plugins. Built as its own file (dist/podlegs-kubeauth.js) so the
// CNI hot path never parses client-node (about 1.5 s and 110 MB to load here).
import { KubeConfig } from '@kubernetes/client-node';
import type { ApiTarget } from './api-target';

export async function targetFromClientNode(path: string): Promise<ApiTarget> {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`kubeconfig ${path}: no current cluster`);
  const opts: { headers?: Record<string, string>; ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  await kc.applyToHTTPSOptions(opts as never);
  const auth = opts.headers?.Authorization ?? opts.headers?.authorization;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ca: opts.ca, cert: opts.cert, key: opts.key,
    token: auth?.startsWith('Bearer ') ? auth.slice(7) : undefined,
    insecureSkipTLSVerify: cluster.skipTLSVerify,
  };
}
