import type { Logger } from 'pino';
import type { AlertDelivery, DeliveryChange, DeliveryStore } from '../core/ports.js';
import type { Alert } from '../core/records.js';
import type { AlertUpdate } from './alert-book.js';
import type { DeliveryConfig } from './delivery-config.js';
import {
  afterAttempt,
  classifyStatus,
  compileRoute,
  deliveryChangeFor,
  isRemindable,
  newDelivery,
  reminderDueAt,
  type AttemptOutcome,
  type DeliveryRoute,
} from './delivery-plan.js';
import { fetchTransport, redactUrl, urlHost, type DeliveryTransport } from './sinks/http-transport.js';
import type { AlertSink } from './sinks/log-sink.js';
import { renderRequest } from './sinks/payloads.js';

/** Most pending notifications loaded at start; more is a receiver down for long, and is logged. */
export const MAX_PENDING_LOADED = 10_000;

/** Most ids of settled notifications remembered; far more than the notifications one store read can race. */
const MAX_SETTLED_HELD = 100_000;

/** Longest a wake-up timer is set for: setTimeout takes at most 2^31-1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

export interface DeliveryServiceDeps {
  store: DeliveryStore;
  config: DeliveryConfig;
  logger: Logger;
  /** Alerts open or acknowledged at start (the list the AlertService gets): reminders go on for them. @default [] */
  activeAlerts?: readonly Alert[];
  /** @default fetchTransport (Node's fetch) */
  transport?: DeliveryTransport;
  /** @default Date.now */
  clock?: () => number;
  /** Uniform in [0, 1), for the backoff jitter. @default Math.random */
  random?: () => number;
  /**
   * Calls `wake` after `ms` and returns a cancel function: when the next
   * attempt or reminder is due. Tests pass a no-op and drive the service with
   * {@link DeliveryService.deliverDue}. @default an unref'd setTimeout
   */
  schedule?: (ms: number, wake: () => void) => () => void;
}

