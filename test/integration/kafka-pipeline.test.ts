/**
 * The whole pipeline over real Kafka and Redis, fed by an external producer:
 * kcat (librdkafka) writes the fixed scenario file to the events topic; the
 * worker judges it with window state in Redis, the alerter deduplicates, and the
 * API lists exactly the expected alerts. Malformed records reach the dead letters.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, Page } from '../../core/records.js';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { ADMIN, repoRoot, startTestPipeline, testConfig } from '../support/pipeline.js';
import { waitFor } from '../support/processes.js';

const brokers = process.env.KAFKA_BROKERS;
const redisUrl = process.env.REDIS_URL;
if (brokers === undefined || redisUrl === undefined) throw new Error('KAFKA_BROKERS and REDIS_URL must be set (test/global-setup.ts starts them)');

const sfx = randomBytes(4).toString('hex');
const topics = { events: `kcat-events-${sfx}`, verdicts: `kcat-verdicts-${sfx}`, dlq: `kcat-dlq-${sfx}`, policies: `kcat-policies-${sfx}` };
const config = testConfig({
  kafka: { brokers: brokers.split(','), group_prefix: `kcat-${sfx}-`, topics },
  redis: { url: redisUrl, key_prefix: `kcat-${sfx}:` },
});

/** Key of a scenario line: tenant/agent for readable events, a fixed key for garbage. */
function keyOf(line: string): string {
  try {
    const e = JSON.parse(line) as { tenant?: string; agent?: { id?: string } };
    return `${e.tenant ?? 'default'}/${e.agent?.id ?? 'unknown'}`;
  } catch {
    return 'unreadable';
  }
}

