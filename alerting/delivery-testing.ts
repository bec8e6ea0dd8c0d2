import type { AlertDelivery, DeliveryStore } from '../core/ports.js';
import type { Alert } from '../core/records.js';

// Test fixtures of alert delivery, shared by the unit and receiver tests.

export const T0 = 1_700_000_000_000;

export function testAlert(overrides: Partial<Alert> = {}): Alert {
  return {
    alert_id: 'a1',
    tenant: 'acme',
    policy_id: 'api-rate-spike',
    policy_type: 'rate_spike',
    agent_id: 'agent-1',
    severity: 'high',
    status: 'open',
    count: 3,
    first_seen: T0,
    last_seen: T0 + 10,
    title: 'rate_spike on agent-1 (api-rate-spike)',
    reason: '120 events in 5 min (threshold 100)',
    verdict_ids: ['v1', 'v2', 'v3'],
    evidence: { count: 120, threshold: 100 },
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

/** {@link DeliveryStore} semantics in memory (the ClickHouse adapter is tested in storage/clickhouse/delivery-store.test.ts). */
export class MemoryDeliveryStore implements DeliveryStore {
  readonly rows = new Map<string, AlertDelivery>();
  writes = 0;
  /** Every row version written, as `status/version`, in order. */
  readonly history: string[] = [];
  /** Set to make writes fail (a store down). */
  failWrites = false;

  async upsertDeliveries(deliveries: readonly AlertDelivery[]): Promise<void> {
    if (this.failWrites) throw new Error('store down');
    this.writes++;
    for (const d of deliveries) {
      this.history.push(`${d.status}/${d.version}`);
      const held = this.rows.get(d.notification_id);
      if (held === undefined || held.version <= d.version) this.rows.set(d.notification_id, structuredClone(d));
    }
  }

  async getDeliveries(ids: readonly string[]): Promise<AlertDelivery[]> {
    return ids.flatMap((id) => (this.rows.has(id) ? [structuredClone(this.rows.get(id) as AlertDelivery)] : []));
  }

  async pendingDeliveries(limit: number): Promise<AlertDelivery[]> {
    return this.all()
      .filter((d) => d.status === 'pending')
      .sort((a, b) => a.next_attempt_at - b.next_attempt_at)
      .slice(0, limit);
  }

  async latestDeliveries(alertIds: readonly string[]): Promise<AlertDelivery[]> {
    const latest = new Map<string, AlertDelivery>();
    for (const d of this.all()) if (alertIds.includes(d.alert_id)) latest.set(`${d.alert_id}\u0000${d.sink}`, d);
    return [...latest.values()];
  }

  async deliveriesFor(alertId: string, tenant?: string): Promise<AlertDelivery[]> {
    return this.all()
      .filter((d) => d.alert_id === alertId && (tenant === undefined || d.tenant === tenant))
      .reverse();
  }

  /** Oldest first. */
  all(): AlertDelivery[] {
    return [...this.rows.values()].map((d) => structuredClone(d)).sort((a, b) => a.created_at - b.created_at);
  }
}
