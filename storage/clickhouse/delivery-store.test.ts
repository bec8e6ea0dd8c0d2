import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertDelivery } from '../../core/ports.js';
import type { Alert } from '../../core/records.js';
import { openTestStore, type TestStore } from '../../test/support/clickhouse.js';
import { StorageError } from '../errors.js';
import { ClickHouseDeliveryStore } from './delivery-store.js';

const T0 = 1_700_000_000_000;

let t: TestStore;
let store: ClickHouseDeliveryStore;

beforeAll(async () => {
  t = await openTestStore();
  store = new ClickHouseDeliveryStore(t.client, t.database);
});

afterAll(async () => {
  await t?.close();
});

function alert(overrides: Partial<Alert> = {}): Alert {
  return {
    alert_id: 'a1',
    tenant: 'acme',
    policy_id: 'spike',
    policy_type: 'rate_spike',
    agent_id: 'agent-1',
    severity: 'high',
    status: 'open',
    count: 3,
    first_seen: T0,
    last_seen: T0 + 10,
    title: 'rate_spike on agent-1 (spike)',
    reason: 'quotes \' " and\nnewlines',
    verdict_ids: ['v1', 'v2'],
    evidence: { count: 3, ok: true, who: 'x' },
    atlas: ['AML.T0034'],
    updated_at: T0 + 10,
    acknowledged_by: '',
    resolved_at: 0,
    source_partition: 0,
    source_offset: 7,
    silenced_by: '',
    comment: '',
    ...overrides,
  };
}

function delivery(overrides: Partial<AlertDelivery> = {}): AlertDelivery {
  return {
    notification_id: 'n1',
    alert_id: 'a1',
    tenant: 'acme',
    sink: 'hook',
    sink_kind: 'webhook',
    change: 'opened',
    alert: alert(),
    status: 'pending',
    attempts: 0,
    last_error: '',
    created_at: T0,
    next_attempt_at: T0,
    delivered_at: 0,
    updated_at: T0,
    version: 1,
    ...overrides,
  };
}

describe('ClickHouseDeliveryStore', () => {
  it('reads back deliveries exactly as written', async () => {
    const d = delivery({ notification_id: 'rt-1', alert_id: 'rt', alert: alert({ alert_id: 'rt' }), last_error: "HTTP 500 from h: 'x'" });
    await store.upsertDeliveries([d]);
    await store.upsertDeliveries([]);
    expect(await store.getDeliveries(['rt-1', 'missing'])).toEqual([d]);
    expect(await store.getDeliveries([])).toEqual([]);
  });

  it('keeps the highest version, whatever the write order: a re-made pending row never hides a delivered one', async () => {
    const made = delivery({ notification_id: 'ver-1', alert_id: 'ver' });
    const delivered = { ...made, status: 'delivered' as const, attempts: 1, delivered_at: T0 + 5, updated_at: T0 + 5, version: 2 };
    await store.upsertDeliveries([delivered]);
    await store.upsertDeliveries([{ ...made, created_at: T0 + 99, updated_at: T0 + 99 }]);
    expect(await store.getDeliveries(['ver-1'])).toEqual([delivered]);
    expect((await store.pendingDeliveries(100)).map((d) => d.notification_id)).not.toContain('ver-1');
  });

  it('lists pending deliveries, earliest due first', async () => {
    const own = await openTestStore();
    try {
      const s = new ClickHouseDeliveryStore(own.client, own.database);
      await s.upsertDeliveries([
        delivery({ notification_id: 'p-late', next_attempt_at: T0 + 50 }),
        delivery({ notification_id: 'p-early', next_attempt_at: T0 + 10 }),
        delivery({ notification_id: 'p-done', status: 'delivered', version: 2 }),
        delivery({ notification_id: 'p-dead', status: 'failed', version: 9 }),
      ]);
      expect((await s.pendingDeliveries(10)).map((d) => d.notification_id)).toEqual(['p-early', 'p-late']);
      expect((await s.pendingDeliveries(1)).map((d) => d.notification_id)).toEqual(['p-early']);
    } finally {
      await own.close();
    }
  });

  it("reads an alert's deliveries newest first, scoped by tenant, and the newest per sink of many alerts", async () => {
    await store.upsertDeliveries([
      delivery({ notification_id: 'f-1', alert_id: 'f', created_at: T0 + 1 }),
      delivery({ notification_id: 'f-2', alert_id: 'f', created_at: T0 + 2, change: 'resolved' }),
      delivery({ notification_id: 'f-3', alert_id: 'f', created_at: T0 + 1, sink: 'slack', sink_kind: 'slack' }),
      delivery({ notification_id: 'g-1', alert_id: 'g', created_at: T0 + 3 }),
    ]);
    expect((await store.deliveriesFor('f')).map((d) => d.notification_id)).toEqual(['f-2', 'f-3', 'f-1']);
    expect(await store.deliveriesFor('f', 'other')).toEqual([]);
    expect((await store.deliveriesFor('f', 'acme')).length).toBe(3);
    expect((await store.latestDeliveries(['g', 'f', "f' OR 1=1 --"])).map((d) => d.notification_id)).toEqual(['f-2', 'f-3', 'g-1']);
    expect(await store.latestDeliveries([])).toEqual([]);
  });

  it('rejects bad limits and database names', async () => {
    await expect(store.pendingDeliveries(0)).rejects.toBeInstanceOf(StorageError);
    await expect(store.pendingDeliveries(1.5)).rejects.toBeInstanceOf(StorageError);
    expect(() => new ClickHouseDeliveryStore(t.client, 'x; DROP DATABASE default')).toThrow(StorageError);
  });
});
