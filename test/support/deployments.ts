/**
 * Helpers for integration tests that run agentwatch deployments as child
 * processes against Kafka and Redis and compare what they stored: event
 * traffic, deployment configs, catch-up checks, reading the embedded ClickHouse
 * data and the Redis window state, and driving the infra/ start/stop scripts.
 */
import path from 'node:path';
import type { Redis } from 'ioredis';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import pino from 'pino';
import { ConfigSchema, type Config } from '../../cli/config.js';
import { partitionKey, validateEvent, type AgentEvent } from '../../core/event.js';
import { buildTopics } from '../../core/topics.js';
import { KafkaBus } from '../../ingest/bus/kafka/kafka-bus.js';
import { createClickHouseClient } from '../../storage/clickhouse/client.js';
import { repoRoot, testApiKeys } from './pipeline.js';
import type { AgentwatchProcess } from './processes.js';
import { freePort, runScript } from './scripts.js';

export { freePort, runScript };

/** infra/kafka/start.sh with the given environment; resolves with the bootstrap address. */
export function startKafkaBroker(env: Record<string, string>, timeoutMs = 180_000): Promise<string> {
  return runScript('infra/kafka/start.sh', env, timeoutMs);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Deterministic traffic of `total` events (time-ordered): steady agents, five
 * bursting ones (rate alerts), an unknown product and an unapproved domain.
 */
export function makeTraffic(total: number, idPrefix: string): AgentEvent[] {
  const start = Date.UTC(2026, 10, 24, 8, 0, 0); // 09:00 Berlin
  const names = ['claude-code', 'cursor', 'copilot', 'codex'];
  const bursts = 5;
  const perBurst = Math.min(1_000, Math.floor(total / 10));
  const out: AgentEvent[] = [];
  const push = (input: Record<string, unknown>) => {
    const r = validateEvent(input);
    if (!r.ok) throw new Error(r.reason);
    out.push(r.event);
  };
  for (let i = 0; i < total - bursts * perBurst; i++) {
    const agent = i % 200;
    push({
      event_id: `${idPrefix}-${i}`,
      time: start + i * 100,
      agent: { id: `agent-${agent}`, name: agent % 50 === 7 ? 'shadow-gpt' : names[agent % names.length] },
      type: i % 3 === 0 ? 'api_call' : i % 3 === 1 ? 'tool_call' : 'resource_access',
      network: { domain: i % 97 === 0 ? 'paste.exfil-drop.net' : 'api.anthropic.com' },
    });
  }
  for (let b = 0; b < bursts; b++) {
    for (let j = 0; j < perBurst; j++) {
      push({ event_id: `${idPrefix}-b${b}-${j}`, time: start + b * 300_000 + j * 120, agent: { id: `burst-${b}`, name: 'claude-code' }, type: 'api_call' });
    }
  }
  return out.sort((a, b) => a.time - b.time);
}

/** Publishes events onto `topic` in chunks (one producer, in order), each chunk awaited. */
export async function publishEvents(bus: KafkaBus, topic: string, events: readonly AgentEvent[], chunk = 5_000): Promise<void> {
  const t = buildTopics({ events: topic, verdicts: 'unused', dlq: 'unused' }).events;
  for (let i = 0; i < events.length; i += chunk) {
    await bus.publish(t, events.slice(i, i + chunk).map((e) => ({ key: partitionKey(e.tenant, e.agent.id), value: e })));
  }
}

/** A KafkaBus for a test's own producing: its KafkaJS logs stay quiet. */
export function testBus(brokers: string, clientId: string): KafkaBus {
  return new KafkaBus({ brokers: brokers.split(','), partitions: 4, clientId, logger: pino({ level: 'silent' }) });
}

export interface SteadyProducer {
  /** Resolves once every event was acknowledged. */
  done: Promise<void>;
  /** Events acknowledged so far (a chunk counts once, however often it was sent). */
  acknowledged(): number;
  /** Chunks sent again after a failed publish. */
  resent(): number;
}

/**
 * Publishes `events` in chunks of `chunk`, one chunk every `pauseMs`, like a
 * live source. A publish that fails (the broker went away) is retried with a
 * new producer until `deadlineMs` passes: at-least-once, so a chunk the broker
 * took without acknowledging it may land twice — as from any producer that retries.
 */
export function produceSteadily(brokers: string, topic: string, events: readonly AgentEvent[], options: { chunk: number; pauseMs: number; deadlineMs: number; clientId: string }): SteadyProducer {
  let acknowledged = 0;
  let resent = 0;
  const done = (async () => {
    let bus = testBus(brokers, `${options.clientId}-0`);
    const deadline = Date.now() + options.deadlineMs;
    try {
      while (acknowledged < events.length) {
        const next = events.slice(acknowledged, acknowledged + options.chunk);
        try {
          await publishEvents(bus, topic, next, options.chunk);
        } catch (error) {
          if (Date.now() > deadline) throw error;
          resent++;
          await bus.close().catch(() => undefined);
          await sleep(250);
          bus = testBus(brokers, `${options.clientId}-${resent}`);
          continue;
        }
        acknowledged += next.length;
        await sleep(options.pauseMs);
      }
    } finally {
      await bus.close().catch(() => undefined);
    }
  })();
  return { done, acknowledged: () => acknowledged, resent: () => resent };
}

export interface DeploymentSpec {
  /** Directory for data dirs and config files. */
  work: string;
  /** Deployment name: group prefix, topics and Redis key prefix derive from it. */
  name: string;
  /** Random suffix of the test run. */
  sfx: string;
  brokers: string;
  redisUrl: string;
  eventsTopic: string;
}

/** A deployment's config: its own data dir, consumer groups, verdict/DLQ topics and Redis key prefix. */
export function deploymentConfig(spec: DeploymentSpec) {
  const dir = path.join(spec.work, spec.name);
  return {
    port: 0,
    data_dir: path.join(dir, 'data'),
    policies: path.join(repoRoot, 'policies/default.yaml'),
    log_level: 'warn',
    kafka: {
      brokers: spec.brokers.split(','),
      group_prefix: `${spec.name}-${spec.sfx}-`,
      topics: { events: spec.eventsTopic, verdicts: `verdicts-${spec.name}-${spec.sfx}`, dlq: `dlq-${spec.name}-${spec.sfx}`, policies: `policies-${spec.name}-${spec.sfx}` },
    },
    redis: { url: spec.redisUrl, key_prefix: `rs-${spec.name}-${spec.sfx}:` },
    storage: { batch_rows: 10_000, batch_delay_ms: 100 },
  };
}
export type DeploymentConfig = ReturnType<typeof deploymentConfig>;

/**
 * A deployment that runs in the test process: the shared engine directory
 * `<work>/data` (chdb allows one per process) with its own database, and the
 * test API keys; `overrides` replace whole top-level sections.
 */
export function inProcessDeploymentConfig(spec: DeploymentSpec, overrides: Record<string, unknown> = {}): Config {
  const database = `${spec.name.replaceAll('-', '_')}_${spec.sfx}`;
  return Object.freeze(ConfigSchema.parse({ ...deploymentConfig(spec), data_dir: path.join(spec.work, 'data'), clickhouse: { database }, api: { keys: testApiKeys }, ...overrides }));
}

export interface Health {
  events: number;
  state_lost_at: number | null;
}

/** `/healthz` of a process, or null while it does not answer. */
export async function health(p: AgentwatchProcess): Promise<Health | null> {
  try {
    const res = await fetch(`${p.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
    return (await res.json()) as Health;
  } catch {
    return null;
  }
}

/** Kafka admin for offsets; separate from the deployments' clients. */
export class OffsetWatcher {
  private readonly admin: Admin;
  private connected: Promise<void> | undefined;

  constructor(brokers: string, clientId: string) {
    this.admin = new Kafka({ brokers: brokers.split(','), clientId, logLevel: logLevel.NOTHING, retry: { retries: 2 } }).admin();
  }

  private async ready(): Promise<Admin> {
    this.connected ??= this.admin.connect().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    await this.connected;
    return this.admin;
  }

  /** High watermark per partition. */
  async highs(topic: string): Promise<Map<number, number>> {
    const admin = await this.ready();
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  }

  /** Whether `groupId` (full name, prefix included) has committed every partition up to `end`; false while Kafka does not answer. */
  async caughtUp(topic: string, groupId: string, end: Map<number, number>): Promise<boolean> {
    try {
      const admin = await this.ready();
      const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const committed = new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      for (const [partition, high] of end) if (high > 0 && (committed.get(partition) ?? -1) < high) return false;
      return true;
    } catch {
      return false;
    }
  }

  /** Records committed by `groupId` over all partitions of `topic` (0 while Kafka does not answer). */
  async committedTotal(topic: string, groupId: string): Promise<number> {
    try {
      const admin = await this.ready();
      const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return (entry?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    } catch {
      return 0;
    }
  }

  async close(): Promise<void> {
    await this.admin.disconnect().catch(() => undefined);
  }
}

export async function readRows<T>(dataDir: string, sql: string, database = 'agentwatch'): Promise<T[]> {
  const client = createClickHouseClient({ database, dataDir });
  try {
    const rs = await client.query({ query: sql.replaceAll('{db}', database), format: 'JSONEachRow' });
    return await rs.json<T>();
  } finally {
    await client.close();
  }
}

/**
 * The detector state of every key under a prefix, without the per-run replay
 * bookkeeping (which depends on how batches were cut): each hash's fields but a
 * window's replay results (`x`) and the replay position at the end of its
 * struct (`s` past byte 40); the per-agent replay logs (`…:_log`) are left out.
 */
export async function windowState(redis: Redis, prefix: string): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}aw:{*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if (key.endsWith(':_log')) continue;
      const fields = await redis.hgetallBuffer(key);
      const parts = Object.keys(fields)
        .filter((f) => f !== 'x')
        .sort()
        .map((f) => {
          const value = fields[f] as Buffer;
          return `${f}=${(f === 's' ? value.subarray(0, 40) : value).toString('hex')}`;
        });
      state.set(key.slice(prefix.length), parts.join('|'));
    }
  } while (cursor !== '0');
  return state;
}

export const VERDICT_SQL = 'SELECT verdict_id, policy_id, agent_id, would_decide, reason FROM {db}.verdicts FINAL ORDER BY verdict_id';
export const ALERT_SQL = 'SELECT alert_id, policy_id, agent_id, count, status FROM {db}.alerts FINAL ORDER BY alert_id';

/** Row counts that show loss (fewer) or duplication (more) of judged events. */
export async function judgedCounts(dataDir: string): Promise<{ events: number; audit: number; auditIds: number }> {
  const [events] = await readRows<{ n: string }>(dataDir, 'SELECT count() AS n FROM {db}.events FINAL');
  const [audit] = await readRows<{ n: string; e: string }>(dataDir, 'SELECT count() AS n, uniqExact(event_id) AS e FROM {db}.audit_log FINAL');
  return { events: Number(events?.n), audit: Number(audit?.n), auditIds: Number(audit?.e) };
}

/** Counts JSON log lines of a process's stderr whose `msg` contains `text`. */
export function countLogLines(stderr: string, text: string): number {
  let n = 0;
  for (const line of stderr.split('\n')) if (line.includes(text)) n++;
  return n;
}

/** Stops processes with SIGTERM (they finish their batches) and waits for them. */
export async function stopProcesses(processes: readonly AgentwatchProcess[], timeoutMs = 60_000): Promise<void> {
  await Promise.all(
    processes.map(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
      await p.exited;
      clearTimeout(timer);
    }),
  );
}


