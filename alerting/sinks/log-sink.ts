import type { Logger } from 'pino';
import type { AlertUpdate } from '../alert-book.js';

/** Where alert notifications go. Delivery (alerting/delivery.ts: webhooks, Alertmanager, Slack) implements the same interface. */
export interface AlertSink {
  readonly name: string;
  /** An alert change to notify: every change a silence did not mute, bumps and acknowledgements included. */
  notify(update: AlertUpdate): Promise<void> | void;
  /** A change a silence muted (`alert.silenced_by` set), told instead of `notify` to sinks that track alerts (reminders stop while muted). */
  silenced?(update: AlertUpdate): void;
  /**
   * Resolves once what `notify` took is durable. The alerter awaits it
   * before committing the verdicts behind the changes, so a crash cannot
   * lose a notification; a rejection makes the bus deliver the batch again.
   */
  durable?(): Promise<void>;
}

/**
 * Writes alert openings, escalations and resolutions to the log as structured
 * records. Bumps (count increases) are not notifications: they would flood the log.
 */
export class LogAlertSink implements AlertSink {
  readonly name = 'log';

  constructor(private readonly logger: Logger) {}

  notify({ alert, change }: AlertUpdate): void {
    if (change === 'bumped') return;
    const level = change === 'resolved' || change === 'acknowledged' ? 'info' : alert.severity === 'low' ? 'info' : 'warn';
    this.logger[level](
      {
        alert_id: alert.alert_id,
        change,
        tenant: alert.tenant,
        policy_id: alert.policy_id,
        policy_type: alert.policy_type,
        agent_id: alert.agent_id,
        severity: alert.severity,
        count: alert.count,
      },
      `alert ${change}: ${alert.reason}`,
    );
  }
}
