import { describe, expect, it } from 'vitest';
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
