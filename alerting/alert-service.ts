import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventBus, SilenceStore, Subscription } from '../core/ports.js';
import type { Alert, Silence } from '../core/records.js';
import type { Topics } from '../core/topics.js';
import { AlertBook, type AlertChangeOptions, type AlertUpdate } from './alert-book.js';
import { AlertingError } from './errors.js';
import { expireSilence, newSilence, SilenceBook, type SilenceInput } from './silences.js';
import type { AlertSink } from './sinks/log-sink.js';

/** Most alert ids one {@link AlertService.acknowledgeMany} call takes. */
export const MAX_BULK_ACKNOWLEDGE = 1000;

/** Most silences the alerter holds (those not over); more are a sign of automation gone wrong, and are logged. */
export const MAX_LOADED_SILENCES = 10_000;

export interface AlertServiceDeps {
  bus: EventBus;
  topics: Topics;
  /** Alerts that were open or acknowledged when the process last stopped. */
  activeAlerts: readonly Alert[];
  /** Persists alert versions (a coalescing batch writer in front of the analytics store). */
  persist: (alerts: readonly Alert[]) => void;
  /** Writes pending alert versions now and resolves when they are durable. */
  flush: () => Promise<void>;
  /** Resolves when every alert version handed to `persist` so far is durable (without forcing a write). */
  durable: () => Promise<void>;
  /**
   * Where silences are kept. The ones not over are loaded at `start()` (so
   * they survive a restart) and re-read every `silenceReloadMs`; changes made
   * through this service are written through before they take effect.
   */
  silences: SilenceStore;
  /**
   * The stored versions of the given alerts, whatever their status; ids not
   * stored are simply absent. Lets a bulk acknowledge tell an alert that is
   * resolved (`conflict`) from one that does not exist (`not_found`).
   */
  storedAlerts: (alertIds: readonly string[]) => Promise<Alert[]>;
  sinks: readonly AlertSink[];
  logger: Logger;
  clock?: () => number;
  /** @default "agentwatch-alerting" */
  group?: string;
  /**
   * How often to re-read the silences from the store, in ms, so a silence
   * stored by another process (an API without the alerter) takes effect.
   * 0: only at start.
   * @default 30000
   */
  silenceReloadMs?: number;
  /** @default crypto.randomUUID */
  newSilenceId?: () => string;
}

/** Outcome of one id of {@link AlertService.acknowledgeMany}. */
export interface BulkAcknowledgeResult {
  alert_id: string;
  /**
   * `acknowledged`: acknowledged now or already; `conflict`: the alert exists
   * but is resolved; `not_found`: no such alert visible to the caller.
   */
  status: 'acknowledged' | 'not_found' | 'conflict';
  /** The alert after the change, or as stored for a conflict; absent when not found. */
  alert?: Alert;
}

/** Filter of {@link AlertService.listSilences}. */
export interface SilenceListOptions {
  /** A tenant: its own and the all-tenant silences; null: only all-tenant ones; omitted: every silence. */
  tenant?: string | null;
  /** Only silences in force now. @default false (every silence, over or not) */
  active?: boolean;
  /** @default 1000 */
  limit?: number;
}

function changeOptions(tenant: string | null | undefined, comment: string | undefined): AlertChangeOptions {
  return { ...(tenant === undefined ? {} : { tenant }), ...(comment === undefined ? {} : { comment }) };
}

/**
 * The alerting stage: consumes verdicts, deduplicates them into alerts,
 * persists every alert version and notifies the sinks — except for changes
 * a silence mutes (the alert's `silenced_by`). Changes made by hand
 * (acknowledge, resolve) are always notified.
 */
export class AlertService {
  private readonly book: AlertBook;
  private readonly silenceBook = new SilenceBook();
  private readonly clock: () => number;
  private subscription: Subscription | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  /** Silence reads and writes, one at a time, so a reload never drops a silence being added. */
  private silenceQueue: Promise<unknown> = Promise.resolve();
  readonly stats = { verdicts: 0, opened: 0, silenced: 0 };

  constructor(private readonly deps: AlertServiceDeps) {
    this.book = new AlertBook(deps.activeAlerts, this.silenceBook);
    this.clock = deps.clock ?? Date.now;
  }

  /** Loads the silences, then consumes verdicts. */
  async start(): Promise<void> {
    // Before the first verdict: a muted alert must not be notified because the alerter just restarted.
    await this.reloadSilences();
    const reloadMs = this.deps.silenceReloadMs ?? 30_000;
    if (reloadMs > 0) {
      this.reloadTimer = setInterval(() => {
        this.reloadSilences().catch((error: unknown) => this.deps.logger.error({ err: error }, 'reloading silences failed; keeping the ones held'));
      }, reloadMs);
      this.reloadTimer.unref();
    }
    this.subscription = await this.deps.bus.subscribe(
      this.deps.topics.verdicts,
      { group: this.deps.group ?? 'agentwatch-alerting', maxBatch: 2000 },
      async (batch) => {
        const now = this.clock();
        const changed: Alert[] = [];
        for (const { value: verdict, offset } of batch.records) {
          this.stats.verdicts++;
          const update = this.book.openOrBumpAlert(verdict, now, { partition: batch.partition, offset });
          if (update === null) continue;
          if (update.change === 'opened') this.stats.opened++;
          changed.push(update.alert);
          if (update.alert.silenced_by !== '') {
            this.stats.silenced++;
            this.tellSilenced(update);
            continue;
          }
          await this.notify(update);
        }
        if (changed.length > 0) this.deps.persist(changed);
        // Offsets are committed when this returns: only once the alert versions
        // are durable, and the notifications the sinks took (a rejection here
        // redelivers the batch; a delivery sink keeps what it could not write).
        await this.deps.durable();
        await this.sinksDurable();
      },
    );
  }

