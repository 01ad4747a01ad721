// A small Kubernetes REST client with hard timeouts and bounded retries: an
// unreachable API server must make ADD fail fast (code 11), never hang.
import * as http from 'http';
import * as https from 'https';
import type { ApiTarget } from './api-target';

export class ApiError extends Error {
  constructor(readonly status: number, readonly reason: string, msg: string, readonly retryable: boolean) {
    super(msg);
  }
}

export interface RequestOptions {
  method?: 'GET' | 'PATCH' | 'POST';
  body?: unknown;
  contentType?: string;
  /** Bound of one attempt, from connecting to the last byte of the answer. */
  timeoutMs?: number;
  retries?: number;
  signal?: AbortSignal;
}

/**
 * The time the API part of one CNI command may take: every request, retry and
 * backoff together. Time between requests (kernel work, waiting for the node
 * lock) is not charged, so the PATCH after the legs still has what is left.
 */
export class ApiBudget {
  private spent = 0;
  constructor(readonly totalMs: number) {}
  remaining(): number { return this.totalMs - this.spent; }
  spend(ms: number): void { this.spent += ms; }
}

/** The API part of an ADD (pod GET, NAD GETs, network-status PATCH) fails with code 11 after this. */
export const ADD_API_BUDGET_MS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function statusError(method: string, path: string, status: number, statusMessage: string | undefined, text: string): ApiError {
  let reason = statusMessage || 'Error';
  let message = text.slice(0, 300);
  try {
    const st = JSON.parse(text) as { reason?: string; message?: string };
    reason = st.reason ?? reason;
    message = st.message ?? message;
  } catch { /* not a Status object */ }
  return new ApiError(status, reason, `${method} ${path}: ${status} ${reason}: ${message}`, status >= 500 || status === 429);
}

const networkError = (method: string, path: string, e: Error): ApiError =>
  (e instanceof ApiError ? e : new ApiError(0, 'Network', `${method} ${path}: ${e.message}`, true));

export class KubeClient {
  calls = 0;
  /**
   * reload: how to read the credentials again after a 401 (a long-running agent's token rotates).
   * budget: one deadline shared by every request made through this client (a CNI command's).
   */
  constructor(public target: ApiTarget, private readonly reload?: () => Promise<ApiTarget>, readonly budget?: ApiBudget) {}

  private requestOptions(path: string, method: string, headers: Record<string, string> = {}): https.RequestOptions {
    const u = new URL(this.target.server + path);
    return {
      protocol: u.protocol, hostname: u.hostname, port: u.port, path: u.pathname + u.search, method,
      headers: { Accept: 'application/json', ...(this.target.token ? { Authorization: `Bearer ${this.target.token}` } : {}), ...headers },
      ca: this.target.ca, cert: this.target.cert, key: this.target.key,
      rejectUnauthorized: !this.target.insecureSkipTLSVerify,
    };
  }

  private transport(): typeof https | typeof http {
    return this.target.server.startsWith('https:') ? https : http;
  }

  /**
   * Starts a request that is destroyed after ms (connect and TLS included) or when signal aborts;
   * the timer covers the whole exchange, or with headersOnly until the answer's headers.
   */
  private start(method: string, path: string, headers: Record<string, string>, t: { ms: number; why: string; headersOnly?: boolean }, signal: AbortSignal | undefined,
    onResponse: (res: http.IncomingMessage) => void, onError: (e: ApiError) => void): http.ClientRequest {
    this.calls++;
    const req = this.transport().request(this.requestOptions(path, method, headers), (res) => {
      if (t.headersOnly) clearTimeout(timer);
      onResponse(res);
    });
    const timer = setTimeout(() => req.destroy(new ApiError(0, 'Timeout', `${method} ${path}: ${t.why}`, true)), t.ms);
    const abort = (): void => { req.destroy(new ApiError(0, 'Aborted', `${method} ${path}: aborted`, false)); };
    signal?.addEventListener('abort', abort, { once: true });
    req.on('error', (e) => onError(networkError(method, path, e)));
    req.on('close', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    });
    if (signal?.aborted) abort();
    return req;
  }

  private once(path: string, o: RequestOptions, ms: number, why: string): Promise<unknown> {
    const method = o.method ?? 'GET';
    const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: Record<string, string> = body ? { 'Content-Type': o.contentType ?? 'application/json', 'Content-Length': String(body.length) } : {};
    return new Promise((resolve, reject) => {
      const req = this.start(method, path, headers, { ms, why }, o.signal, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return reject(statusError(method, path, status, res.statusMessage, text));
          try {
            resolve(text ? JSON.parse(text) : {});
          } catch {
            reject(new ApiError(status, 'BadResponse', `${method} ${path}: response is not JSON`, false));
          }
        });
        res.on('error', (e) => reject(networkError(method, path, e)));
      }, reject);
      req.end(body);
    });
  }

  /** Runs fn again with credentials read anew when the API answers 401 (once per call). */
  private async withReload<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401 && this.reload)) throw e;
      this.target = await this.reload();
      return fn();
    }
  }

  /**
   * One request, retried (bounded, with backoff) only for network errors, 5xx and 429; with a
   * budget, all attempts and waits together stay within what the budget has left.
   */
  async request<T = unknown>(path: string, o: RequestOptions = {}): Promise<T> {
    const t0 = Date.now();
    const deadline = this.budget ? t0 + this.budget.remaining() : Infinity;
    const perAttempt = o.timeoutMs ?? 2000;
    const retries = o.retries ?? 1;
    const outOfBudget = (): string => `no answer within the ${this.budget!.totalMs} ms the API part of this command may take (all requests and retries together)`;
    try {
      for (let attempt = 0; ; attempt++) {
        const left = deadline - Date.now();
        if (left <= 0) throw new ApiError(0, 'Timeout', `${o.method ?? 'GET'} ${path}: ${outOfBudget()}`, false);
        const ms = Math.min(perAttempt, left);
        try {
          return (await this.withReload(() => this.once(path, o, ms, ms < perAttempt ? outOfBudget() : `timed out after ${ms} ms`))) as T;
        } catch (e) {
          const wait = 100 * 2 ** attempt;
          if (!(e instanceof ApiError) || !e.retryable || attempt >= retries || Date.now() + wait >= deadline) throw e;
          await sleep(wait);
        }
      }
    } finally {
      this.budget?.spend(Date.now() - t0);
    }
  }

  /**
   * A streaming GET (a watch): resolves with the response once the API answered 200, rejects
   * with the API's status otherwise (after one credential reload on 401). headersMs bounds the
   * wait for the answer; the stream itself lasts until the server ends it or signal aborts.
   */
  stream(path: string, signal: AbortSignal, headersMs = 30_000): Promise<http.IncomingMessage> {
    return this.withReload(() => new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.start('GET', path, {}, { ms: headersMs, why: `no answer in ${headersMs} ms`, headersOnly: true }, signal, (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(statusError('GET', path, status, res.statusMessage, Buffer.concat(chunks).toString())));
        res.on('error', (e) => reject(networkError('GET', path, e)));
      }, reject);
      // A silently dead peer (no FIN, no RST) is found by TCP keepalive, not by waiting forever.
      req.on('socket', (s) => s.setKeepAlive(true, 30_000));
      req.end();
    }));
  }
}
