/**
 * Property-based fuzzing of the Kafka consumer: a corpus of records drawn by
 * fast-check — valid events, exact re-sends (producer retries), random bytes,
 * truncated JSON, invalid UTF-8, wrong types in every field, `__proto__` /
 * `constructor.prototype` keys, deep nesting, huge strings and arrays,
 * timestamps far past and ahead of the record, empty and null values — is
 * produced onto a real broker and consumed by a worker in this process.
 *
 * Every record must end either judged exactly once (events, audit rows) or as
 * a dead letter whose reason fits what was wrong with it; nothing is lost,
 * nothing is judged twice, the worker keeps running and its live heap stays
 * bounded. The seed is printed; `AW_FUZZ_SEED=<n>` replays a corpus.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Kafka, logLevel, type Message } from 'kafkajs';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Config } from '../../cli/config.js';
import { startEmbeddedPipeline, type EmbeddedPipeline } from '../../cli/pipeline.js';
import { EventTypes } from '../../core/event.js';
import { inProcessDeploymentConfig, OffsetWatcher } from '../support/deployments.js';
import { liveHeap } from '../support/memory.js';
import { waitFor } from '../support/processes.js';

const brokers = process.env.KAFKA_BROKERS;
const redisUrl = process.env.REDIS_URL;
if (brokers === undefined || redisUrl === undefined) throw new Error('KAFKA_BROKERS and REDIS_URL must be set (test/global-setup.ts starts them)');

const work = mkdtempSync(path.join(tmpdir(), 'aw-kafka-fuzz-'));
let pipeline: EmbeddedPipeline | undefined;

afterAll(async () => {
  await pipeline?.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

/** What should become of a record, and the dead-letter reason it must get when it is refused. */
type Expect = { kind: 'accepted' } | { kind: 'resent' } | { kind: 'refused'; reason: RegExp };

interface FuzzRecord {
  category: string;
  value: Buffer | null;
  expect: Expect;
}

const HOUR = 3_600_000;
const now = Date.now();

/** A valid event; `n` keeps event ids unique across the corpus. */
function validEvent(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      time: fc.integer({ min: now - 30 * 24 * HOUR, max: now - HOUR }),
      tenant: fc.constantFrom('default', 'acme', 'globex'),
      agent: fc.record({ id: fc.constantFrom('a-1', 'a-2', 'a-3', 'a-4', 'a-5', 'shadow'), name: fc.constantFrom('claude-code', 'cursor', 'copilot', 'shadow-gpt') }, { requiredKeys: ['id'] }),
      type: fc.constantFrom(...EventTypes),
      action: fc.string({ minLength: 1, maxLength: 40 }),
      resource: fc.string({ maxLength: 300 }),
      tool: fc.record({ name: fc.constantFrom('bash', 'read_file', 'web_fetch'), server: fc.constantFrom('github', 'fs') }, { requiredKeys: ['name'] }),
      network: fc.record({ domain: fc.constantFrom('api.anthropic.com', 'paste.exfil-drop.net', 'github.com'), port: fc.integer({ min: 0, max: 65535 }) }),
      outcome: fc.constantFrom('success', 'failure', 'denied'),
      duration_ms: fc.nat({ max: 100_000 }),
      attributes: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k)), fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.boolean()), { maxKeys: 8 }),
    },
    { requiredKeys: ['time', 'agent', 'type'] },
  );
}

/** For each top-level field, values of a type it does not accept. */
const WRONG_TYPES: Record<string, fc.Arbitrary<unknown>> = {
  event_id: fc.oneof(fc.integer(), fc.constant(''), fc.constant(null), fc.boolean(), fc.string({ minLength: 129, maxLength: 200 })),
  time: fc.oneof(fc.boolean(), fc.constant('yesterday'), fc.constant(-1), fc.double({ min: 0.1, max: 1e12, noInteger: true }), fc.constant(null), fc.constant('2026-13-45T99:00:00Z')),
  tenant: fc.oneof(fc.integer(), fc.constant(''), fc.array(fc.string(), { minLength: 1 })),
  agent: fc.oneof(fc.string(), fc.constant({}), fc.record({ id: fc.integer() }), fc.constant(null)),
  type: fc.oneof(fc.integer(), fc.constant('rm -rf'), fc.constant(null), fc.constant('API_CALL')),
  action: fc.oneof(fc.integer(), fc.constant(''), fc.constant({})),
  resource: fc.oneof(fc.integer(), fc.string({ minLength: 4097, maxLength: 5000 })),
  source: fc.oneof(fc.string(), fc.record({ ip: fc.integer() })),
  tool: fc.oneof(fc.string(), fc.constant({}), fc.record({ name: fc.integer() })),
  mcp: fc.oneof(fc.constant({}), fc.record({ server_id: fc.constant('s'), trust_score: fc.integer({ min: 101, max: 10_000 }) })),
  capabilities: fc.oneof(fc.string(), fc.array(fc.integer(), { minLength: 1, maxLength: 3 })),
  key: fc.oneof(fc.string(), fc.record({ fingerprint: fc.integer() })),
  network: fc.oneof(fc.string(), fc.record({ port: fc.integer({ min: 65536 }) })),
  outcome: fc.oneof(fc.constant('maybe'), fc.integer()),
  duration_ms: fc.oneof(fc.constant('slow'), fc.integer({ max: -1 })),
  content: fc.oneof(fc.string(), fc.record({ input: fc.integer() })),
  attributes: fc.oneof(fc.string(), fc.array(fc.integer(), { minLength: 1 }), fc.record({ nested: fc.record({ x: fc.integer() }) })),
};

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const refused = (reason: RegExp): Expect => ({ kind: 'refused', reason });

