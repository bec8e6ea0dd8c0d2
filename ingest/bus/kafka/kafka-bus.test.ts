import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { BusError } from './errors.js';
import { chunkByBytes, deadLetterOf, KafkaBus, resolveKafkaBusOptions } from './kafka-bus.js';

function message(value: Buffer | null, offset = '7'): KafkaMessage {
  return { key: Buffer.from('t/a'), value, offset, timestamp: '1795440000000', attributes: 0, size: 0 };
}

describe('kafka bus options', () => {
  it('fills the documented defaults and freezes the result', () => {
    const options = resolveKafkaBusOptions({ brokers: ['127.0.0.1:9092'] });
    expect(options).toMatchObject({ clientId: 'agentwatch', partitions: 4, replicationFactor: 1, groupIdPrefix: '', maxBatch: 1000, maxWaitMs: 500 });
    expect(options.deadLetterTopic.name).toBe('agentwatch.dlq');
    expect(Object.isFrozen(options)).toBe(true);
  });

  it('rejects bad options with AW_BUS_INVALID_OPTIONS naming the key and its bound', () => {
    expect(() => new KafkaBus({ brokers: [] })).toThrow(/brokers/);
    expect(() => new KafkaBus({ brokers: ['nohost'] })).toThrow(/"nohost" is not host:port/);
    expect(() => new KafkaBus({ brokers: ['h:1'], partitions: 0 })).toThrow(/partitions: must be an integer in \[1, 10000\]/);
    expect(() => new KafkaBus({ brokers: ['h:1'], sessionTimeoutMs: 5000, heartbeatIntervalMs: 6000 })).toThrow(/heartbeatIntervalMs/);
    expect(() => new KafkaBus({ brokers: ['h:1'], retryInitialDelayMs: 500, retryMaxDelayMs: 100 })).toThrow(/retryMaxDelayMs/);
    try {
      new KafkaBus({ brokers: ['h:1'], maxBatch: 1.5 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(BusError);
      expect((error as BusError).code).toBe('AW_BUS_INVALID_OPTIONS');
      expect((error as BusError).retriable).toBe(false);
    }
  });
});

describe('deadLetterOf', () => {
  it('records source, reason, truncated raw text and byte count, with an id derived from the position', () => {
    const value = Buffer.from('é'.repeat(5000));
    const letter = deadLetterOf('events', 2, message(value), new Error('Unexpected token'));
    expect(letter.source).toBe('kafka:events/2@7');
    expect(letter.reason).toBe('Unexpected token');
    expect(letter.raw).toBe('é'.repeat(4096));
    expect(letter.raw_bytes).toBe(10_000);
    expect(letter.received_at).toBe(1795440000000);
    expect(deadLetterOf('events', 2, message(Buffer.from('x')), new Error('other')).id).toBe(letter.id);
    expect(deadLetterOf('events', 2, message(value, '8'), new Error('x')).id).not.toBe(letter.id);
  });

  it('copes with a record without value', () => {
    const letter = deadLetterOf('events', 0, message(null), new Error('record has no value'));
    expect(letter).toMatchObject({ raw: '', raw_bytes: 0, reason: 'record has no value' });
  });
});

describe('chunkByBytes', () => {
  it('keeps order and cuts before a chunk would pass the limit; an oversized message goes alone', () => {
    const m = (n: number, key = 'k') => ({ key, value: Buffer.alloc(n) });
    const chunks = chunkByBytes([m(400), m(400), m(400), m(5000), m(10)], 1024);
    expect(chunks.map((c) => c.map((x) => (x.value as Buffer).length))).toEqual([[400, 400], [400], [5000], [10]]);
  });
});
