/**
 * The Kafka adapter of the event bus against a real broker: the shared
 * conformance suite, then what only Kafka has (bytes on the wire that fail to
 * decode, committed offsets in the broker). KAFKA_BROKERS comes from
 * test/global-setup.ts; without it this file fails — it never skips.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import type { AgentEvent } from '../../core/event.js';
import type { DeliveredBatch, Subscription } from '../../core/ports.js';
import type { DeadLetter } from '../../core/records.js';
import { buildTopics, type Topics } from '../../core/topics.js';
import { KafkaBus, type KafkaBusOptions } from '../../ingest/bus/kafka/kafka-bus.js';
import { partitionForKey } from '../../ingest/bus/partitioner.js';
import { runEventBusConformance, uniqueName, waitFor } from '../conformance/event-bus.js';
import { makeEvent } from '../support/events.js';

const brokersEnv = process.env.KAFKA_BROKERS;
if (brokersEnv === undefined || brokersEnv === '') {
  throw new Error('KAFKA_BROKERS is not set: test/global-setup.ts starts a broker (infra/kafka/start.sh) or takes it from the environment');
}
const brokers = brokersEnv.split(',');
const silent = pino({ level: 'silent' });

function makeKafkaBus(overrides: Partial<KafkaBusOptions> = {}): KafkaBus {
  return new KafkaBus({
    brokers,
    clientId: 'agentwatch-test',
    partitions: 4,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
    retryInitialDelayMs: 50,
    retryMaxDelayMs: 1_000,
    deadLetterTopic: buildTopics({ events: 'unused', verdicts: 'unused', dlq: uniqueName('dlq') }).dlq,
    logger: silent,
    ...overrides,
  });
}

runEventBusConformance('KafkaBus', async () => {
  const bus = makeKafkaBus();
  return { bus, partitions: 4, cleanup: () => bus.close() };
});

function kcatAvailable(): Promise<boolean> {
  return new Promise((resolve) => execFile('kcat', ['-V'], (error) => resolve(error === null)));
}

function kcatProduce(topic: string, key: string, lines: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('kcat', ['-P', '-b', brokers.join(','), '-t', topic, '-k', key], (error, _stdout, stderr) =>
      error === null ? resolve() : reject(new Error(`kcat failed: ${stderr}`)),
    );
    child.stdin?.end(lines);
  });
}

describe('KafkaBus (kafka only)', () => {
  const raw = new Kafka({ brokers, clientId: 'agentwatch-test-raw', logLevel: logLevel.NOTHING });
  const producer = raw.producer({ allowAutoTopicCreation: false });
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    await producer.connect();
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await producer.disconnect();
  });

  function topicsFor(prefix: string): Topics {
    return buildTopics({ events: uniqueName(`${prefix}-events`), verdicts: uniqueName(`${prefix}-verdicts`), dlq: uniqueName(`${prefix}-dlq`) });
  }

  it('sends records that fail to decode to the dead-letter topic with the reason; valid ones reach the handler', async () => {
    const topics = topicsFor('dlq');
    const letters: { letter: DeadLetter; topic: string }[] = [];
    const bus = makeKafkaBus({ deadLetterTopic: topics.dlq, onDeadLetter: (letter, topic) => letters.push({ letter, topic }) });
    cleanups.push(() => bus.close());
    const key = 'default/agent-dlq';
    const valid = [makeEvent({ event_id: 'ok-1', agent: { id: 'agent-dlq' } }), makeEvent({ event_id: 'ok-2', agent: { id: 'agent-dlq' } })];

    const events: DeliveredBatch<AgentEvent>[] = [];
    const dead: DeliveredBatch<DeadLetter>[] = [];
    const subscriptions: Subscription[] = [];
    const group = uniqueName('g');
    subscriptions.push(await bus.subscribe(topics.events, { group }, async (b) => void events.push(b)));
    subscriptions.push(await bus.subscribe(topics.dlq, { group: uniqueName('g-dlq') }, async (b) => void dead.push(b)));
    cleanups.push(() => Promise.all(subscriptions.map((s) => s.stop())));

    // Raw bytes, as a non-agentwatch producer would write them; the valid
    // events go around them, so the bad ones sit mid-batch.
    const partition = partitionForKey(key, 4);
    await producer.send({
      topic: topics.events.name,
      messages: [
        { key, partition, value: JSON.stringify(valid[0]) },
        { key, partition, value: '{"event_id": "broken", ' },
        { key, partition, value: JSON.stringify({ event_id: 'no-agent', time: 0, type: 'api_call' }) },
        { key, partition, value: JSON.stringify(valid[1]) },
      ],
    });
    let expectedLetters = 2;
    if (await kcatAvailable()) {
      await kcatProduce(topics.events.name, key, 'not json from kcat\n');
      expectedLetters++;
    }

    await waitFor(() => dead.flatMap((b) => b.records).length >= expectedLetters, `${expectedLetters} dead letters`, 20_000);
    await waitFor(() => events.flatMap((b) => b.records).length >= 2, 'the valid events', 20_000);
    expect(events.flatMap((b) => b.records.map((r) => r.value.event_id))).toEqual(['ok-1', 'ok-2']);

    const deadLetters = dead.flatMap((b) => b.records.map((r) => r.value));
    expect(deadLetters).toHaveLength(expectedLetters);
    const broken = deadLetters.find((l) => l.raw.startsWith('{"event_id": "broken"'));
    expect(broken?.reason).toMatch(/JSON/);
    expect(broken?.source).toBe(`kafka:${topics.events.name}/${partition}@1`);
    expect(broken?.raw_bytes).toBe(Buffer.byteLength('{"event_id": "broken", '));
    const noAgent = deadLetters.find((l) => l.raw.includes('no-agent'));
    expect(noAgent?.reason).toMatch(/agent/);
    expect(noAgent?.source).toBe(`kafka:${topics.events.name}/${partition}@2`);
    if (expectedLetters === 3) {
      const fromKcat = deadLetters.find((l) => l.raw === 'not json from kcat');
      expect(fromKcat?.source).toMatch(new RegExp(`^kafka:${topics.events.name}/\\d+@\\d+$`));
    }
    expect(letters.map((l) => l.topic)).toEqual(Array(expectedLetters).fill(topics.events.name));

    // Dead-lettered records are committed as well: nothing is left behind.
    expect(await pollCommitted(bus, topics.events.name, group, partition, 4)).toBe(4);
  });

  it('truncates the raw text of a large bad record to 4096 characters and keeps its byte count', async () => {
    const topics = topicsFor('dlq-big');
    const bus = makeKafkaBus({ deadLetterTopic: topics.dlq });
    cleanups.push(() => bus.close());
    const dead: DeliveredBatch<DeadLetter>[] = [];
    const subscriptions = [
      await bus.subscribe(topics.events, { group: uniqueName('g') }, async () => undefined),
      await bus.subscribe(topics.dlq, { group: uniqueName('g-dlq') }, async (b) => void dead.push(b)),
    ];
    cleanups.push(() => Promise.all(subscriptions.map((s) => s.stop())));
    const value = 'x'.repeat(10_000);
    await producer.send({ topic: topics.events.name, messages: [{ key: 'k', value }] });
    await waitFor(() => dead.length > 0, 'the dead letter', 20_000);
    const letter = dead[0]?.records[0]?.value;
    expect(letter?.raw).toHaveLength(4096);
    expect(letter?.raw_bytes).toBe(10_000);
  });

  it('commits nothing while the handler fails, and the batch position once it succeeds', async () => {
    const topics = topicsFor('commit');
    const bus = makeKafkaBus({ deadLetterTopic: topics.dlq });
    cleanups.push(() => bus.close());
    const group = uniqueName('g');
    const key = 'default/agent-commit';
    const partition = partitionForKey(key, 4);
    let healthy = false;
    let attempts = 0;
    let handled = 0;
    const subscription = await bus.subscribe(topics.events, { group, maxBatch: 3 }, async (b) => {
      attempts++;
      if (!healthy) throw new Error('store down');
      handled += b.records.length;
    });
    cleanups.push(() => subscription.stop());
    await bus.publish(topics.events, Array.from({ length: 7 }, (_, i) => ({ key, value: makeEvent({ event_id: `c-${i}`, agent: { id: 'agent-commit' } }) })));
    await waitFor(() => attempts >= 3, 'three failed attempts', 20_000);
    expect((await bus.committedOffsets(topics.events.name, group)).get(partition)).toBe(-1);
    healthy = true;
    await waitFor(() => handled >= 7, 'all records handled', 20_000);
    const committed = await pollCommitted(bus, topics.events.name, group, partition, 7);
    expect(committed).toBe(7);
  });

  it('stop() waits for the batch in hand and commits it', async () => {
    const topics = topicsFor('stop');
    const bus = makeKafkaBus({ deadLetterTopic: topics.dlq });
    cleanups.push(() => bus.close());
    const group = uniqueName('g');
    const key = 'default/agent-stop';
    const partition = partitionForKey(key, 4);
    await bus.publish(topics.events, Array.from({ length: 30 }, (_, i) => ({ key, value: makeEvent({ event_id: `s-${i}`, agent: { id: 'agent-stop' } }) })));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered = false;
    const handledOffsets: number[] = [];
    const subscription = await bus.subscribe(topics.events, { group, maxBatch: 4 }, async (b) => {
      entered = true;
      await gate;
      handledOffsets.push(...b.records.map((r) => r.offset));
    });
    await waitFor(() => entered, 'a batch in hand', 20_000);
    const stopping = subscription.stop();
    release();
    await stopping;
    // Exactly the first batch was handled and committed; nothing after it started.
    expect(handledOffsets).toEqual([0, 1, 2, 3]);
    expect((await bus.committedOffsets(topics.events.name, group)).get(partition)).toBe(4);
  });
});

/** Polls the broker until the group's committed offset of `partition` reaches `atLeast` (commits land asynchronously to the handler's return). */
async function pollCommitted(bus: KafkaBus, topic: string, group: string, partition: number, atLeast: number): Promise<number> {
  let offset = -1;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    offset = (await bus.committedOffsets(topic, group)).get(partition) ?? -1;
    if (offset >= atLeast) return offset;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return offset;
}