/** The record arbitraries, by category; `id` numbers the event ids. */
function categories(sfx: string): fc.Arbitrary<(id: number) => FuzzRecord>[] {
  const eid = (id: number) => `fz-${sfx}-${id}`;
  const withId = (e: Record<string, unknown>, id: number) => ({ event_id: eid(id), ...e });
  return [
    validEvent().map((e) => (id) => ({ category: 'valid', value: json(withId(e, id)), expect: { kind: 'accepted' } })),
    validEvent().map((e) => (id) => ({ category: 'valid', value: json(withId(e, id)), expect: { kind: 'accepted' } })),
    fc.uint8Array({ minLength: 1, maxLength: 2_000 }).filter((b) => !/^\s*[[{"\d-tfn]/.test(Buffer.from(b).toString('latin1'))).map((bytes) => () => ({
      category: 'random bytes',
      value: Buffer.from(bytes),
      expect: refused(/^not valid JSON/),
    })),
    fc.tuple(validEvent(), fc.double({ min: 0, max: 0.999, noNaN: true })).map(([e, cut]) => (id) => {
      const text = JSON.stringify(withId(e, id));
      return { category: 'truncated JSON', value: Buffer.from(text.slice(0, Math.floor(text.length * cut))), expect: refused(/^not valid JSON/) };
    }),
    validEvent().map((e) => (id) => {
      // Bytes that are not UTF-8 inside the event type: decoded as U+FFFD, then refused as an unknown type.
      const text = JSON.stringify(withId({ ...e, type: 'PLACEHOLDER' }, id));
      const [head, tail] = text.split('PLACEHOLDER') as [string, string];
      return { category: 'invalid UTF-8 (type)', value: Buffer.concat([Buffer.from(head), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from(tail)]), expect: refused(/^type: /) };
    }),
    validEvent().map((e) => (id) => {
      // …and inside free text: kept, with U+FFFD where the bytes were.
      const text = JSON.stringify(withId({ ...e, resource: 'PLACEHOLDER' }, id));
      const [head, tail] = text.split('PLACEHOLDER') as [string, string];
      return { category: 'invalid UTF-8 (resource)', value: Buffer.concat([Buffer.from(head), Buffer.from([0xed, 0xa0, 0x80, 0xff]), Buffer.from(tail)]), expect: { kind: 'accepted' } };
    }),
    fc.tuple(validEvent(), fc.constantFrom(...Object.keys(WRONG_TYPES))).chain(([e, field]) =>
      (WRONG_TYPES[field] as fc.Arbitrary<unknown>).map((wrong) => (id: number) => ({
        category: `wrong type: ${field}`,
        value: json(field === 'event_id' ? { ...e, event_id: wrong } : { ...withId(e, id), [field]: wrong }),
        expect: refused(new RegExp(`^${field === 'agent' ? 'agent' : field}[.:\\[ ]`)),
      })),
    ),
    fc.tuple(validEvent(), fc.constantFrom('__proto__', 'constructor'), fc.nat({ max: 3 })).map(([e, key, depth]) => (id) => {
      let payload = key === '__proto__' ? `{"__proto__":{"polluted":true}}` : `{"constructor":{"prototype":{"polluted":true}}}`;
      for (let d = 0; d < depth; d++) payload = `{"nested${d}":${payload}}`;
      const text = JSON.stringify(withId(e, id)).replace(/^\{/, `{"attributes_x":${payload},`);
      return { category: `${key} key`, value: Buffer.from(text), expect: refused(/^forbidden key/) };
    }),
    fc.tuple(validEvent(), fc.integer({ min: 1_000, max: 100_000 })).map(([e, depth]) => (id) => {
      // Last in the object, so it is the `attributes` the event ends up with.
      const text = JSON.stringify(withId(e, id)).replace(/\}$/, `,"attributes":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
      return { category: 'deep nesting', value: Buffer.from(text), expect: refused(/^(attributes|not valid JSON)/) };
    }),
    fc.tuple(validEvent(), fc.integer({ min: 4_097, max: 300_000 })).map(([e, size]) => (id) => ({
      category: 'huge string',
      value: json({ ...withId(e, id), resource: 'x'.repeat(size) }),
      expect: refused(/^resource: /),
    })),
    fc.tuple(validEvent(), fc.integer({ min: 1_025, max: 10_000 })).map(([e, size]) => (id) => ({
      category: 'huge array',
      value: json({ ...withId(e, id), capabilities: Array.from({ length: size }, (_, i) => `cap-${i}`) }),
      expect: refused(/^capabilities: /),
    })),
    fc.tuple(validEvent(), fc.integer({ min: 16 * 60_000, max: 200 * 365 * 24 * HOUR })).map(([e, ahead]) => (id) => ({
      category: 'far future',
      value: json({ ...withId(e, id), time: Math.min(now + ahead, 253_402_300_799_999) }),
      expect: refused(/^time: .* \(ingest\.max_future_skew_ms\)$/),
    })),
    fc.tuple(validEvent(), fc.integer({ min: 0, max: Date.UTC(2000, 0, 1) })).map(([e, time]) => (id) => ({
      category: 'far past',
      value: json({ ...withId(e, id), time: new Date(time).toISOString() }),
      expect: { kind: 'accepted' },
    })),
    fc.jsonValue({ maxDepth: 3 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => () => ({
      category: 'not an object',
      value: json(v),
      expect: refused(/^\(root\): event must be a JSON object/),
    })),
    fc.constantFrom<FuzzRecord['value']>(null, Buffer.alloc(0)).map((value) => () => ({
      category: value === null ? 'null value' : 'empty value',
      value,
      expect: refused(value === null ? /^record has no value$/ : /^not valid JSON/),
    })),
  ];
}

const deployment = (sfx: string, eventsTopic: string): Config =>
  inProcessDeploymentConfig({ work, name: 'fuzz', sfx, brokers: brokers as string, redisUrl: redisUrl as string, eventsTopic });

describe('Kafka consumer under hostile records', () => {
  it('judges every valid record once and dead-letters every other with a fitting reason; the worker keeps running with a bounded heap', { timeout: 300_000 }, async () => {
    const seed = Number(process.env.AW_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const sfx = randomBytes(4).toString('hex');
    console.log(`[kafka-fuzz] seed ${seed} (AW_FUZZ_SEED=${seed} replays this corpus)`);
    const makers = fc.sample(fc.oneof(...categories(sfx)), { numRuns: 2_000, seed });
    const corpus: FuzzRecord[] = makers.map((make, i) => make(i));
    // Producer retries: exact re-sends of some accepted records.
    const resends = fc.sample(fc.nat({ max: corpus.length - 1 }), { numRuns: 300, seed: seed + 1 });
    for (const i of resends) {
      const original = corpus[i] as FuzzRecord;
      if (original.expect.kind === 'accepted') corpus.push({ category: 're-sent', value: original.value, expect: { kind: 'resent' } });
    }

    const eventsTopic = `fuzz-events-${sfx}`;
    const config = deployment(sfx, eventsTopic);
    pipeline = await startEmbeddedPipeline(config, { logger: pino({ level: 'silent' }), stages: ['worker'], watchPolicies: false });
    const heapBefore = liveHeap();

    // Everything on partition 0, in order, so offset i is corpus record i.
    const kafka = new Kafka({ brokers: brokers.split(','), clientId: `fuzz-${sfx}`, logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    let firstOffset: number | undefined;
    for (let i = 0; i < corpus.length; ) {
      const chunk: Message[] = [];
      let bytes = 0;
      while (i < corpus.length && chunk.length < 200 && bytes < 800_000) {
        const r = corpus[i] as FuzzRecord;
        if (chunk.length > 0 && bytes + (r.value?.length ?? 0) >= 800_000) break;
        chunk.push({ key: 'fuzz', value: r.value, partition: 0 });
        bytes += r.value?.length ?? 0;
        i++;
      }
      const [meta] = await producer.send({ topic: eventsTopic, messages: chunk, acks: -1 });
      firstOffset ??= Number(meta?.baseOffset);
    }
    await producer.disconnect();
    expect(firstOffset).toBe(0);

    const offsets = new OffsetWatcher(brokers, `fuzz-admin-${sfx}`);
    const end = await offsets.highs(eventsTopic);
    expect(end.get(0)).toBe(corpus.length);
    await waitFor('the worker to consume every record', () => offsets.caughtUp(eventsTopic, `${config.kafka.group_prefix}agentwatch-detectors`, end), 120_000, 100).catch(async (error: unknown) => {
      const committed = await offsets.committedTotal(eventsTopic, `${config.kafka.group_prefix}agentwatch-detectors`);
      throw new Error(`${(error as Error).message}: committed ${committed} of ${corpus.length}; the worker judged ${(pipeline as EmbeddedPipeline).snapshot().events}`);
    });
    const dlqEnd = await offsets.highs(config.kafka.topics.dlq);
    await waitFor('the dead letters to be stored', () => offsets.caughtUp(config.kafka.topics.dlq, `${config.kafka.group_prefix}agentwatch-dead-letters`, dlqEnd), 120_000, 100);
    await offsets.close();
    await pipeline.settle();
    const heapAfter = liveHeap();

    const query = async <T>(sql: string): Promise<T[]> => {
      const rs = await (pipeline as EmbeddedPipeline).clickhouse.query({ query: sql.replaceAll('{db}', config.clickhouse.database), format: 'JSONEachRow' });
      return rs.json<T>();
    };
    const accepted = corpus.filter((r) => r.expect.kind === 'accepted').length;
    const refusedRecords = corpus.map((r, offset) => ({ ...r, offset })).filter((r) => r.expect.kind === 'refused');
    // Events older than their retention (far past) are judged, but ClickHouse's TTL drops their rows: count the rest.
    const recentAccepted = corpus.filter((r) => r.expect.kind === 'accepted' && r.category !== 'far past').length;
    const [events] = await query<{ n: string; ids: string }>("SELECT count() AS n, uniqExact(event_id) AS ids FROM {db}.events FINAL WHERE time >= toDateTime64('2001-01-01', 3, 'UTC')");
    const [audit] = await query<{ n: string; ids: string }>('SELECT count() AS n, uniqExact(event_id) AS ids FROM {db}.audit_log FINAL');
    const letters = await query<{ source: string; reason: string }>('SELECT source, any(reason) AS reason FROM {db}.dead_letters GROUP BY source');

    const byCategory = new Map<string, number>();
    for (const r of corpus) byCategory.set(r.category, (byCategory.get(r.category) ?? 0) + 1);
    console.log(
      `[kafka-fuzz] ${corpus.length} records: ${[...byCategory].map(([c, n]) => `${c} ${n}`).join(', ')}; ` +
        `judged ${audit?.ids} events (${audit?.n} audit rows), ${letters.length} dead letters; live heap ${(heapBefore / 2 ** 20).toFixed(0)} → ${(heapAfter / 2 ** 20).toFixed(0)} MiB`,
    );

    // Judged once each: nothing lost, the re-sends not judged again.
    expect(Number(events?.ids)).toBe(recentAccepted);
    expect(Number(events?.n)).toBe(recentAccepted);
    expect(Number(audit?.ids)).toBe(accepted);
    expect(Number(audit?.n)).toBe(accepted);
    // One dead letter per refused record, at its offset, with a reason that fits.
    const letterAt = new Map(letters.map((l) => [Number(/@(\d+)$/.exec(l.source)?.[1]), l.reason]));
    const misfits: string[] = [];
    for (const r of refusedRecords) {
      const reason = letterAt.get(r.offset);
      if (reason === undefined) misfits.push(`offset ${r.offset} (${r.category}): no dead letter`);
      else if (r.expect.kind === 'refused' && !r.expect.reason.test(reason)) misfits.push(`offset ${r.offset} (${r.category}): reason ${JSON.stringify(reason.slice(0, 200))} does not match ${String(r.expect.reason)}`);
    }
    expect(misfits.slice(0, 20)).toEqual([]);
    expect(letters.length).toBe(refusedRecords.length);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Still running and judging.
    expect(pipeline.snapshot().events).toBeGreaterThanOrEqual(accepted);
    // Bounded: the corpus held tens of MB of hostile records; the worker keeps none of it.
    expect(heapAfter - heapBefore).toBeLessThan(64 * 2 ** 20);
  });
});
