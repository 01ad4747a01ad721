// /metrics and /healthz over plain HTTP. Loopback by default: the figures say
// which networks a node takes part in, nothing to publish beyond the node.
import * as http from 'http';

export interface Health { ok: boolean; detail: Record<string, unknown> }
export interface HttpHandlers { metrics(): Promise<{ contentType: string; body: string }>; health(): Health }

/** Splits "host:port" / "[v6]:port" into its parts; throws a message naming the problem. */
export function parseHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`"${addr.slice(0, 80)}" is not host:port (e.g. 127.0.0.1:9750 or [::1]:9750)`);
  return { host: m[1] ?? m[2], port };
}

export function serveHttp(addr: string, h: HttpHandlers): Promise<http.Server> {
  const { host, port } = parseHostPort(addr);
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
