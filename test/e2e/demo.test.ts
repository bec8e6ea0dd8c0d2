import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, Page } from '../../core/records.js';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { DEMO_ATTACK_AGENTS, DemoTelemetry, demoStartTime } from '../../cli/demo/generator.js';
import { startTestPipeline, testConfig } from '../support/pipeline.js';

describe('demo traffic through the embedded pipeline with the default policies', () => {
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(testConfig());
    await p.app.ready();
  });
  afterAll(async () => p?.stop());

  it('raises exactly one alert per attack, with rising counts, and none for the normal agents', async () => {
    const timezone = p.engine().document.timezone;
    const start = demoStartTime(Date.UTC(2026, 10, 25, 12, 0), timezone);
    const telemetry = new DemoTelemetry({ start, timezone });
    // 45 simulated minutes in 30-second steps, as the CLI would feed it.
    for (let t = start; t <= start + 45 * 60_000; t += 30_000) {
      const r = await p.publishEvents(telemetry.eventsUntil(t));
      expect(r.rejected).toBe(0);
    }
    await p.settle();
    const res = await p.app.inject({ method: 'GET', url: '/v1/alerts?limit=100' });
    const alerts = (res.json() as Page<Alert>).items;
    const byAgent = new Map(alerts.map((a) => [a.agent_id, a]));
    expect([...byAgent.keys()].sort()).toEqual(DEMO_ATTACK_AGENTS.map((a) => a.id).sort());
    expect(alerts).toHaveLength(4);
    expect(byAgent.get('agent-burst-01')!.policy_type).toBe('rate_spike');
    expect(byAgent.get('agent-nightowl-07')!.policy_type).toBe('off_hours');
    expect(byAgent.get('agent-shadow-13')!.policy_type).toBe('unknown_agent');
    expect(byAgent.get('agent-exfil-21')!.policy_type).toBe('unauthorized_api');
    for (const a of alerts) expect(a.count).toBeGreaterThan(1);
    expect(p.worker!.stats.events).toBeGreaterThan(2000);
  });
});
