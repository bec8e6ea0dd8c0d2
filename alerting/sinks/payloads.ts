import type { AlertDelivery, DeliveryChange } from '../../core/ports.js';
import type { Alert } from '../../core/records.js';
import type { DeliverySinkConfig } from '../delivery-config.js';
import { toOcsfDetectionFinding, type OcsfActivity } from '../ocsf.js';

// The request bodies of the delivery sinks: pure functions of the outbox row
// and the sink's configuration, so every attempt of a notification — before
// and after a restart — sends the same bytes.

/** A rendered POST: the URL and headers come from the configuration (never stored), the body from the outbox row. */
export interface RenderedRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Schema name of the `agentwatch` webhook body. */
export const WEBHOOK_SCHEMA = 'agentwatch.alert-notification/v1';

/** Body of a webhook with `payload: agentwatch`. */
export interface AgentwatchWebhookBody {
  schema: typeof WEBHOOK_SCHEMA;
  /** The notification id; also the `Idempotency-Key` header. Retries and re-sends after a restart repeat it. */
  id: string;
  change: DeliveryChange;
  sink: string;
  /** When the notification was made (ISO 8601), the same on every attempt. */
  notified_at: string;
  alert: Alert;
  url?: string;
}

/** One alert of an Alertmanager `POST /api/v2/alerts` body. */
export interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

function alertUrl(alert: Alert, publicUrl: string | undefined): string | undefined {
  return publicUrl === undefined ? undefined : `${publicUrl.replace(/\/+$/, '')}/v1/alerts/${encodeURIComponent(alert.alert_id)}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

const OCSF_ACTIVITY: Record<DeliveryChange, OcsfActivity> = { opened: 'create', escalated: 'update', reminder: 'update', resolved: 'close' };

/** The `webhook` body: agentwatch's own shape or an OCSF Detection Finding (`metadata.uid` = notification id). */
export function webhookBody(delivery: AlertDelivery, sink: DeliverySinkConfig, publicUrl?: string): AgentwatchWebhookBody | ReturnType<typeof toOcsfDetectionFinding> {
  const url = alertUrl(delivery.alert, publicUrl);
  if (sink.payload === 'ocsf') {
    return toOcsfDetectionFinding(delivery.alert, [], {
      activity: OCSF_ACTIVITY[delivery.change],
      uid: delivery.notification_id,
      time: delivery.created_at,
      ...(url === undefined ? {} : { alertUrl: url }),
    });
  }
  return {
    schema: WEBHOOK_SCHEMA,
    id: delivery.notification_id,
    change: delivery.change,
    sink: delivery.sink,
    notified_at: iso(delivery.created_at),
    alert: delivery.alert,
    ...(url === undefined ? {} : { url }),
  };
}

/**
 * The Alertmanager body: one alert whose labels carry agentwatch's dedup
 * identity (so Alertmanager groups and deduplicates on it) and its severity
 * (for routing). `endsAt` only on resolve; a firing alert without `endsAt`
 * is resolved by Alertmanager after its `resolve_timeout` unless re-sent,
 * hence the reminders of Alertmanager sinks. Caveat: severity is a label, so
 * after an escalation Alertmanager holds the old-severity alert until its
 * `resolve_timeout` passes.
 */
export function alertmanagerBody(delivery: AlertDelivery, publicUrl?: string): AlertmanagerAlert[] {
  const a = delivery.alert;
  const url = alertUrl(a, publicUrl);
  return [
    {
      labels: {
        alertname: a.policy_type,
        agentwatch_alert_id: a.alert_id,
        tenant: a.tenant,
        policy_id: a.policy_id,
        agent_id: a.agent_id,
        severity: a.severity,
      },
      annotations: { summary: a.title, description: a.reason },
      startsAt: iso(a.first_seen),
      ...(delivery.change === 'resolved' && a.resolved_at > 0 ? { endsAt: iso(a.resolved_at) } : {}),
      ...(url === undefined ? {} : { generatorURL: url }),
    },
  ];
}

/** Escapes the three characters Slack's mrkdwn gives meaning to (`<`, `>`, `&`), so alert text cannot form links or mentions. */
export function escapeSlack(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

const SLACK_HEADLINE: Record<DeliveryChange, string> = {
  opened: ':rotating_light: Alert opened',
  escalated: ':arrow_double_up: Alert escalated',
  reminder: ':bell: Alert still open',
  resolved: ':white_check_mark: Alert resolved',
};

/** The Slack-compatible incoming-webhook body: a one-line headline, the reason, then the fields. */
export function slackBody(delivery: AlertDelivery, publicUrl?: string): { text: string } {
  const a = delivery.alert;
  const url = alertUrl(a, publicUrl);
  const fields = [
    `*Tenant:* ${escapeSlack(a.tenant)}`,
    `*Policy:* ${escapeSlack(a.policy_id)}`,
    `*Agent:* ${escapeSlack(a.agent_id)}`,
    `*Count:* ${a.count}`,
    `*Status:* ${a.status}`,
    `*Alert:* ${url === undefined ? escapeSlack(a.alert_id) : `<${url}|${escapeSlack(a.alert_id)}>`}`,
  ];
  if (a.atlas.length > 0) fields.push(`*ATLAS:* ${escapeSlack(a.atlas.join(', '))}`);
  const lines = [`${SLACK_HEADLINE[delivery.change]} [${a.severity.toUpperCase()}] ${escapeSlack(a.title)}`];
  if (a.reason !== '') lines.push(`> ${escapeSlack(a.reason).replaceAll('\n', ' ')}`);
  lines.push(fields.join(' · '));
  return { text: lines.join('\n') };
}

/**
 * The request for one attempt. Configured headers first, then the ones the
 * delivery contract fixes: `Idempotency-Key` is the notification id, the
 * same on every attempt and after a restart, so a receiver can drop repeats.
 */
export function renderRequest(delivery: AlertDelivery, sink: DeliverySinkConfig, publicUrl?: string): RenderedRequest {
  const body =
    sink.kind === 'alertmanager' ? alertmanagerBody(delivery, publicUrl) : sink.kind === 'slack' ? slackBody(delivery, publicUrl) : webhookBody(delivery, sink, publicUrl);
  return {
    url: sink.url,
    headers: {
      ...(Object.keys(sink.headers).some((name) => name.toLowerCase() === 'user-agent') ? {} : { 'user-agent': 'agentwatch-delivery' }),
      ...sink.headers,
      'content-type': 'application/json',
      'idempotency-key': delivery.notification_id,
    },
    body: JSON.stringify(body),
  };
}
