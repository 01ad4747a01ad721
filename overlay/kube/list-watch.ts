// List+watch of one resource collection, the way client-go's reflector does it:
// list, then watch from the list's resourceVersion with bookmarks; a 410 Gone
// (as status or as an ERROR event) means relist; other failures back off
// exponentially within bounds. Decode errors are never swallowed: they are
// reported and force a relist. A 401 rereads the kubeconfig (KubeClient), for
// watches as for lists. Time comes from an injected clock.
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

/** client-go's rule: a watch that ends within this time having received nothing counts as a failure. */
const SHORT_WATCH_MS = 1000;

/**
 * One request at a time per reflector, by construction: every list or watch runs under a new
 * generation (the previous request is aborted first), callbacks of an older generation are
 * ignored, and each stream settles exactly once however many of end/error/close fire.
 */
export class ListWatch<T extends KubeObject> {
  readonly items = new Map<string, T>();
  synced = false;
  relists = 0;
  errors = 0;
  private rv = '';
  private stopped = true;
  private backoff: number;
  private timer: unknown;
  private generation = 0;
  private abort?: AbortController;
  private readonly clock: Clock;

  constructor(private readonly client: KubeClient, private readonly path: string, private readonly o: ListWatchOptions) {
    this.clock = o.clock ?? realClock;
    this.backoff = this.initialBackoff();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.next('relist');
  }

  stop(): void {
    this.stopped = true;
    this.begin(); // aborts what runs and makes its callbacks stale
  }

  private initialBackoff(): number { return this.o.backoffMs?.initial ?? 200; }

  /** Aborts the current request and timer; returns the new generation and its signal. */
  private begin(): { gen: number; signal: AbortSignal } {
    this.clock.clearTimeout(this.timer);
    this.abort?.abort();
    this.abort = new AbortController();
    return { gen: ++this.generation, signal: this.abort.signal };
  }

  /** The only way the next request starts: now, or after the backoff when the last one failed. */
  private next(how: 'relist' | 'rewatch', failed?: { what: string; error: Error }): void {
    if (this.stopped) return;
    const { gen } = this.begin();
    const run = (): void => {
      if (gen !== this.generation || this.stopped) return;
      if (how === 'relist') void this.relist();
      else this.watch();
    };
    if (!failed) return run();
    this.fail(failed.what, failed.error);
    const max = this.o.backoffMs?.max ?? 30_000;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, max);
    this.timer = this.clock.setTimeout(run, wait);
  }

  private fail(what: string, e: Error): void {
    this.errors++;
    this.o.onError?.(what, e);
  }

  private async relist(): Promise<void> {
    const { gen, signal } = this.begin();
    let list: ListResponse<T>;
    try {
      list = await this.client.request<ListResponse<T>>(this.path, { timeoutMs: 30_000, retries: 0, signal });
      if (!Array.isArray(list.items)) throw new Error(`list ${this.path}: no items`);
    } catch (e) {
      if (gen === this.generation) this.next('relist', { what: `list ${this.path}`, error: e as Error });
      return;
    }
    if (gen !== this.generation) return;
    this.items.clear();
    for (const it of list.items) this.items.set(keyOf(it), it);
    this.rv = list.metadata?.resourceVersion ?? '';
    this.synced = true;
    this.relists++;
    this.backoff = this.initialBackoff();
    this.o.onChange();
    this.next('rewatch');
  }

  private watch(): void {
    const { gen, signal } = this.begin();
    const sep = this.path.includes('?') ? '&' : '?';
    const query = `watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(this.rv)}&timeoutSeconds=${this.o.watchTimeoutSeconds ?? 300}`;
    const what = `watch ${this.path}`;
    const started = this.clock.now();
    this.client.stream(`${this.path}${sep}${query}`, signal).then((res) => {
      let settled = false;
      let events = 0;
      let buf = '';
      const settle = (how: 'relist' | 'rewatch', error?: Error): void => {
        if (settled) return;
        settled = true;
        res.destroy();
        if (gen !== this.generation) return;
        if (!error && how === 'rewatch' && events === 0 && this.clock.now() - started < SHORT_WATCH_MS) {
          error = new Error(`${what}: ended after less than ${SHORT_WATCH_MS} ms without an event`);
        }
        if (!error) this.backoff = this.initialBackoff();
        this.next(how, error ? { what, error } : undefined); // a clean end (timeoutSeconds): resume from the last RV
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while (!settled && (nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          events++;
          if (this.handle(line) === 'relist') settle('relist');
        }
      });
      res.on('end', () => settle('rewatch'));
      res.on('error', (e) => settle('rewatch', e));
      res.on('close', () => settle('rewatch'));
    }, (e: Error) => {
      if (gen !== this.generation) return;
      if (e instanceof ApiError && e.status === 410) return this.next('relist');
      this.next('rewatch', { what, error: e });
    });
  }

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
