// The kubeconfig the plugin uses on the host (kubernetes.kubeconfig in its
// entry), made from the DaemonSet pod's own service account: API address from
// KUBERNETES_SERVICE_HOST/PORT, the CA and the (rotating) projected token. The
// plugin runs as a host process started by the runtime, so it cannot read the
// pod's token itself; `conf install --kubeconfig FILE` keeps this file current.
import * as fs from 'fs';
import * as path from 'path';
import { ConfError } from './render';
import { writeFileAtomic } from '../../overlay/fs/atomic-write';

export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterSource {
  /** Directory with token and ca.crt; default the service account mount. */
  saDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** Renders a kubeconfig (JSON, which every kubeconfig reader accepts as YAML) from the pod's service account. */
export function renderInClusterKubeconfig(src: InClusterSource = {}): string {
  const env = src.env ?? process.env;
  const saDir = src.saDir ?? SA_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new ConfError('KUBERNETES_SERVICE_HOST is not set: --kubeconfig needs to run in a pod', 'input');
  let token: string;
  let ca: Buffer;
  try {
    token = fs.readFileSync(path.join(saDir, 'token'), 'utf8').trim();
    ca = fs.readFileSync(path.join(saDir, 'ca.crt'));
  } catch (e) {
    throw new ConfError(`cannot read the service account from ${saDir}: ${(e as Error).message}`, 'input');
  }
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': ca.toString('base64') } }],
    users: [{ name: 'podlegs', user: { token } }],
    contexts: [{ name: 'podlegs', context: { cluster: 'local', user: 'podlegs' } }],
    'current-context': 'podlegs',
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Writes the kubeconfig (mode 0600) when its content changed; true when written. */
export function syncKubeconfig(file: string, src: InClusterSource = {}): boolean {
  const text = renderInClusterKubeconfig(src);
  let old: string | undefined;
  try { old = fs.readFileSync(file, 'utf8'); } catch { old = undefined; }
  if (old === text) return false;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, text, 0o600);
  return true;
}
