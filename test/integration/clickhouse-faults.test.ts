/**
 * Processing guarantee when ClickHouse rejects inserts mid-stream. Two
 * deployments run in this process on the same Kafka topic and the shared Redis
 * (own consumer groups, key prefixes and ClickHouse databases in one embedded
 * engine): a reference that runs undisturbed, and one whose `events`,
 * `verdicts` and `audit_log` tables get a constraint no row satisfies — a
 * real ClickHouse rejection (VIOLATED_CONSTRAINT, code 469) of every insert —
 * for 15 s while a producer keeps sending.
 *
 * The faulted worker must stop consuming (no offset committed, memory flat:
 * backpressure, not an unbounded buffer), retry with backoff, and, once the
 * constraint is dropped, catch up and end with the reference's verdicts,
 * alerts and window state: lost 0, duplicated 0. It prints the recovery time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Config } from '../../cli/config.js';
import { startEmbeddedPipeline, type EmbeddedPipeline } from '../../cli/pipeline.js';
import {
  ALERT_SQL,
  countLogLines,
  inProcessDeploymentConfig,
  makeTraffic,
  OffsetWatcher,
  produceSteadily,
  publishEvents,
  sleep,
  testBus,
  VERDICT_SQL,
  windowState,
} from '../support/deployments.js';
import { liveHeap } from '../support/memory.js';
import { waitFor } from '../support/processes.js';

const brokers = process.env.KAFKA_BROKERS;
const redisUrl = process.env.REDIS_URL;
if (brokers === undefined || redisUrl === undefined) throw new Error('KAFKA_BROKERS and REDIS_URL must be set (test/global-setup.ts starts them)');

const work = mkdtempSync(path.join(tmpdir(), 'aw-ch-faults-'));
const pipelines: EmbeddedPipeline[] = [];
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });

afterAll(async () => {
  for (const p of pipelines) await p.stop().catch(() => undefined);
  redis.disconnect();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

/** The tables the worker writes: every insert into them is refused while the fault lasts. */
const FAULTED_TABLES = ['events', 'verdicts', 'audit_log'];

const deployment = (name: string, sfx: string, eventsTopic: string): Config =>
  inProcessDeploymentConfig({ work, name, sfx, brokers: brokers as string, redisUrl: redisUrl as string, eventsTopic });

function logSink(): { lines: string[]; logger: pino.Logger } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { lines, logger: pino({ level: 'warn' }, stream) };
}

async function rows<T>(p: EmbeddedPipeline, config: Config, sql: string): Promise<T[]> {
  const rs = await p.clickhouse.query({ query: sql.replaceAll('{db}', config.clickhouse.database), format: 'JSONEachRow' });
  return rs.json<T>();
}

const detectors = (config: Config) => `${config.kafka.group_prefix}agentwatch-detectors`;
const alerting = (config: Config) => `${config.kafka.group_prefix}agentwatch-alerting`;

