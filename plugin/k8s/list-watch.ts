// List+watch of one resource collection, the way client-go's reflector does it:
// list, then watch from the list's resourceVersion with bookmarks; a 410 Gone
// (as status or as an ERROR event) means relist; other failures back off
// exponentially within bounds. Decode errors are never swallowed: they are
// reported and force a relist. Time comes from an injected clock.
import { IncomingMessage } from 'http';
import { ApiError, KubeClient } from './http';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), // retries alone never keep a process alive
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface KubeObject { metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; annotations?: Record<string, string>; labels?: Record<string, string> } }
interface ListResponse<T> { metadata?: { resourceVersion?: string }; items?: T[] }
interface WatchEvent<T> { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: T & { code?: number; message?: string } }

export interface ListWatchOptions {
  clock?: Clock;
  backoffMs?: { initial: number; max: number };
  watchTimeoutSeconds?: number;
  onChange: () => void;
  onError?: (what: string, e: Error) => void;
}

const keyOf = (o: KubeObject): string => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

export class ListWatch<T extends KubeObject> {
  readonly items = new Map<string, T>();
  synced = false;
  relists = 0;
  errors = 0;
  private rv = '';
  private stopped = false;
  private backoff: number;
  private timer: unknown;
  private req?: { destroy(): void };
  private readonly clock: Clock;

  constructor(private readonly client: KubeClient, private readonly path: string, private readonly o: ListWatchOptions) {
    this.clock = o.clock ?? realClock;
    this.backoff = o.backoffMs?.initial ?? 200;
  }

  start(): void {
    this.stopped = false;
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.req?.destroy();
  }

  private fail(what: string, e: Error): void {
    this.errors++;
    this.o.onError?.(what, e);
  }

  private retry(fn: () => void): void {
    if (this.stopped) return;
    const max = this.o.backoffMs?.max ?? 30_000;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, max);
    this.timer = this.clock.setTimeout(fn, wait);
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const list = await this.client.request<ListResponse<T>>(this.path, { timeoutMs: 30_000, retries: 0 });
      if (!Array.isArray(list.items)) throw new Error(`list ${this.path}: no items`);
      this.items.clear();
      for (const it of list.items) this.items.set(keyOf(it), it);
      this.rv = list.metadata?.resourceVersion ?? '';
      this.synced = true;
      this.relists++;
      this.backoff = this.o.backoffMs?.initial ?? 200;
      this.o.onChange();
      this.watch();
    } catch (e) {
      this.fail(`list ${this.path}`, e as Error);
      this.retry(() => void this.relist());
    }
  }

  private watch(): void {
    if (this.stopped) return;
    const sep = this.path.includes('?') ? '&' : '?';
    const query = `watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(this.rv)}&timeoutSeconds=${this.o.watchTimeoutSeconds ?? 300}`;
    const req = this.client.transport().request(this.client.requestOptions(`${this.path}${sep}${query}`, 'GET'), (res: IncomingMessage) => {
      if (res.statusCode === 410) { res.resume(); void this.relist(); return; }
      if (res.statusCode !== 200) {
        res.resume();
        this.fail(`watch ${this.path}`, new ApiError(res.statusCode ?? 0, res.statusMessage ?? '', `watch ${this.path}: ${res.statusCode}`, true));
        this.retry(() => this.watch());
        return;
      }
      let buf = '';
      let restart: 'relist' | 'rewatch' = 'rewatch';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0 && restart === 'rewatch') {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line && this.handle(line) === 'relist') { restart = 'relist'; req.destroy(); }
        }
      });
      res.on('end', () => this.afterStream(restart));
      res.on('error', () => this.afterStream(restart));
      res.on('close', () => this.afterStream(restart));
    });
    let done = false;
    this.afterStream = (how) => {
      if (done) return;
      done = true;
      if (this.stopped) return;
      if (how === 'relist') void this.relist();
      else this.watch(); // server closed the watch (timeoutSeconds): resume from the last RV
    };
    req.on('error', (e) => {
      if (done || this.stopped) return;
      done = true;
      this.fail(`watch ${this.path}`, e);
      this.retry(() => this.watch());
    });
    req.end();
    this.req = req;
  }
  private afterStream: (how: 'relist' | 'rewatch') => void = () => undefined;

  /** Applies one watch event; says "relist" when the stream can no longer be trusted. */
  private handle(line: string): 'ok' | 'relist' {
    let ev: WatchEvent<T>;
    try {
      ev = JSON.parse(line) as WatchEvent<T>;
      if (!ev || typeof ev.type !== 'string' || typeof ev.object !== 'object') throw new Error('not a watch event');
    } catch (e) {
      this.fail(`decode watch event of ${this.path}`, new Error(`${(e as Error).message}: ${line.slice(0, 120)}`));
      return 'relist';
    }
    if (ev.type === 'ERROR') {
      if (ev.object.code !== 410) this.fail(`watch ${this.path}`, new Error(ev.object.message ?? 'watch error'));
      return 'relist';
    }
    const rv = ev.object.metadata?.resourceVersion;
    if (rv) this.rv = rv;
    if (ev.type === 'BOOKMARK') return 'ok';
    if (!ev.object.metadata?.name) {
      this.fail(`decode watch event of ${this.path}`, new Error('object without metadata.name'));
      return 'relist';
    }
    if (ev.type === 'DELETED') this.items.delete(keyOf(ev.object));
    else this.items.set(keyOf(ev.object), ev.object);
    this.backoff = this.o.backoffMs?.initial ?? 200;
    this.o.onChange();
    return 'ok';
  }
}