  /**
   * Acknowledges an alert and waits until the new version is stored. A
   * caller bound to a tenant (`tenant`) finds only that tenant's alerts;
   * `comment`, when given, is kept on the alert.
   *
   * @throws AlertingError `AW_ALERTING_NOT_FOUND` when it is not open or acknowledged, or belongs to another tenant.
   */
  async acknowledge(alertId: string, by: string, tenant?: string | null, comment?: string): Promise<Alert> {
    const update = this.book.acknowledge(alertId, by, this.clock(), changeOptions(tenant, comment));
    return this.commit(update);
  }

  /**
   * Acknowledges up to {@link MAX_BULK_ACKNOWLEDGE} alerts with one write;
   * one result per id, in the order given. A caller bound to a tenant
   * (`tenant`) sees other tenants' alerts as `not_found`.
   *
   * @throws AlertingError `AW_ALERTING_TOO_MANY_IDS` for more than {@link MAX_BULK_ACKNOWLEDGE} ids.
   */
  async acknowledgeMany(alertIds: readonly string[], by: string, tenant?: string | null, comment?: string): Promise<BulkAcknowledgeResult[]> {
    if (alertIds.length > MAX_BULK_ACKNOWLEDGE) {
      throw new AlertingError('AW_ALERTING_TOO_MANY_IDS', `at most ${MAX_BULK_ACKNOWLEDGE} alerts can be acknowledged at once (got ${alertIds.length})`);
    }
    const options = changeOptions(tenant, comment);
    const now = this.clock();
    const results: BulkAcknowledgeResult[] = [];
    const changed = new Map<string, AlertUpdate>();
    const unknown = new Set<string>();
    for (const alertId of alertIds) {
      try {
        const update = this.book.acknowledge(alertId, by, now, options);
        changed.set(alertId, update);
        results.push({ alert_id: alertId, status: 'acknowledged', alert: update.alert });
      } catch (error) {
        if (!(error instanceof AlertingError) || error.code !== 'AW_ALERTING_NOT_FOUND') throw error;
        unknown.add(alertId);
        results.push({ alert_id: alertId, status: 'not_found' });
      }
    }
    if (unknown.size > 0) {
      const scope = tenant ?? null;
      const stored = new Map(
        (await this.deps.storedAlerts([...unknown])).filter((a) => scope === null || a.tenant === scope).map((a) => [a.alert_id, a]),
      );
      for (const result of results) {
        const alert = result.status === 'not_found' ? stored.get(result.alert_id) : undefined;
        if (alert === undefined) continue;
        result.status = 'conflict';
        result.alert = alert;
      }
    }
    if (changed.size > 0) {
      const updates = [...changed.values()];
      this.deps.persist(updates.map((u) => u.alert));
      await this.deps.flush();
      for (const update of updates) await this.notify(update);
      await this.sinksDurableOrLog();
    }
    return results;
  }

  /**
   * Resolves an alert and waits until the new version is stored. `by` goes
   * to the log (alerts record who acknowledged, not who resolved); `tenant`
   * and `comment` as for {@link acknowledge}.
   *
   * @throws AlertingError `AW_ALERTING_NOT_FOUND` when it is not open or acknowledged, or belongs to another tenant.
   */
  async resolve(alertId: string, by?: string, tenant?: string | null, comment?: string): Promise<Alert> {
    const update = this.book.resolve(alertId, this.clock(), changeOptions(tenant, comment));
    this.deps.logger.info({ alert_id: alertId, tenant: update.alert.tenant, by: by ?? '' }, 'alert resolved');
    return this.commit(update);
  }

  openAlerts(): number {
    return this.book.activeCount();
  }

  /**
   * Creates a silence, stores it and puts it in force (from its `starts_at`)
   * for the verdicts processed after this resolves. A caller bound to a
   * tenant (`callerTenant`) can only silence its own tenant, which is also
   * the default tenant of the silence.
   *
   * @throws AlertingError `AW_ALERTING_INVALID_SILENCE` or `AW_ALERTING_FORBIDDEN` (see `newSilence`).
   */
  addSilence(input: SilenceInput, by: string, callerTenant?: string | null): Promise<Silence> {
    return this.serialised(async () => {
      const silence = newSilence(input, { by, now: this.clock(), silence_id: (this.deps.newSilenceId ?? randomUUID)(), callerTenant });
      await this.deps.silences.upsertSilences([silence]);
      this.silenceBook.put(silence);
      this.deps.logger.info({ silence_id: silence.silence_id, tenant: silence.tenant, matchers: silence.matchers, ends_at: silence.ends_at, by: silence.created_by }, 'silence added');
      return silence;
    });
  }

