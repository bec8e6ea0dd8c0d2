import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { DeliveredBatch, EventBus, SilenceFilter, SilenceStore } from '../core/ports.js';
import type { Alert, Silence, Verdict } from '../core/records.js';
import { buildTopics } from '../core/topics.js';
import type { AlertUpdate } from './alert-book.js';
import { AlertService, MAX_BULK_ACKNOWLEDGE, type AlertServiceDeps } from './alert-service.js';
import { AlertingError } from './errors.js';
import { isSilenceActive, isSilenceOver } from './silences.js';
import type { AlertSink } from './sinks/log-sink.js';

const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;

let n = 0;
/** Bus offsets go on across harnesses, as they do across a restart. */
let nextOffset = 0;
function verdict(overrides: Partial<Verdict> = {}): Verdict {
  n++;
  return {
    verdict_id: `v${String(n).padStart(31, '0')}`,
    event_id: `e${n}`,
    time: T0 + n,
    tenant: 'acme',
    agent_id: 'agent-1',
    agent_name: 'cursor',
    event_type: 'api_call',
    policy_id: 'spike',
    policy_type: 'rate_spike',
    severity: 'medium',
    action: 'alert',
    decision: 'allow',
    would_decide: 'allow',
    mode: 'monitoring',
    reason: `reason ${n}`,
    evidence: { count: n },
    atlas: [],
    late: false,
    exception: '',
    ...overrides,
  };
}

/** SilenceStore semantics in memory (the ClickHouse adapter is tested in storage/clickhouse/silence-store.test.ts). */
class MemorySilenceStore implements SilenceStore {
  readonly rows = new Map<string, Silence>();
  writes = 0;

  async upsertSilences(silences: readonly Silence[]): Promise<void> {
    this.writes++;
    for (const s of silences) {
      const held = this.rows.get(s.silence_id);
      if (held === undefined || held.updated_at <= s.updated_at) this.rows.set(s.silence_id, { ...s });
    }
  }

  async listSilences(filter: SilenceFilter): Promise<Silence[]> {
    return [...this.rows.values()]
      .filter((s) => filter.tenant === undefined || s.tenant === null || s.tenant === filter.tenant)
      .filter((s) => filter.tenant !== null || s.tenant === null)
      .filter((s) => filter.active_at === undefined || isSilenceActive(s, filter.active_at))
      .filter((s) => filter.unexpired_at === undefined || !isSilenceOver(s, filter.unexpired_at))
      .sort((a, b) => b.created_at - a.created_at || (a.silence_id < b.silence_id ? 1 : -1))
      .slice(0, filter.limit ?? 1000)
      .map((s) => ({ ...s }));
  }

  async getSilence(silenceId: string): Promise<Silence | null> {
    const s = this.rows.get(silenceId);
    return s === undefined ? null : { ...s };
  }
}

