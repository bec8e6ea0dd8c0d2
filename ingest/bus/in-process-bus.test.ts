import { describe, expect, it } from 'vitest';
import type { DeliveredBatch, Topic } from '../../core/ports.js';
import { InProcessBus } from './in-process-bus.js';
import { partitionForKey } from './partitioner.js';

const topic: Topic<number> = { name: 't', codec: { encode: (v) => Buffer.from(String(v)), decode: (b) => Number(b.toString()) } };

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('in-process bus', () => {
  it('partitions by key, keeps per-key order and delivers batches with offsets', async () => {
    const bus = new InProcessBus({ partitions: 3, firstOffset: 0 });
    const seen: DeliveredBatch<number>[] = [];
    await bus.subscribe(topic, { group: 'g', maxBatch: 4 }, async (b) => {
      seen.push(b);
    });
    await bus.publish(
      topic,
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 5}`, value: i })),
    );
    await bus.drained();
    const all = seen.flatMap((b) => b.records.map((r) => ({ p: b.partition, ...r })));
    expect(all).toHaveLength(30);
    expect(Math.max(...seen.map((b) => b.records.length))).toBeLessThanOrEqual(4);
    for (const r of all) expect(r.p).toBe(partitionForKey(r.key, 3));
    for (let k = 0; k < 5; k++) {
      const values = all.filter((r) => r.key === `k${k}`).map((r) => r.value);
      expect(values).toEqual([...values].sort((a, b) => a - b));
    }
    for (let p = 0; p < 3; p++) {
      const offsets = all.filter((r) => r.p === p).map((r) => r.offset);
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
    await bus.close();
  });

  it('redelivers a batch whose handler throws, and commits after success', async () => {
    const bus = new InProcessBus({ partitions: 1, retryDelayMs: 5 });
    let attempts = 0;
    const delivered: number[] = [];
    await bus.subscribe(topic, { group: 'g' }, async (b) => {
      attempts++;
      if (attempts === 1) throw new Error('transient');
      delivered.push(...b.records.map((r) => r.value));
    });
    await bus.publish(topic, [{ key: 'a', value: 1 }, { key: 'a', value: 2 }]);
    await bus.drained();
    expect(attempts).toBe(2);
    expect(delivered).toEqual([1, 2]);
    expect(bus.lag('t', 'g')).toBe(0);
    await bus.close();
  });

  it('each group sees every record', async () => {
    const bus = new InProcessBus({ partitions: 2 });
    const a: number[] = [];
    const b: number[] = [];
    await bus.subscribe(topic, { group: 'a' }, async (x) => void a.push(...x.records.map((r) => r.value)));
    await bus.subscribe(topic, { group: 'b' }, async (x) => void b.push(...x.records.map((r) => r.value)));
    await bus.publish(topic, [1, 2, 3].map((v) => ({ key: String(v), value: v })));
    await bus.drained();
    expect(a.sort()).toEqual([1, 2, 3]);
    expect(b.sort()).toEqual([1, 2, 3]);
    await bus.close();
  });

  it('applies backpressure: publish waits while a partition is full', async () => {
    const bus = new InProcessBus({ partitions: 1, maxBufferedPerPartition: 10 });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let handled = 0;
    await bus.subscribe(topic, { group: 'g', maxBatch: 5 }, async (b) => {
      await gate;
      handled += b.records.length;
    });
    let published = false;
    const publishing = bus.publish(topic, Array.from({ length: 25 }, (_, i) => ({ key: 'k', value: i }))).then(() => {
      published = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(published).toBe(false);
    release();
    await publishing;
    await until(() => handled === 25);
    expect(handled).toBe(25);
    await bus.close();
  });
});
