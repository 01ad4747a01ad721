import { Agent, AgentOptions } from '../../overlay/agent/agent';
import { parseAgentConf } from '../../overlay/agent/config';
import { parseHostPort } from '../../overlay/values';
import { AgentMetrics } from '../../overlay/agent/metrics';
import { ZERO_MAC } from '../../overlay/kernel/kernel';
import { FakeKernel, FakeSource, member, MemLog } from './agent-fake';
import { SEEN_MS, waitUntil } from '../support/wait';

jest.setTimeout(2 * SEEN_MS);

const A = '192.0.2.11';
const B = '192.0.2.12';
const C = '192.0.2.13';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const until = (what: string, cond: () => boolean): Promise<unknown> => waitUntil(what, cond, SEEN_MS, 5);

function setup(o: Partial<AgentOptions> = {}): { k: FakeKernel; src: FakeSource; log: MemLog; metrics: AgentMetrics; agent: Agent } {
  const k = new FakeKernel();
  const src = new FakeSource();
  const log = new MemLog();
  const metrics = new AgentMetrics();
  const agent = new Agent(k, src, { localVtep: A, resyncMs: 60_000, debounceMs: 5, graceMs: 60_000, log, metrics, ...o });
  return { k, src, log, metrics, agent };
}

describe('Agent', () => {
  it('programs flood and MAC entries for local VNIs only, and follows joins and leaves', async () => {
    const { k, src, agent } = setup();
    k.addSegment(100);
    src.members = [member(100, A, 1), member(100, B, 2), member(200, C, 3)];
    await agent.reconcile();
    expect(k.entries(100)).toEqual([`${ZERO_MAC} ${B}`, `${member(0, B, 2).mac} ${B}`].sort());
    src.members.push(member(100, C, 4));
    await agent.reconcile();
    expect(k.entries(100)).toContain(`${ZERO_MAC} ${C}`);
    src.members = src.members.filter((m) => m.vtep !== B);
    await agent.reconcile();
    expect(k.entries(100)).toEqual([`${ZERO_MAC} ${C}`, `${member(0, C, 4).mac} ${C}`].sort());
  });

  it('changes nothing when the kernel already matches (restart), and repairs drift', async () => {
    const { k, src, agent } = setup();
    k.addSegment(100);
    src.members = [member(100, B, 2)];
    await agent.reconcile();
    const batches = k.batches.length;
    await agent.reconcile();
    expect(k.batches.length).toBe(batches); // nothing to do: no request at all
    k.fdb = k.fdb.filter((e) => e.mac !== ZERO_MAC); // "bridge fdb del" by hand
    await agent.reconcile();
    expect(k.entries(100)).toContain(`${ZERO_MAC} ${B}`);
  });

  it('reacts to source events, collapsing a burst into one run', async () => {
    const { k, src, agent } = setup();
    k.addSegment(100);
    agent.start();
    try {
      await until('the start run', () => agent.last?.trigger === 'start');
      const runs = agent.runs;
      for (let i = 0; i < 10; i++) src.set([member(100, B, i)]);
      await until('a run after the burst', () => agent.runs > runs && agent.last?.trigger === 'event');
      await sleep(50); // ten debounce periods: no second run for the same burst
      expect(agent.runs - runs).toBe(1);
      expect(k.entries(100)).toContain(`${ZERO_MAC} ${B}`);
    } finally {
      await agent.stop();
    }
  });

  it('does not downgrade a periodic resync that coincides with an event (the source cache is dropped)', async () => {
    const { src, agent } = setup({ debounceMs: 20 });
    agent.kick('event');
    agent.kick('resync');
    agent.kick('event');
    await until('a run', () => agent.last !== undefined);
    await sleep(60); // three debounce periods: no second run
    expect(agent.last?.trigger).toBe('resync');
    expect(src.resyncs).toBe(1);
    expect(agent.runs).toBe(1);
    await agent.stop();
  });

  it('changes nothing and reports unhealthy when the source fails', async () => {
    const { k, src, agent, metrics } = setup();
    k.addSegment(100);
    src.members = [member(100, B, 2)];
    await agent.reconcile();
    const before = k.entries(100);
    src.fail = new Error('registry unreachable');
    await agent.reconcile();
    expect(k.entries(100)).toEqual(before);
    expect(agent.health().ok).toBe(false);
    expect(agent.health().detail.lastError).toContain('registry unreachable');
    expect(await metrics.text()).toMatch(/podlegs_registry_errors_total 1/);
    src.fail = undefined;
    await agent.reconcile();
    expect(agent.health().ok).toBe(true);
  });

  it('logs a bad registry entry once, not on every run, and applies the good ones', async () => {
    const { k, src, agent, log, metrics } = setup();
    k.addSegment(100);
    src.members = [member(100, B, 2)];
    src.problems = [{ where: 'vni-100/x.json', reason: 'mac is malformed' }];
    await agent.reconcile();
    await agent.reconcile();
    expect(log.warnings()).toEqual([expect.stringContaining('vni-100/x.json')]);
    expect(k.entries(100)).toContain(`${ZERO_MAC} ${B}`);
    expect(await metrics.text()).toMatch(/podlegs_registry_bad_entries 1/);
  });

  it('removes a segment without legs after the grace period, keeps busy and used ones', async () => {
    let now = 0;
    const busy = new Set<number>([300]);
    const { k, agent } = setup({ graceMs: 1000, now: () => now, busyVnis: () => busy });
    k.addSegment(100, 0);
    k.addSegment(200, 1);
    k.addSegment(300, 0);
    await agent.reconcile();
    now = 999;
    await agent.reconcile();
    expect(k.links_.map((l) => l.name)).toContain('plbr100');
    now = 1000;
    await agent.reconcile();
    const names = k.links_.map((l) => l.name);
    expect(names).not.toContain('plbr100');
    expect(names).not.toContain('plvx100');
    expect(names).toEqual(expect.arrayContaining(['plbr200', 'plvx200', 'plbr300', 'plvx300']));
    await agent.stop();
  });

  it('treats a segment vanishing during the apply (concurrent DEL) as no failure', async () => {
    const { k, src, agent, log } = setup();
    const vx = k.addSegment(100);
    src.members = [member(100, B, 2)];
    const batch = k.fdbBatch.bind(k);
    let first = true;
    k.fdbBatch = async (changes) => {
      if (first) { first = false; await k.deleteLink(vx); }
      return batch(changes);
    };
    await agent.reconcile();
    expect(log.warnings()).toEqual([]);
    expect(agent.last?.ok).toBe(true);
  });

  it('exports the issue\'s metrics in Prometheus text format', async () => {
    const { k, src, agent, metrics } = setup();
    k.addSegment(100, 2);
    src.members = [member(100, B, 2), member(100, C, 3)];
    await agent.reconcile();
    const text = await metrics.text();
    for (const line of ['podlegs_segments 1', 'podlegs_legs 2', 'podlegs_members 2', 'podlegs_fdb_entries{type="flood"} 2',
      'podlegs_fdb_entries{type="mac"} 2', 'podlegs_reconcile_runs_total 1', 'podlegs_reconcile_errors_total 0', 'podlegs_fdb_changes_total{op="add"} 4']) {
      expect(text).toContain(line);
    }
    expect(text).toMatch(/podlegs_reconcile_duration_seconds_count 1/);
  });
});

