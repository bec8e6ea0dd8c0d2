/**
 * The event bus conformance suite (STYLE.md: one suite per port, run against
 * every adapter). `runEventBusConformance` registers the tests; each adapter's
 * test file calls it with a factory. Every test uses its own topic and group
 * names, so files and adapters can run in parallel against one broker.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DeliveredBatch, EventBus, Subscription, Topic } from '../../core/ports.js';
import { partitionForKey } from '../../ingest/bus/partitioner.js';

export interface BusUnderTest {
  bus: EventBus;
  /** Partition count of the topics the bus creates: the suite checks placement with `partitionForKey`. */
  partitions: number;
  /** Closes the bus and releases what the factory made. */
  cleanup: () => Promise<void>;
}

export interface ConformanceSettings {
  /** Longest wait for an awaited condition. @default 20_000 */
  waitMs?: number;
  /** Timeout of each test. @default 60_000 */
  testTimeoutMs?: number;
}

interface Payload {
  key: string;
  seq: number;
}

/** A unique name per test: a broker outlives test runs and is shared by parallel files. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

function payloadTopic(name: string): Topic<Payload> {
  return {
    name,
    codec: {
      encode: (value) => Buffer.from(JSON.stringify(value)),
      decode: (bytes) => JSON.parse(bytes.toString('utf8')) as Payload,
    },
  };
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `perPartition` keys for every partition, so a check that needs each partition to carry records holds. */
export function keysCoveringPartitions(partitions: number, perPartition: number): string[] {
  const byPartition = new Map<number, string[]>();
  const keys: string[] = [];
  for (let i = 0; keys.length < partitions * perPartition; i++) {
    const key = `tenant-a/agent-${i}`;
    const p = partitionForKey(key, partitions);
    const list = byPartition.get(p) ?? [];
    if (list.length < perPartition) {
      list.push(key);
      byPartition.set(p, list);
      keys.push(key);
    }
  }
  return keys;
}

function records(keys: readonly string[], count: number, from = 0): Payload[] {
  return Array.from({ length: count }, (_, i) => ({ key: keys[(from + i) % keys.length] as string, seq: from + i }));
}

const toBusRecords = (payloads: readonly Payload[]) => payloads.map((value) => ({ key: value.key, value }));
const seqs = (batches: readonly DeliveredBatch<Payload>[]) => batches.flatMap((b) => b.records.map((r) => r.value.seq));

