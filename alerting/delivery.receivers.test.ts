import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AlertDelivery, DeliveryStore } from '../core/ports.js';
import type { Alert } from '../core/records.js';
import { ClickHouseDeliveryStore } from '../storage/clickhouse/delivery-store.js';
import { openTestStore, type TestStore } from '../test/support/clickhouse.js';
import { DeliveryConfigSchema } from './delivery-config.js';
import { DeliveryService } from './delivery.js';
import { T0, testAlert } from './delivery-testing.js';

// Delivery end to end: the real fetch transport against a node:http receiver
// on 127.0.0.1, the outbox in the embedded ClickHouse. The clock is fake (so
// backoff is checked exactly, without sleeping); the network is not.

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** A receiver answering each request with the next scripted status (200 once the script is used up). */
class Receiver {
  readonly requests: Received[] = [];
  readonly statuses: number[] = [];
  /** Called when a request has been read, before it is answered. */
  onRequest: (() => void) | undefined;
  private server: Server | undefined;
  private waiters: (() => void)[] = [];

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        this.onRequest?.();
        res.writeHead(this.statuses.shift() ?? 200, { 'content-type': 'text/plain' }).end('ok');
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once `count` requests have arrived (polled on each arrival, never slept). */
  async received(count: number): Promise<void> {
    while (this.requests.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }
}

/** A store whose writes of attempt outcomes never finish once `crashed`: the process "died" after sending, before recording. */
class CrashingStore implements DeliveryStore {
  crashed = false;
  constructor(private readonly inner: DeliveryStore) {}
  upsertDeliveries(deliveries: readonly AlertDelivery[]): Promise<void> {
    return this.crashed ? new Promise<void>(() => undefined) : this.inner.upsertDeliveries(deliveries);
  }
  getDeliveries(ids: readonly string[]): Promise<AlertDelivery[]> {
    return this.inner.getDeliveries(ids);
  }
  pendingDeliveries(limit: number): Promise<AlertDelivery[]> {
    return this.inner.pendingDeliveries(limit);
  }
  latestDeliveries(ids: readonly string[]): Promise<AlertDelivery[]> {
    return this.inner.latestDeliveries(ids);
  }
  deliveriesFor(alertId: string, tenant?: string): Promise<AlertDelivery[]> {
    return this.inner.deliveriesFor(alertId, tenant);
  }
}

let t: TestStore;
let receiver: Receiver;
let base = '';

beforeAll(async () => {
  t = await openTestStore();
});

afterAll(async () => {
  await t?.close();
});

afterEach(async () => {
  await receiver?.close();
});

async function withReceiver(): Promise<void> {
  receiver = new Receiver();
  base = await receiver.listen();
}

const kinds = {
  webhook: { path: '/hook/SECRET', extra: { headers: { Authorization: 'Bearer SECRET-TOKEN' } } },
  alertmanager: { path: '/api/v2/alerts', extra: { repeat_interval_minutes: 0 } },
  slack: { path: '/services/T0/B0/SECRET', extra: {} },
} as const;
type Kind = keyof typeof kinds;

let alertIds = 0;
/** A fresh alert id per test: the tests share one database. */
function freshAlert(overrides: Partial<Alert> = {}): Alert {
  return testAlert({ alert_id: `rcv-${process.pid}-${++alertIds}`, ...overrides });
}

function service(kind: Kind, store: DeliveryStore, clock: { now: number }, sink: Record<string, unknown> = {}, activeAlerts: Alert[] = []): DeliveryService {
  return new DeliveryService({
    store,
    config: DeliveryConfigSchema.parse({
      sinks: [{ name: `${kind}-sink`, kind, url: `${base}${kinds[kind].path}`, backoff: { initial_ms: 1_000, max_ms: 60_000 }, max_attempts: 4, ...kinds[kind].extra, ...sink }],
      public_url: 'https://agentwatch.example',
    }),
    logger: pino({ level: 'silent' }),
    activeAlerts,
    clock: () => clock.now,
    random: () => 0.5,
    schedule: () => () => undefined,
  });
}

describe('alert delivery to real HTTP receivers', () => {
  it('webhook: posts the agentwatch body with the idempotency key, the configured headers and the alert link', async () => {
    await withReceiver();
    const store = new ClickHouseDeliveryStore(t.client, t.database);
    const s = service('webhook', store, { now: T0 });
    await s.start();
    const alert = freshAlert();
    s.notify({ alert, change: 'opened' });
    await s.durable();
    await s.deliverDue();
    const [request] = receiver.requests;
    const [stored] = await s.deliveriesFor(alert.alert_id);
    expect(stored).toMatchObject({ status: 'delivered', attempts: 1, sink: 'webhook-sink', change: 'opened' });
    expect(request).toMatchObject({
      method: 'POST',
      path: '/hook/SECRET',
      headers: { 'content-type': 'application/json', authorization: 'Bearer SECRET-TOKEN', 'idempotency-key': stored?.notification_id },
      body: { schema: 'agentwatch.alert-notification/v1', id: stored?.notification_id, change: 'opened', alert, url: `https://agentwatch.example/v1/alerts/${alert.alert_id}` },
    });
  });

  it('webhook with payload ocsf: posts an OCSF Detection Finding with the ATLAS techniques', async () => {
    await withReceiver();
    const s = service('webhook', new ClickHouseDeliveryStore(t.client, t.database), { now: T0 }, { payload: 'ocsf' });
    await s.start();
    const alert = freshAlert({ atlas: ['AML.T0024'] });
    s.notify({ alert, change: 'opened' });
    await s.durable();
    await s.deliverDue();
    expect(receiver.requests[0]?.body).toMatchObject({
      class_uid: 2004,
      type_uid: 200401,
      finding_info: { uid: alert.alert_id, attacks: [{ technique: { uid: 'AML.T0024' } }], src_url: `https://agentwatch.example/v1/alerts/${alert.alert_id}` },
      metadata: { uid: receiver.requests[0]?.headers['idempotency-key'] },
    });
  });

  it('alertmanager: posts to /api/v2/alerts with the identity in labels, and endsAt on resolve', async () => {
    await withReceiver();
    const s = service('alertmanager', new ClickHouseDeliveryStore(t.client, t.database), { now: T0 });
    await s.start();
    const alert = freshAlert();
    s.notify({ alert, change: 'opened' });
    s.notify({ alert: { ...alert, status: 'resolved', resolved_at: T0 + 60_000 }, change: 'resolved' });
    await s.durable();
    await s.deliverDue();
    expect(receiver.requests.map((r) => r.path)).toEqual(['/api/v2/alerts', '/api/v2/alerts']);
    const labels = { alertname: 'rate_spike', agentwatch_alert_id: alert.alert_id, tenant: 'acme', policy_id: 'api-rate-spike', agent_id: 'agent-1', severity: 'high' };
    expect(receiver.requests[0]?.body).toEqual([
      {
        labels,
        annotations: { summary: alert.title, description: alert.reason },
        startsAt: new Date(T0).toISOString(),
        generatorURL: `https://agentwatch.example/v1/alerts/${alert.alert_id}`,
      },
    ]);
    expect(receiver.requests[1]?.body).toMatchObject([{ labels, endsAt: new Date(T0 + 60_000).toISOString() }]);
  });

  it('slack: posts { text } with the headline, the escaped reason and the fields', async () => {
    await withReceiver();
    const s = service('slack', new ClickHouseDeliveryStore(t.client, t.database), { now: T0 });
    await s.start();
    const alert = freshAlert({ reason: 'sent <b>data</b> & more' });
    s.notify({ alert, change: 'opened' });
    await s.durable();
    await s.deliverDue();
    const body = receiver.requests[0]?.body as { text: string };
    expect(Object.keys(body)).toEqual(['text']);
    expect(body.text.split('\n')).toEqual([
      ':rotating_light: Alert opened [HIGH] rate_spike on agent-1 (api-rate-spike)',
      '> sent &lt;b&gt;data&lt;/b&gt; &amp; more',
      expect.stringContaining(`*Tenant:* acme · *Policy:* api-rate-spike · *Agent:* agent-1 · *Count:* 3 · *Status:* open · *Alert:* <https://agentwatch.example/v1/alerts/${alert.alert_id}|${alert.alert_id}>`),
    ]);
  });

  describe.each(Object.keys(kinds) as Kind[])('%s', (kind) => {
    it('retries a 500 with exponential backoff, the same request each time, and dead-letters after max_attempts', async () => {
      await withReceiver();
      const clock = { now: T0 };
      const store = new ClickHouseDeliveryStore(t.client, t.database);
      const s = service(kind, store, clock);
      await s.start();
      receiver.statuses.push(500, 500);
      const alert = freshAlert();
      s.notify({ alert, change: 'opened' });
      await s.durable();
      await s.deliverDue();
      expect(await store.deliveriesFor(alert.alert_id)).toMatchObject([{ status: 'pending', attempts: 1, next_attempt_at: T0 + 500, last_error: 'HTTP 500 from ' + base.slice(7) + ': ok' }]);
      clock.now += 499;
      await s.deliverDue();
      expect(receiver.requests).toHaveLength(1);
      clock.now += 1;
      await s.deliverDue();
      expect(await store.deliveriesFor(alert.alert_id)).toMatchObject([{ status: 'pending', attempts: 2, next_attempt_at: T0 + 1_500 }]);
      clock.now = T0 + 1_500;
      await s.deliverDue();
      expect(await store.deliveriesFor(alert.alert_id)).toMatchObject([{ status: 'delivered', attempts: 3, delivered_at: T0 + 1_500 }]);
      expect(receiver.requests).toHaveLength(3);
      expect(new Set(receiver.requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
      expect(new Set(receiver.requests.map((r) => JSON.stringify(r.body))).size).toBe(1);

      // Four 500s: dead-lettered, with the last error, and never tried again.
      receiver.statuses.push(500, 500, 500, 500);
      const doomed = freshAlert();
      s.notify({ alert: doomed, change: 'opened' });
      await s.durable();
      for (let i = 0; i < 5; i++) {
        await s.deliverDue();
        clock.now += 60_000;
      }
      expect(await store.deliveriesFor(doomed.alert_id)).toMatchObject([{ status: 'failed', attempts: 4 }]);
      expect(receiver.requests).toHaveLength(7);
      await s.stop();
    });

    it('after a restart mid-delivery: the receiver gets the notification again with the same id; once delivered, never again', async () => {
      await withReceiver();
      const clock = { now: T0 };
      const real = new ClickHouseDeliveryStore(t.client, t.database);
      const crashing = new CrashingStore(real);
      const alert = freshAlert();
      // The process "dies" as the receiver gets the request: the outcome is never stored.
      receiver.onRequest = () => void (crashing.crashed = true);
      const dying = service(kind, crashing, clock);
      await dying.start();
      dying.notify({ alert, change: 'opened' });
      await dying.durable();
      await receiver.received(1);
      receiver.onRequest = undefined;
      expect(await real.deliveriesFor(alert.alert_id)).toMatchObject([{ status: 'pending', attempts: 0 }]);

      clock.now += 5_000;
      const restarted = service(kind, real, clock, {}, [alert]);
      await restarted.start();
      // The replayed verdict makes the same notification, which is not made twice.
      restarted.notify({ alert, change: 'opened' });
      await restarted.durable();
      await restarted.deliverDue();
      expect(receiver.requests).toHaveLength(2);
      expect(receiver.requests[1]?.headers['idempotency-key']).toBe(receiver.requests[0]?.headers['idempotency-key']);
      expect(receiver.requests[1]?.body).toEqual(receiver.requests[0]?.body);
      expect(await real.deliveriesFor(alert.alert_id)).toMatchObject([{ status: 'delivered', attempts: 1 }]);
      await restarted.stop();

      clock.now += 5_000;
      const again = service(kind, real, clock, {}, [alert]);
      await again.start();
      again.notify({ alert, change: 'opened' });
      await again.durable();
      await again.deliverDue();
      await again.stop();
      expect(receiver.requests).toHaveLength(2);
    });
  });
});
