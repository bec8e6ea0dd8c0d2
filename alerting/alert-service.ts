import type { Logger } from 'pino';
import type { EventBus, Subscription } from '../core/ports.js';
import type { Alert } from '../core/records.js';
import type { Topics } from '../core/topics.js';
import { AlertBook, type AlertUpdate } from './alert-book.js';
import type { AlertSink } from './sinks/log-sink.js';

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
  sinks: readonly AlertSink[];
  logger: Logger;
  clock?: () => number;
  /** @default "agentwatch-alerting" */
  group?: string;
}

/**
 * The alerting stage: consumes verdicts, deduplicates them into alerts,
 * persists every alert version and notifies the sinks.
 */
export class AlertService {
  private readonly book: AlertBook;
  private readonly clock: () => number;
  private subscription: Subscription | undefined;
  readonly stats = { verdicts: 0, opened: 0 };

  constructor(private readonly deps: AlertServiceDeps) {
    this.book = new AlertBook(deps.activeAlerts);
    this.clock = deps.clock ?? Date.now;
  }

  async start(): Promise<void> {
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
          await this.notify(update);
        }
        if (changed.length > 0) this.deps.persist(changed);
        // Offsets are committed when this returns: only once the alert versions are durable.
        await this.deps.durable();
      },
    );
  }

  /** Acknowledges an alert and waits until the new version is stored. */
  async acknowledge(alertId: string, by: string): Promise<Alert> {
    const update = this.book.acknowledge(alertId, by, this.clock());
    return this.commit(update);
  }

  /** Resolves an alert and waits until the new version is stored. */
  async resolve(alertId: string): Promise<Alert> {
    const update = this.book.resolve(alertId, this.clock());
    return this.commit(update);
  }

  openAlerts(): number {
    return this.book.activeCount();
  }

  private async commit(update: AlertUpdate): Promise<Alert> {
    this.deps.persist([update.alert]);
    await this.deps.flush();
    await this.notify(update);
    return update.alert;
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
    await this.subscription?.stop();
    this.subscription = undefined;
    await this.deps.flush();
  }
}
