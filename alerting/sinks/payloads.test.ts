import { describe, expect, it } from 'vitest';
import type { AlertDelivery, DeliveryChange } from '../../core/ports.js';
import { DeliveryConfigSchema, type DeliverySinkConfig } from '../delivery-config.js';
import { newDelivery } from '../delivery-plan.js';
import { T0, testAlert } from '../delivery-testing.js';
import { escapeSlack, renderRequest, slackBody, WEBHOOK_SCHEMA } from './payloads.js';

function sink(input: Record<string, unknown>): DeliverySinkConfig {
  return DeliveryConfigSchema.parse({ sinks: [{ name: 's', url: 'https://h.example/hook/SECRET', ...input }] }).sinks[0] as DeliverySinkConfig;
}

function delivery(s: DeliverySinkConfig, change: DeliveryChange = 'opened', overrides: Parameters<typeof testAlert>[0] = {}): AlertDelivery {
  return newDelivery(testAlert(overrides), change, s, T0 + 100);
}

describe('renderRequest', () => {
  it('posts the agentwatch webhook body with the idempotency key and configured headers', () => {
    const s = sink({ kind: 'webhook', headers: { Authorization: 'Bearer t0ken' } });
    const d = delivery(s);
    const request = renderRequest(d, s, 'https://aw.example/');
    expect(request.url).toBe('https://h.example/hook/SECRET');
    expect(request.headers).toEqual({
      'user-agent': 'agentwatch-delivery',
      Authorization: 'Bearer t0ken',
      'content-type': 'application/json',
      'idempotency-key': d.notification_id,
    });
    expect(JSON.parse(request.body)).toEqual({
      schema: WEBHOOK_SCHEMA,
      id: d.notification_id,
      change: 'opened',
      sink: 's',
      notified_at: new Date(T0 + 100).toISOString(),
      alert: testAlert(),
      url: 'https://aw.example/v1/alerts/a1',
    });
  });

  it('posts an OCSF Detection Finding when asked, its activity following the change', () => {
    const s = sink({ kind: 'webhook', payload: 'ocsf' });
    const body = JSON.parse(renderRequest(delivery(s, 'resolved', { status: 'resolved', resolved_at: T0 + 50 }), s).body);
    expect(body).toMatchObject({ class_uid: 2004, activity_id: 3, status_id: 4, time: T0 + 100, finding_info: { uid: 'a1', attacks: [{ technique: { uid: 'AML.T0034' } }] } });
    expect(body.metadata.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.parse(renderRequest(delivery(s, 'escalated'), s).body).activity_id).toBe(2);
  });

  it('posts Alertmanager alerts whose labels carry the dedup identity, with endsAt only on resolve', () => {
    const s = sink({ kind: 'alertmanager' });
    expect(JSON.parse(renderRequest(delivery(s), s, 'https://aw.example').body)).toEqual([
      {
        labels: { alertname: 'rate_spike', agentwatch_alert_id: 'a1', tenant: 'acme', policy_id: 'api-rate-spike', agent_id: 'agent-1', severity: 'high' },
        annotations: { summary: 'rate_spike on agent-1 (api-rate-spike)', description: '120 events in 5 min (threshold 100)' },
        startsAt: new Date(T0).toISOString(),
        generatorURL: 'https://aw.example/v1/alerts/a1',
      },
    ]);
    const resolved = JSON.parse(renderRequest(delivery(s, 'resolved', { status: 'resolved', resolved_at: T0 + 50 }), s).body);
    expect(resolved[0].endsAt).toBe(new Date(T0 + 50).toISOString());
    expect(resolved[0].generatorURL).toBeUndefined();
  });

  it('posts Slack text: a headline, the reason and the fields, with <, > and & escaped', () => {
    const s = sink({ kind: 'slack' });
    const { text } = JSON.parse(renderRequest(delivery(s, 'opened', { reason: 'read <@U123> & <!channel>', agent_id: 'a>b' }), s).body);
    expect(text).toBe(
      [
        ':rotating_light: Alert opened [HIGH] rate_spike on agent-1 (api-rate-spike)',
        '> read &lt;@U123&gt; &amp; &lt;!channel&gt;',
        '*Tenant:* acme · *Policy:* api-rate-spike · *Agent:* a&gt;b · *Count:* 3 · *Status:* open · *Alert:* a1 · *ATLAS:* AML.T0034',
      ].join('\n'),
    );
    expect(slackBody(delivery(s, 'resolved'), 'https://aw.example').text).toContain(':white_check_mark: Alert resolved');
    expect(slackBody(delivery(s), 'https://aw.example').text).toContain('*Alert:* <https://aw.example/v1/alerts/a1|a1>');
    expect(escapeSlack('<&>')).toBe('&lt;&amp;&gt;');
  });

  it('keeps a configured User-Agent instead of its own', () => {
    const s = sink({ kind: 'webhook', headers: { 'User-Agent': 'mine' } });
    expect(renderRequest(delivery(s), s).headers).toMatchObject({ 'User-Agent': 'mine' });
    expect(renderRequest(delivery(s), s).headers['user-agent']).toBeUndefined();
  });
});
