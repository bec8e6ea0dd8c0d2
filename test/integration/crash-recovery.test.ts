/**
 * Processing guarantee under a crash: 50,000 events flow through Kafka into a
 * worker process (window state in Redis, rows in its own embedded ClickHouse) and
 * an alerter process. The worker is killed with SIGKILL mid-stream and started
 * again. Afterwards its verdicts, the alerts and the window state must equal
 * those of a reference deployment that judged the same events uninterrupted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Kafka } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionKey, validateEvent, type AgentEvent } from '../../core/event.js';
import { PolicyEngine, evaluateBatchSync } from '../../detectors/engine.js';
import { loadPolicyFile } from '../../detectors/policy-loader.js';
import { defaultRegistry } from '../../detectors/registry.js';
import { MemoryStateStore } from '../../detectors/state/memory/memory-store.js';
import { buildTopics } from '../../core/topics.js';
import { KafkaBus } from '../../ingest/bus/kafka/kafka-bus.js';
import { repoRoot } from '../support/pipeline.js';
import { readRows, windowState } from '../support/deployments.js';
import { startAgentwatch, waitFor, writeConfig, type AgentwatchProcess } from '../support/processes.js';

const brokers = process.env.KAFKA_BROKERS;
const redisUrl = process.env.REDIS_URL;
if (brokers === undefined || redisUrl === undefined) throw new Error('KAFKA_BROKERS and REDIS_URL must be set (test/global-setup.ts starts them)');

const TOTAL = 50_000;
const sfx = randomBytes(4).toString('hex');
const eventsTopic = `crash-events-${sfx}`;
const work = mkdtempSync(path.join(tmpdir(), 'aw-crash-'));

/** Deterministic traffic: steady agents, five bursting ones, an unknown product, an unapproved domain. */
function makeEvents(): AgentEvent[] {
  const start = Date.UTC(2026, 10, 24, 8, 0, 0); // 09:00 Berlin
  const names = ['claude-code', 'cursor', 'copilot', 'codex'];
  const out: AgentEvent[] = [];
  const push = (input: Record<string, unknown>) => {
    const r = validateEvent(input);
    if (!r.ok) throw new Error(r.reason);
    out.push(r.event);
  };
  for (let i = 0; i < TOTAL - 5_000; i++) {
    const agent = i % 200;
    push({
      event_id: `c-${i}`,
      time: start + i * 100,
      agent: { id: `agent-${agent}`, name: agent % 50 === 7 ? 'shadow-gpt' : names[agent % names.length] },
      type: i % 3 === 0 ? 'api_call' : i % 3 === 1 ? 'tool_call' : 'resource_access',
      network: { domain: i % 97 === 0 ? 'paste.exfil-drop.net' : 'api.anthropic.com' },
    });
  }
  for (let b = 0; b < 5; b++) {
    for (let j = 0; j < 1_000; j++) {
      push({ event_id: `b-${b}-${j}`, time: start + b * 900_000 + j * 120, agent: { id: `burst-${b}`, name: 'claude-code' }, type: 'api_call' });
    }
  }
  return out.sort((a, b) => a.time - b.time);
}

/**
 * The verdicts a correct deployment must produce, computed in this process by
 * the pure engine over the in-memory store: per agent, events are judged in the
 * order of their partition, which is the order they were published in.
 */
function expectedVerdicts(events: readonly AgentEvent[]): { verdict_id: string; policy_id: string; agent_id: string; reason: string }[] {
  const engine = new PolicyEngine(loadPolicyFile(path.join(repoRoot, 'policies/default.yaml')), defaultRegistry);
  const store = new MemoryStateStore();
  const out = [];
  for (let i = 0; i < events.length; i += 1000) {
    for (const v of evaluateBatchSync(engine, store, events.slice(i, i + 1000)).verdicts) {
      out.push({ verdict_id: v.verdict_id, policy_id: v.policy_id, agent_id: v.agent_id, reason: v.reason });
    }
  }
  return out.sort((a, b) => (a.verdict_id < b.verdict_id ? -1 : 1));
}

function deploymentConfig(name: string, topic = eventsTopic) {
  const dir = path.join(work, name);
  return {
    port: 0,
    data_dir: path.join(dir, 'data'),
    policies: path.join(repoRoot, 'policies/default.yaml'),
    log_level: 'warn',
    kafka: {
      brokers: brokers!.split(','),
      group_prefix: `${name}-${sfx}-`,
      session_timeout_ms: 10_000,
      topics: { events: topic, verdicts: `crash-verdicts-${name}-${sfx}`, dlq: `crash-dlq-${name}-${sfx}`, policies: `crash-policies-${name}-${sfx}` },
    },
    redis: { url: redisUrl, key_prefix: `crash-${name}-${sfx}:` },
    storage: { batch_rows: 10_000, batch_delay_ms: 100 },
  };
}

async function healthEvents(p: AgentwatchProcess): Promise<number> {
  try {
    const res = await fetch(`${p.url}/healthz`);
    return ((await res.json()) as { events: number }).events;
  } catch {
    return 0;
  }
}

