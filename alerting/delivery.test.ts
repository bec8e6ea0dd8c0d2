import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../core/records.js';
import type { AlertChange } from './alert-book.js';
import { DeliveryConfigSchema } from './delivery-config.js';
import { DeliveryService } from './delivery.js';
import { MemoryDeliveryStore, T0, testAlert } from './delivery-testing.js';
import { AlertingError } from './errors.js';
import type { DeliveryTransport, TransportResponse } from './sinks/http-transport.js';
import type { RenderedRequest } from './sinks/payloads.js';

const MINUTE = 60_000;
const SECRET_URL = 'http://hooks.example/services/SECRET-PATH';

type Reply = TransportResponse | Error;

/** A service on a fake clock, with a scripted transport and a memory store; the store outlives restarts. */
function harness(sinks: Record<string, unknown>[], shared: { store?: MemoryDeliveryStore; now?: number; activeAlerts?: Alert[] } = {}) {
  const store = shared.store ?? new MemoryDeliveryStore();
  const sent: RenderedRequest[] = [];
  const replies: Reply[] = [];
  /** How many row versions the store held at each send. */
  const sentAfterWrites: number[] = [];
  const logs: string[] = [];
  let now = shared.now ?? T0;
  const transport: DeliveryTransport = async (request) => {
    sentAfterWrites.push(store.history.length);
    sent.push(request);
    const reply = replies.shift() ?? { status: 200, retryAfterMs: null, body: '' };
    if (reply instanceof Error) throw reply;
    return reply;
  };
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString());
        done();
      },
    }),
  );
  const service = new DeliveryService({
    store,
    config: DeliveryConfigSchema.parse({ sinks }),
    logger,
    activeAlerts: shared.activeAlerts ?? [],
    transport,
    clock: () => now,
    random: () => 0.5,
    schedule: () => () => undefined,
  });
  return {
    service,
    store,
    sent,
    sentAfterWrites,
    replies,
    logs,
    now: () => now,
    advance: (ms: number) => void (now += ms),
    /** What an AlertService does with one change: notify, then wait for durability. */
    async change(alert: Alert, change: AlertChange): Promise<void> {
      service.notify({ alert, change });
      await service.durable();
    },
  };
}

const hook = { name: 'hook', kind: 'webhook', url: SECRET_URL, headers: { Authorization: 'Bearer SECRET-TOKEN' }, backoff: { initial_ms: 1_000, max_ms: 60_000 }, max_attempts: 3 };
const status = (code: number, body = '', retryAfterMs: number | null = null): TransportResponse => ({ status: code, retryAfterMs, body });