describe('agent config', () => {
  it('has defaults', () => expect(parseAgentConf(undefined)).toEqual({ metricsAddress: '127.0.0.1:9750', resyncSeconds: 10, gracePeriodSeconds: 30, debounceMs: 10, socket: '/run/podlegs/agent.sock' }));
  it('accepts valid settings', () => expect(parseAgentConf({ metricsAddress: '[::1]:9999', resyncSeconds: 0.5, gracePeriodSeconds: 0 }))
    .toEqual({ metricsAddress: '[::1]:9999', resyncSeconds: 0.5, gracePeriodSeconds: 0, debounceMs: 10, socket: '/run/podlegs/agent.sock' }));
  it.each<[unknown, string]>([
    [[], 'object'], [{ metricsAddress: 9750 }, 'string'], [{ metricsAddress: 'localhost' }, 'host:port'], [{ metricsAddress: '1.2.3.4:70000' }, 'host:port'],
    [{ resyncSeconds: 0 }, 'resyncSeconds'], [{ resyncSeconds: '10' }, 'resyncSeconds'], [{ gracePeriodSeconds: -1 }, 'gracePeriodSeconds'],
    [{ debounceMs: 1e9 }, 'debounceMs'], [{ resync: 5 }, 'not a known field'],
  ])('rejects %p', (v, why) => expect(() => parseAgentConf(v)).toThrow(why));
  it('splits host and port', () => {
    expect(parseHostPort('127.0.0.1:9750')).toEqual({ host: '127.0.0.1', port: 9750 });
    expect(parseHostPort('[::1]:1')).toEqual({ host: '::1', port: 1 });
  });
});
