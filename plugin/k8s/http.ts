// A small Kubernetes REST client with hard timeouts and bounded retries: an
// unreachable API server must make ADD fail fast (code 11), never hang.
import * as http from 'http';
import * as https from 'https';
import { ApiTarget } from './kubeconfig';

export class ApiError extends Error {
  constructor(readonly status: number, readonly reason: string, msg: string, readonly retryable: boolean) {
    super(msg);
  }
}

export interface RequestOptions {
  method?: 'GET' | 'PATCH' | 'POST';
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  retries?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class KubeClient {
  calls = 0;
  /** reload: how to read the credentials again after a 401 (a long-running agent's token rotates). */
  constructor(public target: ApiTarget, private readonly reload?: () => Promise<ApiTarget>) {}

  /** Options for a raw request (used by watches, which stream). */
  requestOptions(path: string, method: string, headers: Record<string, string> = {}): https.RequestOptions {
    const u = new URL(this.target.server + path);
    return {
      protocol: u.protocol, hostname: u.hostname, port: u.port, path: u.pathname + u.search, method,
      headers: { Accept: 'application/json', ...(this.target.token ? { Authorization: `Bearer ${this.target.token}` } : {}), ...headers },
      ca: this.target.ca, cert: this.target.cert, key: this.target.key,
      rejectUnauthorized: !this.target.insecureSkipTLSVerify,
    };
  }

  transport(): typeof https | typeof http {
    return this.target.server.startsWith('https:') ? https : http;
  }

  private once(path: string, o: RequestOptions): Promise<unknown> {
    const method = o.method ?? 'GET';
    const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: Record<string, string> = body ? { 'Content-Type': o.contentType ?? 'application/json', 'Content-Length': String(body.length) } : {};
    this.calls++;
    return new Promise((resolve, reject) => {
      const req = this.transport().request(this.requestOptions(path, method, headers), (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            try {
              resolve(text ? JSON.parse(text) : {});
            } catch {
              reject(new ApiError(status, 'BadResponse', `${method} ${path}: response is not JSON`, false));
            }
            return;
          }
          let reason = res.statusMessage ?? 'Error';
          let message = text.slice(0, 300);
          try {
            const st = JSON.parse(text) as { reason?: string; message?: string };
            reason = st.reason ?? reason;
            message = st.message ?? message;
          } catch { /* not a Status object */ }
          reject(new ApiError(status, reason, `${method} ${path}: ${status} ${reason}: ${message}`, status >= 500 || status === 429));
        });
        res.on('error', (e) => reject(new ApiError(0, 'Network', `${method} ${path}: ${e.message}`, true)));
      });
      req.setTimeout(o.timeoutMs ?? 2000, () => req.destroy(new Error(`timed out after ${o.timeoutMs ?? 2000} ms`)));
      req.on('error', (e) => reject(e instanceof ApiError ? e : new ApiError(0, 'Network', `${method} ${path}: ${e.message}`, true)));
      req.end(body);
    });
  }

  /** One request, retried (bounded, with backoff) only for network errors, 5xx and 429. */
  async request<T = unknown>(path: string, o: RequestOptions = {}): Promise<T> {
    const retries = o.retries ?? 1;
    let reloaded = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.once(path, o)) as T;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401 && this.reload && !reloaded) {
          reloaded = true;
          this.target = await this.reload();
          attempt--;
          continue;
        }
        if (!(e instanceof ApiError) || !e.retryable || attempt >= retries) throw e;
        await sleep(100 * 2 ** attempt);
      }
    }
  }
}
