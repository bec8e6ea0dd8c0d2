import { describe, expect, it, vi } from 'vitest';
import { buildTopics } from './topics.js';

describe('event codec (records from any Kafka producer)', () => {
  const { events } = buildTopics();
  const good = { event_id: 'e', time: 0, agent: { id: 'a' }, type: 'auth' };

  it('round-trips a valid event', () => {
    expect(events.codec.decode(events.codec.encode(events.codec.decode(Buffer.from(JSON.stringify(good)))))).toMatchObject({ event_id: 'e', tenant: 'default' });
  });

  it.each([
    ['{not json', /^not valid JSON/],
    ['{"event_id":"e","time":0,"agent":{"id":"a"},"type":"auth","attributes":{"__proto__":{"admin":true}}}', /^forbidden key/],
    ['{"event_id":"e","time":0,"agent":{"id":"a"},"type":"auth","constructor":{"prototype":{"x":1}}}', /^forbidden key/],
    ['{"event_id":"e","time":0,"agent":{},"type":"auth"}', /^agent\.id: /],
  ])('rejects %s with a reason', (text, reason) => {
    expect(() => events.codec.decode(Buffer.from(text))).toThrow(reason);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });
});

describe('event times ahead of the record timestamp', () => {
  const recordAt = Date.parse('2026-12-06T12:00:00Z');
  const event = (time: string) => Buffer.from(JSON.stringify({ event_id: 'e', time, agent: { id: 'a' }, type: 'auth' }));

  it('accepts an event up to the allowed skew ahead of its record and refuses a later one, naming the limit', () => {
    const { events } = buildTopics({}, { maxFutureSkewMs: 60_000 });
    expect(events.codec.decode(event('2026-12-06T12:01:00Z'), { timestamp: recordAt }).time).toBe(recordAt + 60_000);
    expect(() => events.codec.decode(event('2026-12-06T12:01:00.001Z'), { timestamp: recordAt })).toThrow(
      /^time: 2026-12-06T12:01:00\.001Z is later than 2026-12-06T12:01:00\.000Z, the latest time the record timestamp accepts \(ingest\.max_future_skew_ms\)$/,
    );
    expect(() => events.codec.decode(event('9999-12-31T23:59:59Z'), { timestamp: recordAt })).toThrow(/^time: /);
  });

  it('defaults to 15 minutes, accepts old events (backfills), and decides the same on a replay years later', () => {
    const { events } = buildTopics();
    expect(() => events.codec.decode(event('2026-12-06T12:15:00Z'), { timestamp: recordAt })).not.toThrow();
    expect(() => events.codec.decode(event('2026-12-06T12:15:01Z'), { timestamp: recordAt })).toThrow(/^time: /);
    expect(events.codec.decode(event('1970-01-01T00:00:00Z'), { timestamp: recordAt }).time).toBe(0);
    // The reference is the record, not the consumer's clock: the same answer whenever it is read.
    vi.useFakeTimers({ now: Date.parse('2031-01-01T00:00:00Z') });
    try {
      expect(() => events.codec.decode(event('2026-12-06T12:15:01Z'), { timestamp: recordAt })).toThrow(/^time: /);
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks nothing when the record has no timestamp', () => {
    const { events } = buildTopics();
    expect(events.codec.decode(event('2099-01-01T00:00:00Z')).time).toBe(Date.parse('2099-01-01T00:00:00Z'));
    expect(events.codec.decode(event('2099-01-01T00:00:00Z'), { timestamp: Number.NaN }).time).toBe(Date.parse('2099-01-01T00:00:00Z'));
  });
});