function defaultSchedule(ms: number, wake: () => void): () => void {
  const timer = setTimeout(wake, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
  timer.unref();
  return () => clearTimeout(timer);
}

const CHANGE_ORDER: Record<DeliveryChange, number> = { opened: 0, escalated: 1, reminder: 2, resolved: 3 };

/** Oldest first; within one millisecond, in lifecycle order (an alert opened and resolved at once is told in that order). */
function inSendingOrder(a: AlertDelivery, b: AlertDelivery): number {
  return a.created_at - b.created_at || CHANGE_ORDER[a.change] - CHANGE_ORDER[b.change] || (a.notification_id < b.notification_id ? -1 : 1);
}

function sinkKey(alertId: string, sink: string): string {
  return `${alertId}\u0000${sink}`;
}

/**
 * Delivers alert notifications to the configured sinks (webhook,
 * Alertmanager, Slack) through a durable outbox, the `alert_deliveries`
 * table.
 *
 * As an {@link AlertSink} it turns each alert change into one notification
 * per matching sink (alerting/delivery-plan.ts decides which change a sink
 * is told), holds them until `durable()` writes them `pending`, and only then
 * sends them. Each attempt's outcome is written back: `delivered`; `pending`
 * with a backoff (exponential, full jitter, `Retry-After` honoured); or
 * `failed` — dead-lettered after `max_attempts`, or at once on a refusal
 * retrying cannot fix (a 4xx other than 408/425/429). A sink's notifications
 * of one alert go out in the order they were made: a later one waits while
 * an earlier one is pending. Reminders are made while an alert stays open
 * (`repeat_interval_minutes`).
 *
 * Guarantee: at least once, with a deduplication key. Every notification has
 * a deterministic id, sent as the `Idempotency-Key` header (and in the
 * agentwatch and OCSF bodies). A notification stored `delivered` is never
 * sent again, restart or not. One whose attempt was cut short by a stop or
 * crash after the receiver got it but before `delivered` was stored is sent
 * again after the restart, with the same id and the same body: receivers
 * that must not see it twice drop repeats by that key (Alertmanager is
 * idempotent by labels anyway). Such a cut-short attempt is not counted in
 * `attempts`.
 */
export class DeliveryService implements AlertSink {
  readonly name = 'delivery';
  private readonly routes: DeliveryRoute[];
  private readonly routesBySink: Map<string, DeliveryRoute>;
  private readonly transport: DeliveryTransport;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly schedule: (ms: number, wake: () => void) => () => void;
  /** Notifications made but not yet stored: not sent until they are. */
  private unwritten: AlertDelivery[] = [];
  /** Outcomes of attempts whose write failed; written with the next flush. */
  private unwrittenOutcomes: AlertDelivery[] = [];
  /** Pending notifications, stored, by id. */
  private readonly queue = new Map<string, AlertDelivery>();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Open and acknowledged alerts as last seen, for reminders. */
  private readonly tracked = new Map<string, Alert>();
  /** When each sink was last notified of each tracked alert: alert id → sink → created_at. */
  private readonly lastNotified = new Map<string, Map<string, number>>();
  /** No reminder is due before this; recomputed by each reminder scan. */
  private nextReminderAt = Number.POSITIVE_INFINITY;
  private flushing: Promise<void> = Promise.resolve();
  private cancelWake: (() => void) | undefined;
  private running = false;
  private readonly warnedSinks = new Set<string>();
  /** The start loaded {@link MAX_PENDING_LOADED} pending notifications and there may be more: read again once those are done. */
  private morePending = false;
  /** Notifications delivered or dead-lettered by this process lately (insertion-ordered, bounded): see {@link isUnknown}. */
  private readonly settled = new Set<string>();
  readonly stats = { made: 0, delivered: 0, retried: 0, dead_lettered: 0 };

  constructor(private readonly deps: DeliveryServiceDeps) {
    this.routes = deps.config.sinks.map(compileRoute);
    this.routesBySink = new Map(this.routes.map((r) => [r.sink.name, r]));
    this.transport = deps.transport ?? fetchTransport;
    this.clock = deps.clock ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.schedule = deps.schedule ?? defaultSchedule;
    for (const alert of deps.activeAlerts ?? []) if (alert.status !== 'resolved') this.tracked.set(alert.alert_id, { ...alert });
  }

  /**
   * Loads the pending notifications and the reminder bookkeeping of the
   * active alerts, tells each matching sink of an active, unmuted alert it
   * has not heard of (a sink added to the configuration, an alert opened
   * while muted), and starts sending.
   */
  async start(): Promise<void> {
    const pending = await this.deps.store.pendingDeliveries(MAX_PENDING_LOADED);
    if (pending.length >= MAX_PENDING_LOADED) {
      this.deps.logger.warn({ limit: MAX_PENDING_LOADED }, 'too many pending alert notifications; the rest are read once these are done');
    }
    for (const d of pending) this.queue.set(d.notification_id, d);
    this.morePending = pending.length >= MAX_PENDING_LOADED;
    const now = this.clock();
    if (this.tracked.size > 0 && this.routes.length > 0) {
      for (const d of await this.deps.store.latestDeliveries([...this.tracked.keys()])) this.noteNotified(d.alert_id, d.sink, d.created_at);
      for (const alert of this.tracked.values()) {
        if (alert.silenced_by !== '') continue;
        for (const route of this.routes) {
          if (route.matches(alert) && !this.wasNotified(alert.alert_id, route.sink.name)) this.make(alert, 'opened', route, now);
        }
      }
    }
    this.running = true;
    this.nextReminderAt = Number.NEGATIVE_INFINITY;
    await this.durable();
    this.pump();
  }

  /** Makes the notifications of one alert change; they are sent once `durable()` has stored them. */
  notify(update: AlertUpdate): void {
    const { alert, change } = update;
    const now = this.clock();
    if (alert.status === 'resolved') this.tracked.delete(alert.alert_id);
    else this.tracked.set(alert.alert_id, { ...alert });
    for (const route of this.routes) {
      // A resolve goes to every sink told of the alert, even one the alert no longer matches.
      if (change !== 'resolved' && !route.matches(alert)) continue;
      const told = deliveryChangeFor(change, this.wasNotified(alert.alert_id, route.sink.name));
      if (told !== null) this.make(alert, told, route, now);
    }
    if (alert.status === 'resolved') this.lastNotified.delete(alert.alert_id);
  }

  /** A muted change: no notification, but the alert's silence stops its reminders. */
  silenced(update: AlertUpdate): void {
    if (update.alert.status !== 'resolved') this.tracked.set(update.alert.alert_id, { ...update.alert });
  }

  /**
   * Stores the notifications made so far — those not stored already: a
   * notification made again after a restart (replayed verdicts) keeps its
   * first row — and queues them for sending. On failure they are kept for
   * the next call.
   */
  durable(): Promise<void> {
    const run = this.flushing.then(() => this.flush());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** One alert's notifications and their delivery status, newest first. */
  deliveriesFor(alertId: string, tenant?: string): Promise<AlertDelivery[]> {
    return this.deps.store.deliveriesFor(alertId, tenant);
  }

  /** Notifications pending in this process (stored, not yet delivered or dead-lettered). */
  pendingCount(): number {
    return this.queue.size;
  }

  /**
   * Makes the reminders due, sends every notification due now and waits
   * until the attempts in flight (and any they lead to that are due at
   * once) are over. The timer does the same on its own; tests with a fake
   * clock call this instead.
   */
  async deliverDue(): Promise<void> {
    this.pump();
    for (;;) {
      await this.flushing;
      if (this.unwritten.length > 0) await this.durable();
      if (this.inFlight.size === 0) return;
      await Promise.all(this.inFlight.values());
      this.pump();
    }
  }

  /** Stops sending: waits for the attempts in flight and stores what is held. */
  async stop(): Promise<void> {
    this.running = false;
    this.cancelWake?.();
    this.cancelWake = undefined;
    await Promise.all(this.inFlight.values());
    await this.durable();
  }

  private async flush(): Promise<void> {
    if (this.unwrittenOutcomes.length > 0) {
      const outcomes = [...this.unwrittenOutcomes];
      await this.deps.store.upsertDeliveries(outcomes);
      this.unwrittenOutcomes = this.unwrittenOutcomes.slice(outcomes.length);
    }
    if (this.unwritten.length === 0) return;
    // A copy: notifications made while this flush awaits are for the next one.
    const batch = [...this.unwritten];
    const stored = new Map((await this.deps.store.getDeliveries(batch.map((d) => d.notification_id))).map((d) => [d.notification_id, d]));
    const fresh = batch.filter((d) => !stored.has(d.notification_id));
    await this.deps.store.upsertDeliveries(fresh);
    this.unwritten = this.unwritten.slice(batch.length);
    this.stats.made += fresh.length;
    for (const d of fresh) this.queue.set(d.notification_id, d);
    // A replayed notification still pending in the store but not held here (not loaded at start) is queued again.
    for (const d of stored.values()) if (d.status === 'pending' && this.isUnknown(d.notification_id)) this.queue.set(d.notification_id, d);
    this.pump();
  }

  private make(alert: Alert, change: DeliveryChange, route: DeliveryRoute, now: number, dueAt = 0): void {
    const delivery = newDelivery(alert, change, route.sink, now, dueAt);
    this.unwritten.push(delivery);
    this.noteNotified(alert.alert_id, route.sink.name, now);
    if (route.sink.repeat_interval_minutes > 0) this.nextReminderAt = Math.min(this.nextReminderAt, reminderDueAt(now, route.sink));
  }

  private noteNotified(alertId: string, sink: string, at: number): void {
    let sinks = this.lastNotified.get(alertId);
    if (sinks === undefined) this.lastNotified.set(alertId, (sinks = new Map()));
    sinks.set(sink, Math.max(sinks.get(sink) ?? 0, at));
  }

  private wasNotified(alertId: string, sink: string): boolean {
    return this.lastNotified.get(alertId)?.has(sink) ?? false;
  }

  /** Makes the reminders due at `now`; sets {@link nextReminderAt} to the earliest one not yet due. */
  private makeDueReminders(now: number): void {
    if (now < this.nextReminderAt) return;
    let next = Number.POSITIVE_INFINITY;
    const waiting = new Set([...this.queue.values(), ...this.unwritten].map((d) => sinkKey(d.alert_id, d.sink)));
    for (const alert of this.tracked.values()) {
      for (const route of this.routes) {
        const last = this.lastNotified.get(alert.alert_id)?.get(route.sink.name);
        // Never told (it did not match then): nothing to remind of. Still trying: a reminder would only queue behind.
        if (last === undefined || !isRemindable(alert, route.sink) || !route.matches(alert)) continue;
        const due = reminderDueAt(last, route.sink);
        if (due > now || waiting.has(sinkKey(alert.alert_id, route.sink.name))) {
          next = Math.min(next, Math.max(due, now + 1_000));
          continue;
        }
        // The id carries the due time, computed from the stored previous notification: a restart recomputes the same id.
        this.make(alert, 'reminder', route, now, due);
        next = Math.min(next, reminderDueAt(now, route.sink));
      }
    }
    this.nextReminderAt = next;
  }

  /** Starts every attempt due now that the order rule and the concurrency allow, and sets the timer for the next one. */
  private pump(): void {
    if (!this.running) return;
    const now = this.clock();
    const before = this.unwritten.length;
    this.makeDueReminders(now);
    if (this.unwritten.length > before) {
      this.durable().catch((error: unknown) => this.deps.logger.error({ err: error }, 'storing alert reminders failed; retrying'));
    }
    if (this.morePending && this.queue.size === 0 && this.inFlight.size === 0) {
      this.morePending = false;
      this.readMorePending().catch((error: unknown) => this.deps.logger.error({ err: error }, 'reading pending alert notifications failed'));
    }
    const ordered = [...this.queue.values()].sort(inSendingOrder);
    const busy = new Set<string>();
    let nextDue = this.nextReminderAt;
    for (const delivery of ordered) {
      const key = sinkKey(delivery.alert_id, delivery.sink);
      // Only the oldest pending notification of an alert to a sink may go; the later ones wait for it.
      if (busy.has(key)) continue;
      busy.add(key);
      if (this.inFlight.has(delivery.notification_id)) continue;
      if (delivery.next_attempt_at > now) {
        nextDue = Math.min(nextDue, delivery.next_attempt_at);
        continue;
      }
      if (this.inFlight.size >= this.deps.config.concurrency) {
        nextDue = now;
        break;
      }
      const route = this.routesBySink.get(delivery.sink);
      if (route === undefined) {
        // Kept pending in the store: restoring the sink's configuration sends it.
        if (!this.warnedSinks.has(delivery.sink)) {
          this.warnedSinks.add(delivery.sink);
          this.deps.logger.warn({ sink: delivery.sink }, 'pending alert notifications for a sink no longer configured are held');
        }
        this.queue.delete(delivery.notification_id);
        continue;
      }
      const attempt = this.attempt(delivery, route).finally(() => {
        this.inFlight.delete(delivery.notification_id);
        this.pump();
      });
      this.inFlight.set(delivery.notification_id, attempt);
    }
    this.cancelWake?.();
    this.cancelWake = undefined;
    // With attempts in flight, their ends pump again; a wake-up at `now` would spin.
    if (Number.isFinite(nextDue) && !(nextDue <= now && this.inFlight.size > 0)) {
      this.cancelWake = this.schedule(Math.max(nextDue - now, 0), () => this.pump());
    }
  }

  /**
   * Whether a notification read as pending from the store is new to this
   * process. A read can race an attempt: the row read `pending` may have been
   * delivered here meanwhile, and must not be queued (and sent) again.
   */
  private isUnknown(notificationId: string): boolean {
    return !this.queue.has(notificationId) && !this.inFlight.has(notificationId) && !this.settled.has(notificationId);
  }

  private async readMorePending(): Promise<void> {
    const pending = await this.deps.store.pendingDeliveries(MAX_PENDING_LOADED);
    this.morePending = pending.length >= MAX_PENDING_LOADED;
    for (const d of pending) if (this.isUnknown(d.notification_id)) this.queue.set(d.notification_id, d);
    this.pump();
  }

  private async attempt(delivery: AlertDelivery, route: DeliveryRoute): Promise<void> {
    const sink = route.sink;
    const host = urlHost(sink.url);
    let outcome: AttemptOutcome;
    try {
      const response = await this.transport(renderRequest(delivery, sink, this.deps.config.public_url), sink.timeout_ms);
      const verdict = classifyStatus(response.status);
      outcome =
        verdict === 'delivered'
          ? { delivered: true }
          : {
              delivered: false,
              retriable: verdict === 'retry',
              error: `HTTP ${response.status} from ${host}${response.body === '' ? '' : `: ${response.body}`}`,
              retryAfterMs: response.retryAfterMs,
            };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      outcome = { delivered: false, retriable: true, error: redactUrl(message, sink.url) };
    }
    const next = afterAttempt(delivery, outcome, sink, this.clock(), this.random);
    const log = { sink: sink.name, host, notification_id: delivery.notification_id, alert_id: delivery.alert_id, change: delivery.change, attempts: next.attempts };
    if (next.status === 'delivered') {
      this.stats.delivered++;
      this.deps.logger.debug(log, 'alert notification delivered');
    } else if (next.status === 'pending') {
      this.stats.retried++;
      this.deps.logger.warn({ ...log, error: next.last_error, retry_at: new Date(next.next_attempt_at).toISOString() }, 'alert notification failed; retrying');
    } else {
      this.stats.dead_lettered++;
      this.deps.logger.error({ ...log, error: next.last_error }, 'alert notification dead-lettered');
    }
    if (next.status === 'pending') {
      this.queue.set(next.notification_id, next);
    } else {
      this.queue.delete(next.notification_id);
      this.settled.add(next.notification_id);
      if (this.settled.size > MAX_SETTLED_HELD) this.settled.delete(this.settled.values().next().value as string);
    }
    try {
      await this.deps.store.upsertDeliveries([next]);
    } catch (error) {
      // The outcome holds in memory; the next flush stores it. A crash before then re-sends (same id).
      this.unwrittenOutcomes.push(next);
      this.deps.logger.error({ err: error, sink: sink.name, notification_id: next.notification_id }, 'storing an alert notification outcome failed');
    }
  }
}