describe('DeliveryService', () => {
  it('stores a notification pending before sending it, then marks it delivered', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.service.notify({ alert: testAlert(), change: 'opened' });
    expect(h.sent).toHaveLength(0);
    expect(h.store.rows.size).toBe(0);
    await h.service.durable();
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(1);
    // Stored pending before the attempt, delivered after it.
    expect(h.sentAfterWrites).toEqual([1]);
    expect(h.store.history).toEqual(['pending/1', 'delivered/2']);
    const [row] = h.store.all();
    expect(row).toMatchObject({ status: 'delivered', attempts: 1, delivered_at: T0, version: 2 });
    expect(h.sent[0]?.headers['idempotency-key']).toBe(row?.notification_id);
    expect(h.service.stats).toMatchObject({ made: 1, delivered: 1 });
    expect(await h.service.deliveriesFor('a1')).toEqual([row]);
  });

  it('notifies opened, escalated and resolved; not bumps or acknowledgements', async () => {
    const h = harness([hook]);
    await h.service.start();
    await h.change(testAlert({ severity: 'medium' }), 'opened');
    await h.change(testAlert({ severity: 'medium', count: 4 }), 'bumped');
    await h.change(testAlert({ severity: 'high', count: 5 }), 'escalated');
    await h.change(testAlert({ severity: 'high', status: 'acknowledged' }), 'acknowledged');
    await h.change(testAlert({ severity: 'high', status: 'resolved', resolved_at: T0 + 1 }), 'resolved');
    await h.service.deliverDue();
    expect(h.sent.map((r) => JSON.parse(r.body).change)).toEqual(['opened', 'escalated', 'resolved']);
  });

  it('routes by severity, policy and tenant; a sink first told on escalation hears "opened", and only told sinks hear the resolve', async () => {
    const h = harness([
      { ...hook, name: 'all' },
      { ...hook, name: 'critical', match: { severities: ['critical'] } },
      { ...hook, name: 'beta', match: { tenants: ['beta*'] } },
      { ...hook, name: 'spikes', match: { policies: ['*-spike'] } },
    ]);
    await h.service.start();
    await h.change(testAlert(), 'opened');
    await h.change(testAlert({ severity: 'critical' }), 'escalated');
    await h.change(testAlert({ severity: 'critical', status: 'resolved', resolved_at: T0 + 5 }), 'resolved');
    await h.service.deliverDue();
    const told = h.store.all().map((d) => `${d.sink}:${d.change}`);
    expect(told.sort()).toEqual(['all:escalated', 'all:opened', 'all:resolved', 'critical:opened', 'critical:resolved', 'spikes:escalated', 'spikes:opened', 'spikes:resolved']);
  });

  it('retries a 500 with exponential backoff and full jitter, then delivers', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.replies.push(status(500, 'down'), status(503));
    await h.change(testAlert(), 'opened');
    await h.service.deliverDue();
    // random() = 0.5: half of the ceiling, 1 s then 2 s.
    expect(h.store.all()[0]).toMatchObject({ status: 'pending', attempts: 1, next_attempt_at: T0 + 500, last_error: 'HTTP 500 from hooks.example: down' });
    h.advance(499);
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(1);
    h.advance(1);
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(2);
    expect(h.store.all()[0]).toMatchObject({ status: 'pending', attempts: 2, next_attempt_at: T0 + 500 + 1_000 });
    h.advance(1_000);
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(3);
    expect(h.store.all()[0]).toMatchObject({ status: 'delivered', attempts: 3, delivered_at: T0 + 1_500 });
    expect(new Set(h.sent.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(new Set(h.sent.map((r) => r.body)).size).toBe(1);
  });

  it('dead-letters after max_attempts, at once on a refusal, and retries network errors', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.replies.push(new AlertingError('AW_ALERTING_DELIVERY_FAILED', 'POST to hooks.example failed: ECONNREFUSED', { retriable: true }), status(502), status(500, 'still down'));
    await h.change(testAlert(), 'opened');
    for (let i = 0; i < 3; i++) {
      await h.service.deliverDue();
      h.advance(60_000);
    }
    expect(h.store.all()[0]).toMatchObject({ status: 'failed', attempts: 3, last_error: 'HTTP 500 from hooks.example: still down' });
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(3);

    h.replies.push(status(400, 'bad payload'));
    await h.change(testAlert({ alert_id: 'a2' }), 'opened');
    await h.service.deliverDue();
    expect(h.store.all()[1]).toMatchObject({ alert_id: 'a2', status: 'failed', attempts: 1, last_error: 'HTTP 400 from hooks.example: bad payload' });
    expect(h.service.stats.dead_lettered).toBe(2);
  });

  it('honours Retry-After up to backoff.max_ms', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.replies.push(status(429, '', 30_000));
    await h.change(testAlert(), 'opened');
    await h.service.deliverDue();
    expect(h.store.all()[0]?.next_attempt_at).toBe(T0 + 30_000);
  });

  it('sends a sink the notifications of one alert in order: a resolve waits for the open being retried', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.replies.push(status(500));
    await h.change(testAlert(), 'opened');
    await h.service.deliverDue();
    await h.change(testAlert({ status: 'resolved', resolved_at: T0 + 1 }), 'resolved');
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(1);
    h.advance(500);
    await h.service.deliverDue();
    expect(h.sent.map((r) => JSON.parse(r.body).change)).toEqual(['opened', 'opened', 'resolved']);
  });

  it('after a restart: resumes pending notifications, never re-sends a delivered one, and a replayed change makes none', async () => {
    const first = harness([hook]);
    await first.service.start();
    first.replies.push(status(500));
    await first.change(testAlert(), 'opened');
    await first.change(testAlert({ alert_id: 'a2' }), 'opened');
    await first.service.deliverDue();
    await first.service.stop();
    expect(first.store.all().map((d) => d.status).sort()).toEqual(['delivered', 'pending']);

    const second = harness([hook], { store: first.store, now: T0 + 10_000, activeAlerts: [testAlert(), testAlert({ alert_id: 'a2' })] });
    await second.service.start();
    // Verdicts replayed after the restart open the same alerts again.
    await second.change(testAlert(), 'opened');
    await second.change(testAlert({ alert_id: 'a2' }), 'opened');
    await second.service.deliverDue();
    expect(second.sent).toHaveLength(1);
    expect(second.sent[0]?.headers['idempotency-key']).toBe(first.sent[0]?.headers['idempotency-key']);
    expect(second.store.all().map((d) => d.status)).toEqual(['delivered', 'delivered']);
    expect(second.store.rows.size).toBe(2);
  });

  it('does not send again a notification delivered while a replay read it as pending', async () => {
    const h = harness([hook]);
    await h.service.start();
    await h.change(testAlert(), 'opened');
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(1);
    // The replay's read of the outbox saw the row before the attempt's outcome was stored.
    const stale = h.store.all().map((d) => ({ ...d, status: 'pending' as const, attempts: 0, version: 1 }));
    h.store.getDeliveries = async () => stale;
    await h.change(testAlert(), 'opened');
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(1);
  });

  it('reminds while an alert stays open and unacknowledged, with ids a restart recomputes', async () => {
    const h = harness([{ ...hook, repeat_interval_minutes: 10 }]);
    await h.service.start();
    await h.change(testAlert(), 'opened');
    await h.service.deliverDue();
    h.advance(10 * MINUTE - 1);
    await h.service.deliverDue();
    expect(h.sent).toHaveLength(1);
    h.advance(1);
    await h.service.deliverDue();
    expect(h.sent.map((r) => JSON.parse(r.body).change)).toEqual(['opened', 'reminder']);

    // A restart 25 minutes later: one reminder (not one per missed slot), the same id as a second process would make.
    const at = h.now() + 25 * MINUTE;
    const restarts = [harness([{ ...hook, repeat_interval_minutes: 10 }], { store: h.store, now: at, activeAlerts: [testAlert()] })];
    restarts.push(harness([{ ...hook, repeat_interval_minutes: 10 }], { store: new MemoryDeliveryStore(), now: at, activeAlerts: [testAlert()] }));
    for (const d of h.store.all()) await restarts[1]?.store.upsertDeliveries([d]);
    for (const r of restarts) {
      await r.service.start();
      await r.service.deliverDue();
    }
    expect(restarts.map((r) => r.sent.map((s) => s.headers['idempotency-key']))).toEqual([[expect.any(String)], [restarts[0]?.sent[0]?.headers['idempotency-key']]]);

    const r = restarts[0];
    if (r === undefined) throw new Error('unreachable');
    await r.change(testAlert({ status: 'acknowledged', acknowledged_by: 'ana' }), 'acknowledged');
    r.advance(60 * MINUTE);
    await r.service.deliverDue();
    expect(r.sent).toHaveLength(1);
  });

  it('keeps reminding Alertmanager of acknowledged alerts, and stops for a silence', async () => {
    const h = harness([{ name: 'am', kind: 'alertmanager', url: 'http://am.example/api/v2/alerts' }]);
    await h.service.start();
    await h.change(testAlert(), 'opened');
    await h.change(testAlert({ status: 'acknowledged' }), 'acknowledged');
    h.advance(4 * MINUTE);
    await h.service.deliverDue();
    expect(h.store.all().map((d) => d.change)).toEqual(['opened', 'reminder']);
    h.service.silenced({ alert: testAlert({ status: 'acknowledged', silenced_by: 's1' }), change: 'bumped' });
    h.advance(60 * MINUTE);
    await h.service.deliverDue();
    expect(h.store.all()).toHaveLength(2);
  });

  it('tells a sink of an alert opened while silenced at its first unmuted change, and of unmuted active alerts at start', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.service.silenced({ alert: testAlert({ silenced_by: 's1' }), change: 'opened' });
    await h.change(testAlert({ count: 4 }), 'bumped');
    expect(h.store.all().map((d) => d.change)).toEqual(['opened']);

    const started = harness([hook], { activeAlerts: [testAlert({ alert_id: 'old' }), testAlert({ alert_id: 'muted', silenced_by: 's1' })] });
    await started.service.start();
    expect(started.store.all().map((d) => `${d.alert_id}:${d.change}`)).toEqual(['old:opened']);
  });

  it('keeps notifications it could not store, and stores them at the next call', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.store.failWrites = true;
    h.service.notify({ alert: testAlert(), change: 'opened' });
    await expect(h.service.durable()).rejects.toThrow('store down');
    expect(h.sent).toHaveLength(0);
    h.store.failWrites = false;
    await h.service.durable();
    await h.service.deliverDue();
    expect(h.store.all()).toMatchObject([{ status: 'delivered' }]);
  });

  it('never logs a sink URL path or header, only its host', async () => {
    const h = harness([hook]);
    await h.service.start();
    h.replies.push(new AlertingError('AW_ALERTING_DELIVERY_FAILED', `POST to hooks.example failed: ${SECRET_URL}`, { retriable: true }), status(400));
    await h.change(testAlert(), 'opened');
    await h.service.deliverDue();
    h.advance(60_000);
    await h.service.deliverDue();
    const text = h.logs.join('') + JSON.stringify(h.store.all());
    expect(text).toContain('hooks.example');
    expect(text).not.toContain('SECRET');
  });
});