  /**
   * Ends a silence now. Expiring a silence that is over already returns it
   * unchanged.
   *
   * @throws AlertingError `AW_ALERTING_NOT_FOUND` for an unknown silence or one
   *   of another tenant than `callerTenant`; `AW_ALERTING_FORBIDDEN` when a
   *   tenant-bound caller expires an all-tenant silence.
   */
  expireSilence(silenceId: string, by: string, callerTenant?: string | null): Promise<Silence> {
    return this.serialised(async () => {
      const now = this.clock();
      const current = this.silenceBook.get(silenceId) ?? (await this.deps.silences.getSilence(silenceId));
      const caller = callerTenant ?? null;
      if (current === null || current === undefined || (caller !== null && current.tenant !== null && current.tenant !== caller)) {
        throw new AlertingError('AW_ALERTING_NOT_FOUND', `no silence ${silenceId}`);
      }
      if (caller !== null && current.tenant === null) {
        throw new AlertingError('AW_ALERTING_FORBIDDEN', `silence ${silenceId} covers every tenant; a caller bound to tenant ${JSON.stringify(caller)} cannot expire it`);
      }
      const expired = expireSilence(current, by, now);
      if (expired === null) return current;
      await this.deps.silences.upsertSilences([expired]);
      this.silenceBook.put(expired);
      this.silenceBook.prune(now);
      this.deps.logger.info({ silence_id: silenceId, by }, 'silence expired');
      return expired;
    });
  }

  /** One silence, over or not; null when unknown or of another tenant than `callerTenant` (all-tenant silences are visible to all). */
  async getSilence(silenceId: string, callerTenant?: string | null): Promise<Silence | null> {
    const silence = await this.deps.silences.getSilence(silenceId);
    const caller = callerTenant ?? null;
    if (silence === null || (caller !== null && silence.tenant !== null && silence.tenant !== caller)) return null;
    return silence;
  }

  /** Stored silences, newest first. */
  listSilences(options: SilenceListOptions = {}): Promise<Silence[]> {
    return this.deps.silences.listSilences({
      ...(options.tenant === undefined ? {} : { tenant: options.tenant }),
      ...(options.active === true ? { active_at: this.clock() } : {}),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    });
  }

  /** Re-reads the silences not over from the store; done at start and every `silenceReloadMs`. */
  reloadSilences(): Promise<void> {
    return this.serialised(async () => {
      const loaded = await this.deps.silences.listSilences({ unexpired_at: this.clock(), limit: MAX_LOADED_SILENCES });
      if (loaded.length >= MAX_LOADED_SILENCES) {
        this.deps.logger.warn({ limit: MAX_LOADED_SILENCES }, 'too many silences not over; the oldest are not applied');
      }
      this.silenceBook.replaceAll(loaded);
    });
  }

  /** Silences held in memory (not over at the last reload or change). */
  heldSilences(): number {
    return this.silenceBook.size();
  }

  private serialised<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.silenceQueue.then(operation);
    this.silenceQueue = run.catch(() => undefined);
    return run;
  }

  private async commit(update: AlertUpdate): Promise<Alert> {
    this.deps.persist([update.alert]);
    await this.deps.flush();
    await this.notify(update);
    await this.sinksDurableOrLog();
    return update.alert;
  }

  /** Tells the sinks that track alerts of a change a silence muted. */
  private tellSilenced(update: AlertUpdate): void {
    for (const sink of this.deps.sinks) {
      try {
        sink.silenced?.(update);
      } catch (error) {
        this.deps.logger.error({ err: error, sink: sink.name, alert_id: update.alert.alert_id }, 'alert sink failed');
      }
    }
  }

  private async sinksDurable(): Promise<void> {
    for (const sink of this.deps.sinks) await sink.durable?.();
  }

  /**
   * After a change by hand the alert is stored already: a sink that cannot
   * write its notifications now must not fail the caller's request. It keeps
   * them and writes them with its next batch.
   */
  private async sinksDurableOrLog(): Promise<void> {
    try {
      await this.sinksDurable();
    } catch (error) {
      this.deps.logger.error({ err: error }, 'storing alert notifications failed; retrying with the next change');
    }
  }

  private async notify(update: AlertUpdate): Promise<void> {
    for (const sink of this.deps.sinks) {
      try {
        await sink.notify(update);
      } catch (error) {
        this.deps.logger.error({ err: error, sink: sink.name, alert_id: update.alert.alert_id }, 'alert sink failed');
      }
    }
  }

  /** Alerts being flushed must be durable before the process stops. */
  async stop(): Promise<void> {
    clearInterval(this.reloadTimer);
    this.reloadTimer = undefined;
    await this.subscription?.stop();
    this.subscription = undefined;
    await this.silenceQueue;
    await this.deps.flush();
  }
}