export function runEventBusConformance(name: string, makeBus: () => Promise<BusUnderTest>, settings: ConformanceSettings = {}): void {
  const waitMs = settings.waitMs ?? 20_000;
  const timeout = settings.testTimeoutMs ?? 60_000;

  /** Runs `body` with a fresh bus and always cleans up, also when the body fails. */
  async function withBus(body: (t: BusUnderTest, subscriptions: Subscription[]) => Promise<void>): Promise<void> {
    const t = await makeBus();
    const subscriptions: Subscription[] = [];
    try {
      await body(t, subscriptions);
    } finally {
      await Promise.allSettled(subscriptions.map((s) => s.stop()));
      await t.cleanup();
    }
  }

  describe(`event bus conformance: ${name}`, () => {
    it(
      'delivers every record once per group, on the partition of its key, in key order, in batches of at most maxBatch',
      () =>
        withBus(async ({ bus, partitions }, subscriptions) => {
          const topic = payloadTopic(uniqueName('conf-order'));
          const keys = keysCoveringPartitions(partitions, 2);
          const all = records(keys, 150);
          const batches: DeliveredBatch<Payload>[] = [];
          subscriptions.push(await bus.subscribe(topic, { group: uniqueName('g'), maxBatch: 7 }, async (b) => void batches.push(b)));
          // Three publishes: order per key must hold across calls too.
          await bus.publish(topic, toBusRecords(all.slice(0, 50)));
          await bus.publish(topic, toBusRecords(all.slice(50, 120)));
          await bus.publish(topic, toBusRecords(all.slice(120)));
          await waitFor(() => seqs(batches).length >= all.length, `${all.length} records`, waitMs);

          const delivered = seqs(batches);
          expect(delivered).toHaveLength(all.length);
          expect(new Set(delivered).size).toBe(all.length);
          const lastOffset = new Map<number, number>();
          for (const batch of batches) {
            expect(batch.topic).toBe(topic.name);
            expect(batch.records.length).toBeGreaterThan(0);
            expect(batch.records.length).toBeLessThanOrEqual(7);
            for (const record of batch.records) {
              expect(record.key).toBe(record.value.key);
              expect(batch.partition).toBe(partitionForKey(record.key, partitions));
              // Offsets rise strictly within a partition, across batches.
              expect(record.offset).toBeGreaterThan(lastOffset.get(batch.partition) ?? -1);
              lastOffset.set(batch.partition, record.offset);
            }
          }
          for (const key of keys) {
            const ofKey = batches.flatMap((b) => b.records).filter((r) => r.key === key).map((r) => r.value.seq);
            expect(ofKey).toEqual(all.filter((p) => p.key === key).map((p) => p.seq));
          }
        }),
      timeout,
    );

    it(
      'lets two groups each see every record',
      () =>
        withBus(async ({ bus, partitions }, subscriptions) => {
          const topic = payloadTopic(uniqueName('conf-groups'));
          const all = records(keysCoveringPartitions(partitions, 1), 40);
          const a: DeliveredBatch<Payload>[] = [];
          const b: DeliveredBatch<Payload>[] = [];
          subscriptions.push(await bus.subscribe(topic, { group: uniqueName('ga') }, async (x) => void a.push(x)));
          subscriptions.push(await bus.subscribe(topic, { group: uniqueName('gb') }, async (x) => void b.push(x)));
          await bus.publish(topic, toBusRecords(all));
          await waitFor(() => seqs(a).length >= all.length && seqs(b).length >= all.length, 'both groups to see all records', waitMs);
          const expected = all.map((p) => p.seq);
          expect(seqs(a).sort((x, y) => x - y)).toEqual(expected);
          expect(seqs(b).sort((x, y) => x - y)).toEqual(expected);
        }),
      timeout,
    );

    it(
      'hands a batch whose handler threw to the handler again, unchanged, and commits only after success',
      () =>
        withBus(async ({ bus }, subscriptions) => {
          const topic = payloadTopic(uniqueName('conf-retry'));
          const all = records(['tenant-a/agent-retry'], 10);
          const attempts: DeliveredBatch<Payload>[] = [];
          const group = uniqueName('g');
          subscriptions.push(
            await bus.subscribe(topic, { group }, async (b) => {
              attempts.push(b);
              if (attempts.length <= 2) throw new Error('transient failure');
            }),
          );
          await bus.publish(topic, toBusRecords(all));
          await waitFor(() => attempts.length >= 3 && new Set(seqs(attempts.slice(2))).size >= all.length, 'the batch to succeed', waitMs);
          const [first, second, third] = attempts as [DeliveredBatch<Payload>, DeliveredBatch<Payload>, DeliveredBatch<Payload>];
          // A redelivery starts where the failed batch started, with the same records.
          expect(second.records[0]?.offset).toBe(first.records[0]?.offset);
          expect(third.records[0]?.offset).toBe(first.records[0]?.offset);
          expect(second.records.map((r) => r.value.seq)).toEqual(first.records.map((r) => r.value.seq).slice(0, second.records.length));
          expect(seqs(attempts.slice(2))).toEqual(all.map((p) => p.seq));
        }),
      timeout,
    );

    it(
      'commits nothing of a batch whose handler keeps failing: the next member of the group gets it all',
      () =>
        withBus(async ({ bus }, subscriptions) => {
          const topic = payloadTopic(uniqueName('conf-nocommit'));
          const group = uniqueName('g');
          const all = records(['tenant-a/agent-fail'], 10);
          let failures = 0;
          const failing = await bus.subscribe(topic, { group, maxBatch: 4 }, async () => {
            failures++;
            throw new Error('handler down');
          });
          subscriptions.push(failing);
          await bus.publish(topic, toBusRecords(all));
          await waitFor(() => failures >= 2, 'two failed attempts', waitMs);
          await failing.stop();

          const recovered: DeliveredBatch<Payload>[] = [];
          const healthy = await bus.subscribe(topic, { group, maxBatch: 4 }, async (b) => void recovered.push(b));
          subscriptions.push(healthy);
          await waitFor(() => seqs(recovered).length >= all.length, 'the recovered member to get every record', waitMs);
          expect(seqs(recovered)).toEqual(all.map((p) => p.seq));
          await healthy.stop();

          // Success was committed: a later member sees only what came after.
          const later: DeliveredBatch<Payload>[] = [];
          subscriptions.push(await bus.subscribe(topic, { group }, async (b) => void later.push(b)));
          await bus.publish(topic, toBusRecords(records(['tenant-a/agent-fail'], 1, 100)));
          await waitFor(() => seqs(later).length >= 1, 'the new record', waitMs);
          expect(seqs(later)).toEqual([100]);
        }),
      timeout,
    );

    it(
      'stop() finishes and commits the batch in hand; a new subscription of the group resumes right after it',
      () =>
        withBus(async ({ bus, partitions }, subscriptions) => {
          const topic = payloadTopic(uniqueName('conf-resume'));
          const group = uniqueName('g');
          const keys = keysCoveringPartitions(partitions, 2);
          const first = records(keys, 80);
          await bus.publish(topic, toBusRecords(first));

          const seenA: DeliveredBatch<Payload>[] = [];
          let inHandler = false;
          let stopCalledDuringHandler = false;
          let stopRequested = false;
          const a = await bus.subscribe(topic, { group, maxBatch: 5 }, async (b) => {
            inHandler = true;
            // Slow handler: stop() is called while a batch is in hand.
            await new Promise((resolve) => setTimeout(resolve, 20));
            if (stopRequested) stopCalledDuringHandler = true;
            seenA.push(b);
            inHandler = false;
          });
          subscriptions.push(a);
          await waitFor(() => seqs(seenA).length >= 10 && inHandler, 'a batch in hand', waitMs);
          stopRequested = true;
          await a.stop();
          expect(stopCalledDuringHandler).toBe(true);
          const countA = seqs(seenA).length;
          expect(countA).toBeLessThan(first.length);

          const second = records(keys, 40, first.length);
          await bus.publish(topic, toBusRecords(second));
          const seenB: DeliveredBatch<Payload>[] = [];
          subscriptions.push(await bus.subscribe(topic, { group, maxBatch: 50 }, async (b) => void seenB.push(b)));
          const total = first.length + second.length;
          await waitFor(() => countA + seqs(seenB).length >= total, 'the rest of the records', waitMs);

          // Nothing lost, nothing handed over twice.
          const delivered = [...seqs(seenA), ...seqs(seenB)];
          expect(delivered).toHaveLength(total);
          expect(new Set(delivered).size).toBe(total);
          // Per partition, B starts exactly where A's last batch ended.
          for (let p = 0; p < partitions; p++) {
            const lastA = seenA.filter((x) => x.partition === p).flatMap((x) => x.records).at(-1)?.offset ?? -1;
            const firstB = seenB.filter((x) => x.partition === p).flatMap((x) => x.records)[0]?.offset;
            expect(firstB).toBe(lastA + 1);
          }
        }),
      timeout,
    );
  });
}
