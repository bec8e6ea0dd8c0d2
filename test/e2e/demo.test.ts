import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, Page } from '../../core/records.js';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { DEMO_ATTACK_AGENTS, DemoTelemetry, demoStartTime } from '../../cli/demo/generator.js';
import { ADMIN, startTestPipeline, testConfig } from '../support/pipeline.js';

describe('demo traffic through the embedded pipeline with the default policies', () => {
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(testConfig());
    await p.app.ready();
  });
  afterAll(async () => p?.stop());

  it('raises exactly one alert per attack, of its policy type, with rising counts, and none for the normal agents', async () => {
    const timezone = p.engine().document.timezone;
    const start = demoStartTime(Date.UTC(2026, 10, 25, 12, 0), timezone);
    const telemetry = new DemoTelemetry({ start, timezone });
    // 45 simulated minutes in 30-second steps, as the CLI would feed it.
    for (let t = start; t <= start + 45 * 60_000; t += 30_000) {
      const r = await p.publishEvents(telemetry.eventsUntil(t));
      expect(r.rejected).toBe(0);
    }
    await p.settle();
    const res = await p.app.inject({ headers: ADMIN, method: 'GET', url: '/v1/alerts?limit=100' });
    const alerts = (res.json() as Page<Alert>).items;
    expect(alerts).toHaveLength(DEMO_ATTACK_AGENTS.length);
    const got = alerts.map((a) => [a.agent_id, a.policy_id, a.policy_type]).sort();
    expect(got).toEqual(DEMO_ATTACK_AGENTS.map((a) => [a.id, a.policyId, a.policyType]).sort());
    // One per policy type of the default document.
    expect(new Set(alerts.map((a) => a.policy_type)).size).toBe(19);
    expect(DEMO_ATTACK_AGENTS).toHaveLength(19);
    for (const a of alerts) expect(a.count, a.agent_id).toBeGreaterThan(1);
    const byAgent = new Map(alerts.map((a) => [a.agent_id, a]));
    // A dangerous capability escalates the drift alert to critical.
    expect(byAgent.get('agent-drift-55')!.severity).toBe('critical');
    // A sanctioned country is critical by policy; a leaked access key escalates to critical.
    expect(byAgent.get('agent-beacon-84')!.severity).toBe('critical');
    expect(byAgent.get('agent-leaky-97')!.severity).toBe('critical');
    expect(byAgent.get('agent-offsite-81')!.severity).toBe('high');
    expect(alerts.filter((a) => /^agent-\d{3}$/.test(a.agent_id))).toEqual([]);
    expect(p.worker!.stats.events).toBeGreaterThan(2000);
  });
});