async function caughtUp(bus: KafkaBus, topic: string, group: string, end: Map<number, number>): Promise<boolean> {
  const committed = await bus.committedOffsets(topic, group);
  for (const [partition, high] of end) if ((committed.get(partition) ?? -1) < high) return false;
  return true;
}

const processes: AgentwatchProcess[] = [];
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  if (process.env.AW_KEEP_TEST_DIRS === undefined) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
});

describe('crash recovery: SIGKILL the worker mid-stream', () => {
  it('ends with the same verdicts, alerts and window state as an uninterrupted run', { timeout: 600_000 }, async () => {
    const topics = buildTopics({ events: eventsTopic, verdicts: 'unused', dlq: 'unused' });
    const bus = new KafkaBus({ brokers: brokers.split(','), partitions: 4, clientId: `crash-test-${sfx}` });
    const events = makeEvents();
    for (let i = 0; i < events.length; i += 5_000) {
      await bus.publish(topics.events, events.slice(i, i + 5_000).map((e) => ({ key: partitionKey(e.tenant, e.agent.id), value: e })));
    }

    const ref = deploymentConfig('ref');
    const crash = deploymentConfig('crash');
    const crashAlerter = { ...crash, data_dir: path.join(work, 'crash', 'alerter-data') };
    const refFile = writeConfig(work, 'ref', ref);
    const crashFile = writeConfig(work, 'crash', crash);
    const crashAlerterFile = writeConfig(work, 'crash-alerter', crashAlerter);

    const reference = await startAgentwatch(['run', '--stages', 'worker,alerter', '--config', refFile, '--no-summary']);
    processes.push(reference);
    const alerter = await startAgentwatch(['alerter', '--config', crashAlerterFile, '--no-summary']);
    processes.push(alerter);
    let worker = await startAgentwatch(['worker', '--config', crashFile, '--no-summary']);
    processes.push(worker);

    await waitFor('the worker to judge 15,000 events', async () => (await healthEvents(worker)) >= 15_000, 180_000, 50);
    worker.child.kill('SIGKILL');
    expect(await worker.exited).toBe('SIGKILL');
    worker = await startAgentwatch(['worker', '--config', crashFile, '--no-summary']);
    processes.push(worker);

    const admin = new Kafka({ brokers: brokers.split(','), clientId: `crash-admin-${sfx}`, logLevel: 0 }).admin();
    await admin.connect();
    const highs = async (topic: string) => new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
    const end = await highs(eventsTopic);
    await waitFor('both deployments to judge every event', async () =>
      (await caughtUp(bus, eventsTopic, `ref-${sfx}-agentwatch-detectors`, end)) && (await caughtUp(bus, eventsTopic, `crash-${sfx}-agentwatch-detectors`, end)),
    300_000, 500);
    for (const [name, group] of [['ref', `ref-${sfx}-agentwatch-alerting`], ['crash', `crash-${sfx}-agentwatch-alerting`]] as const) {
      const verdictTopic = `crash-verdicts-${name}-${sfx}`;
      const high = await highs(verdictTopic);
      await waitFor(`${name} alerts to be up to date`, () => caughtUp(bus, verdictTopic, group, high), 120_000, 500);
    }
    for (const p of [reference, alerter, worker]) p.child.kill('SIGTERM');
    await Promise.all([reference.exited, alerter.exited, worker.exited]);
    await bus.close();
    await admin.disconnect();

    const verdictSql = 'SELECT verdict_id, policy_id, agent_id, would_decide, reason FROM {db}.verdicts FINAL ORDER BY verdict_id';
    const refVerdicts = await readRows<Record<string, string>>(ref.data_dir, verdictSql);
    const crashVerdicts = await readRows<Record<string, string>>(crash.data_dir, verdictSql);
    expect(refVerdicts.length).toBeGreaterThan(1_000);
    expect(crashVerdicts).toEqual(refVerdicts);

    const alertSql = 'SELECT alert_id, policy_id, agent_id, count, status FROM {db}.alerts FINAL ORDER BY alert_id';
    const refAlerts = await readRows<Record<string, unknown>>(ref.data_dir, alertSql);
    const crashAlerts = await readRows<Record<string, unknown>>(crashAlerter.data_dir, alertSql);
    expect(refAlerts.map((a) => a.policy_id)).toEqual(expect.arrayContaining(['api-rate-spike', 'approved-agents', 'approved-egress']));
    expect(crashAlerts).toEqual(refAlerts);

    const [events1] = await readRows<{ n: string }>(crash.data_dir, 'SELECT count() AS n FROM {db}.events FINAL');
    expect(Number(events1!.n)).toBe(TOTAL);
    const [audit] = await readRows<{ n: string; e: string }>(crash.data_dir, 'SELECT count() AS n, uniqExact(event_id) AS e FROM {db}.audit_log FINAL');
    expect(Number(audit!.n)).toBe(TOTAL);
    expect(Number(audit!.e)).toBe(TOTAL);

    const redis = new Redis(redisUrl);
    try {
      const refState = await windowState(redis, ref.redis.key_prefix);
      const crashState = await windowState(redis, crash.redis.key_prefix);
      expect(refState.size).toBeGreaterThan(100);
      expect(crashState).toEqual(refState);
    } finally {
      redis.disconnect();
    }
  });
});

