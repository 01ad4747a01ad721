// /metrics and /healthz over plain HTTP. Loopback by default: the figures say
// which networks a node takes part in, nothing to publish beyond the node.
import * as http from 'http';
import { parseHostPort } from '../values';

export interface Health { ok: boolean; detail: Record<string, unknown> }
export interface HttpHandlers { metrics(): Promise<{ contentType: string; body: string }>; health(): Health }


export function serveHttp(addr: string, h: HttpHandlers): Promise<http.Server> {
  const hp = parseHostPort(addr);
  if (typeof hp === 'string') return Promise.reject(new Error(hp));
  const { host, port } = hp;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (url === '/metrics') {
      h.metrics().then(
        (m) => res.writeHead(200, { 'Content-Type': m.contentType }).end(m.body),
        (e: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${e.message}\n`));
    } else if (url === '/healthz') {
      const hl = h.health();
      res.writeHead(hl.ok ? 200 : 503, { 'Content-Type': 'application/json' }).end(`${JSON.stringify({ status: hl.ok ? 'ok' : 'unhealthy', ...hl.detail })}\n`);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('try /metrics or /healthz\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(server); });
  });
}
