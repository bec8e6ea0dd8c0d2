import { sha256Hex } from '../core/ids.js';
import { compileGlobs, type GlobMatcher } from '../core/glob.js';
import type { AlertDelivery, DeliveryChange } from '../core/ports.js';
import type { Alert } from '../core/records.js';
import type { AlertChange } from './alert-book.js';
import type { DeliverySinkConfig } from './delivery-config.js';

// Pure decisions of alert delivery: routing, notification ids, what change a
// sink is told, backoff and the outbox row's state changes. No IO here;
// alerting/delivery.ts does the sending and the storing.

/** A configured sink with its routing compiled once. */
export interface DeliveryRoute {
  readonly sink: DeliverySinkConfig;
  /** Whether the alert, as it is now, goes to this sink. */
  matches(alert: Alert): boolean;
}

const EVERYTHING: GlobMatcher = () => true;

/** Compiles a sink's `match` into a predicate over alerts; every criterion given must match. */
export function compileRoute(sink: DeliverySinkConfig): DeliveryRoute {
  const severities = sink.match.severities === undefined ? null : new Set<string>(sink.match.severities);
  const policies = sink.match.policies === undefined ? EVERYTHING : compileGlobs(sink.match.policies);
  const tenants = sink.match.tenants === undefined ? EVERYTHING : compileGlobs(sink.match.tenants);
  return {
    sink,
    matches: (alert) => (severities === null || severities.has(alert.severity)) && policies(alert.policy_id) && tenants(alert.tenant),
  };
}

/**
 * The notification id: deterministic from what is notified, so the same
 * notification made again (a verdict replayed after a crash, a reminder
 * recomputed after a restart) has the same id and is found in the outbox
 * rather than sent twice. It does not use the alert's `updated_at`, which a
 * replay recomputes from the clock: an alert opens and resolves once, and
 * escalates to each severity at most once (severity only rises), so `change`
 * plus `discriminator` (the new severity; a reminder's due time) suffice.
 */
export function notificationId(alertId: string, change: DeliveryChange, sink: string, discriminator = ''): string {
  return sha256Hex(`${alertId}\u0000${change}\u0000${discriminator}\u0000${sink}`).slice(0, 32);
}

/**
 * What a sink is told of an alert change, null for nothing. `notifiedBefore`:
 * whether this sink has been told of this alert already. The first change a
 * sink hears of is always `opened` — the alert may have opened while silenced,
 * or below the sink's severities — and a sink never told of an alert is not
 * told it resolved. Bumps and acknowledgements are not notified.
 */
export function deliveryChangeFor(change: AlertChange, notifiedBefore: boolean): DeliveryChange | null {
  switch (change) {
    case 'opened':
      return 'opened';
    case 'escalated':
      return notifiedBefore ? 'escalated' : 'opened';
    case 'bumped':
      return notifiedBefore ? null : 'opened';
    case 'resolved':
      return notifiedBefore ? 'resolved' : null;
    case 'acknowledged':
      return null;
  }
}

/** The discriminator of {@link notificationId} for a change of `alert`. */
export function changeDiscriminator(change: DeliveryChange, alert: Alert, reminderDueAt = 0): string {
  if (change === 'escalated') return alert.severity;
  if (change === 'reminder') return String(reminderDueAt);
  return '';
}

/** A new outbox row: pending, due now, no attempts. */
export function newDelivery(alert: Alert, change: DeliveryChange, sink: DeliverySinkConfig, now: number, reminderDueAt = 0): AlertDelivery {
  return {
    notification_id: notificationId(alert.alert_id, change, sink.name, changeDiscriminator(change, alert, reminderDueAt)),
    alert_id: alert.alert_id,
    tenant: alert.tenant,
    sink: sink.name,
    sink_kind: sink.kind,
    change,
    alert: { ...alert },
    status: 'pending',
    attempts: 0,
    last_error: '',
    created_at: now,
    next_attempt_at: now,
    delivered_at: 0,
    updated_at: now,
    version: 1,
  };
}

/**
 * Whether a sink is reminded of an alert: while it is open and not muted by
 * a silence; an Alertmanager sink also while acknowledged, because
 * Alertmanager resolves an alert that is not re-sent (and has silences of
 * its own for what an analyst has seen).
 */
export function isRemindable(alert: Alert, sink: DeliverySinkConfig): boolean {
  if (sink.repeat_interval_minutes <= 0 || alert.silenced_by !== '') return false;
  return alert.status === 'open' || (alert.status === 'acknowledged' && sink.kind === 'alertmanager');
}

/** When the next reminder is due: one repeat interval after the sink's latest notification of the alert. */
export function reminderDueAt(lastNotifiedAt: number, sink: DeliverySinkConfig): number {
  return lastNotifiedAt + sink.repeat_interval_minutes * 60_000;
}

/** Largest delay before retry `attempt` (1-based count of failed attempts): `initial_ms` doubled per attempt, capped at `max_ms`. */
export function backoffCeiling(attempt: number, backoff: DeliverySinkConfig['backoff']): number {
  // 2^30 ms is 12 days: past every max_ms allowed, and far from overflowing.
  return Math.min(backoff.max_ms, backoff.initial_ms * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}

/**
 * Delay before the next attempt after `attempt` failed ones: "full jitter"
 * (a uniformly random delay below the ceiling), which spreads the retries of
 * many notifications that failed together instead of sending them in waves.
 * A receiver's `Retry-After` is honoured up to `max_ms`.
 *
 * @param random uniform in [0, 1)
 */
export function retryDelay(attempt: number, backoff: DeliverySinkConfig['backoff'], random: () => number, retryAfterMs: number | null = null): number {
  const jittered = Math.floor(random() * backoffCeiling(attempt, backoff));
  return retryAfterMs === null ? jittered : Math.max(jittered, Math.min(retryAfterMs, backoff.max_ms));
}

/** Outcome of one attempt. */
export type AttemptOutcome =
  | { delivered: true }
  | {
      delivered: false;
      /** Text for `last_error`, free of URLs and headers. */
      error: string;
      /** False: retrying cannot help (a 4xx refusal); the notification is dead-lettered now. */
      retriable: boolean;
      /** The receiver's `Retry-After`, in ms, when it sent one. */
      retryAfterMs?: number | null;
    };

/** Whether an HTTP status means delivered (2xx), worth retrying (408, 425, 429, 5xx), or refused for good (the rest, redirects included: the body would not follow). */
export function classifyStatus(status: number): 'delivered' | 'retry' | 'refused' {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'retry';
  return 'refused';
}

/** The outbox row after one attempt: `delivered`; `pending` again with its next due time; or `failed` (dead-lettered). */
export function afterAttempt(delivery: AlertDelivery, outcome: AttemptOutcome, sink: DeliverySinkConfig, now: number, random: () => number): AlertDelivery {
  const attempts = delivery.attempts + 1;
  const base = { ...delivery, attempts, updated_at: now, version: delivery.version + 1 };
  if (outcome.delivered) return { ...base, status: 'delivered', delivered_at: now };
  if (outcome.retriable && attempts < sink.max_attempts) {
    return { ...base, status: 'pending', last_error: outcome.error, next_attempt_at: now + retryDelay(attempts, sink.backoff, random, outcome.retryAfterMs ?? null) };
  }
  return { ...base, status: 'failed', last_error: outcome.error };
}