describe('two workers in one consumer group', () => {
  it('share the partitions; killing one moves its partitions to the other with nothing lost or duplicated', { timeout: 600_000 }, async () => {
    const topic = `pair-events-${sfx}`;
    const topics = buildTopics({ events: topic, verdicts: 'unused', dlq: 'unused' });
    const bus = new KafkaBus({ brokers: brokers.split(','), partitions: 4, clientId: `pair-test-${sfx}` });
    const events = makeEvents();
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i += 5_000) {
        await bus.publish(topics.events, events.slice(i, Math.min(i + 5_000, to)).map((e) => ({ key: partitionKey(e.tenant, e.agent.id), value: e })));
      }
    };
    const base = deploymentConfig('pair', topic);
    const files = ['w1', 'w2', 'alerter'].map((n) => writeConfig(work, `pair-${n}`, { ...base, data_dir: path.join(work, 'pair', n) }));
    const alerter = await startAgentwatch(['alerter', '--config', files[2]!, '--no-summary']);
    processes.push(alerter);
    const w1 = await startAgentwatch(['worker', '--config', files[0]!, '--no-summary']);
    processes.push(w1);
    const w2 = await startAgentwatch(['worker', '--config', files[1]!, '--no-summary']);
    processes.push(w2);

    const admin = new Kafka({ brokers: brokers.split(','), clientId: `pair-admin-${sfx}`, logLevel: 0 }).admin();
    await admin.connect();
    const group = `pair-${sfx}-agentwatch-detectors`;
    await waitFor('both workers to join the group', async () => {
      const { groups } = await admin.describeGroups([group]);
      return groups[0]?.state === 'Stable' && groups[0].members.length === 2;
    }, 120_000, 250);
    // First half now; the second half only after one worker is dead, so its partitions must move.
    await publish(0, TOTAL / 2);

    // Both take part: each judges events before one of them is killed.
    await waitFor('both workers to judge events', async () => (await healthEvents(w1)) > 500 && (await healthEvents(w2)) > 500, 180_000, 50);
    w1.child.kill('SIGKILL');
    await w1.exited;
    await publish(TOTAL / 2, TOTAL);

    const highs = async (t: string) => new Map((await admin.fetchTopicOffsets(t)).map((o) => [o.partition, Number(o.high)]));
    const end = await highs(topic);
    await waitFor('the surviving worker to take over and judge everything', () => caughtUp(bus, topic, `pair-${sfx}-agentwatch-detectors`, end), 300_000, 500);
    const verdictTopic = `crash-verdicts-pair-${sfx}`;
    const vend = await highs(verdictTopic);
    await waitFor('alerts to be up to date', () => caughtUp(bus, verdictTopic, `pair-${sfx}-agentwatch-alerting`, vend), 120_000, 500);
    for (const p of [w2, alerter]) p.child.kill('SIGTERM');
    await Promise.all([w2.exited, alerter.exited]);
    await bus.close();
    await admin.disconnect();

    const verdictSql = 'SELECT verdict_id, policy_id, agent_id, reason FROM {db}.verdicts FINAL ORDER BY verdict_id';
    const union = new Map<string, Record<string, string>>();
    const judged = new Set<string>();
    for (const n of ['w1', 'w2']) {
      const dir = path.join(work, 'pair', n);
      for (const v of await readRows<Record<string, string>>(dir, verdictSql)) {
        const seen = union.get(v.verdict_id!);
        // A verdict judged by both (replayed after the takeover) must be identical.
        if (seen !== undefined) expect(v).toEqual(seen);
        union.set(v.verdict_id!, v);
      }
      for (const r of await readRows<{ event_id: string }>(dir, 'SELECT event_id FROM {db}.audit_log FINAL')) judged.add(r.event_id);
    }
    expect(judged.size).toBe(TOTAL);
    // The survivor judged events of every partition: it took over the dead worker's.
    const [w2Partitions] = await readRows<{ n: string }>(path.join(work, 'pair', 'w2'), 'SELECT uniqExact(bus_partition) AS n FROM {db}.audit_log FINAL');
    expect(Number(w2Partitions!.n)).toBe(4);
    const expected = expectedVerdicts(events);
    expect([...union.values()].sort((a, b) => (a.verdict_id! < b.verdict_id! ? -1 : 1))).toEqual(expected);

    const alerts = await readRows<{ policy_id: string; agent_id: string; count: number | string }>(
      path.join(work, 'pair', 'alerter'),
      'SELECT policy_id, agent_id, count FROM {db}.alerts FINAL',
    );
    const expectedCounts = new Map<string, number>();
    for (const v of expected) expectedCounts.set(`${v.policy_id}/${v.agent_id}`, (expectedCounts.get(`${v.policy_id}/${v.agent_id}`) ?? 0) + 1);
    expect(new Map(alerts.map((a) => [`${a.policy_id}/${a.agent_id}`, Number(a.count)]))).toEqual(expectedCounts);
  });
});