/** The alerter's surroundings: a bus that hands batches over on demand, an alert table, a silence store, a recording sink. */
function harness(shared: { alerts?: Map<string, Alert>; silences?: MemorySilenceStore; sinks?: AlertSink[] } = {}) {
  const alerts = shared.alerts ?? new Map<string, Alert>();
  const silences = shared.silences ?? new MemorySilenceStore();
  const notified: AlertUpdate[] = [];
  const pending: Alert[] = [];
  const counters = { flushes: 0, lookups: 0 };
  let handler: ((batch: DeliveredBatch<Verdict>) => Promise<void>) | undefined;
  let silenceIds = 0;
  let now = T0;
  const write = (): void => {
    for (const a of pending.splice(0)) {
      const held = alerts.get(a.alert_id);
      if (held === undefined || held.updated_at <= a.updated_at) alerts.set(a.alert_id, a);
    }
  };
  const bus: EventBus = {
    publish: async () => undefined,
    subscribe: async (_topic, _options, h) => {
      handler = h as unknown as typeof handler;
      return { stop: async () => void (handler = undefined) };
    },
    close: async () => undefined,
  };
  const deps: AlertServiceDeps = {
    bus,
    topics: buildTopics(),
    activeAlerts: [...alerts.values()].filter((a) => a.status !== 'resolved'),
    persist: (rows) => void pending.push(...rows),
    flush: async () => {
      counters.flushes++;
      write();
    },
    durable: async () => write(),
    silences,
    storedAlerts: async (ids) => {
      counters.lookups++;
      return ids.flatMap((id) => (alerts.has(id) ? [alerts.get(id) as Alert] : []));
    },
    sinks: [{ name: 'recorder', notify: (u) => void notified.push(u) }, ...(shared.sinks ?? [])],
    logger: pino({ level: 'silent' }),
    clock: () => now,
    silenceReloadMs: 0,
    newSilenceId: () => `sil-${++silenceIds}`,
  };
  const service = new AlertService(deps);
  return {
    service,
    alerts,
    silences,
    notified,
    counters,
    setNow: (t: number) => void (now = t),
    async deliver(...verdicts: Verdict[]): Promise<void> {
      if (handler === undefined) throw new Error('not subscribed');
      await handler({ topic: 'agentwatch.verdicts', partition: 0, records: verdicts.map((value) => ({ key: `${value.tenant}/${value.agent_id}`, value, offset: nextOffset++ })) });
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<AlertingError> {
  const error: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AlertingError);
  return error as AlertingError;
}

const silenceInput = { matchers: { policy_id: 'spike' }, ends_at: T0 + HOUR, comment: 'load test' };

describe('AlertService silences', () => {
  it('stores silenced alerts but notifies no sink, until the silence is expired', async () => {
    const h = harness();
    await h.service.start();
    const s = await h.service.addSilence(silenceInput, 'ana', 'acme');
    expect(s).toMatchObject({ silence_id: 'sil-1', tenant: 'acme', created_by: 'ana' });
    expect(await h.silences.getSilence(s.silence_id)).toEqual(s);

    await h.deliver(verdict(), verdict());
    expect(h.notified).toEqual([]);
    expect(h.service.stats.silenced).toBe(2);
    const [stored] = [...h.alerts.values()];
    expect(stored).toMatchObject({ status: 'open', count: 2, silenced_by: 'sil-1' });

    // Another policy is not covered.
    await h.deliver(verdict({ policy_id: 'other' }));
    expect(h.notified.map((u) => [u.change, u.alert.policy_id])).toEqual([['opened', 'other']]);

    h.setNow(T0 + 10);
    const expired = await h.service.expireSilence(s.silence_id, 'bob', 'acme');
    expect(expired).toMatchObject({ expired_at: T0 + 10, expired_by: 'bob' });
    await h.deliver(verdict());
    expect(h.notified.map((u) => [u.change, u.alert.silenced_by, u.alert.count])).toEqual([
      ['opened', '', 1],
      ['bumped', '', 3],
    ]);
    expect(stored && h.alerts.get(stored.alert_id)).toMatchObject({ silenced_by: '', count: 3 });
    await h.service.stop();
  });

  it('judges silences at processing time: they end by themselves', async () => {
    const h = harness();
    await h.service.start();
    await h.service.addSilence({ ...silenceInput, starts_at: T0 + 100, ends_at: T0 + 200 }, 'ana');
    await h.deliver(verdict());
    h.setNow(T0 + 100);
    await h.deliver(verdict());
    h.setNow(T0 + 200);
    await h.deliver(verdict());
    expect(h.notified.map((u) => [u.change, u.alert.count])).toEqual([
      ['opened', 1],
      ['bumped', 3],
    ]);
  });

  it('still notifies manual changes of a silenced alert', async () => {
    const h = harness();
    await h.service.start();
    await h.service.addSilence(silenceInput, 'ana');
    await h.deliver(verdict());
    const [alert] = [...h.alerts.values()];
    await h.service.acknowledge(alert!.alert_id, 'bob');
    expect(h.notified.map((u) => u.change)).toEqual(['acknowledged']);
  });

  it('reloads silences after a restart, so alerts stay muted, and picks up silences stored elsewhere', async () => {
    const first = harness();
    await first.service.start();
    const s = await first.service.addSilence(silenceInput, 'ana');
    await first.deliver(verdict());
    await first.service.stop();

    const second = harness({ alerts: first.alerts, silences: first.silences });
    await second.service.start();
    expect(second.service.heldSilences()).toBe(1);
    await second.deliver(verdict());
    expect(second.notified).toEqual([]);
    expect([...second.alerts.values()]).toEqual([expect.objectContaining({ count: 2, silenced_by: s.silence_id })]);

    // Another process (an API without the alerter) stores a silence: it applies from the next reload.
    await second.silences.upsertSilences([{ ...s, silence_id: 'elsewhere', matchers: { agent_id: 'agent-2' } }]);
    await second.deliver(verdict({ agent_id: 'agent-2', policy_id: 'other' }));
    await second.service.reloadSilences();
    await second.deliver(verdict({ agent_id: 'agent-2', policy_id: 'other' }));
    expect(second.notified.map((u) => [u.change, u.alert.agent_id])).toEqual([['opened', 'agent-2']]);
    expect(second.service.stats.silenced).toBe(2);
  });

  it('keeps silences within the caller tenant', async () => {
    const h = harness();
    await h.service.start();
    expect((await rejection(h.service.addSilence({ ...silenceInput, tenant: 'globex' }, 'eve', 'acme'))).code).toBe('AW_ALERTING_FORBIDDEN');
    expect((await rejection(h.service.addSilence({ ...silenceInput, tenant: null }, 'eve', 'acme'))).code).toBe('AW_ALERTING_FORBIDDEN');
    expect((await rejection(h.service.addSilence({ ...silenceInput, matchers: {} }, 'eve'))).code).toBe('AW_ALERTING_INVALID_SILENCE');
    expect(h.silences.writes).toBe(0);

    const globex = await h.service.addSilence({ ...silenceInput, tenant: 'globex' }, 'root');
    const everyone = await h.service.addSilence({ ...silenceInput, matchers: { severity: ['low'] } }, 'root');
    const acme = await h.service.addSilence(silenceInput, 'ana', 'acme');
    expect((await rejection(h.service.expireSilence(globex.silence_id, 'eve', 'acme'))).code).toBe('AW_ALERTING_NOT_FOUND');
    expect((await rejection(h.service.expireSilence(everyone.silence_id, 'eve', 'acme'))).code).toBe('AW_ALERTING_FORBIDDEN');
    expect((await rejection(h.service.expireSilence('nope', 'root'))).code).toBe('AW_ALERTING_NOT_FOUND');
    expect(await h.service.getSilence(globex.silence_id, 'acme')).toBeNull();
    expect(await h.service.getSilence(everyone.silence_id, 'acme')).toEqual(everyone);

    const ids = (silences: Silence[]): string[] => silences.map((x) => x.silence_id).sort();
    expect(ids(await h.service.listSilences({ tenant: 'acme' }))).toEqual(ids([everyone, acme]));
    expect(ids(await h.service.listSilences({ tenant: null }))).toEqual([everyone.silence_id]);
    expect(await h.service.listSilences()).toHaveLength(3);

    h.setNow(T0 + 5);
    const expired = await h.service.expireSilence(acme.silence_id, 'ana', 'acme');
    // Idempotent: expiring again returns the silence as it is (from the store: it left memory).
    expect(await h.service.expireSilence(acme.silence_id, 'bob', 'acme')).toEqual(expired);
    expect(ids(await h.service.listSilences({ tenant: 'acme', active: true }))).toEqual([everyone.silence_id]);
    expect(ids(await h.service.listSilences({ tenant: 'acme' }))).toEqual(ids([everyone, acme]));
  });
});

describe('AlertService acknowledge and resolve', () => {
  async function withAlerts() {
    const h = harness();
    await h.service.start();
    await h.deliver(verdict({ agent_id: 'a1' }), verdict({ agent_id: 'a2' }), verdict({ agent_id: 'a3', tenant: 'globex' }), verdict({ agent_id: 'a4' }));
    const id = (agent: string): string => [...h.alerts.values()].find((a) => a.agent_id === agent)!.alert_id;
    h.notified.length = 0;
    return { h, id };
  }

  it('acknowledges many with one flush and reports each id', async () => {
    const { h, id } = await withAlerts();
    await h.service.resolve(id('a4'));
    const flushes = h.counters.flushes;
    h.setNow(T0 + 50);
    const results = await h.service.acknowledgeMany([id('a1'), id('a2'), id('a4'), 'f'.repeat(32), id('a1')], 'ana', undefined, 'triaged');
    expect(results.map((r) => [r.alert_id, r.status])).toEqual([
      [id('a1'), 'acknowledged'],
      [id('a2'), 'acknowledged'],
      [id('a4'), 'conflict'],
      ['f'.repeat(32), 'not_found'],
      [id('a1'), 'acknowledged'],
    ]);
    expect(results[0]?.alert).toMatchObject({ status: 'acknowledged', acknowledged_by: 'ana', comment: 'triaged' });
    expect(results[2]?.alert).toMatchObject({ status: 'resolved' });
    expect(results[3]?.alert).toBeUndefined();
    expect(h.counters.flushes - flushes).toBe(1);
    expect(h.alerts.get(id('a2'))).toMatchObject({ status: 'acknowledged', updated_at: T0 + 50 });
    expect(h.notified.filter((u) => u.change === 'acknowledged').map((u) => u.alert.agent_id).sort()).toEqual(['a1', 'a2']);
  });

  it('lets a tenant-bound caller acknowledge only its tenant\'s alerts', async () => {
    const { h, id } = await withAlerts();
    const results = await h.service.acknowledgeMany([id('a1'), id('a3')], 'ana', 'acme');
    expect(results.map((r) => r.status)).toEqual(['acknowledged', 'not_found']);
    expect(h.alerts.get(id('a3'))?.status).toBe('open');
    // A resolved alert of another tenant is not a conflict to this caller either.
    await h.service.resolve(id('a3'));
    expect((await h.service.acknowledgeMany([id('a3')], 'ana', 'acme'))[0]?.status).toBe('not_found');
    expect((await h.service.acknowledgeMany([id('a3')], 'root'))[0]?.status).toBe('conflict');
  });

  it('refuses more than the bulk limit and does nothing for none', async () => {
    const { h } = await withAlerts();
    const tooMany = Array.from({ length: MAX_BULK_ACKNOWLEDGE + 1 }, (_, i) => i.toString(16).padStart(32, '0'));
    expect((await rejection(h.service.acknowledgeMany(tooMany, 'ana'))).code).toBe('AW_ALERTING_TOO_MANY_IDS');
    const flushes = h.counters.flushes;
    expect(await h.service.acknowledgeMany([], 'ana')).toEqual([]);
    expect(h.counters).toMatchObject({ flushes, lookups: 0 });
  });

  it('confines single acknowledge and resolve to the caller tenant and keeps the comment', async () => {
    const { h, id } = await withAlerts();
    expect((await rejection(h.service.acknowledge(id('a3'), 'eve', 'acme'))).code).toBe('AW_ALERTING_NOT_FOUND');
    expect((await rejection(h.service.resolve(id('a3'), 'eve', 'acme'))).code).toBe('AW_ALERTING_NOT_FOUND');
    expect(await h.service.acknowledge(id('a3'), 'gina', 'globex', 'mine')).toMatchObject({ status: 'acknowledged', comment: 'mine' });
    const resolved = await h.service.resolve(id('a1'), 'ana', 'acme', 'false positive');
    expect(resolved).toMatchObject({ status: 'resolved', comment: 'false positive' });
    expect(h.alerts.get(id('a1'))).toEqual(resolved);
  });
});

describe('AlertService and sinks that store what they notify', () => {
  it('tells muted changes to silenced(), and commits a batch only once the sinks are durable', async () => {
    const calls: string[] = [];
    let failDurable = false;
    const sink: AlertSink = {
      name: 'outbox',
      notify: (u) => void calls.push(`notify:${u.change}`),
      silenced: (u) => void calls.push(`silenced:${u.change}`),
      durable: async () => {
        calls.push('durable');
        if (failDurable) throw new Error('outbox down');
      },
    };
    const h = harness({ sinks: [sink] });
    await h.service.start();
    await h.deliver(verdict());
    expect(calls).toEqual(['notify:opened', 'durable']);

    await h.service.addSilence(silenceInput, 'ana');
    await h.deliver(verdict());
    expect(calls.slice(2)).toEqual(['silenced:bumped', 'durable']);

    // The bus redelivers a batch whose handler rejects: its offsets are not committed.
    failDurable = true;
    await expect(h.deliver(verdict({ policy_id: 'other' }))).rejects.toThrow('outbox down');
    // A change by hand is stored already; the caller is not failed for the outbox.
    const [open] = [...h.alerts.values()].filter((a) => a.policy_id === 'other');
    await expect(h.service.acknowledge(open?.alert_id ?? '', 'ana')).resolves.toMatchObject({ status: 'acknowledged' });
    expect(calls.slice(-2)).toEqual(['notify:acknowledged', 'durable']);
    await h.service.stop();
  });
});
