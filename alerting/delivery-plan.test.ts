import { describe, expect, it } from 'vitest';
import { DeliveryConfigSchema, type DeliverySinkConfig } from './delivery-config.js';
import {
  afterAttempt,
  backoffCeiling,
  classifyStatus,
  compileRoute,
  deliveryChangeFor,
  isRemindable,
  newDelivery,
  notificationId,
  reminderDueAt,
  retryDelay,
} from './delivery-plan.js';
import { T0, testAlert } from './delivery-testing.js';

function sink(input: Record<string, unknown> = {}): DeliverySinkConfig {
  const parsed = DeliveryConfigSchema.parse({ sinks: [{ name: 'hook', kind: 'webhook', url: 'http://127.0.0.1:9/h', ...input }] });
  return parsed.sinks[0] as DeliverySinkConfig;
}

describe('compileRoute', () => {
  it('matches every alert when match is empty, and requires every criterion given', () => {
    expect(compileRoute(sink()).matches(testAlert())).toBe(true);
    const route = compileRoute(sink({ match: { severities: ['high', 'critical'], policies: ['api-*'], tenants: ['ACME', 'beta-?'] } }));
    expect(route.matches(testAlert())).toBe(true);
    expect(route.matches(testAlert({ tenant: 'beta-1' }))).toBe(true);
    expect(route.matches(testAlert({ severity: 'medium' }))).toBe(false);
    expect(route.matches(testAlert({ policy_id: 'off-hours' }))).toBe(false);
    expect(route.matches(testAlert({ tenant: 'beta-12' }))).toBe(false);
  });
});

describe('notificationId', () => {
  it('is deterministic and differs by alert, change, sink and discriminator', () => {
    const id = notificationId('a1', 'opened', 'hook');
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(notificationId('a1', 'opened', 'hook')).toBe(id);
    const others = [
      notificationId('a2', 'opened', 'hook'),
      notificationId('a1', 'resolved', 'hook'),
      notificationId('a1', 'opened', 'slack'),
      notificationId('a1', 'opened', 'hook', 'x'),
    ];
    expect(new Set([id, ...others]).size).toBe(5);
  });

  it('does not depend on the alert version: a replay recomputing updated_at makes the same notification', () => {
    const s = sink();
    expect(newDelivery(testAlert({ updated_at: 1 }), 'opened', s, T0).notification_id).toBe(newDelivery(testAlert({ updated_at: 2 }), 'opened', s, T0 + 5).notification_id);
    // Escalations differ by the severity reached; reminders by their due time.
    expect(newDelivery(testAlert({ severity: 'high' }), 'escalated', s, T0).notification_id).not.toBe(newDelivery(testAlert({ severity: 'critical' }), 'escalated', s, T0).notification_id);
    expect(newDelivery(testAlert(), 'reminder', s, T0, 1).notification_id).not.toBe(newDelivery(testAlert(), 'reminder', s, T0, 2).notification_id);
  });
});

describe('deliveryChangeFor', () => {
  it('tells a sink opened first, resolved only if it was told, and never bumps or acknowledgements', () => {
    expect(deliveryChangeFor('opened', false)).toBe('opened');
    expect(deliveryChangeFor('escalated', true)).toBe('escalated');
    expect(deliveryChangeFor('escalated', false)).toBe('opened');
    expect(deliveryChangeFor('bumped', true)).toBeNull();
    expect(deliveryChangeFor('bumped', false)).toBe('opened');
    expect(deliveryChangeFor('resolved', true)).toBe('resolved');
    expect(deliveryChangeFor('resolved', false)).toBeNull();
    expect(deliveryChangeFor('acknowledged', true)).toBeNull();
  });
});

describe('reminders', () => {
  it('remind of open, unmuted alerts; Alertmanager also of acknowledged ones', () => {
    const hook = sink({ repeat_interval_minutes: 10 });
    const am = sink({ kind: 'alertmanager', name: 'am' });
    expect(am.repeat_interval_minutes).toBe(4);
    expect(sink().repeat_interval_minutes).toBe(0);
    expect(isRemindable(testAlert(), hook)).toBe(true);
    expect(isRemindable(testAlert(), sink())).toBe(false);
    expect(isRemindable(testAlert({ status: 'acknowledged' }), hook)).toBe(false);
    expect(isRemindable(testAlert({ status: 'acknowledged' }), am)).toBe(true);
    expect(isRemindable(testAlert({ silenced_by: 's1' }), am)).toBe(false);
    expect(isRemindable(testAlert({ status: 'resolved' }), am)).toBe(false);
    expect(reminderDueAt(T0, hook)).toBe(T0 + 600_000);
  });
});

describe('backoff', () => {
  const backoff = { initial_ms: 1_000, max_ms: 10_000 };

  it('doubles the ceiling per attempt up to max_ms', () => {
    expect([1, 2, 3, 4, 5, 50].map((n) => backoffCeiling(n, backoff))).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  });

  it('draws the delay uniformly below the ceiling (full jitter), honouring Retry-After up to max_ms', () => {
    expect(retryDelay(3, backoff, () => 0)).toBe(0);
    expect(retryDelay(3, backoff, () => 0.5)).toBe(2_000);
    expect(retryDelay(3, backoff, () => 0.999_999)).toBe(3_999);
    expect(retryDelay(1, backoff, () => 0.5, 7_000)).toBe(7_000);
    expect(retryDelay(1, backoff, () => 0.5, 60_000)).toBe(10_000);
  });
});

describe('classifyStatus', () => {
  it('retries what may pass later and refuses the rest', () => {
    expect([200, 202, 204].map(classifyStatus)).toEqual(['delivered', 'delivered', 'delivered']);
    expect([408, 425, 429, 500, 502, 503].map(classifyStatus)).toEqual(Array(6).fill('retry'));
    expect([301, 400, 401, 403, 404, 413].map(classifyStatus)).toEqual(Array(6).fill('refused'));
  });
});

describe('afterAttempt', () => {
  const s = sink({ max_attempts: 3, backoff: { initial_ms: 1_000, max_ms: 60_000 } });
  const made = newDelivery(testAlert(), 'opened', s, T0);
  const half = (): number => 0.5;

  it('marks a delivery delivered with a higher version', () => {
    const done = afterAttempt(made, { delivered: true }, s, T0 + 7, half);
    expect(done).toMatchObject({ status: 'delivered', attempts: 1, delivered_at: T0 + 7, updated_at: T0 + 7, version: 2 });
  });

  it('schedules retries with backoff, then dead-letters after max_attempts', () => {
    const failure = { delivered: false as const, retriable: true, error: 'HTTP 500 from h' };
    const first = afterAttempt(made, failure, s, T0, half);
    expect(first).toMatchObject({ status: 'pending', attempts: 1, last_error: 'HTTP 500 from h', next_attempt_at: T0 + 500, version: 2 });
    const second = afterAttempt(first, failure, s, T0 + 500, half);
    expect(second).toMatchObject({ status: 'pending', attempts: 2, next_attempt_at: T0 + 500 + 1_000, version: 3 });
    expect(afterAttempt(second, failure, s, T0 + 2_000, half)).toMatchObject({ status: 'failed', attempts: 3, version: 4 });
  });

  it('dead-letters a refusal at once', () => {
    expect(afterAttempt(made, { delivered: false, retriable: false, error: 'HTTP 400 from h' }, s, T0, half)).toMatchObject({ status: 'failed', attempts: 1 });
  });
});