describe('ClickHouse rejecting inserts mid-stream', () => {
  it('the worker stops consuming, retries, catches up and matches an undisturbed run (lost 0, duplicated 0)', { timeout: 300_000 }, async () => {
    const TOTAL = 20_000;
    const FAULT_MS = 15_000;
    const sfx = randomBytes(4).toString('hex');
    const eventsTopic = `ch-fault-events-${sfx}`;
    const events = makeTraffic(TOTAL, `ch-${sfx}`);
    const bus = testBus(brokers, `ch-producer-${sfx}`);
    await publishEvents(bus, eventsTopic, events.slice(0, 2_000));
    await bus.close();

    const refConfig = deployment('ch-ref', sfx, eventsTopic);
    const depConfig = deployment('ch-dep', sfx, eventsTopic);
    const depLog = logSink();
    const start = (config: Config, logger: pino.Logger) =>
      startEmbeddedPipeline(config, { logger, stages: ['worker', 'alerter'], watchPolicies: false }).then((p) => {
        pipelines.push(p);
        return p;
      });
    const ref = await start(refConfig, pino({ level: 'silent' }));
    const dep = await start(depConfig, depLog.logger);
    const offsets = new OffsetWatcher(brokers, `ch-admin-${sfx}`);

    const producer = produceSteadily(brokers, eventsTopic, events.slice(2_000), { chunk: 250, pauseMs: 100, deadlineMs: 120_000, clientId: `ch-producer2-${sfx}` });
    producer.done.catch(() => undefined); // awaited below

    await waitFor('the worker to judge 3,000 events', () => dep.snapshot().events >= 3_000, 60_000, 20);
    const db = depConfig.clickhouse.database;
    for (const table of FAULTED_TABLES) {
      await dep.clickhouse.command({ query: `ALTER TABLE ${db}.${table} ADD CONSTRAINT aw_fault CHECK 0 = 1` });
    }
    const faultAt = Date.now();
    const heapAtFault = liveHeap();
    console.log(`[clickhouse] inserts into ${FAULTED_TABLES.join(', ')} refused from here; the worker had judged ${dep.snapshot().events} events`);

    // Batches in hand when the fault began settle within a few seconds; from
    // then on nothing may be committed while every insert is refused.
    await sleep(4_000);
    const committedEarly = await offsets.committedTotal(eventsTopic, detectors(depConfig));
    let heapPeak = 0;
    while (Date.now() < faultAt + FAULT_MS) {
      heapPeak = Math.max(heapPeak, liveHeap());
      await sleep(1_000);
    }
    const committedLate = await offsets.committedTotal(eventsTopic, detectors(depConfig));
    const producedDuringFault = producer.acknowledged() + 2_000;
    expect(committedLate).toBe(committedEarly);
    for (const table of FAULTED_TABLES) {
      await dep.clickhouse.command({ query: `ALTER TABLE ${db}.${table} DROP CONSTRAINT aw_fault` });
    }
    const backAt = Date.now();
    console.log(
      `[clickhouse] inserts accepted again after ${((backAt - faultAt) / 1000).toFixed(1)} s; committed offsets stood at ${committedLate} of ${producedDuringFault} produced; ` +
        `heap ${(heapAtFault / 2 ** 20).toFixed(0)} MiB at the fault, peak ${(heapPeak / 2 ** 20).toFixed(0)} MiB during it (both deployments in this process)`,
    );
    // Paused, not buffering: the live heap of this process (both deployments,
    // the producer and the test) grows by less than 64 MiB while 10,000+ events wait in Kafka.
    expect(heapPeak - heapAtFault).toBeLessThan(64 * 2 ** 20);

    await producer.done;
    const end = await offsets.highs(eventsTopic);
    const caughtUp = async (config: Config) => {
      await waitFor(`${config.kafka.group_prefix} to judge every event`, () => offsets.caughtUp(eventsTopic, detectors(config), end), 120_000, 100);
      const verdictEnd = await offsets.highs(config.kafka.topics.verdicts);
      await waitFor(`${config.kafka.group_prefix} alerts`, () => offsets.caughtUp(config.kafka.topics.verdicts, alerting(config), verdictEnd), 120_000, 100);
    };
    await caughtUp(depConfig);
    const recoveryMs = Date.now() - backAt;
    await caughtUp(refConfig);
    await Promise.all([dep.settle(), ref.settle()]);

    const retries = depLog.lines.filter((l) => l.includes('batch handler failed; partition paused'));
    const insertErrors = countLogLines(depLog.lines.join('\n'), 'insert failed');
    console.log(`[clickhouse] worker log: ${insertErrors} failed inserts, ${retries.length} batch retries with backoff`);
    expect(insertErrors).toBeGreaterThan(0);
    expect(retries.length).toBeGreaterThan(0);
    expect(retries.join('\n')).toMatch(/VIOLATED_CONSTRAINT|aw_fault/);

    const refVerdicts = await rows<Record<string, string>>(ref, refConfig, VERDICT_SQL);
    const depVerdicts = await rows<Record<string, string>>(dep, depConfig, VERDICT_SQL);
    expect(refVerdicts.length).toBeGreaterThan(500);
    expect(depVerdicts).toEqual(refVerdicts);
    const refAlerts = await rows<Record<string, unknown>>(ref, refConfig, ALERT_SQL);
    const depAlerts = await rows<Record<string, unknown>>(dep, depConfig, ALERT_SQL);
    expect(refAlerts.length).toBeGreaterThan(0);
    expect(depAlerts).toEqual(refAlerts);

    const [stored] = await rows<{ n: string; ids: string }>(dep, depConfig, 'SELECT count() AS n, uniqExact(event_id) AS ids FROM {db}.events');
    const [audit] = await rows<{ n: string; ids: string }>(dep, depConfig, 'SELECT count() AS n, uniqExact(event_id) AS ids FROM {db}.audit_log FINAL');
    const lost = TOTAL - Number(audit?.ids);
    const duplicated = Number(audit?.n) - Number(audit?.ids);
    expect(Number(stored?.ids)).toBe(TOTAL);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);

    const refState = await windowState(redis, refConfig.redis.key_prefix);
    const depState = await windowState(redis, depConfig.redis.key_prefix);
    expect(refState.size).toBeGreaterThan(100);
    expect(depState).toEqual(refState);
    console.log(
      `[clickhouse] inserts refused for ${(FAULT_MS / 1000).toFixed(0)} s: lost ${lost}, duplicated ${duplicated} (of ${TOTAL} events; ` +
        `${Number(stored?.n) - Number(stored?.ids)} repeated event rows before merges, collapsed by FINAL); ${depVerdicts.length} verdicts, ${depAlerts.length} alerts, ` +
        `${depState.size} window keys equal the reference; recovery (inserts accepted → caught up): ${(recoveryMs / 1000).toFixed(1)} s`,
    );
    await offsets.close();
  });
});