describe('Kafka + Redis pipeline fed by kcat', () => {
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    const admin = new Kafka({ brokers: brokers.split(','), clientId: `kcat-admin-${sfx}`, logLevel: 0 }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: topics.events, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    p = await startTestPipeline(config);
    await p.app.ready();
  });
  afterAll(async () => p?.stop());

  it('judges, alerts and dead-letters the scenario exactly as the embedded pipeline does', { timeout: 120_000 }, async () => {
    const lines = readFileSync(path.join(repoRoot, 'test/fixtures/basic-scenario.ndjson'), 'utf8').split('\n').filter((l) => l !== '');
    const file = path.join(tmpdir(), `kcat-${sfx}.txt`);
    writeFileSync(file, lines.map((l) => `${keyOf(l)}\t${l}`).join('\n') + '\n');
    execFileSync('kcat', ['-P', '-b', brokers, '-t', topics.events, '-K', '\t', '-l', file], { stdio: 'pipe' });

    const list = async (query = '') => {
      const res = await p.app.inject({ headers: ADMIN, method: 'GET', url: `/v1/alerts${query}` });
      return (res.json() as Page<Alert>).items;
    };
    await waitFor('all four alerts at their final counts', async () => {
      const counts = (await list()).map((a) => a.count).sort((a, b) => a - b);
      return JSON.stringify(counts) === JSON.stringify([2, 3, 4, 20]);
    }, 90_000, 250);
    const alerts = await list();
    expect(alerts.map((a) => [a.policy_type, a.agent_id, a.count]).sort()).toEqual(
      [
        ['off_hours', 'agent-nightowl-07', 3],
        ['rate_spike', 'agent-burst-01', 20],
        ['unauthorized_api', 'agent-exfil-21', 2],
        ['unknown_agent', 'agent-shadow-13', 4],
      ].sort(),
    );

    const count = async (sql: string) => {
      await p.settle();
      const rs = await p.clickhouse.query({ query: sql.replaceAll('{db}', config.clickhouse.database), format: 'JSONEachRow' });
      const [row] = await rs.json<{ n: string | number }>();
      return Number(row?.n ?? 0);
    };
    await waitFor('the dead letters to be stored', async () => (await count('SELECT count() AS n FROM {db}.dead_letters')) === 4, 30_000, 250);
    const reasons = await p.clickhouse.query({
      query: `SELECT reason, source FROM ${config.clickhouse.database}.dead_letters ORDER BY reason`,
      format: 'JSONEachRow',
    });
    const dead = await reasons.json<{ reason: string; source: string }>();
    expect(dead.map((d) => d.reason)).toEqual([
      expect.stringMatching(/^agent\.id: /),
      expect.stringMatching(/^forbidden key/),
      expect.stringMatching(/^not valid JSON/),
      expect.stringMatching(/^type: /),
    ]);
    for (const d of dead) expect(d.source).toMatch(new RegExp(`^kafka:${topics.events}/\\d+@\\d+$`));
    // 230 readable events, one of them a producer retry of another (same event_id, same partition).
    expect(await count('SELECT count() AS n FROM {db}.events FINAL')).toBe(229);
    expect(await count('SELECT count() AS n FROM {db}.audit_log FINAL')).toBe(229);
    expect(await count('SELECT count() AS n FROM {db}.verdicts FINAL')).toBe(29);
  });

  it('a policy change made through an API-only process reaches the worker over Kafka within 5 s; rollback restores it', { timeout: 90_000 }, async () => {
    const api = await startTestPipeline(config, ['api']);
    try {
      await api.app.ready();
      const call = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: Record<string, unknown>) => {
        const res = await api.app.inject({ headers: ADMIN, method, url, ...(payload === undefined ? {} : { payload }) });
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
        return res.json() as { version: { version: number } };
      };
      const hasPolicy = () => p.engine().policies.some((c) => c.policy.id === 'approved-agents');
      /** Publishes one event of an unlisted agent and returns the policies that fired on it. */
      const judge = async (id: string): Promise<string[]> => {
        await p.publishEvents([{ event_id: id, time: '2026-11-24T12:00:00+01:00', agent: { id: `policy-${id}`, name: 'shadow-gpt' }, type: 'api_call' }]);
        let row: { matched_policies: string[] } | undefined;
        await waitFor(`audit row of ${id}`, async () => {
          const res = await p.app.inject({ headers: ADMIN, method: 'GET', url: `/v1/audit?agent_id=policy-${id}` });
          row = (res.json() as Page<{ matched_policies: string[] }>).items[0];
          return row !== undefined;
        }, 30_000, 100);
        return row!.matched_policies;
      };
      expect(await judge('before')).toContain('approved-agents');
      const before = (await call('GET', '/v1/mode')) as unknown as { version: number };

      let started = Date.now();
      await call('PATCH', '/v1/policies/approved-agents/toggle', { enabled: false });
      await waitFor('the worker to drop the policy', () => !hasPolicy(), 5_000, 20);
      const applyMs = Date.now() - started;
      expect(applyMs).toBeLessThan(5_000);
      expect(await judge('disabled')).not.toContain('approved-agents');

      started = Date.now();
      await call('POST', `/v1/policy-versions/${before.version}/rollback`);
      await waitFor('the worker to restore the policy', () => hasPolicy(), 5_000, 20);
      const rollbackMs = Date.now() - started;
      expect(rollbackMs).toBeLessThan(5_000);
      console.log(`[policies] change → worker over Kafka: ${applyMs} ms; rollback → worker: ${rollbackMs} ms`);
      expect(await judge('restored')).toContain('approved-agents');
      expect(p.policyVersion()).toBe(before.version + 2);
    } finally {
      await api.stop();
    }
  });

  it('an API-only process reads the alerts and forwards alert changes to the alerter', { timeout: 60_000 }, async () => {
    const alerterUrl = await p.listen();
    const api = await startTestPipeline(Object.freeze({ ...config, alerter_url: alerterUrl }), ['api']);
    try {
      await api.app.ready();
      const res = await api.app.inject({ headers: ADMIN, method: 'GET', url: '/v1/alerts?policy_type=unknown_agent&agent_id=agent-shadow-13' });
      const [shadow] = (res.json() as Page<Alert>).items;
      expect(shadow).toMatchObject({ agent_id: 'agent-shadow-13', status: 'open' });
      const ack = await api.app.inject({ headers: ADMIN, method: 'POST', url: `/v1/alerts/${shadow!.alert_id}/ack`, payload: { by: 'ana' } });
      expect(ack.statusCode).toBe(200);
      expect(ack.json()).toMatchObject({ alert_id: shadow!.alert_id, status: 'acknowledged', acknowledged_by: 'ana (key admin)' });
      const seen = await p.app.inject({ headers: ADMIN, method: 'GET', url: `/v1/alerts/${shadow!.alert_id}` });
      expect(seen.json()).toMatchObject({ status: 'acknowledged' });
      const missing = await api.app.inject({ headers: ADMIN, method: 'POST', url: `/v1/alerts/${'0'.repeat(32)}/resolve` });
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toMatchObject({ code: 'AW_API_NOT_FOUND' });
      // Without the alerter's address the API says how to fix it.
      const lonely = await startTestPipeline(config, ['api']);
      try {
        const refused = await lonely.app.inject({ headers: ADMIN, method: 'POST', url: `/v1/alerts/${shadow!.alert_id}/resolve` });
        expect(refused.statusCode).toBe(503);
        expect(refused.json().message).toMatch(/AGENTWATCH_ALERTER_URL/);
      } finally {
        await lonely.stop();
      }
    } finally {
      await api.stop();
    }
  });
});
