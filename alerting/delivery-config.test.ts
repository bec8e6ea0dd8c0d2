import { describe, expect, it } from 'vitest';
import { DeliveryConfigSchema } from './delivery-config.js';

function issues(input: unknown): string[] {
  const result = DeliveryConfigSchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('DeliveryConfigSchema', () => {
  it('defaults to no sinks, and fills every sink default', () => {
    expect(DeliveryConfigSchema.parse(undefined)).toEqual({ sinks: [], concurrency: 8 });
    const { sinks } = DeliveryConfigSchema.parse({ sinks: [{ name: 'hook', kind: 'webhook', url: 'https://hooks.example.com/x' }] });
    expect(sinks[0]).toEqual({
      name: 'hook',
      kind: 'webhook',
      url: 'https://hooks.example.com/x',
      headers: {},
      payload: 'agentwatch',
      match: {},
      timeout_ms: 10_000,
      max_attempts: 8,
      backoff: { initial_ms: 1_000, max_ms: 300_000 },
      repeat_interval_minutes: 0,
    });
  });

  it('re-sends to Alertmanager every 4 minutes unless told otherwise', () => {
    const { sinks } = DeliveryConfigSchema.parse({
      sinks: [
        { name: 'am', kind: 'alertmanager', url: 'http://am:9093/api/v2/alerts' },
        { name: 'am2', kind: 'alertmanager', url: 'http://am:9093/api/v2/alerts', repeat_interval_minutes: 0 },
      ],
    });
    expect(sinks.map((s) => s.repeat_interval_minutes)).toEqual([4, 0]);
  });

  it('names the key of every mistake', () => {
    const url = 'http://h.example/x';
    expect(issues({ sinks: [{ name: 'a', kind: 'slack', url, payload: 'ocsf' }] })).toEqual(['sinks.0.payload: only a webhook sink takes a payload option (this one is slack)']);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url }, { name: 'a', kind: 'slack', url }] })).toEqual(['sinks.1.name: duplicate sink name "a"']);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url: 'ftp://h/x' }] })[0]).toMatch(/^sinks\.0\.url: must be an http/);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url: 'https://u:p@h.example/x' }] })[0]).toMatch(/^sinks\.0\.url: must not hold credentials/);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url, headers: { 'Idempotency-Key': 'x' } }] })[0]).toMatch(/^sinks\.0\.headers: must not set/);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url, headers: { 'X-Token': 'a\r\nHost: evil' } }] })).toEqual(['sinks.0.headers.X-Token: must not hold line breaks']);
    expect(issues({ sinks: [{ name: 'a b', kind: 'webhook', url }] })[0]).toMatch(/^sinks\.0\.name: must match/);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url, backoff: { initial_ms: 5_000, max_ms: 1_000 } }] })).toEqual(['sinks.0.backoff.max_ms: must be ≥ initial_ms']);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url, match: { severities: ['urgent'] } }] })[0]).toMatch(/^sinks\.0\.match\.severities\.0:/);
    expect(issues({ sinks: [{ name: 'a', kind: 'webhook', url, max_attempts: 0 }] })[0]).toMatch(/^sinks\.0\.max_attempts:/);
    expect(issues({ sinks: [], extra: 1 })[0]).toMatch(/extra|Unrecognized/);
  });
});
